// The embedded catalog: one SQLite connection in WAL mode, serialised by a
// mutex. Schema and migrations are specified in docs/formats/catalog.md.
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "libmez/catalog/catalog.h"
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
};

constexpr int kLatestVersion = kMigrations[std::size(kMigrations) - 1].version;

constexpr char kSessionColumns[] =
    "id, connection_id, user, node, login, kind, command, started_us, "
    "ended_us, bytes, status, storage_key, format, encrypted";

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
  Result<Session> GetSession(const std::string& id) override;
  Result<std::vector<Session>> ListSessions(
      const SessionFilter& filter) override;
  Result<int> MarkInterruptedSessions(int64_t now_us) override;
  Result<int64_t> AppendAudit(const AuditEvent& event) override;
  Result<std::vector<AuditEvent>> ListAudit(const AuditFilter& filter) override;
  Result<std::optional<std::string>> GetConfig(const std::string& key) override;
  Status SetConfig(const std::string& key, const std::string& value) override;

 private:
  // "catalog PATH: OP: sqlite message". REQUIRES: mu_ held (or Init).
  Status Error(std::string_view op, int rc) const;
  // The cached statement for `sql`, prepared on first use. At most one
  // Statement per SQL text may be alive. REQUIRES: mu_ held (or Init).
  Result<Statement> Prepare(std::string_view op, const std::string& sql);
  Status Exec(std::string_view op, const char* sql);
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
  MEZ_RETURN_IF_ERROR(Exec(op, "BEGIN IMMEDIATE"));
  Status status = [&]() -> Status {
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
  }();
  if (!status.ok()) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return status;
  }
  return Exec(op, "COMMIT");
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
  return s;
}

Status SqliteCatalog::CreateSession(const Session& session) {
  MEZ_RETURN_IF_ERROR(ValidateSession(session));
  std::lock_guard lock(mu_);
  std::string op = "create session " + session.id;
  MEZ_ASSIGN_OR_RETURN(
      Statement stmt,
      Prepare(op,
              "INSERT INTO sessions (id, connection_id, user, node, login, "
              "kind, command, started_us, ended_us, bytes, status, "
              "storage_key, format, encrypted) VALUES (:id, :connection_id, "
              ":user, :node, :login, :kind, :command, :started_us, "
              ":ended_us, :bytes, :status, :storage_key, :format, "
              ":encrypted)"));
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
  std::vector<const char*> where;
  if (!filter.user.empty()) where.push_back("user = :user");
  if (!filter.node.empty()) where.push_back("node = :node");
  if (filter.since_us != 0) where.push_back("started_us >= :since");
  if (filter.until_us != 0) where.push_back("started_us < :until");
  std::string sql = std::string("SELECT ") + kSessionColumns +
                    " FROM sessions" + WhereClause(where) +
                    " ORDER BY started_us DESC, id DESC LIMIT :limit";

  std::lock_guard lock(mu_);
  MEZ_ASSIGN_OR_RETURN(Statement stmt, Prepare("list sessions", sql));
  if (!filter.user.empty()) stmt.Bind(":user", filter.user);
  if (!filter.node.empty()) stmt.Bind(":node", filter.node);
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

Result<int64_t> SqliteCatalog::AppendAudit(const AuditEvent& event) {
  if (event.type.empty()) return InvalidArgument("audit event type is empty");
  MEZ_ASSIGN_OR_RETURN(std::string details,
                       NormalizeAuditDetails(event.details));
  std::lock_guard lock(mu_);
  std::string op = "append audit event " + event.type;
  MEZ_ASSIGN_OR_RETURN(
      Statement stmt,
      Prepare(op,
              "INSERT INTO audit_events (time_us, type, user, session_id, "
              "node, details) VALUES (:time_us, :type, :user, :session_id, "
              ":node, :details) RETURNING id"));
  stmt.Bind(":time_us", event.time_us);
  stmt.Bind(":type", event.type);
  stmt.Bind(":user", event.user);
  stmt.Bind(":session_id", event.session_id);
  stmt.Bind(":node", event.node);
  stmt.Bind(":details", details);
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
  std::vector<const char*> where;
  if (!filter.type.empty()) where.push_back("type = :type");
  if (!filter.user.empty()) where.push_back("user = :user");
  if (!filter.session_id.empty()) where.push_back("session_id = :session_id");
  if (filter.since_us != 0) where.push_back("time_us >= :since");
  if (filter.until_us != 0) where.push_back("time_us < :until");
  std::string sql =
      "SELECT id, time_us, type, user, session_id, node, details "
      "FROM audit_events" +
      WhereClause(where) + " ORDER BY time_us DESC, id DESC LIMIT :limit";

  std::lock_guard lock(mu_);
  const char* op = "list audit events";
  MEZ_ASSIGN_OR_RETURN(Statement stmt, Prepare(op, sql));
  if (!filter.type.empty()) stmt.Bind(":type", filter.type);
  if (!filter.user.empty()) stmt.Bind(":user", filter.user);
  if (!filter.session_id.empty()) stmt.Bind(":session_id", filter.session_id);
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
