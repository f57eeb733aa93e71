// The catalog: sessions, audit events, cluster settings, users and nodes. An
// interface so that the embedded SQLite store and the scale-out PostgreSQL
// store share one test suite.
#ifndef MEZ_CATALOG_CATALOG_H_
#define MEZ_CATALOG_CATALOG_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libmez/util/status.h"

namespace mez::catalog {

enum class SessionStatus { kRecording, kComplete, kIncomplete };
std::string_view SessionStatusName(SessionStatus s);  // "recording", ...
Result<SessionStatus> ParseSessionStatus(std::string_view name);

struct Session {
  std::string id;
  std::string connection_id;
  std::string user;
  std::string node;
  std::string login;
  std::string kind;        // "shell", "exec", "tcpip"
  std::string command;     // exec
  int64_t started_us = 0;  // Unix microseconds
  int64_t ended_us = 0;    // 0 while recording
  uint64_t bytes = 0;      // Payload bytes received
  SessionStatus status = SessionStatus::kRecording;
  std::string storage_key;  // Relative to the storage root
  std::string format;       // "asciicast-v2", "pcap", "none"
  bool encrypted = false;
  // The mezrecd replica (ReplicaLease::id) that records it. Empty when not
  // known: rows written before schema version 6, or by a caller without a
  // replica id.
  std::string replica;
};

// A mezrecd replica's lease on the sessions it records (see
// replica_lease.h).
struct ReplicaLeaseRow {
  std::string id;
  int64_t started_us = 0;    // First renewal (Unix microseconds).
  int64_t last_seen_us = 0;  // Last renewal.
};

struct AuditEvent {
  int64_t id = 0;       // Assigned by the catalog, increasing.
  int64_t time_us = 0;  // Unix microseconds
  std::string type;     // "session.start", "session.end", ...
  std::string user;
  std::string session_id;
  std::string node;
  std::string details;  // A JSON object as text ("{}" when empty).
};

struct SessionFilter {
  std::string user;  // Empty: any.
  std::string node;
  std::string kind;                     // "shell", "exec", "tcpip"; empty: any
  std::optional<SessionStatus> status;  // nullopt: any
  std::string id_prefix;                // ids starting with it; empty: any
  int64_t since_us = 0;                 // started_us >= since_us
  int64_t until_us = 0;                 // started_us < until_us; 0: no bound
  int limit = 0;                        // 0: no limit. Newest first.
};

struct AuditFilter {
  std::string type;
  std::string user;
  std::string session_id;
  std::string node;
  int64_t since_us = 0;
  int64_t until_us = 0;
  int limit = 0;  // Newest first.
};

// A Mezite principal: a person ("user", "admin") or a proxy-only mezrecd
// ("proxy", never any logins).
struct User {
  // The identity's catalog id: 32 lowercase hex digits (128 random bits),
  // assigned by CreateUser when empty and never reused. Tokens carry it
  // (auth::Claims::uid); removing the name revokes them, and a user added
  // again under the same name gets a new id.
  std::string id;
  std::string name;                 // A plain identifier (IsPlainIdentifier).
  std::vector<std::string> logins;  // OS logins allowed; may be empty.
  std::string role;                 // "user", "admin" or "proxy".
  int64_t created_us = 0;           // Unix microseconds, as given.
};

// A node: an SSH server whose sessions are recorded.
struct Node {
  std::string id;        // As User::id, assigned by CreateNode when empty.
  std::string name;      // A plain identifier.
  std::string addr;      // HOST:PORT; an IPv6 host in brackets.
  bool openssh = false;  // Plain OpenSSH, no Mezite node agent.
  std::string login_hint;
  std::string host_key;
  std::string join_token_hash;  // Empty: none. Unique among nodes otherwise.
  int64_t created_us = 0;
  int64_t last_seen_us = 0;    // 0: never seen.
  std::string recording_mode;  // As the node last reported it.
};

// The record of a removed identity (DeleteUser, DeleteNode), kept so that
// what was signed for it before its removal can be told apart from what
// was signed after, and so that nodes can learn of recent removals.
struct Revocation {
  std::string id;          // The removed identity's User::id or Node::id.
  std::string name;        // Its name when removed.
  std::string kind;        // "user", "admin", "proxy" or "node".
  int64_t revoked_us = 0;  // Unix microseconds.
};

// ListRevocations returns at most this many rows.
inline constexpr int kMaxRevocationList = 10000;

// Thread-safe.
class Catalog {
 public:
  virtual ~Catalog() = default;

