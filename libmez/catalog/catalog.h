// The catalog: sessions, audit events and cluster settings. An interface so
// that the embedded SQLite store and the scale-out PostgreSQL store share
// one test suite.
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
  int64_t since_us = 0;  // started_us >= since_us
  int64_t until_us = 0;  // started_us < until_us; 0: no bound
  int limit = 0;         // 0: no limit. Newest first.
};

struct AuditFilter {
  std::string type;
  std::string user;
  std::string session_id;
  int64_t since_us = 0;
  int64_t until_us = 0;
  int limit = 0;  // Newest first.
};

// Thread-safe.
class Catalog {
 public:
  virtual ~Catalog() = default;

  // kAlreadyExists when a session with that id exists.
  virtual Status CreateSession(const Session& session) = 0;
  // Sets ended_us, bytes and status. kNotFound for an unknown id.
  virtual Status FinishSession(const std::string& id, int64_t ended_us,
                               uint64_t bytes, SessionStatus status) = 0;
  // Records progress of a live session (bytes so far).
  virtual Status UpdateSessionBytes(const std::string& id, uint64_t bytes) = 0;
  virtual Result<Session> GetSession(const std::string& id) = 0;
  virtual Result<std::vector<Session>> ListSessions(
      const SessionFilter& filter) = 0;
  // Sessions left kRecording (by a crash) become kIncomplete; returns how
  // many. Called once at start, before serving.
  virtual Result<int> MarkInterruptedSessions(int64_t now_us) = 0;

  // Appends an event; returns its id.
  virtual Result<int64_t> AppendAudit(const AuditEvent& event) = 0;
  virtual Result<std::vector<AuditEvent>> ListAudit(
      const AuditFilter& filter) = 0;

  // Cluster settings (e.g. "session_recording"). nullopt when unset.
  virtual Result<std::optional<std::string>> GetConfig(
      const std::string& key) = 0;
  virtual Status SetConfig(const std::string& key,
                           const std::string& value) = 0;
};

// Opens (creating if needed) the SQLite catalog at `path` in WAL mode,
// applying schema migrations. Settings default: session_recording =
// "node-sync" (returned by GetConfig when never set).
Result<std::unique_ptr<Catalog>> OpenSqliteCatalog(const std::string& path);

// Helpers shared by the backends, so that they validate and default alike.

// The value GetConfig returns for a key that was never set, or nullopt.
std::optional<std::string> DefaultConfigValue(std::string_view key);
// kInvalidArgument unless the session can be stored: non-empty id, bytes
// representable as a signed 64-bit integer (SQL BIGINT).
Status ValidateSession(const Session& session);
// The details text to store: "{}" for empty input; otherwise `details`
// itself, which must be a JSON object (kInvalidArgument if not).
Result<std::string> NormalizeAuditDetails(const std::string& details);

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
