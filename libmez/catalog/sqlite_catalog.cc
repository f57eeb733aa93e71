// The embedded catalog: one SQLite connection in WAL mode, serialised by a
// mutex. Schema and migrations are specified in docs/formats/catalog.md.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "libmez/catalog/catalog.h"
#include "libmez/catalog/sqlite_catalog_internal.h"
#include "libmez/util/clock.h"
#include "libmez/util/status.h"

namespace mez::catalog {
namespace {

// Applied in order, each in its own transaction together with its row in
// schema_migrations. Append only: never edit a released step.
struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE sessions (
  id            TEXT    NOT NULL PRIMARY KEY,
  connection_id TEXT    NOT NULL,
  user          TEXT    NOT NULL,
  node          TEXT    NOT NULL,
  login         TEXT    NOT NULL,
  kind          TEXT    NOT NULL,
  command       TEXT    NOT NULL,
  started_us    INTEGER NOT NULL,
  ended_us      INTEGER NOT NULL,
  bytes         INTEGER NOT NULL CHECK (bytes >= 0),
  status        TEXT    NOT NULL
                CHECK (status IN ('recording', 'complete', 'incomplete')),
  storage_key   TEXT    NOT NULL,
  format        TEXT    NOT NULL,
  encrypted     INTEGER NOT NULL CHECK (encrypted IN (0, 1))
) STRICT;
CREATE INDEX sessions_user_started ON sessions (user, started_us, id);
CREATE INDEX sessions_node_started ON sessions (node, started_us, id);
CREATE INDEX sessions_started ON sessions (started_us, id);
CREATE INDEX sessions_connection ON sessions (connection_id);
CREATE INDEX sessions_recording ON sessions (id) WHERE status = 'recording';
)sql"},
    {2, R"sql(
CREATE TABLE audit_events (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  time_us    INTEGER NOT NULL,
  type       TEXT    NOT NULL,
  user       TEXT    NOT NULL,
  session_id TEXT    NOT NULL,
  node       TEXT    NOT NULL,
  details    TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_time ON audit_events (time_us);
CREATE INDEX audit_type_time ON audit_events (type, time_us);
CREATE INDEX audit_user_time ON audit_events (user, time_us);
CREATE INDEX audit_session ON audit_events (session_id);
)sql"},
    {3, R"sql(
CREATE TABLE config (
  key        TEXT    NOT NULL PRIMARY KEY,
  value      TEXT    NOT NULL,
  updated_us INTEGER NOT NULL
) STRICT;
)sql"},
    {4, R"sql(
CREATE TABLE users (
  name       TEXT    NOT NULL PRIMARY KEY,
  logins     TEXT    NOT NULL,
  role       TEXT    NOT NULL CHECK (role IN ('user', 'admin')),
  created_us INTEGER NOT NULL
) STRICT;
)sql"},
    {5, R"sql(
CREATE TABLE nodes (
  name            TEXT    NOT NULL PRIMARY KEY,
  addr            TEXT    NOT NULL,
  openssh         INTEGER NOT NULL CHECK (openssh IN (0, 1)),
  login_hint      TEXT    NOT NULL,
  host_key        TEXT    NOT NULL,
  join_token_hash TEXT    NOT NULL,
  created_us      INTEGER NOT NULL,
  last_seen_us    INTEGER NOT NULL,
  recording_mode  TEXT    NOT NULL
) STRICT;
CREATE UNIQUE INDEX nodes_join_token_hash ON nodes (join_token_hash)
  WHERE join_token_hash != '';
)sql"},
    {6, R"sql(
ALTER TABLE sessions ADD COLUMN replica TEXT NOT NULL DEFAULT '';
CREATE TABLE replicas (
  id           TEXT    NOT NULL PRIMARY KEY,
  started_us   INTEGER NOT NULL,
  last_seen_us INTEGER NOT NULL
) STRICT;
)sql"},
    // Identity ids (revocation by id), proxies as users, revocations. The
    // users table is rebuilt because SQLite cannot change a CHECK; ids of
    // existing rows come from randomblob (SQLite's CSPRNG), one per row.
    {7, R"sql(
CREATE TABLE users_v7 (
  name       TEXT    NOT NULL PRIMARY KEY,
  id         TEXT    NOT NULL,
  logins     TEXT    NOT NULL,
  role       TEXT    NOT NULL CHECK (role IN ('user', 'admin', 'proxy')),
  created_us INTEGER NOT NULL
) STRICT;
INSERT INTO users_v7 (name, id, logins, role, created_us)
  SELECT name, lower(hex(randomblob(16))), logins, role, created_us FROM users;
DROP TABLE users;
ALTER TABLE users_v7 RENAME TO users;
CREATE UNIQUE INDEX users_id ON users (id);
ALTER TABLE nodes ADD COLUMN id TEXT NOT NULL DEFAULT '';
UPDATE nodes SET id = lower(hex(randomblob(16)));
CREATE UNIQUE INDEX nodes_id ON nodes (id);
CREATE TABLE revocations (
  id         TEXT    NOT NULL PRIMARY KEY,
  name       TEXT    NOT NULL,
  kind       TEXT    NOT NULL
             CHECK (kind IN ('user', 'admin', 'proxy', 'node')),
  revoked_us INTEGER NOT NULL
) STRICT;
CREATE INDEX revocations_time ON revocations (revoked_us, id);
)sql"},
};

constexpr int kLatestVersion = kMigrations[std::size(kMigrations) - 1].version;

constexpr char kSessionColumns[] =
    "id, connection_id, user, node, login, kind, command, started_us, "
    "ended_us, bytes, status, storage_key, format, encrypted, replica";
constexpr char kInsertSessionSql[] =
    "INSERT INTO sessions (id, connection_id, user, node, login, kind, "
    "command, started_us, ended_us, bytes, status, storage_key, format, "
    "encrypted, replica) VALUES (:id, :connection_id, :user, :node, :login, "
    ":kind, :command, :started_us, :ended_us, :bytes, :status, :storage_key, "
    ":format, :encrypted, :replica)";
constexpr char kInsertAuditSql[] =
    "INSERT INTO audit_events (time_us, type, user, session_id, node, "
    "details) VALUES (:time_us, :type, :user, :session_id, :node, :details)";
constexpr char kUserColumns[] = "name, logins, role, created_us, id";
constexpr char kNodeColumns[] =
    "name, addr, openssh, login_hint, host_key, join_token_hash, created_us, "
    "last_seen_us, recording_mode, id";
constexpr char kRevocationColumns[] = "id, name, kind, revoked_us";

Code CodeForSqlite(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Code::kDataLoss;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Code::kUnavailable;  // Another process held the lock > 5 s.
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_PROTOCOL:
    case SQLITE_NOLFS:
      return Code::kIoError;
    default:
      return Code::kInternal;
  }
}