  // kAlreadyExists when a session with that id exists.
  virtual Status CreateSession(const Session& session) = 0;
  // Sets ended_us, bytes and status. kNotFound for an unknown id.
  virtual Status FinishSession(const std::string& id, int64_t ended_us,
                               uint64_t bytes, SessionStatus status) = 0;
  // Sets where the recording is stored (a shared pcap's key is known only
  // after the row exists). kNotFound for an unknown id.
  virtual Status SetSessionStorageKey(const std::string& id,
                                      const std::string& storage_key) = 0;
  // Removes a session row (not its recording). kNotFound for an unknown id.
  // Used to redo a node-mode upload whose replay was cut off.
  virtual Status DeleteSession(const std::string& id) = 0;
  // Records progress of a live session (bytes so far).
  virtual Status UpdateSessionBytes(const std::string& id, uint64_t bytes) = 0;
  virtual Result<Session> GetSession(const std::string& id) = 0;
  virtual Result<std::vector<Session>> ListSessions(
      const SessionFilter& filter) = 0;
  // Sessions left kRecording (by a crash) become kIncomplete; returns how
  // many. Called once at start, before serving, by a mezrecd that has the
  // catalog to itself (SQLite).
  virtual Result<int> MarkInterruptedSessions(int64_t now_us) = 0;

  // Replica leases: several mezrecd replicas sharing one catalog each
  // renew a lease while they live, and name themselves in the sessions
  // they record (Session::replica). Times come from the callers' clocks,
  // which must agree to well within a lease timeout.
  //
  // Creates the lease of replica `id`, or renews it: last_seen_us becomes
  // `now_us` (started_us is set on creation only). kInvalidArgument for an
  // empty id.
  virtual Status RenewReplicaLease(const std::string& id, int64_t now_us) = 0;
  // Removes the lease of `id` (a clean stop); sessions of `id` still
  // recording become orphans. OK when there is none.
  virtual Status DropReplicaLease(const std::string& id) = 0;
  // Every lease, ordered by id (bytewise).
  virtual Result<std::vector<ReplicaLeaseRow>> ListReplicaLeases() = 0;
  // Sessions still kRecording whose replica is not `self` and holds no
  // lease renewed at or after now_us - timeout_us (an expired lease, none,
  // or no replica recorded) become kIncomplete with ended_us = now_us.
  // Leases older than that (other than `self`'s) are removed. Returns how
  // many sessions were marked. Sessions of `self` are never touched; a
  // session is marked once even when several replicas sweep at once.
  // kInvalidArgument for an empty `self` or a timeout <= 0.
  virtual Result<int> MarkOrphanedSessions(const std::string& self,
                                           int64_t now_us,
                                           int64_t timeout_us) = 0;

  // Appends an event; returns its id.
  virtual Result<int64_t> AppendAudit(const AuditEvent& event) = 0;
  virtual Result<std::vector<AuditEvent>> ListAudit(
      const AuditFilter& filter) = 0;

  // Cluster settings (e.g. "session_recording"). nullopt when unset.
  virtual Result<std::optional<std::string>> GetConfig(
      const std::string& key) = 0;
  virtual Status SetConfig(const std::string& key,
                           const std::string& value) = 0;

  // Users. kInvalidArgument (naming the field) unless ValidateUser accepts
  // the user; kAlreadyExists when one with that name or id exists, or the
  // id was revoked. An empty id is replaced by a new one (NewIdentityId);
  // callers that need the id (to sign a token) set it themselves.
  virtual Status CreateUser(const User& user) = 0;
  // kNotFound for an unknown name.
  virtual Result<User> GetUser(const std::string& name) = 0;
  // Every user, ordered by name (bytewise).
  virtual Result<std::vector<User>> ListUsers() = 0;
  // kNotFound for an unknown name. Records the user's Revocation (kind: its
  // role; revoked_us: `revoked_us`, or the real clock's time when 0) in the
  // same transaction. Sessions and audit events naming the user are kept.
  virtual Status DeleteUser(const std::string& name,
                            int64_t revoked_us = 0) = 0;

  // Nodes. kInvalidArgument (naming the field) unless ValidateNode accepts
  // the node; kAlreadyExists when one with that name or id, or another
  // node with the same non-empty join_token_hash, exists, or the id was
  // revoked. An empty id is replaced by a new one, as for CreateUser.
  virtual Status CreateNode(const Node& node) = 0;
  // kNotFound for an unknown name.
  virtual Result<Node> GetNode(const std::string& name) = 0;
  // Every node, ordered by name (bytewise).
  virtual Result<std::vector<Node>> ListNodes() = 0;
  // kNotFound for an unknown name. Records the node's Revocation (kind
  // "node"), as DeleteUser does.
  virtual Status DeleteNode(const std::string& name,
                            int64_t revoked_us = 0) = 0;
  // Revocations with revoked_us >= since_us, newest first (ties: id
  // descending), at most `limit` of them (0, or more than
  // kMaxRevocationList: kMaxRevocationList).
  virtual Result<std::vector<Revocation>> ListRevocations(int64_t since_us,
                                                          int limit = 0) = 0;
  // The revocation of identity `id`. kNotFound when that id was never
  // revoked (a live identity, or an id never issued).
  virtual Result<Revocation> GetRevocation(const std::string& id) = 0;
  // Records a sign of life: sets last_seen_us and recording_mode, addr
  // unless `addr` is empty (kInvalidArgument unless HOST:PORT), and
  // host_key unless it is empty. kNotFound for an unknown name.
  virtual Status TouchNode(const std::string& name, int64_t seen_us,
                           const std::string& recording_mode,
                           const std::string& addr,
                           const std::string& host_key = "") = 0;
  // Uses up node `name`'s join token: clears its join_token_hash if it is
  // `hash`, in one statement, so that of any number of concurrent callers
  // (on any replica) with the same hash exactly one succeeds. kNotFound
  // when no node of that name has that hash (never issued, already used,
  // or the node was removed); kInvalidArgument for an empty hash.
  virtual Status ConsumeJoinToken(const std::string& name,
                                  const std::string& hash) = 0;
  // The node whose join_token_hash is `hash`. kNotFound when none;
  // kInvalidArgument for an empty hash (which never matches).
  virtual Result<Node> FindNodeByJoinTokenHash(const std::string& hash) = 0;

  // Row counts. Not free on SQLite (a walk of the smallest index), but no
  // rows are read or returned; meant for benchmarks and status pages.
  virtual Result<uint64_t> CountSessions() = 0;
  virtual Result<uint64_t> CountAudit() = 0;

  // For benchmarks and imports: stores every element in one transaction,
  // or none (the first failure is returned: kInvalidArgument as for
  // CreateSession/AppendAudit, checked before anything is written;
  // kAlreadyExists for a session id already stored or repeated). Other
  // callers wait while a batch is written; keep batches to ~100,000 rows.
  virtual Status BulkInsertSessions(const std::vector<Session>& sessions) = 0;
  // Audit event ids are assigned increasing in vector order; AuditEvent::id
  // is ignored.
  virtual Status BulkInsertAudit(const std::vector<AuditEvent>& events) = 0;
};

// Opens (creating if needed) the SQLite catalog at `path` in WAL mode,
// applying schema migrations. Settings default: session_recording =
// "node-sync" (returned by GetConfig when never set).
Result<std::unique_ptr<Catalog>> OpenSqliteCatalog(const std::string& path);

// Opens the PostgreSQL catalog at `url` (postgres://USER[:PASSWORD]@HOST:PORT
// /DBNAME?PARAMS, or postgresql://; any libpq URI parameter is accepted)
// and brings its schema up to date. Safe when several processes start at
// once: migrations are serialised by a PostgreSQL advisory lock. One
// connection, reset once when it breaks; kUnavailable (naming the server,
// never the password) when the server cannot be reached. Settings default
// as for SQLite. See docs/formats/catalog.md.
Result<std::unique_ptr<Catalog>> OpenPostgresCatalog(const std::string& url);

// Opens the catalog named by `url_or_path`: a postgres:// or postgresql://
// URL (MEZITE_DB_URL) opens PostgreSQL, anything else is the path of a
// SQLite file.
Result<std::unique_ptr<Catalog>> OpenCatalog(const std::string& url_or_path);

// Helpers shared by the backends, so that they validate and default alike.

// The value GetConfig returns for a key that was never set, or nullopt.
std::optional<std::string> DefaultConfigValue(std::string_view key);
// kInvalidArgument unless the session can be stored: non-empty id, bytes
// representable as a signed 64-bit integer (SQL BIGINT).
Status ValidateSession(const Session& session);
// The details text to store: "{}" for empty input; otherwise `details`
// itself, which must be a JSON object (kInvalidArgument if not).
Result<std::string> NormalizeAuditDetails(const std::string& details);
// True for a POSIX-style login name: 1-32 characters of [a-z0-9_-], the
// first one of [a-z_].
bool IsValidLoginName(std::string_view login);
// A new identity id: 16 bytes from the operating system's CSPRNG as 32
// lowercase hex digits.
std::string NewIdentityId();
// True for 32 lowercase hex digits (the form NewIdentityId returns).
bool IsIdentityId(std::string_view id);
// kInvalidArgument, naming the field, unless: id is empty or an identity
// id, name is a plain identifier, role is "user", "admin" or "proxy", each
// login is a valid login name, with no repeats, and a proxy has no logins.
Status ValidateUser(const User& user);
// kInvalidArgument, naming the field, unless id is empty or an identity
// id, name is a plain identifier and addr is valid (ValidateNodeAddr).
// Other fields are stored as given.
Status ValidateNode(const Node& node);
// kInvalidArgument unless `addr` is HOST:PORT: port 1-65535 in decimal;
// host a name or IPv4 address of [A-Za-z0-9._-], or an IPv6 address in
// brackets (an optional %zone allowed). The message names node `node_name`.
Status ValidateNodeAddr(std::string_view node_name, std::string_view addr);

struct SqliteCatalogOptions {
  // Apply migrations only up to this version; 0 applies all. Lets tests
  // build an old-schema file and check the upgrade path.
  int max_schema_version = 0;
};

// The newest schema version this build knows (docs/formats/catalog.md).
int SqliteCatalogSchemaVersion();

Result<std::unique_ptr<Catalog>> OpenSqliteCatalog(
    const std::string& path, const SqliteCatalogOptions& options);

}  // namespace mez::catalog

#endif  // MEZ_CATALOG_CATALOG_H_