// A cached prepared statement borrowed for one call; resets on scope exit
// so that the next user finds it clean.
class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  Statement(Statement&& other) noexcept
      : stmt_(std::exchange(other.stmt_, nullptr)), bind_rc_(other.bind_rc_) {}
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ == nullptr) return;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  void Bind(const char* name, std::string_view value) {
    Record(sqlite3_bind_text64(stmt_, Index(name), value.data(), value.size(),
                               SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  void Bind(const char* name, int64_t value) {
    Record(sqlite3_bind_int64(stmt_, Index(name), value));
  }
  // Ready to bind and step again (in a loop over rows to insert).
  void Reset() {
    sqlite3_reset(stmt_);
    bind_rc_ = SQLITE_OK;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code (including a failed bind).
  int Step() {
    if (bind_rc_ != SQLITE_OK) return bind_rc_;
    return sqlite3_step(stmt_);
  }

  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    if (p == nullptr) return std::string();
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<size_t>(sqlite3_column_bytes(stmt_, col)));
  }

 private:
  int Index(const char* name) {
    int i = sqlite3_bind_parameter_index(stmt_, name);
    MEZ_CHECK(i > 0);  // The SQL and the binding code disagree.
    return i;
  }
  void Record(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }

  sqlite3_stmt* stmt_;
  int bind_rc_ = SQLITE_OK;
};

class SqliteCatalog : public Catalog {
 public:
  SqliteCatalog(std::string path, sqlite3* db)
      : path_(std::move(path)), db_(db) {}
  ~SqliteCatalog() override {
    for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
    // Keeps query planner statistics fresh; cheap when nothing changed.
    sqlite3_exec(db_, "PRAGMA optimize", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
  }

  // Sets the connection up and brings the schema to `max_version`.
  Status Init(int max_version);

  Status CreateSession(const Session& session) override;
  Status FinishSession(const std::string& id, int64_t ended_us, uint64_t bytes,
                       SessionStatus status) override;
  Status UpdateSessionBytes(const std::string& id, uint64_t bytes) override;
  Status SetSessionStorageKey(const std::string& id,
                              const std::string& storage_key) override;
  Result<Session> GetSession(const std::string& id) override;
  Result<std::vector<Session>> ListSessions(
      const SessionFilter& filter) override;
  Result<int> MarkInterruptedSessions(int64_t now_us) override;
  Status RenewReplicaLease(const std::string& id, int64_t now_us) override;
  Status DropReplicaLease(const std::string& id) override;
  Result<std::vector<ReplicaLeaseRow>> ListReplicaLeases() override;
  Result<int> MarkOrphanedSessions(const std::string& self, int64_t now_us,
                                   int64_t timeout_us) override;
  Result<int64_t> AppendAudit(const AuditEvent& event) override;
  Result<std::vector<AuditEvent>> ListAudit(const AuditFilter& filter) override;
  Result<std::optional<std::string>> GetConfig(const std::string& key) override;
  Status SetConfig(const std::string& key, const std::string& value) override;
  Status CreateUser(const User& user) override;
  Result<User> GetUser(const std::string& name) override;
  Result<std::vector<User>> ListUsers() override;
  Status DeleteUser(const std::string& name, int64_t revoked_us) override;
  Status CreateNode(const Node& node) override;
  Result<Node> GetNode(const std::string& name) override;
  Result<std::vector<Node>> ListNodes() override;
  Status DeleteNode(const std::string& name, int64_t revoked_us) override;
  Result<std::vector<Revocation>> ListRevocations(int64_t since_us,
                                                  int limit) override;
  Result<Revocation> GetRevocation(const std::string& id) override;
  Status DeleteSession(const std::string& id) override;
  Status TouchNode(const std::string& name, int64_t seen_us,
                   const std::string& recording_mode, const std::string& addr,
                   const std::string& host_key) override;
  Status ConsumeJoinToken(const std::string& name,
                          const std::string& hash) override;
  Result<Node> FindNodeByJoinTokenHash(const std::string& hash) override;
  Result<uint64_t> CountSessions() override;
  Result<uint64_t> CountAudit() override;
  Status BulkInsertSessions(const std::vector<Session>& sessions) override;
  Status BulkInsertAudit(const std::vector<AuditEvent>& events) override;

 private:
  // "catalog PATH: OP: sqlite message". REQUIRES: mu_ held (or Init).
  Status Error(std::string_view op, int rc) const;
  // The cached statement for `sql`, prepared on first use. At most one
  // Statement per SQL text may be alive. REQUIRES: mu_ held (or Init).
  Result<Statement> Prepare(std::string_view op, const std::string& sql);
  Status Exec(std::string_view op, const char* sql);
  // Runs `body` inside BEGIN IMMEDIATE ... COMMIT, rolling back when it (or
  // the commit) fails. REQUIRES: mu_ held (or Init).
  Status InTransaction(std::string_view op,
                       const std::function<Status()>& body);
  // Runs a statement that returns one integer row (a count). REQUIRES: mu_
  // not held.
  Result<uint64_t> Count(const char* op, const char* sql);
  // Runs a statement that changes at most one row named by :name. kNotFound
  // (`what` NAME not found) when it changed none. REQUIRES: mu_ held.
  Status ChangeOne(std::string_view op, Statement& stmt, std::string_view what,
                   const std::string& name);
  // kAlreadyExists ("`what`: id ... was revoked") when `id` has a
  // revocation. REQUIRES: mu_ held.
  Status CheckNotRevoked(std::string_view op, const std::string& what,
                         const std::string& id);
  // Deletes the row `name` of `table` ("users" or "nodes") and records its
  // revocation, in one transaction. REQUIRES: mu_ held.
  Status DeleteIdentity(const std::string& op, const char* table,
                        std::string_view what, const std::string& name,
                        int64_t revoked_us);
  Status ApplyMigration(const Migration& m);
  Result<int64_t> MaxSchemaVersion();
  Result<bool> IsApplied(int version);

  const std::string path_;
  std::mutex mu_;
  sqlite3* const db_;
  std::unordered_map<std::string, sqlite3_stmt*> stmts_;
};

Status SqliteCatalog::Error(std::string_view op, int rc) const {
  std::string m = "catalog " + path_ + ": " + std::string(op) + ": ";
  m += sqlite3_errmsg(db_);
  if ((rc & 0xff) != (sqlite3_extended_errcode(db_) & 0xff)) {
    m += " (";  // A bind error leaves errmsg describing an older failure.
    m += sqlite3_errstr(rc);
    m += ")";
  }
  return Status(CodeForSqlite(rc), std::move(m));
}

Result<Statement> SqliteCatalog::Prepare(std::string_view op,
                                         const std::string& sql) {
  auto it = stmts_.find(sql);
  if (it != stmts_.end()) return Statement(it->second);
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return Error(op, rc);
  stmts_.emplace(sql, stmt);
  return Statement(stmt);
}

Status SqliteCatalog::Exec(std::string_view op, const char* sql) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return Error(op, rc);
  return Status::Ok();
}

Status SqliteCatalog::InTransaction(std::string_view op,
                                    const std::function<Status()>& body) {
  MEZ_RETURN_IF_ERROR(Exec(op, "BEGIN IMMEDIATE"));
  Status status = body();
  if (status.ok()) status = Exec(op, "COMMIT");
  // A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY).
  if (!status.ok() && sqlite3_get_autocommit(db_) == 0) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  return status;
}

Result<uint64_t> SqliteCatalog::Count(const char* op, const char* sql) {
  std::lock_guard lock(mu_);
  MEZ_ASSIGN_OR_RETURN(Statement stmt, Prepare(op, sql));
  int rc = stmt.Step();
  if (rc != SQLITE_ROW) return Error(op, rc);
  return static_cast<uint64_t>(stmt.Int(0));
}

Status SqliteCatalog::ChangeOne(std::string_view op, Statement& stmt,
                                std::string_view what,
                                const std::string& name) {
  int rc = stmt.Step();
  if (rc != SQLITE_DONE) return Error(op, rc);
  if (sqlite3_changes(db_) == 0) {
    return NotFound(std::string(what) + " " + name + " not found");
  }
  return Status::Ok();
}

Result<int64_t> SqliteCatalog::MaxSchemaVersion() {
  MEZ_ASSIGN_OR_RETURN(
      Statement stmt,
      Prepare("read schema version",
              "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"));
  int rc = stmt.Step();
  if (rc != SQLITE_ROW) return Error("read schema version", rc);
  return stmt.Int(0);
}

Result<bool> SqliteCatalog::IsApplied(int version) {
  MEZ_ASSIGN_OR_RETURN(
      Statement stmt,
      Prepare("read schema version",
              "SELECT 1 FROM schema_migrations WHERE version = :v"));
  stmt.Bind(":v", int64_t{version});
  int rc = stmt.Step();
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) return Error("read schema version", rc);
  return false;
}

Status SqliteCatalog::ApplyMigration(const Migration& m) {
  std::string op = "schema migration " + std::to_string(m.version);
  // IMMEDIATE takes the write lock first, so two processes opening the same
  // file at once apply each step exactly once.
  return InTransaction(op, [&]() -> Status {
    MEZ_ASSIGN_OR_RETURN(bool applied, IsApplied(m.version));
    if (applied) return Status::Ok();  // By another process, just now.
    MEZ_RETURN_IF_ERROR(Exec(op, m.sql));
    MEZ_ASSIGN_OR_RETURN(Statement stmt,
                         Prepare(op,
                                 "INSERT INTO schema_migrations "
                                 "(version, applied_at) VALUES (:v, :t)"));
    stmt.Bind(":v", int64_t{m.version});
    stmt.Bind(":t", RealClock()->WallMicros());
    int rc = stmt.Step();
    if (rc != SQLITE_DONE) return Error(op, rc);
    return Status::Ok();
  });
}

Status SqliteCatalog::Init(int max_version) {
  sqlite3_extended_result_codes(db_, 1);
  // busy_timeout first: switching to WAL needs a lock another process may
  // hold.
  MEZ_RETURN_IF_ERROR(Exec("set busy timeout", "PRAGMA busy_timeout = 5000"));
  {
    MEZ_ASSIGN_OR_RETURN(Statement stmt,
                         Prepare("enable WAL", "PRAGMA journal_mode = WAL"));
    int rc = stmt.Step();
    if (rc != SQLITE_ROW) return Error("enable WAL", rc);
    std::string mode = stmt.Text(0);
    if (mode != "wal") {
      return IoError("catalog " + path_ + ": enable WAL: journal mode is \"" +
                     mode + "\"");
    }
  }
  MEZ_RETURN_IF_ERROR(Exec("set synchronous", "PRAGMA synchronous = NORMAL"));
  MEZ_RETURN_IF_ERROR(Exec("enable foreign keys", "PRAGMA foreign_keys = ON"));
  MEZ_RETURN_IF_ERROR(Exec("create schema_migrations",
                           "CREATE TABLE IF NOT EXISTS schema_migrations ("
                           "version INTEGER PRIMARY KEY, "
                           "applied_at INTEGER NOT NULL)"));

  MEZ_ASSIGN_OR_RETURN(int64_t current, MaxSchemaVersion());
  if (current > kLatestVersion) {
    return FailedPrecondition(
        "catalog " + path_ + ": schema version " + std::to_string(current) +
        " is newer than version " + std::to_string(kLatestVersion) +
        ", the newest this build knows; run a newer mezrecd");
  }
  for (const Migration& m : kMigrations) {
    if (m.version > max_version) break;
    MEZ_ASSIGN_OR_RETURN(bool applied, IsApplied(m.version));
    if (!applied) MEZ_RETURN_IF_ERROR(ApplyMigration(m));
  }
  return Status::Ok();
}

void BindSession(Statement& stmt, const Session& s) {
  stmt.Bind(":id", s.id);
  stmt.Bind(":connection_id", s.connection_id);
  stmt.Bind(":user", s.user);
  stmt.Bind(":node", s.node);
  stmt.Bind(":login", s.login);
  stmt.Bind(":kind", s.kind);
  stmt.Bind(":command", s.command);
  stmt.Bind(":started_us", s.started_us);
  stmt.Bind(":ended_us", s.ended_us);
  stmt.Bind(":bytes", static_cast<int64_t>(s.bytes));
  stmt.Bind(":status", SessionStatusName(s.status));
  stmt.Bind(":storage_key", s.storage_key);
  stmt.Bind(":format", s.format);
  stmt.Bind(":encrypted", int64_t{s.encrypted ? 1 : 0});
  stmt.Bind(":replica", s.replica);
}

// Reads a row selected with kSessionColumns.
Result<Session> ReadSession(const Statement& stmt) {
  Session s;
  s.id = stmt.Text(0);
  s.connection_id = stmt.Text(1);
  s.user = stmt.Text(2);
  s.node = stmt.Text(3);
  s.login = stmt.Text(4);
  s.kind = stmt.Text(5);
  s.command = stmt.Text(6);
  s.started_us = stmt.Int(7);
  s.ended_us = stmt.Int(8);
  s.bytes = static_cast<uint64_t>(stmt.Int(9));
  auto status = ParseSessionStatus(stmt.Text(10));
  if (!status.ok()) {
    return DataLoss("session " + s.id + ": " + status.status().message());
  }
  s.status = *status;
  s.storage_key = stmt.Text(11);
  s.format = stmt.Text(12);
  s.encrypted = stmt.Int(13) != 0;
  s.replica = stmt.Text(14);
  return s;
}

Status SqliteCatalog::CreateSession(const Session& session) {
  MEZ_RETURN_IF_ERROR(ValidateSession(session));
  std::lock_guard lock(mu_);
  std::string op = "create session " + session.id;
  MEZ_ASSIGN_OR_RETURN(Statement stmt, Prepare(op, kInsertSessionSql));
  BindSession(stmt, session);
  int rc = stmt.Step();
  if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
    return Status(Code::kAlreadyExists,
                  "session " + session.id + " already exists");
  }
  if (rc != SQLITE_DONE) return Error(op, rc);
  return Status::Ok();
}

Status SqliteCatalog::FinishSession(const std::string& id, int64_t ended_us,
                                    uint64_t bytes, SessionStatus status) {
  if (status == SessionStatus::kRecording) {
    return InvalidArgument("finish session " + id +
                           ": final status must be complete or incomplete");
  }
  Session check;
  check.id = id;
  check.bytes = bytes;
  MEZ_RETURN_IF_ERROR(ValidateSession(check));
  std::lock_guard lock(mu_);
  std::string op = "finish session " + id;
  MEZ_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare(op,
                               "UPDATE sessions SET ended_us = :ended_us, "
                               "bytes = :bytes, status = :status "
                               "WHERE id = :id"));
  stmt.Bind(":id", id);
  stmt.Bind(":ended_us", ended_us);
  stmt.Bind(":bytes", static_cast<int64_t>(bytes));
  stmt.Bind(":status", SessionStatusName(status));
  int rc = stmt.Step();
  if (rc != SQLITE_DONE) return Error(op, rc);
  if (sqlite3_changes(db_) == 0)
    return NotFound("session " + id + " not found");
  return Status::Ok();
}

Status SqliteCatalog::UpdateSessionBytes(const std::string& id,
                                         uint64_t bytes) {
  Session check;
  check.id = id;
  check.bytes = bytes;
  MEZ_RETURN_IF_ERROR(ValidateSession(check));
  std::lock_guard lock(mu_);
  std::string op = "update bytes of session " + id;
  MEZ_ASSIGN_OR_RETURN(
      Statement stmt,
      Prepare(op, "UPDATE sessions SET bytes = :bytes WHERE id = :id"));
  stmt.Bind(":id", id);
  stmt.Bind(":bytes", static_cast<int64_t>(bytes));
  int rc = stmt.Step();
  if (rc != SQLITE_DONE) return Error(op, rc);
  if (sqlite3_changes(db_) == 0)
    return NotFound("session " + id + " not found");
  return Status::Ok();
}

Result<Session> SqliteCatalog::GetSession(const std::string& id) {
  std::lock_guard lock(mu_);
  std::string op = "get session " + id;
  MEZ_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare(op, std::string("SELECT ") + kSessionColumns +
                                       " FROM sessions WHERE id = :id"));
  stmt.Bind(":id", id);
  int rc = stmt.Step();
  if (rc == SQLITE_DONE) return NotFound("session " + id + " not found");
  if (rc != SQLITE_ROW) return Error(op, rc);
  return ReadSession(stmt);
}

// Builds "WHERE a AND b" from the conditions in use. Only fixed SQL text
// goes in; every value is a bound parameter. Each combination is one
// cached statement.
std::string WhereClause(const std::vector<const char*>& conditions) {
  std::string sql;
  for (const char* c : conditions) {
    sql += sql.empty() ? " WHERE " : " AND ";
    sql += c;
  }
  return sql;
}

Result<std::vector<Session>> SqliteCatalog::ListSessions(
    const SessionFilter& filter) {
  if (filter.limit < 0) {
    return InvalidArgument("list sessions: negative limit " +
                           std::to_string(filter.limit));
  }
  std::string sql = internal::ListSessionsSql(filter);
  std::lock_guard lock(mu_);
  MEZ_ASSIGN_OR_RETURN(Statement stmt, Prepare("list sessions", sql));
  if (!filter.user.empty()) stmt.Bind(":user", filter.user);
  if (!filter.node.empty()) stmt.Bind(":node", filter.node);
  if (!filter.kind.empty()) stmt.Bind(":kind", filter.kind);
  if (filter.status) {
    stmt.Bind(":status", std::string(SessionStatusName(*filter.status)));
  }
  if (!filter.id_prefix.empty()) stmt.Bind(":prefix", filter.id_prefix);
  if (filter.since_us != 0) stmt.Bind(":since", filter.since_us);
  if (filter.until_us != 0) stmt.Bind(":until", filter.until_us);
  stmt.Bind(":limit", int64_t{filter.limit == 0 ? -1 : filter.limit});
  std::vector<Session> out;
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) {
    MEZ_ASSIGN_OR_RETURN(Session s, ReadSession(stmt));
    out.push_back(std::move(s));
  }
  if (rc != SQLITE_DONE) return Error("list sessions", rc);
  return out;
}

Result<int> SqliteCatalog::MarkInterruptedSessions(int64_t now_us) {
  std::lock_guard lock(mu_);
  const char* op = "mark interrupted sessions";
  MEZ_ASSIGN_OR_RETURN(
      Statement stmt,
      Prepare(op,
              "UPDATE sessions SET status = 'incomplete', ended_us = :now "
              "WHERE status = 'recording'"));
  stmt.Bind(":now", now_us);
  int rc = stmt.Step();
  if (rc != SQLITE_DONE) return Error(op, rc);
  return sqlite3_changes(db_);
}

Status SqliteCatalog::RenewReplicaLease(const std::string& id, int64_t now_us) {
  if (id.empty()) return InvalidArgument("replica id is empty");
  std::lock_guard lock(mu_);
  std::string op = "renew the lease of replica " + id;
  MEZ_ASSIGN_OR_RETURN(
      Statement stmt,
      Prepare(op,
              "INSERT INTO replicas (id, started_us, last_seen_us) "
              "VALUES (:id, :now, :now) ON CONFLICT (id) DO UPDATE SET "
              "last_seen_us = excluded.last_seen_us"));
  stmt.Bind(":id", id);
  stmt.Bind(":now", now_us);
  int rc = stmt.Step();
  if (rc != SQLITE_DONE) return Error(op, rc);
  return Status::Ok();
}

Status SqliteCatalog::DropReplicaLease(const std::string& id) {
  std::lock_guard lock(mu_);
  std::string op = "drop the lease of replica " + id;
  MEZ_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare(op, "DELETE FROM replicas WHERE id = :id"));
  stmt.Bind(":id", id);
  int rc = stmt.Step();
  if (rc != SQLITE_DONE) return Error(op, rc);
  return Status::Ok();
}

Result<std::vector<ReplicaLeaseRow>> SqliteCatalog::ListReplicaLeases() {
  std::lock_guard lock(mu_);
  const char* op = "list replica leases";
  MEZ_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare(op,
                               "SELECT id, started_us, last_seen_us "
                               "FROM replicas ORDER BY id"));
  std::vector<ReplicaLeaseRow> out;
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) {
    out.push_back({stmt.Text(0), stmt.Int(1), stmt.Int(2)});
  }
  if (rc != SQLITE_DONE) return Error(op, rc);
  return out;
}

Result<int> SqliteCatalog::MarkOrphanedSessions(const std::string& self,
                                                int64_t now_us,
                                                int64_t timeout_us) {
  if (self.empty()) return InvalidArgument("replica id is empty");
  if (timeout_us <= 0) {
    return InvalidArgument("replica lease timeout must be positive");
  }
  const int64_t cutoff_us = now_us - timeout_us;
  std::lock_guard lock(mu_);
  const char* op = "mark orphaned sessions";
  int marked = 0;
  Status st = InTransaction(op, [&]() -> Status {
    {
      MEZ_ASSIGN_OR_RETURN(
          Statement stmt,
          Prepare(op,
                  "UPDATE sessions SET status = 'incomplete', "
                  "ended_us = :now WHERE status = 'recording' "
                  "AND replica != :self AND NOT EXISTS (SELECT 1 FROM "
                  "replicas r WHERE r.id = sessions.replica "
                  "AND r.last_seen_us >= :cutoff)"));
      stmt.Bind(":now", now_us);
      stmt.Bind(":self", self);
      stmt.Bind(":cutoff", cutoff_us);
      int rc = stmt.Step();
      if (rc != SQLITE_DONE) return Error(op, rc);
      marked = sqlite3_changes(db_);
    }
    MEZ_ASSIGN_OR_RETURN(Statement drop,
                         Prepare(op,
                                 "DELETE FROM replicas WHERE "
                                 "last_seen_us < :cutoff AND id != :self"));
    drop.Bind(":cutoff", cutoff_us);
    drop.Bind(":self", self);
    int rc = drop.Step();
    if (rc != SQLITE_DONE) return Error(op, rc);
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return marked;
}

// The details text to store for `event` (checks the type too).
Result<std::string> CheckAudit(const AuditEvent& event) {
  if (event.type.empty()) return InvalidArgument("audit event type is empty");
  return NormalizeAuditDetails(event.details);
}

void BindAudit(Statement& stmt, const AuditEvent& event,
               const std::string& details) {
  stmt.Bind(":time_us", event.time_us);
  stmt.Bind(":type", event.type);
  stmt.Bind(":user", event.user);
  stmt.Bind(":session_id", event.session_id);
  stmt.Bind(":node", event.node);
  stmt.Bind(":details", details);
}

Result<int64_t> SqliteCatalog::AppendAudit(const AuditEvent& event) {
  MEZ_ASSIGN_OR_RETURN(std::string details, CheckAudit(event));
  std::lock_guard lock(mu_);
  std::string op = "append audit event " + event.type;
  MEZ_ASSIGN_OR_RETURN(
      Statement stmt,
      Prepare(op, std::string(kInsertAuditSql) + " RETURNING id"));
  BindAudit(stmt, event, details);
  int rc = stmt.Step();
  if (rc != SQLITE_ROW) return Error(op, rc);
  int64_t id = stmt.Int(0);
  // RETURNING rows are produced before the statement finishes; the insert
  // is only done once step reports DONE.
  rc = stmt.Step();
  if (rc != SQLITE_DONE) return Error(op, rc);
  return id;
}

Result<std::vector<AuditEvent>> SqliteCatalog::ListAudit(
    const AuditFilter& filter) {
  if (filter.limit < 0) {
    return InvalidArgument("list audit events: negative limit " +
                           std::to_string(filter.limit));
  }
  std::string sql = internal::ListAuditSql(filter);
  std::lock_guard lock(mu_);
  const char* op = "list audit events";
  MEZ_ASSIGN_OR_RETURN(Statement stmt, Prepare(op, sql));
  if (!filter.type.empty()) stmt.Bind(":type", filter.type);
  if (!filter.user.empty()) stmt.Bind(":user", filter.user);
  if (!filter.session_id.empty()) stmt.Bind(":session_id", filter.session_id);
  if (!filter.node.empty()) stmt.Bind(":node", filter.node);
  if (filter.since_us != 0) stmt.Bind(":since", filter.since_us);
  if (filter.until_us != 0) stmt.Bind(":until", filter.until_us);
  stmt.Bind(":limit", int64_t{filter.limit == 0 ? -1 : filter.limit});
  std::vector<AuditEvent> out;
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) {
    AuditEvent e;
    e.id = stmt.Int(0);
    e.time_us = stmt.Int(1);
    e.type = stmt.Text(2);
    e.user = stmt.Text(3);
    e.session_id = stmt.Text(4);
    e.node = stmt.Text(5);
    e.details = stmt.Text(6);
    out.push_back(std::move(e));
  }
  if (rc != SQLITE_DONE) return Error(op, rc);
  return out;
}

Result<std::optional<std::string>> SqliteCatalog::GetConfig(
    const std::string& key) {
  if (key.empty()) return InvalidArgument("config key is empty");
  std::lock_guard lock(mu_);
  std::string op = "get config " + key;
  MEZ_ASSIGN_OR_RETURN(
      Statement stmt, Prepare(op, "SELECT value FROM config WHERE key = :key"));
  stmt.Bind(":key", key);
  int rc = stmt.Step();
  if (rc == SQLITE_ROW) return std::optional<std::string>(stmt.Text(0));
  if (rc != SQLITE_DONE) return Error(op, rc);
  return DefaultConfigValue(key);
}

Status SqliteCatalog::SetConfig(const std::string& key,
                                const std::string& value) {
  if (key.empty()) return InvalidArgument("config key is empty");
  std::lock_guard lock(mu_);
  std::string op = "set config " + key;
  MEZ_ASSIGN_OR_RETURN(
      Statement stmt,
      Prepare(op,
              "INSERT INTO config (key, value, updated_us) "
              "VALUES (:key, :value, :updated_us) ON CONFLICT (key) DO "
              "UPDATE SET value = excluded.value, "
              "updated_us = excluded.updated_us"));
  stmt.Bind(":key", key);
  stmt.Bind(":value", value);
  stmt.Bind(":updated_us", RealClock()->WallMicros());
  int rc = stmt.Step();
  if (rc != SQLITE_DONE) return Error(op, rc);
  return Status::Ok();
}

Status SqliteCatalog::BulkInsertSessions(const std::vector<Session>& sessions) {
  for (const Session& s : sessions) MEZ_RETURN_IF_ERROR(ValidateSession(s));
  if (sessions.empty()) return Status::Ok();
  std::lock_guard lock(mu_);
  const char* op = "bulk insert sessions";
  return InTransaction(op, [&]() -> Status {
    MEZ_ASSIGN_OR_RETURN(Statement stmt, Prepare(op, kInsertSessionSql));
    for (const Session& s : sessions) {
      stmt.Reset();
      BindSession(stmt, s);
      int rc = stmt.Step();
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return Status(Code::kAlreadyExists,
                      "session " + s.id + " already exists");
      }
      if (rc != SQLITE_DONE) return Error(op, rc);
    }
    return Status::Ok();
  });
}

Status SqliteCatalog::BulkInsertAudit(const std::vector<AuditEvent>& events) {
  std::vector<std::string> details;
  details.reserve(events.size());
  for (const AuditEvent& e : events) {
    MEZ_ASSIGN_OR_RETURN(std::string d, CheckAudit(e));
    details.push_back(std::move(d));
  }
  if (events.empty()) return Status::Ok();
  std::lock_guard lock(mu_);
  const char* op = "bulk insert audit events";
  return InTransaction(op, [&]() -> Status {
    MEZ_ASSIGN_OR_RETURN(Statement stmt, Prepare(op, kInsertAuditSql));
    for (size_t i = 0; i < events.size(); ++i) {
      stmt.Reset();
      BindAudit(stmt, events[i], details[i]);
      int rc = stmt.Step();
      if (rc != SQLITE_DONE) return Error(op, rc);
    }
    return Status::Ok();
  });
}

Result<uint64_t> SqliteCatalog::CountSessions() {
  return Count("count sessions", "SELECT COUNT(*) FROM sessions");
}

Result<uint64_t> SqliteCatalog::CountAudit() {
  return Count("count audit events", "SELECT COUNT(*) FROM audit_events");
}

// Reads a row selected with kUserColumns.
Result<User> ReadUser(const Statement& stmt) {
  User u;
  u.name = stmt.Text(0);
  nlohmann::json logins = nlohmann::json::parse(stmt.Text(1), /*cb=*/nullptr,
                                                /*allow_exceptions=*/false);
  if (logins.is_discarded() || !logins.is_array()) {
    return DataLoss("user " + u.name + ": logins are not a JSON array");
  }
  for (const nlohmann::json& login : logins) {
    if (!login.is_string()) {
      return DataLoss("user " + u.name + ": a login is not a JSON string");
    }
    u.logins.push_back(login.get<std::string>());
  }
  u.role = stmt.Text(2);
  u.created_us = stmt.Int(3);
  u.id = stmt.Text(4);
  return u;
}

Status SqliteCatalog::CheckNotRevoked(std::string_view op,
                                      const std::string& what,
                                      const std::string& id) {
  MEZ_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare(op, "SELECT 1 FROM revocations WHERE id = :id"));
  stmt.Bind(":id", id);
  int rc = stmt.Step();
  if (rc == SQLITE_ROW) {
    return Status(Code::kAlreadyExists,
                  what + ": id " + id +
                      " was revoked; leave the id empty to get a new one");
  }
  if (rc != SQLITE_DONE) return Error(op, rc);
  return Status::Ok();
}

Status SqliteCatalog::CreateUser(const User& user) {
  MEZ_RETURN_IF_ERROR(ValidateUser(user));
  // Valid logins are plain ASCII, so dump() cannot throw.
  std::string logins = nlohmann::json(user.logins).dump();
  std::string id = user.id.empty() ? NewIdentityId() : user.id;
  std::lock_guard lock(mu_);
  std::string op = "create user " + user.name;
  return InTransaction(op, [&]() -> Status {
    MEZ_RETURN_IF_ERROR(CheckNotRevoked(op, "user " + user.name, id));
    MEZ_ASSIGN_OR_RETURN(
        Statement stmt,
        Prepare(op,
                "INSERT INTO users (name, id, logins, role, created_us) "
                "VALUES (:name, :id, :logins, :role, :created_us)"));
    stmt.Bind(":name", user.name);
    stmt.Bind(":id", id);
    stmt.Bind(":logins", logins);
    stmt.Bind(":role", user.role);
    stmt.Bind(":created_us", user.created_us);
    int rc = stmt.Step();
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
      return Status(Code::kAlreadyExists,
                    "user " + user.name + " already exists");
    }
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {  // users_id
      return Status(Code::kAlreadyExists,
                    "user " + user.name + ": id " + id +
                        " already belongs to another user");
    }
    if (rc != SQLITE_DONE) return Error(op, rc);
    return Status::Ok();
  });
}

Result<User> SqliteCatalog::GetUser(const std::string& name) {
  std::lock_guard lock(mu_);
  std::string op = "get user " + name;
  MEZ_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare(op, std::string("SELECT ") + kUserColumns +
                                       " FROM users WHERE name = :name"));
  stmt.Bind(":name", name);
  int rc = stmt.Step();
  if (rc == SQLITE_DONE) return NotFound("user " + name + " not found");
  if (rc != SQLITE_ROW) return Error(op, rc);
  return ReadUser(stmt);
}

Result<std::vector<User>> SqliteCatalog::ListUsers() {
  std::lock_guard lock(mu_);
  const char* op = "list users";
  MEZ_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare(op, std::string("SELECT ") + kUserColumns +
                                       " FROM users ORDER BY name"));
  std::vector<User> out;
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) {
    MEZ_ASSIGN_OR_RETURN(User u, ReadUser(stmt));
    out.push_back(std::move(u));
  }
  if (rc != SQLITE_DONE) return Error(op, rc);
  return out;
}

Status SqliteCatalog::DeleteIdentity(const std::string& op, const char* table,
                                     std::string_view what,
                                     const std::string& name,
                                     int64_t revoked_us) {
  if (revoked_us == 0) revoked_us = RealClock()->WallMicros();
  bool is_node = std::string_view(table) == "nodes";
  return InTransaction(op, [&]() -> Status {
    std::string id, kind;
    {
      MEZ_ASSIGN_OR_RETURN(Statement stmt,
                           Prepare(op, is_node ? "SELECT id, 'node' FROM nodes "
                                                 "WHERE name = :name"
                                               : "SELECT id, role FROM users "
                                                 "WHERE name = :name"));
      stmt.Bind(":name", name);
      int rc = stmt.Step();
      if (rc == SQLITE_DONE) {
        return NotFound(std::string(what) + " " + name + " not found");
      }
      if (rc != SQLITE_ROW) return Error(op, rc);
      id = stmt.Text(0);
      kind = stmt.Text(1);
    }
    {
      MEZ_ASSIGN_OR_RETURN(
          Statement stmt,
          Prepare(op, is_node ? "DELETE FROM nodes WHERE name = :name"
                              : "DELETE FROM users WHERE name = :name"));
      stmt.Bind(":name", name);
      int rc = stmt.Step();
      if (rc != SQLITE_DONE) return Error(op, rc);
    }
    MEZ_ASSIGN_OR_RETURN(
        Statement stmt,
        Prepare(op,
                "INSERT INTO revocations (id, name, kind, revoked_us) "
                "VALUES (:id, :name, :kind, :revoked_us) "
                "ON CONFLICT (id) DO NOTHING"));
    stmt.Bind(":id", id);
    stmt.Bind(":name", name);
    stmt.Bind(":kind", kind);
    stmt.Bind(":revoked_us", revoked_us);
    int rc = stmt.Step();
    if (rc != SQLITE_DONE) return Error(op, rc);
    return Status::Ok();
  });
}

Status SqliteCatalog::DeleteUser(const std::string& name, int64_t revoked_us) {
  std::lock_guard lock(mu_);
  return DeleteIdentity("delete user " + name, "users", "user", name,
                        revoked_us);
}

Revocation ReadRevocation(const Statement& stmt) {
  Revocation r;
  r.id = stmt.Text(0);
  r.name = stmt.Text(1);
  r.kind = stmt.Text(2);
  r.revoked_us = stmt.Int(3);
  return r;
}

Result<std::vector<Revocation>> SqliteCatalog::ListRevocations(int64_t since_us,
                                                               int limit) {
  if (limit <= 0 || limit > kMaxRevocationList) limit = kMaxRevocationList;
  std::lock_guard lock(mu_);
  const char* op = "list revocations";
  MEZ_ASSIGN_OR_RETURN(
      Statement stmt,
      Prepare(op, std::string("SELECT ") + kRevocationColumns +
                      " FROM revocations WHERE revoked_us >= :since "
                      "ORDER BY revoked_us DESC, id DESC LIMIT :limit"));
  stmt.Bind(":since", since_us);
  stmt.Bind(":limit", int64_t{limit});
  std::vector<Revocation> out;
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) out.push_back(ReadRevocation(stmt));
  if (rc != SQLITE_DONE) return Error(op, rc);
  return out;
}

Result<Revocation> SqliteCatalog::GetRevocation(const std::string& id) {
  std::lock_guard lock(mu_);
  std::string op = "get revocation " + id;
  MEZ_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare(op, std::string("SELECT ") + kRevocationColumns +
                                       " FROM revocations WHERE id = :id"));
  stmt.Bind(":id", id);
  int rc = stmt.Step();
  if (rc == SQLITE_DONE) return NotFound("no revocation of id " + id);
  if (rc != SQLITE_ROW) return Error(op, rc);
  return ReadRevocation(stmt);
}

// Reads a row selected with kNodeColumns.
Node ReadNode(const Statement& stmt) {
  Node n;
  n.name = stmt.Text(0);
  n.addr = stmt.Text(1);
  n.openssh = stmt.Int(2) != 0;
  n.login_hint = stmt.Text(3);
  n.host_key = stmt.Text(4);
  n.join_token_hash = stmt.Text(5);
  n.created_us = stmt.Int(6);
  n.last_seen_us = stmt.Int(7);
  n.recording_mode = stmt.Text(8);
  n.id = stmt.Text(9);
  return n;
}

Status SqliteCatalog::CreateNode(const Node& node) {
  MEZ_RETURN_IF_ERROR(ValidateNode(node));
  std::string id = node.id.empty() ? NewIdentityId() : node.id;
  std::lock_guard lock(mu_);
  std::string op = "create node " + node.name;
  return InTransaction(op, [&]() -> Status {
    MEZ_RETURN_IF_ERROR(CheckNotRevoked(op, "node " + node.name, id));
    MEZ_ASSIGN_OR_RETURN(
        Statement stmt,
        Prepare(op,
                "INSERT INTO nodes (name, id, addr, openssh, login_hint, "
                "host_key, join_token_hash, created_us, last_seen_us, "
                "recording_mode) "
                "VALUES (:name, :id, :addr, :openssh, :login_hint, :host_key, "
                ":join_token_hash, :created_us, :last_seen_us, "
                ":recording_mode)"));
    stmt.Bind(":name", node.name);
    stmt.Bind(":id", id);
    stmt.Bind(":addr", node.addr);
    stmt.Bind(":openssh", int64_t{node.openssh ? 1 : 0});
    stmt.Bind(":login_hint", node.login_hint);
    stmt.Bind(":host_key", node.host_key);
    stmt.Bind(":join_token_hash", node.join_token_hash);
    stmt.Bind(":created_us", node.created_us);
    stmt.Bind(":last_seen_us", node.last_seen_us);
    stmt.Bind(":recording_mode", node.recording_mode);
    int rc = stmt.Step();
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
      return Status(Code::kAlreadyExists,
                    "node " + node.name + " already exists");
    }
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
      // nodes_join_token_hash or nodes_id; the message names the columns.
      std::string msg = sqlite3_errmsg(db_);
      if (msg.find("nodes.id") != std::string::npos) {
        return Status(Code::kAlreadyExists,
                      "node " + node.name + ": id " + id +
                          " already belongs to another node");
      }
      return Status(Code::kAlreadyExists,
                    "node " + node.name +
                        ": join_token_hash already belongs to another node");
    }
    if (rc != SQLITE_DONE) return Error(op, rc);
    return Status::Ok();
  });
}

Result<Node> SqliteCatalog::GetNode(const std::string& name) {
  std::lock_guard lock(mu_);
  std::string op = "get node " + name;
  MEZ_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare(op, std::string("SELECT ") + kNodeColumns +
                                       " FROM nodes WHERE name = :name"));
  stmt.Bind(":name", name);
  int rc = stmt.Step();
  if (rc == SQLITE_DONE) return NotFound("node " + name + " not found");
  if (rc != SQLITE_ROW) return Error(op, rc);
  return ReadNode(stmt);
}

Result<std::vector<Node>> SqliteCatalog::ListNodes() {
  std::lock_guard lock(mu_);
  const char* op = "list nodes";
  MEZ_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare(op, std::string("SELECT ") + kNodeColumns +
                                       " FROM nodes ORDER BY name"));
  std::vector<Node> out;
  int rc;
  while ((rc = stmt.Step()) == SQLITE_ROW) out.push_back(ReadNode(stmt));
  if (rc != SQLITE_DONE) return Error(op, rc);
  return out;
}

Status SqliteCatalog::SetSessionStorageKey(const std::string& id,
                                           const std::string& storage_key) {
  std::lock_guard lock(mu_);
  std::string op = "set the storage key of session " + id;
  MEZ_ASSIGN_OR_RETURN(
      Statement stmt,
      Prepare(op, "UPDATE sessions SET storage_key = :key WHERE id = :id"));
  stmt.Bind(":id", id);
  stmt.Bind(":key", storage_key);
  return ChangeOne(op, stmt, "session", id);
}

Status SqliteCatalog::DeleteSession(const std::string& id) {
  std::lock_guard lock(mu_);
  std::string op = "delete session " + id;
  MEZ_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare(op, "DELETE FROM sessions WHERE id = :id"));
  stmt.Bind(":id", id);
  return ChangeOne(op, stmt, "session", id);
}

Status SqliteCatalog::DeleteNode(const std::string& name, int64_t revoked_us) {
  std::lock_guard lock(mu_);
  return DeleteIdentity("delete node " + name, "nodes", "node", name,
                        revoked_us);
}

Status SqliteCatalog::TouchNode(const std::string& name, int64_t seen_us,
                                const std::string& recording_mode,
                                const std::string& addr,
                                const std::string& host_key) {
  if (!addr.empty()) MEZ_RETURN_IF_ERROR(ValidateNodeAddr(name, addr));
  std::lock_guard lock(mu_);
  std::string op = "touch node " + name;
  MEZ_ASSIGN_OR_RETURN(
      Statement stmt,
      Prepare(op,
              "UPDATE nodes SET last_seen_us = :seen_us, "
              "recording_mode = :recording_mode, "
              "addr = COALESCE(NULLIF(:addr, ''), addr), "
              "host_key = COALESCE(NULLIF(:host_key, ''), host_key) "
              "WHERE name = :name"));
  stmt.Bind(":name", name);
  stmt.Bind(":seen_us", seen_us);
  stmt.Bind(":recording_mode", recording_mode);
  stmt.Bind(":addr", addr);
  stmt.Bind(":host_key", host_key);
  return ChangeOne(op, stmt, "node", name);
}

Status SqliteCatalog::ConsumeJoinToken(const std::string& name,
                                       const std::string& hash) {
  if (hash.empty()) return InvalidArgument("join token hash is empty");
  std::lock_guard lock(mu_);
  std::string op = "use the join token of node " + name;
  MEZ_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare(op,
                               "UPDATE nodes SET join_token_hash = '' "
                               "WHERE name = :name AND join_token_hash = :hash "
                               "AND join_token_hash != ''"));
  stmt.Bind(":name", name);
  stmt.Bind(":hash", hash);
  return ChangeOne(op, stmt, "unused join token of node", name);
}

Result<Node> SqliteCatalog::FindNodeByJoinTokenHash(const std::string& hash) {
  if (hash.empty()) return InvalidArgument("join token hash is empty");
  std::lock_guard lock(mu_);
  const char* op = "find node by join token hash";
  MEZ_ASSIGN_OR_RETURN(Statement stmt,
                       Prepare(op, internal::FindNodeByJoinTokenHashSql()));
  stmt.Bind(":hash", hash);
  int rc = stmt.Step();
  // The message leaves the hash out: it is derived from a secret.
  if (rc == SQLITE_DONE) return NotFound("no node has that join token hash");
  if (rc != SQLITE_ROW) return Error(op, rc);
  return ReadNode(stmt);
}

// Creates the file owner-only before SQLite sees it: SQLite would create it
// 0644 (less umask), and gives its -wal and -shm files the mode of the main
// file. An existing file is tightened to 0600 too.
Status PrepareFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("open catalog " + path, errno);
  struct stat st;
  Status status;
  if (fstat(fd, &st) != 0) {
    status = ErrnoStatus("stat catalog " + path, errno);
  } else if (!S_ISREG(st.st_mode)) {
    status = FailedPrecondition("catalog " + path + " is not a regular file");
  } else if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0) {
    status = ErrnoStatus("chmod 0600 catalog " + path, errno);
  }
  // Closed before SQLite opens the file: closing any descriptor of a file
  // drops the process's POSIX locks on it, SQLite's included.
  close(fd);
  return status;
}

}  // namespace

namespace internal {

std::string ListSessionsSql(const SessionFilter& filter) {
  std::vector<const char*> where;
  if (!filter.user.empty()) where.push_back("user = :user");
  if (!filter.node.empty()) where.push_back("node = :node");
  if (!filter.kind.empty()) where.push_back("kind = :kind");
  if (filter.status) where.push_back("status = :status");
  if (!filter.id_prefix.empty()) {
    where.push_back("substr(id, 1, length(:prefix)) = :prefix");
  }
  if (filter.since_us != 0) where.push_back("started_us >= :since");
  if (filter.until_us != 0) where.push_back("started_us < :until");
  return std::string("SELECT ") + kSessionColumns + " FROM sessions" +
         WhereClause(where) + " ORDER BY started_us DESC, id DESC LIMIT :limit";
}

std::string ListAuditSql(const AuditFilter& filter) {
  std::vector<const char*> where;
  if (!filter.type.empty()) where.push_back("type = :type");
  if (!filter.user.empty()) where.push_back("user = :user");
  if (!filter.session_id.empty()) where.push_back("session_id = :session_id");
  if (!filter.node.empty()) where.push_back("node = :node");
  if (filter.since_us != 0) where.push_back("time_us >= :since");
  if (filter.until_us != 0) where.push_back("time_us < :until");
  return "SELECT id, time_us, type, user, session_id, node, details "
         "FROM audit_events" +
         WhereClause(where) + " ORDER BY time_us DESC, id DESC LIMIT :limit";
}

std::string FindNodeByJoinTokenHashSql() {
  // The second condition is always true for a non-empty :hash; it is there
  // so that SQLite may use the partial index nodes_join_token_hash.
  return std::string("SELECT ") + kNodeColumns +
         " FROM nodes WHERE join_token_hash = :hash "
         "AND join_token_hash != ''";
}

}  // namespace internal

int SqliteCatalogSchemaVersion() { return kLatestVersion; }

Result<std::unique_ptr<Catalog>> OpenSqliteCatalog(const std::string& path) {
  return OpenSqliteCatalog(path, SqliteCatalogOptions());
}

Result<std::unique_ptr<Catalog>> OpenSqliteCatalog(
    const std::string& path, const SqliteCatalogOptions& options) {
  if (path.empty()) return InvalidArgument("catalog path is empty");
  if (options.max_schema_version < 0 ||
      options.max_schema_version > kLatestVersion) {
    return InvalidArgument("catalog schema version " +
                           std::to_string(options.max_schema_version) +
                           " is not one this build knows (1.." +
                           std::to_string(kLatestVersion) + ")");
  }
  MEZ_RETURN_IF_ERROR(PrepareFile(path));
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                               SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string m = "catalog " + path + ": open: " +
                    (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close(db);
    return Status(CodeForSqlite(rc), std::move(m));
  }
  auto catalog = std::make_unique<SqliteCatalog>(path, db);
  int max_version = options.max_schema_version == 0
                        ? kLatestVersion
                        : options.max_schema_version;
  MEZ_RETURN_IF_ERROR(catalog->Init(max_version));
  return std::unique_ptr<Catalog>(std::move(catalog));
}

}  // namespace mez::catalog
