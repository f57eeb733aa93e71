// The scale-out catalog: PostgreSQL through libpq, one connection per
// process serialised by a mutex. Schema, migrations and the locking that
// lets several replicas start at once are specified in
// docs/formats/catalog.md ("PostgreSQL").
#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "libmez/catalog/catalog.h"
#include "libmez/util/clock.h"
#include "libmez/util/status.h"

namespace mez::catalog {
namespace {

// Applied in order inside one transaction that holds kMigrationLockKey.
// Append only: never edit a released step. Text columns that are compared
// or ordered use COLLATE "C" so that comparison is bytewise, as in SQLite.
struct Migration {
  int version;
  const char* sql;
};

constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE sessions (
  id            TEXT COLLATE "C" NOT NULL,
  connection_id TEXT COLLATE "C" NOT NULL,
  "user"        TEXT COLLATE "C" NOT NULL,
  node          TEXT COLLATE "C" NOT NULL,
  login         TEXT    NOT NULL,
  kind          TEXT    NOT NULL,
  command       TEXT    NOT NULL,
  started_us    BIGINT  NOT NULL,
  ended_us      BIGINT  NOT NULL,
  bytes         BIGINT  NOT NULL CHECK (bytes >= 0),
  status        TEXT    NOT NULL
                CHECK (status IN ('recording', 'complete', 'incomplete')),
  storage_key   TEXT    NOT NULL,
  format        TEXT    NOT NULL,
  encrypted     BOOLEAN NOT NULL,
  CONSTRAINT sessions_pkey PRIMARY KEY (id)
);
CREATE INDEX sessions_user_started ON sessions ("user", started_us, id);
CREATE INDEX sessions_node_started ON sessions (node, started_us, id);
CREATE INDEX sessions_started ON sessions (started_us, id);
CREATE INDEX sessions_connection ON sessions (connection_id);
CREATE INDEX sessions_recording ON sessions (id) WHERE status = 'recording';
)sql"},
    {2, R"sql(
CREATE TABLE audit_events (
  id         BIGINT GENERATED ALWAYS AS IDENTITY,
  time_us    BIGINT NOT NULL,
  type       TEXT COLLATE "C" NOT NULL,
  "user"     TEXT COLLATE "C" NOT NULL,
  session_id TEXT COLLATE "C" NOT NULL,
  node       TEXT NOT NULL,
  details    TEXT NOT NULL,
  CONSTRAINT audit_events_pkey PRIMARY KEY (id)
);
CREATE INDEX audit_time ON audit_events (time_us, id);
CREATE INDEX audit_type_time ON audit_events (type, time_us, id);
CREATE INDEX audit_user_time ON audit_events ("user", time_us, id);
CREATE INDEX audit_session ON audit_events (session_id);
)sql"},
    {3, R"sql(
CREATE TABLE config (
  key        TEXT COLLATE "C" NOT NULL,
  value      TEXT   NOT NULL,
  updated_us BIGINT NOT NULL,
  CONSTRAINT config_pkey PRIMARY KEY (key)
);
)sql"},
    {4, R"sql(
CREATE TABLE users (
  name       TEXT COLLATE "C" NOT NULL,
  logins     TEXT   NOT NULL,
  role       TEXT   NOT NULL CHECK (role IN ('user', 'admin')),
  created_us BIGINT NOT NULL,
  CONSTRAINT users_pkey PRIMARY KEY (name)
);
)sql"},
    {5, R"sql(
CREATE TABLE nodes (
  name            TEXT COLLATE "C" NOT NULL,
  addr            TEXT    NOT NULL,
  openssh         BOOLEAN NOT NULL,
  login_hint      TEXT    NOT NULL,
  host_key        TEXT    NOT NULL,
  join_token_hash TEXT COLLATE "C" NOT NULL,
  created_us      BIGINT  NOT NULL,
  last_seen_us    BIGINT  NOT NULL,
  recording_mode  TEXT    NOT NULL,
  CONSTRAINT nodes_pkey PRIMARY KEY (name)
);
CREATE UNIQUE INDEX nodes_join_token_hash ON nodes (join_token_hash)
  WHERE join_token_hash <> '';
)sql"},
    {6, R"sql(
ALTER TABLE sessions ADD COLUMN replica TEXT COLLATE "C" NOT NULL DEFAULT '';
CREATE TABLE replicas (
  id           TEXT COLLATE "C" NOT NULL,
  started_us   BIGINT NOT NULL,
  last_seen_us BIGINT NOT NULL,
  CONSTRAINT replicas_pkey PRIMARY KEY (id)
);
)sql"},
    // Identity ids (revocation by id), proxies as users, revocations. Ids
    // of existing rows: the first 128 bits of SHA-256 over two random
    // UUIDs (gen_random_uuid draws from the server's CSPRNG; built in since
    // PostgreSQL 13), one per row.
    {7, R"sql(
ALTER TABLE users ADD COLUMN id TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE users SET id = left(encode(sha256(convert_to(
  gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex'), 32);
ALTER TABLE users ALTER COLUMN id DROP DEFAULT;
CREATE UNIQUE INDEX users_id ON users (id);
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
  CHECK (role IN ('user', 'admin', 'proxy'));
ALTER TABLE nodes ADD COLUMN id TEXT COLLATE "C" NOT NULL DEFAULT '';
UPDATE nodes SET id = left(encode(sha256(convert_to(
  gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')), 'hex'), 32);
ALTER TABLE nodes ALTER COLUMN id DROP DEFAULT;
CREATE UNIQUE INDEX nodes_id ON nodes (id);
CREATE TABLE revocations (
  id         TEXT COLLATE "C" NOT NULL,
  name       TEXT   NOT NULL,
  kind       TEXT   NOT NULL
             CHECK (kind IN ('user', 'admin', 'proxy', 'node')),
  revoked_us BIGINT NOT NULL,
  CONSTRAINT revocations_pkey PRIMARY KEY (id)
);
CREATE INDEX revocations_time ON revocations (revoked_us, id);
)sql"},
};

constexpr int kLatestVersion = kMigrations[std::size(kMigrations) - 1].version;

// pg_advisory_xact_lock key serialising migrations of one database:
// "mezite" in ASCII followed by 0x0001.
constexpr int64_t kMigrationLockKey = 0x6d657a6974650001;

constexpr char kSessionColumns[] =
    "id, connection_id, \"user\", node, login, kind, command, started_us, "
    "ended_us, bytes, status, storage_key, format, encrypted, replica";
constexpr char kAuditInsertColumns[] =
    "time_us, type, \"user\", session_id, node, details";
constexpr char kUserColumns[] = "name, logins, role, created_us, id";
constexpr char kNodeColumns[] =
    "name, addr, openssh, login_hint, host_key, join_token_hash, created_us, "
    "last_seen_us, recording_mode, id";
constexpr char kRevocationColumns[] = "id, name, kind, revoked_us";

// Type OIDs of the parameters we send (pg_type.dat; stable across releases).
constexpr Oid kBoolOid = 16;
constexpr Oid kInt8Oid = 20;
constexpr Oid kTextOid = 25;
constexpr Oid kTextArrayOid = 1009;

// Network byte order appenders for the binary wire formats.
void PutInt16(std::string& out, int16_t v) {
  uint16_t u = static_cast<uint16_t>(v);
  out += static_cast<char>(u >> 8);
  out += static_cast<char>(u & 0xff);
}
void PutInt32(std::string& out, int32_t v) {
  uint32_t u = static_cast<uint32_t>(v);
  for (int shift = 24; shift >= 0; shift -= 8) {
    out += static_cast<char>((u >> shift) & 0xff);
  }
}
void PutInt64(std::string& out, int64_t v) {
  uint64_t u = static_cast<uint64_t>(v);
  for (int shift = 56; shift >= 0; shift -= 8) {
    out += static_cast<char>((u >> shift) & 0xff);
  }
}

// Query parameters, every one sent in binary with its type given, so that
// no value is ever spliced into SQL text and text needs no escaping.
class Params {
 public:
  Params& Text(std::string_view v) {
    return Add(kTextOid, std::string(v), false);
  }
  Params& Int(int64_t v) {
    std::string b;
    PutInt64(b, v);
    return Add(kInt8Oid, std::move(b), false);
  }
  Params& Bool(bool v) {
    return Add(kBoolOid, std::string(1, v ? 1 : 0), false);
  }
  Params& NullInt() { return Add(kInt8Oid, std::string(), true); }
  // A one-dimensional text[] with no NULLs.
  Params& TextArray(const std::vector<std::string_view>& items) {
    std::string b;
    PutInt32(b, 1);  // Dimensions.
    PutInt32(b, 0);  // No NULLs.
    PutInt32(b, static_cast<int32_t>(kTextOid));
    PutInt32(b, static_cast<int32_t>(items.size()));
    PutInt32(b, 1);  // Lower bound.
    for (std::string_view item : items) {
      PutInt32(b, static_cast<int32_t>(item.size()));
      b.append(item);
    }
    return Add(kTextArrayOid, std::move(b), false);
  }

  int size() const { return static_cast<int>(data_.size()); }
  // Pointer arrays for PQexecParams; valid until the next Add.
  void Fill(std::vector<const char*>& values, std::vector<int>& lengths,
            std::vector<int>& formats) const {
    for (size_t i = 0; i < data_.size(); ++i) {
      values.push_back(null_[i] ? nullptr : data_[i].data());
      lengths.push_back(static_cast<int>(data_[i].size()));
      formats.push_back(1);
    }
  }
  const Oid* types() const { return types_.data(); }

 private:
  Params& Add(Oid type, std::string bytes, bool null) {
    types_.push_back(type);
    data_.push_back(std::move(bytes));
    null_.push_back(null);
    return *this;
  }

  std::vector<Oid> types_;
  std::vector<std::string> data_;
  std::vector<bool> null_;
};

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

// Reads a result in text format.
class Rows {
 public:
  explicit Rows(const PGresult* r) : r_(r) {}
  int size() const { return PQntuples(r_); }
  std::string Text(int row, int col) const {
    return std::string(PQgetvalue(r_, row, col),
                       static_cast<size_t>(PQgetlength(r_, row, col)));
  }
  int64_t Int(int row, int col) const {
    const char* p = PQgetvalue(r_, row, col);
    int64_t v = 0;
    std::from_chars(p, p + PQgetlength(r_, row, col), v);
    return v;
  }
  bool Bool(int row, int col) const {
    return PQgetvalue(r_, row, col)[0] == 't';
  }

 private:
  const PGresult* r_;
};

// The Code for a failed statement, from its SQLSTATE.
Code CodeForSqlState(std::string_view state) {
  if (state == "23505") return Code::kAlreadyExists;
  if (state.substr(0, 2) == "22") return Code::kInvalidArgument;  // Data.
  if (state.substr(0, 2) == "08" || state.substr(0, 3) == "57P" ||
      state == "40001" || state == "40P01" || state == "55P03") {
    return Code::kUnavailable;  // Connection, shutdown, conflicts, locks.
  }
  if (state == "XX001" || state == "XX002") return Code::kDataLoss;
  if (state.substr(0, 2) == "53" || state.substr(0, 2) == "58") {
    return Code::kIoError;  // Out of disk or memory, system errors.
  }
  return Code::kInternal;
}

std::string Trimmed(const char* message) {
  std::string m = message != nullptr ? message : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

class PostgresCatalog : public Catalog {
 public:
  explicit PostgresCatalog(PGconn* conn) : conn_(conn) { name_ = ServerName(); }
  ~PostgresCatalog() override { PQfinish(conn_); }

  // Brings the schema to the newest version.
  Status Init();

  Status CreateSession(const Session& session) override;
  Status FinishSession(const std::string& id, int64_t ended_us, uint64_t bytes,
                       SessionStatus status) override;
  Status DeleteSession(const std::string& id) override;
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
  // "postgres://HOST:PORT/DB": the server, never the password.
  std::string ServerName() const {
    const char* host = PQhost(conn_);
    const char* port = PQport(conn_);
    const char* db = PQdb(conn_);
    return std::string("postgres://") + (host ? host : "") + ":" +
           (port ? port : "") + "/" + (db ? db : "");
  }

  // "catalog SERVER: OP: server message" with a code from the SQLSTATE
  // (kUnavailable when the connection is gone). Records the violated
  // constraint in last_constraint_. REQUIRES: mu_ held.
  Status Error(std::string_view op, const PGresult* r);
  // Runs one statement. REQUIRES: mu_ held.
  Result<PgResult> Exec(std::string_view op, const char* sql,
                        const Params& params = Params());
  // Runs fixed SQL with no parameters (may hold several statements).
  // REQUIRES: mu_ held.
  Status ExecScript(std::string_view op, const char* sql);
  // Runs `body` with the connection; when the connection turns out to be
  // broken (before or during the call), resets it once and runs `body`
  // again. kUnavailable naming the server when the reset fails.
  // REQUIRES: mu_ held.
  template <typename F>
  auto WithConnection(std::string_view op, F&& body) -> decltype(body());
  // Runs `body` between BEGIN and COMMIT, rolling back when it (or the
  // commit) fails. REQUIRES: mu_ held.
  template <typename F>
  Status InTransaction(std::string_view op, F&& body);
  // A statement that changes at most one row: kNotFound (`what` NAME not
  // found) when it changed none. REQUIRES: mu_ not held.
  Status ChangeOne(std::string_view op, const char* sql, const Params& params,
                   std::string_view what, const std::string& name);
  Result<uint64_t> Count(const char* op, const char* sql);
  // Streams `data` (binary COPY format) into a COPY ... FROM STDIN.
  // REQUIRES: mu_ held, inside a transaction.
  Status CopyIn(std::string_view op, const char* sql, const std::string& data);
  // The first session of `sessions`, in order, whose id is already stored
  // or repeats an earlier one; empty if none. REQUIRES: mu_ held.
  Result<std::string> FirstDuplicateSession(
      const std::vector<Session>& sessions);
  Status Migrate();

  std::string name_;
  std::mutex mu_;
  PGconn* const conn_;
  std::string last_constraint_;  // Of the last unique violation.
};

Status PostgresCatalog::Error(std::string_view op, const PGresult* r) {
  std::string m = "catalog " + name_ + ": " + std::string(op) + ": ";
  if (PQstatus(conn_) == CONNECTION_BAD) {
    return Status(Code::kUnavailable, m + "connection to the server lost: " +
                                          Trimmed(PQerrorMessage(conn_)));
  }
  if (r == nullptr) {
    return Status(Code::kUnavailable, m + Trimmed(PQerrorMessage(conn_)));
  }
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  const char* constraint = PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME);
  last_constraint_ = constraint != nullptr ? constraint : "";
  m += Trimmed(PQresultErrorMessage(r));
  return Status(CodeForSqlState(state != nullptr ? state : ""), std::move(m));
}

Result<PgResult> PostgresCatalog::Exec(std::string_view op, const char* sql,
                                       const Params& params) {
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  params.Fill(values, lengths, formats);
  PgResult r(PQexecParams(conn_, sql, params.size(), params.types(),
                          values.data(), lengths.data(), formats.data(),
                          /*resultFormat=*/0));
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return Error(op, r.get());
  }
  return r;
}

Status PostgresCatalog::ExecScript(std::string_view op, const char* sql) {
  PgResult r(PQexec(conn_, sql));
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return Error(op, r.get());
  }
  return Status::Ok();
}

template <typename F>
auto PostgresCatalog::WithConnection(std::string_view op, F&& body)
    -> decltype(body()) {
  auto reset = [&]() -> Status {
    PQreset(conn_);
    if (PQstatus(conn_) != CONNECTION_OK) {
      return Status(Code::kUnavailable,
                    "catalog " + name_ + ": " + std::string(op) +
                        ": cannot reach the PostgreSQL server: " +
                        Trimmed(PQerrorMessage(conn_)));
    }
    return Status::Ok();
  };
  if (PQstatus(conn_) == CONNECTION_BAD) {
    Status st = reset();
    if (!st.ok()) return st;
  }
  auto result = body();
  if (result.ok() || PQstatus(conn_) != CONNECTION_BAD) return result;
  Status st = reset();
  if (!st.ok()) return st;
  return body();
}

template <typename F>
Status PostgresCatalog::InTransaction(std::string_view op, F&& body) {
  MEZ_RETURN_IF_ERROR(ExecScript(op, "BEGIN"));
  Status status = body();
  if (status.ok()) status = ExecScript(op, "COMMIT");
  if (!status.ok() && PQtransactionStatus(conn_) != PQTRANS_IDLE &&
      PQstatus(conn_) == CONNECTION_OK) {
    PgResult r(PQexec(conn_, "ROLLBACK"));
  }
  return status;
}

Status PostgresCatalog::ChangeOne(std::string_view op, const char* sql,
                                  const Params& params, std::string_view what,
                                  const std::string& name) {
  std::lock_guard lock(mu_);
  return WithConnection(op, [&]() -> Status {
    MEZ_ASSIGN_OR_RETURN(PgResult r, Exec(op, sql, params));
    if (std::strcmp(PQcmdTuples(r.get()), "0") == 0) {
      return NotFound(std::string(what) + " " + name + " not found");
    }
    return Status::Ok();
  });
}

Result<uint64_t> PostgresCatalog::Count(const char* op, const char* sql) {
  std::lock_guard lock(mu_);
  return WithConnection(op, [&]() -> Result<uint64_t> {
    MEZ_ASSIGN_OR_RETURN(PgResult r, Exec(op, sql));
    return static_cast<uint64_t>(Rows(r.get()).Int(0, 0));
  });
}

Status PostgresCatalog::Migrate() {
  const char* op = "schema migration";
  return InTransaction(op, [&]() -> Status {
    // Transaction-scoped: released by COMMIT or ROLLBACK, also when the
    // connection dies. A second process waits here, then finds every step
    // applied.
    MEZ_RETURN_IF_ERROR(Exec("take the migration lock",
                             "SELECT pg_advisory_xact_lock($1)",
                             Params().Int(kMigrationLockKey))
                            .status());
    MEZ_RETURN_IF_ERROR(
        ExecScript("create schema_migrations",
                   "CREATE TABLE IF NOT EXISTS schema_migrations ("
                   "version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)"));
    MEZ_ASSIGN_OR_RETURN(
        PgResult r,
        Exec("read schema version", "SELECT version FROM schema_migrations"));
    Rows rows(r.get());
    std::unordered_set<int64_t> applied;
    int64_t current = 0;
    for (int i = 0; i < rows.size(); ++i) {
      applied.insert(rows.Int(i, 0));
      current = std::max(current, rows.Int(i, 0));
    }
    if (current > kLatestVersion) {
      return FailedPrecondition(
          "catalog " + name_ + ": schema version " + std::to_string(current) +
          " is newer than version " + std::to_string(kLatestVersion) +
          ", the newest this build knows; run a newer mezrecd");
    }
    for (const Migration& m : kMigrations) {
      if (applied.count(m.version)) continue;
      std::string step = "schema migration " + std::to_string(m.version);
      MEZ_RETURN_IF_ERROR(ExecScript(step, m.sql));
      MEZ_RETURN_IF_ERROR(
          Exec(step,
               "INSERT INTO schema_migrations "
               "(version, applied_at) VALUES ($1, $2)",
               Params().Int(m.version).Int(RealClock()->WallMicros()))
              .status());
    }
    return Status::Ok();
  });
}

Status PostgresCatalog::Init() {
  std::lock_guard lock(mu_);
  return WithConnection("open", [&]() -> Status { return Migrate(); });
}

Params& SessionParams(Params& p, const Session& s) {
  return p.Text(s.id)
      .Text(s.connection_id)
      .Text(s.user)
      .Text(s.node)
      .Text(s.login)
      .Text(s.kind)
      .Text(s.command)
      .Int(s.started_us)
      .Int(s.ended_us)
      .Int(static_cast<int64_t>(s.bytes))
      .Text(SessionStatusName(s.status))
      .Text(s.storage_key)
      .Text(s.format)
      .Bool(s.encrypted)
      .Text(s.replica);
}

// Reads a row selected with kSessionColumns.
Result<Session> ReadSession(const Rows& rows, int i) {
  Session s;
  s.id = rows.Text(i, 0);
  s.connection_id = rows.Text(i, 1);
  s.user = rows.Text(i, 2);
  s.node = rows.Text(i, 3);
  s.login = rows.Text(i, 4);
  s.kind = rows.Text(i, 5);
  s.command = rows.Text(i, 6);
  s.started_us = rows.Int(i, 7);
  s.ended_us = rows.Int(i, 8);
  s.bytes = static_cast<uint64_t>(rows.Int(i, 9));
  auto status = ParseSessionStatus(rows.Text(i, 10));
  if (!status.ok()) {
    return DataLoss("session " + s.id + ": " + status.status().message());
  }
  s.status = *status;
  s.storage_key = rows.Text(i, 11);
  s.format = rows.Text(i, 12);
  s.encrypted = rows.Bool(i, 13);
  s.replica = rows.Text(i, 14);
  return s;
}

Status PostgresCatalog::CreateSession(const Session& session) {
  MEZ_RETURN_IF_ERROR(ValidateSession(session));
  Params p;
  SessionParams(p, session);
  std::lock_guard lock(mu_);
  std::string op = "create session " + session.id;
  return WithConnection(op, [&]() -> Status {
    auto r = Exec(op,
                  "INSERT INTO sessions (id, connection_id, \"user\", node, "
                  "login, kind, command, started_us, ended_us, bytes, status, "
                  "storage_key, format, encrypted, replica) VALUES ($1, $2, "
                  "$3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                  p);
    if (r.status().code() == Code::kAlreadyExists) {
      return Status(Code::kAlreadyExists,
                    "session " + session.id + " already exists");
    }
    return r.status();
  });
}

Status PostgresCatalog::FinishSession(const std::string& id, int64_t ended_us,
                                      uint64_t bytes, SessionStatus status) {
  if (status == SessionStatus::kRecording) {
    return InvalidArgument("finish session " + id +
                           ": final status must be complete or incomplete");
  }
  Session check;
  check.id = id;
  check.bytes = bytes;
  MEZ_RETURN_IF_ERROR(ValidateSession(check));
  return ChangeOne("finish session " + id,
                   "UPDATE sessions SET ended_us = $2, bytes = $3, "
                   "status = $4 WHERE id = $1",
                   Params()
                       .Text(id)
                       .Int(ended_us)
                       .Int(static_cast<int64_t>(bytes))
                       .Text(SessionStatusName(status)),
                   "session", id);
}

Status PostgresCatalog::UpdateSessionBytes(const std::string& id,
                                           uint64_t bytes) {
  Session check;
  check.id = id;
  check.bytes = bytes;
  MEZ_RETURN_IF_ERROR(ValidateSession(check));
  return ChangeOne("update bytes of session " + id,
                   "UPDATE sessions SET bytes = $2 WHERE id = $1",
                   Params().Text(id).Int(static_cast<int64_t>(bytes)),
                   "session", id);
}

Status PostgresCatalog::SetSessionStorageKey(const std::string& id,
                                             const std::string& storage_key) {
  return ChangeOne("set the storage key of session " + id,
                   "UPDATE sessions SET storage_key = $2 WHERE id = $1",
                   Params().Text(id).Text(storage_key), "session", id);
}

Status PostgresCatalog::DeleteSession(const std::string& id) {
  return ChangeOne("delete session " + id, "DELETE FROM sessions WHERE id = $1",
                   Params().Text(id), "session", id);
}

Result<Session> PostgresCatalog::GetSession(const std::string& id) {
  std::lock_guard lock(mu_);
  std::string op = "get session " + id;
  std::string sql =
      std::string("SELECT ") + kSessionColumns + " FROM sessions WHERE id = $1";
  return WithConnection(op, [&]() -> Result<Session> {
    MEZ_ASSIGN_OR_RETURN(PgResult r, Exec(op, sql.c_str(), Params().Text(id)));
    Rows rows(r.get());
    if (rows.size() == 0) return NotFound("session " + id + " not found");
    return ReadSession(rows, 0);
  });
}

// Appends " WHERE a AND b" for the conditions in use; each condition is
// fixed SQL text with a "$" where the next parameter number goes.
std::string WhereClause(const std::vector<const char*>& conditions) {
  std::string sql;
  int n = 0;
  for (const char* c : conditions) {
    sql += sql.empty() ? " WHERE " : " AND ";
    for (const char* p = c; *p != '\0'; ++p) {
      sql += *p;
      if (*p == '$') sql += std::to_string(++n);
    }
  }
  return sql;
}

Result<std::vector<Session>> PostgresCatalog::ListSessions(
    const SessionFilter& filter) {
  if (filter.limit < 0) {
    return InvalidArgument("list sessions: negative limit " +
                           std::to_string(filter.limit));
  }
  std::vector<const char*> where;
  Params p;
  if (!filter.user.empty()) {
    where.push_back("\"user\" = $");
    p.Text(filter.user);
  }
  if (!filter.node.empty()) {
    where.push_back("node = $");
    p.Text(filter.node);
  }
  if (!filter.kind.empty()) {
    where.push_back("kind = $");
    p.Text(filter.kind);
  }
  if (filter.status) {
    where.push_back("status = $");
    p.Text(std::string(SessionStatusName(*filter.status)));
  }
  if (!filter.id_prefix.empty()) {
    where.push_back("starts_with(id, $)");
    p.Text(filter.id_prefix);
  }
  if (filter.since_us != 0) {
    where.push_back("started_us >= $");
    p.Int(filter.since_us);
  }
  if (filter.until_us != 0) {
    where.push_back("started_us < $");
    p.Int(filter.until_us);
  }
  if (filter.limit == 0) {
    p.NullInt();  // LIMIT NULL: no limit.
  } else {
    p.Int(filter.limit);
  }
  std::string sql = std::string("SELECT ") + kSessionColumns +
                    " FROM sessions" + WhereClause(where) +
                    " ORDER BY started_us DESC, id DESC LIMIT $" +
                    std::to_string(where.size() + 1);
  std::lock_guard lock(mu_);
  const char* op = "list sessions";
  return WithConnection(op, [&]() -> Result<std::vector<Session>> {
    MEZ_ASSIGN_OR_RETURN(PgResult r, Exec(op, sql.c_str(), p));
    Rows rows(r.get());
    std::vector<Session> out;
    out.reserve(rows.size());
    for (int i = 0; i < rows.size(); ++i) {
      MEZ_ASSIGN_OR_RETURN(Session s, ReadSession(rows, i));
      out.push_back(std::move(s));
    }
    return out;
  });
}

Result<int> PostgresCatalog::MarkInterruptedSessions(int64_t now_us) {
  std::lock_guard lock(mu_);
  const char* op = "mark interrupted sessions";
  return WithConnection(op, [&]() -> Result<int> {
    MEZ_ASSIGN_OR_RETURN(
        PgResult r,
        Exec(op,
             "UPDATE sessions SET status = 'incomplete', ended_us = $1 "
             "WHERE status = 'recording'",
             Params().Int(now_us)));
    return std::atoi(PQcmdTuples(r.get()));
  });
}

Status PostgresCatalog::RenewReplicaLease(const std::string& id,
                                          int64_t now_us) {
  if (id.empty()) return InvalidArgument("replica id is empty");
  std::lock_guard lock(mu_);
  std::string op = "renew the lease of replica " + id;
  return WithConnection(op, [&]() -> Status {
    return Exec(op,
                "INSERT INTO replicas (id, started_us, last_seen_us) "
                "VALUES ($1, $2, $2) ON CONFLICT (id) DO UPDATE SET "
                "last_seen_us = excluded.last_seen_us",
                Params().Text(id).Int(now_us))
        .status();
  });
}

Status PostgresCatalog::DropReplicaLease(const std::string& id) {
  std::lock_guard lock(mu_);
  std::string op = "drop the lease of replica " + id;
  return WithConnection(op, [&]() -> Status {
    return Exec(op, "DELETE FROM replicas WHERE id = $1", Params().Text(id))
        .status();
  });
}

Result<std::vector<ReplicaLeaseRow>> PostgresCatalog::ListReplicaLeases() {
  std::lock_guard lock(mu_);
  const char* op = "list replica leases";
  return WithConnection(op, [&]() -> Result<std::vector<ReplicaLeaseRow>> {
    MEZ_ASSIGN_OR_RETURN(PgResult r, Exec(op,
                                          "SELECT id, started_us, last_seen_us "
                                          "FROM replicas ORDER BY id"));
    Rows rows(r.get());
    std::vector<ReplicaLeaseRow> out;
    for (int i = 0; i < rows.size(); ++i) {
      out.push_back({rows.Text(i, 0), rows.Int(i, 1), rows.Int(i, 2)});
    }
    return out;
  });
}

Result<int> PostgresCatalog::MarkOrphanedSessions(const std::string& self,
                                                  int64_t now_us,
                                                  int64_t timeout_us) {
  if (self.empty()) return InvalidArgument("replica id is empty");
  if (timeout_us <= 0) {
    return InvalidArgument("replica lease timeout must be positive");
  }
  const int64_t cutoff_us = now_us - timeout_us;
  std::lock_guard lock(mu_);
  const char* op = "mark orphaned sessions";
  return WithConnection(op, [&]() -> Result<int> {
    int marked = 0;
    // Two replicas sweeping at once: the second waits for the first's row
    // locks, then re-checks status = 'recording' and skips what it marked.
    MEZ_RETURN_IF_ERROR(InTransaction(op, [&]() -> Status {
      MEZ_ASSIGN_OR_RETURN(
          PgResult r,
          Exec(op,
               "UPDATE sessions SET status = 'incomplete', ended_us = $1 "
               "WHERE status = 'recording' AND replica <> $2 "
               "AND NOT EXISTS (SELECT 1 FROM replicas r "
               "WHERE r.id = sessions.replica AND r.last_seen_us >= $3)",
               Params().Int(now_us).Text(self).Int(cutoff_us)));
      marked = std::atoi(PQcmdTuples(r.get()));
      return Exec(op,
                  "DELETE FROM replicas WHERE last_seen_us < $1 AND id <> $2",
                  Params().Int(cutoff_us).Text(self))
          .status();
    }));
    return marked;
  });
}

// The details text to store for `event` (checks the type too).
Result<std::string> CheckAudit(const AuditEvent& event) {
  if (event.type.empty()) return InvalidArgument("audit event type is empty");
  return NormalizeAuditDetails(event.details);
}

Result<int64_t> PostgresCatalog::AppendAudit(const AuditEvent& event) {
  MEZ_ASSIGN_OR_RETURN(std::string details, CheckAudit(event));
  std::lock_guard lock(mu_);
  std::string op = "append audit event " + event.type;
  std::string sql = std::string("INSERT INTO audit_events (") +
                    kAuditInsertColumns +
                    ") VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
  return WithConnection(op, [&]() -> Result<int64_t> {
    MEZ_ASSIGN_OR_RETURN(PgResult r, Exec(op, sql.c_str(),
                                          Params()
                                              .Int(event.time_us)
                                              .Text(event.type)
                                              .Text(event.user)
                                              .Text(event.session_id)
                                              .Text(event.node)
                                              .Text(details)));
    return Rows(r.get()).Int(0, 0);
  });
}

Result<std::vector<AuditEvent>> PostgresCatalog::ListAudit(
    const AuditFilter& filter) {
  if (filter.limit < 0) {
    return InvalidArgument("list audit events: negative limit " +
                           std::to_string(filter.limit));
  }
  std::vector<const char*> where;
  Params p;
  if (!filter.type.empty()) {
    where.push_back("type = $");
    p.Text(filter.type);
  }
  if (!filter.user.empty()) {
    where.push_back("\"user\" = $");
    p.Text(filter.user);
  }
  if (!filter.session_id.empty()) {
    where.push_back("session_id = $");
    p.Text(filter.session_id);
  }
  if (!filter.node.empty()) {
    where.push_back("node = $");
    p.Text(filter.node);
  }
  if (filter.since_us != 0) {
    where.push_back("time_us >= $");
    p.Int(filter.since_us);
  }
  if (filter.until_us != 0) {
    where.push_back("time_us < $");
    p.Int(filter.until_us);
  }
  if (filter.limit == 0) {
    p.NullInt();
  } else {
    p.Int(filter.limit);
  }
  std::string sql =
      "SELECT id, time_us, type, \"user\", session_id, node, details "
      "FROM audit_events" +
      WhereClause(where) + " ORDER BY time_us DESC, id DESC LIMIT $" +
      std::to_string(where.size() + 1);
  std::lock_guard lock(mu_);
  const char* op = "list audit events";
  return WithConnection(op, [&]() -> Result<std::vector<AuditEvent>> {
    MEZ_ASSIGN_OR_RETURN(PgResult r, Exec(op, sql.c_str(), p));
    Rows rows(r.get());
    std::vector<AuditEvent> out;
    out.reserve(rows.size());
    for (int i = 0; i < rows.size(); ++i) {
      AuditEvent e;
      e.id = rows.Int(i, 0);
      e.time_us = rows.Int(i, 1);
      e.type = rows.Text(i, 2);
      e.user = rows.Text(i, 3);
      e.session_id = rows.Text(i, 4);
      e.node = rows.Text(i, 5);
      e.details = rows.Text(i, 6);
      out.push_back(std::move(e));
    }
    return out;
  });
}

Result<std::optional<std::string>> PostgresCatalog::GetConfig(
    const std::string& key) {
  if (key.empty()) return InvalidArgument("config key is empty");
  std::lock_guard lock(mu_);
  std::string op = "get config " + key;
  return WithConnection(op, [&]() -> Result<std::optional<std::string>> {
    MEZ_ASSIGN_OR_RETURN(PgResult r,
                         Exec(op, "SELECT value FROM config WHERE key = $1",
                              Params().Text(key)));
    Rows rows(r.get());
    if (rows.size() == 0) return DefaultConfigValue(key);
    return std::optional<std::string>(rows.Text(0, 0));
  });
}

Status PostgresCatalog::SetConfig(const std::string& key,
                                  const std::string& value) {
  if (key.empty()) return InvalidArgument("config key is empty");
  std::lock_guard lock(mu_);
  std::string op = "set config " + key;
  return WithConnection(op, [&]() -> Status {
    return Exec(op,
                "INSERT INTO config (key, value, updated_us) "
                "VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE SET "
                "value = EXCLUDED.value, updated_us = EXCLUDED.updated_us",
                Params().Text(key).Text(value).Int(RealClock()->WallMicros()))
        .status();
  });
}

// Reads a row selected with kUserColumns.
Result<User> ReadUser(const Rows& rows, int i) {
  User u;
  u.name = rows.Text(i, 0);
  nlohmann::json logins = nlohmann::json::parse(rows.Text(i, 1), /*cb=*/nullptr,
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
  u.role = rows.Text(i, 2);
  u.created_us = rows.Int(i, 3);
  u.id = rows.Text(i, 4);
  return u;
}

// The message for an id that was revoked, as SQLite words it.
Status RevokedId(const std::string& what, const std::string& id) {
  return Status(Code::kAlreadyExists,
                what + ": id " + id +
                    " was revoked; leave the id empty to get a new one");
}

Status PostgresCatalog::CreateUser(const User& user) {
  MEZ_RETURN_IF_ERROR(ValidateUser(user));
  // Valid logins are plain ASCII, so dump() cannot throw.
  std::string logins = nlohmann::json(user.logins).dump();
  std::string id = user.id.empty() ? NewIdentityId() : user.id;
  std::lock_guard lock(mu_);
  std::string op = "create user " + user.name;
  return WithConnection(op, [&]() -> Status {
    // One statement: a revoked id inserts nothing. (A revocation row is
    // written only while its id's row is deleted, so the two cannot race.)
    auto r =
        Exec(op,
             "INSERT INTO users (name, id, logins, role, created_us) "
             "SELECT $1, $2, $3, $4, $5 WHERE NOT EXISTS "
             "(SELECT 1 FROM revocations WHERE id = $2)",
             Params().Text(user.name).Text(id).Text(logins).Text(user.role).Int(
                 user.created_us));
    if (r.status().code() == Code::kAlreadyExists) {
      if (last_constraint_ == "users_id") {
        return Status(Code::kAlreadyExists,
                      "user " + user.name + ": id " + id +
                          " already belongs to another user");
      }
      return Status(Code::kAlreadyExists,
                    "user " + user.name + " already exists");
    }
    MEZ_RETURN_IF_ERROR(r.status());
    if (std::strcmp(PQcmdTuples(r->get()), "0") == 0) {
      return RevokedId("user " + user.name, id);
    }
    return Status::Ok();
  });
}

Result<User> PostgresCatalog::GetUser(const std::string& name) {
  std::lock_guard lock(mu_);
  std::string op = "get user " + name;
  std::string sql =
      std::string("SELECT ") + kUserColumns + " FROM users WHERE name = $1";
  return WithConnection(op, [&]() -> Result<User> {
    MEZ_ASSIGN_OR_RETURN(PgResult r,
                         Exec(op, sql.c_str(), Params().Text(name)));
    Rows rows(r.get());
    if (rows.size() == 0) return NotFound("user " + name + " not found");
    return ReadUser(rows, 0);
  });
}

Result<std::vector<User>> PostgresCatalog::ListUsers() {
  std::lock_guard lock(mu_);
  const char* op = "list users";
  std::string sql =
      std::string("SELECT ") + kUserColumns + " FROM users ORDER BY name";
  return WithConnection(op, [&]() -> Result<std::vector<User>> {
    MEZ_ASSIGN_OR_RETURN(PgResult r, Exec(op, sql.c_str()));
    Rows rows(r.get());
    std::vector<User> out;
    for (int i = 0; i < rows.size(); ++i) {
      MEZ_ASSIGN_OR_RETURN(User u, ReadUser(rows, i));
      out.push_back(std::move(u));
    }
    return out;
  });
}

// Deletes and records the revocation in one statement, so in one
// transaction. `select_kind` is the kind column's expression.
std::string DeleteIdentitySql(const char* table, const char* kind) {
  return std::string("WITH gone AS (DELETE FROM ") + table +
         " WHERE name = $1 RETURNING id, name, " + kind +
         " AS kind) INSERT INTO revocations (id, name, kind, revoked_us) "
         "SELECT id, name, kind, $2 FROM gone "
         "ON CONFLICT (id) DO NOTHING RETURNING id";
}

Status PostgresCatalog::DeleteUser(const std::string& name,
                                   int64_t revoked_us) {
  if (revoked_us == 0) revoked_us = RealClock()->WallMicros();
  static const std::string sql = DeleteIdentitySql("users", "role");
  return ChangeOne("delete user " + name, sql.c_str(),
                   Params().Text(name).Int(revoked_us), "user", name);
}

Revocation ReadRevocation(const Rows& rows, int i) {
  Revocation r;
  r.id = rows.Text(i, 0);
  r.name = rows.Text(i, 1);
  r.kind = rows.Text(i, 2);
  r.revoked_us = rows.Int(i, 3);
  return r;
}

Result<std::vector<Revocation>> PostgresCatalog::ListRevocations(
    int64_t since_us, int limit) {
  if (limit <= 0 || limit > kMaxRevocationList) limit = kMaxRevocationList;
  std::lock_guard lock(mu_);
  const char* op = "list revocations";
  std::string sql = std::string("SELECT ") + kRevocationColumns +
                    " FROM revocations WHERE revoked_us >= $1 "
                    "ORDER BY revoked_us DESC, id DESC LIMIT $2";
  return WithConnection(op, [&]() -> Result<std::vector<Revocation>> {
    MEZ_ASSIGN_OR_RETURN(
        PgResult r, Exec(op, sql.c_str(), Params().Int(since_us).Int(limit)));
    Rows rows(r.get());
    std::vector<Revocation> out;
    for (int i = 0; i < rows.size(); ++i) {
      out.push_back(ReadRevocation(rows, i));
    }
    return out;
  });
}

Result<Revocation> PostgresCatalog::GetRevocation(const std::string& id) {
  std::lock_guard lock(mu_);
  std::string op = "get revocation " + id;
  std::string sql = std::string("SELECT ") + kRevocationColumns +
                    " FROM revocations WHERE id = $1";
  return WithConnection(op, [&]() -> Result<Revocation> {
    MEZ_ASSIGN_OR_RETURN(PgResult r, Exec(op, sql.c_str(), Params().Text(id)));
    Rows rows(r.get());
    if (rows.size() == 0) return NotFound("no revocation of id " + id);
    return ReadRevocation(rows, 0);
  });
}

// Reads a row selected with kNodeColumns.
Node ReadNode(const Rows& rows, int i) {
  Node n;
  n.name = rows.Text(i, 0);
  n.addr = rows.Text(i, 1);
  n.openssh = rows.Bool(i, 2);
  n.login_hint = rows.Text(i, 3);
  n.host_key = rows.Text(i, 4);
  n.join_token_hash = rows.Text(i, 5);
  n.created_us = rows.Int(i, 6);
  n.last_seen_us = rows.Int(i, 7);
  n.recording_mode = rows.Text(i, 8);
  n.id = rows.Text(i, 9);
  return n;
}

Status PostgresCatalog::CreateNode(const Node& node) {
  MEZ_RETURN_IF_ERROR(ValidateNode(node));
  std::string id = node.id.empty() ? NewIdentityId() : node.id;
  std::lock_guard lock(mu_);
  std::string op = "create node " + node.name;
  return WithConnection(op, [&]() -> Status {
    auto r = Exec(op,
                  "INSERT INTO nodes (name, id, addr, openssh, login_hint, "
                  "host_key, join_token_hash, created_us, last_seen_us, "
                  "recording_mode) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, "
                  "$10 WHERE NOT EXISTS "
                  "(SELECT 1 FROM revocations WHERE id = $2)",
                  Params()
                      .Text(node.name)
                      .Text(id)
                      .Text(node.addr)
                      .Bool(node.openssh)
                      .Text(node.login_hint)
                      .Text(node.host_key)
                      .Text(node.join_token_hash)
                      .Int(node.created_us)
                      .Int(node.last_seen_us)
                      .Text(node.recording_mode));
    if (r.status().code() == Code::kAlreadyExists) {
      if (last_constraint_ == "nodes_join_token_hash") {
        return Status(Code::kAlreadyExists,
                      "node " + node.name +
                          ": join_token_hash already belongs to another node");
      }
      if (last_constraint_ == "nodes_id") {
        return Status(Code::kAlreadyExists,
                      "node " + node.name + ": id " + id +
                          " already belongs to another node");
      }
      return Status(Code::kAlreadyExists,
                    "node " + node.name + " already exists");
    }
    MEZ_RETURN_IF_ERROR(r.status());
    if (std::strcmp(PQcmdTuples(r->get()), "0") == 0) {
      return RevokedId("node " + node.name, id);
    }
    return Status::Ok();
  });
}

Result<Node> PostgresCatalog::GetNode(const std::string& name) {
  std::lock_guard lock(mu_);
  std::string op = "get node " + name;
  std::string sql =
      std::string("SELECT ") + kNodeColumns + " FROM nodes WHERE name = $1";
  return WithConnection(op, [&]() -> Result<Node> {
    MEZ_ASSIGN_OR_RETURN(PgResult r,
                         Exec(op, sql.c_str(), Params().Text(name)));
    Rows rows(r.get());
    if (rows.size() == 0) return NotFound("node " + name + " not found");
    return ReadNode(rows, 0);
  });
}

Result<std::vector<Node>> PostgresCatalog::ListNodes() {
  std::lock_guard lock(mu_);
  const char* op = "list nodes";
  std::string sql =
      std::string("SELECT ") + kNodeColumns + " FROM nodes ORDER BY name";
  return WithConnection(op, [&]() -> Result<std::vector<Node>> {
    MEZ_ASSIGN_OR_RETURN(PgResult r, Exec(op, sql.c_str()));
    Rows rows(r.get());
    std::vector<Node> out;
    for (int i = 0; i < rows.size(); ++i) out.push_back(ReadNode(rows, i));
    return out;
  });
}

Status PostgresCatalog::DeleteNode(const std::string& name,
                                   int64_t revoked_us) {
  if (revoked_us == 0) revoked_us = RealClock()->WallMicros();
  static const std::string sql = DeleteIdentitySql("nodes", "'node'");
  return ChangeOne("delete node " + name, sql.c_str(),
                   Params().Text(name).Int(revoked_us), "node", name);
}

Status PostgresCatalog::TouchNode(const std::string& name, int64_t seen_us,
                                  const std::string& recording_mode,
                                  const std::string& addr,
                                  const std::string& host_key) {
  if (!addr.empty()) MEZ_RETURN_IF_ERROR(ValidateNodeAddr(name, addr));
  return ChangeOne("touch node " + name,
                   "UPDATE nodes SET last_seen_us = $2, recording_mode = $3, "
                   "addr = COALESCE(NULLIF($4, ''), addr), "
                   "host_key = COALESCE(NULLIF($5, ''), host_key) "
                   "WHERE name = $1",
                   Params()
                       .Text(name)
                       .Int(seen_us)
                       .Text(recording_mode)
                       .Text(addr)
                       .Text(host_key),
                   "node", name);
}

Status PostgresCatalog::ConsumeJoinToken(const std::string& name,
                                         const std::string& hash) {
  if (hash.empty()) return InvalidArgument("join token hash is empty");
  // One UPDATE: row locking lets exactly one of concurrent callers match.
  return ChangeOne("use the join token of node " + name,
                   "UPDATE nodes SET join_token_hash = '' WHERE name = $1 "
                   "AND join_token_hash = $2 AND join_token_hash <> ''",
                   Params().Text(name).Text(hash), "unused join token of node",
                   name);
}

Result<Node> PostgresCatalog::FindNodeByJoinTokenHash(const std::string& hash) {
  if (hash.empty()) return InvalidArgument("join token hash is empty");
  std::lock_guard lock(mu_);
  const char* op = "find node by join token hash";
  // The second condition matches the partial index nodes_join_token_hash.
  std::string sql = std::string("SELECT ") + kNodeColumns +
                    " FROM nodes WHERE join_token_hash = $1 "
                    "AND join_token_hash <> ''";
  return WithConnection(op, [&]() -> Result<Node> {
    MEZ_ASSIGN_OR_RETURN(PgResult r,
                         Exec(op, sql.c_str(), Params().Text(hash)));
    Rows rows(r.get());
    // The message leaves the hash out: it is derived from a secret.
    if (rows.size() == 0) return NotFound("no node has that join token hash");
    return ReadNode(rows, 0);
  });
}

Result<uint64_t> PostgresCatalog::CountSessions() {
  return Count("count sessions", "SELECT COUNT(*) FROM sessions");
}

Result<uint64_t> PostgresCatalog::CountAudit() {
  return Count("count audit events", "SELECT COUNT(*) FROM audit_events");
}

// Binary COPY framing (PostgreSQL docs, "COPY", "Binary Format").
void CopyHeader(std::string& out) {
  out.append("PGCOPY\n\377\r\n\0", 11);
  PutInt32(out, 0);  // Flags.
  PutInt32(out, 0);  // Header extension length.
}
void CopyText(std::string& out, std::string_view v) {
  PutInt32(out, static_cast<int32_t>(v.size()));
  out.append(v);
}
void CopyInt(std::string& out, int64_t v) {
  PutInt32(out, 8);
  PutInt64(out, v);
}
void CopyBool(std::string& out, bool v) {
  PutInt32(out, 1);
  out += static_cast<char>(v ? 1 : 0);
}

Status PostgresCatalog::CopyIn(std::string_view op, const char* sql,
                               const std::string& data) {
  {
    PgResult r(PQexec(conn_, sql));
    if (!r || PQresultStatus(r.get()) != PGRES_COPY_IN) {
      return Error(op, r.get());
    }
  }
  constexpr size_t kChunk = 1 << 20;
  bool sent = true;
  for (size_t off = 0; off < data.size() && sent; off += kChunk) {
    size_t n = std::min(kChunk, data.size() - off);
    sent = PQputCopyData(conn_, data.data() + off, static_cast<int>(n)) == 1;
  }
  PQputCopyEnd(conn_, sent ? nullptr : "client failed to send the data");
  Status status;
  bool first = true;
  while (PGresult* raw = PQgetResult(conn_)) {
    PgResult r(raw);
    if (first && PQresultStatus(raw) != PGRES_COMMAND_OK) {
      status = Error(op, raw);
    }
    first = false;
  }
  if (first) status = Error(op, nullptr);
  return status;
}

Result<std::string> PostgresCatalog::FirstDuplicateSession(
    const std::vector<Session>& sessions) {
  std::vector<std::string_view> ids;
  ids.reserve(sessions.size());
  for (const Session& s : sessions) ids.push_back(s.id);
  MEZ_ASSIGN_OR_RETURN(PgResult r,
                       Exec("find stored session ids",
                            "SELECT id FROM sessions WHERE id = ANY($1)",
                            Params().TextArray(ids)));
  Rows rows(r.get());
  std::unordered_set<std::string> stored;
  for (int i = 0; i < rows.size(); ++i) stored.insert(rows.Text(i, 0));
  std::unordered_set<std::string_view> seen;
  for (const Session& s : sessions) {
    if (stored.count(s.id) || !seen.insert(s.id).second) return s.id;
  }
  return std::string();
}

Status PostgresCatalog::BulkInsertSessions(
    const std::vector<Session>& sessions) {
  for (const Session& s : sessions) MEZ_RETURN_IF_ERROR(ValidateSession(s));
  if (sessions.empty()) return Status::Ok();
  std::string data;
  CopyHeader(data);
  for (const Session& s : sessions) {
    PutInt16(data, 15);
    CopyText(data, s.id);
    CopyText(data, s.connection_id);
    CopyText(data, s.user);
    CopyText(data, s.node);
    CopyText(data, s.login);
    CopyText(data, s.kind);
    CopyText(data, s.command);
    CopyInt(data, s.started_us);
    CopyInt(data, s.ended_us);
    CopyInt(data, static_cast<int64_t>(s.bytes));
    CopyText(data, SessionStatusName(s.status));
    CopyText(data, s.storage_key);
    CopyText(data, s.format);
    CopyBool(data, s.encrypted);
    CopyText(data, s.replica);
  }
  PutInt16(data, -1);
  std::string sql = std::string("COPY sessions (") + kSessionColumns +
                    ") FROM STDIN (FORMAT binary)";
  std::lock_guard lock(mu_);
  const char* op = "bulk insert sessions";
  return WithConnection(op, [&]() -> Status {
    Status st = InTransaction(
        op, [&]() -> Status { return CopyIn(op, sql.c_str(), data); });
    if (st.code() != Code::kAlreadyExists) return st;
    // Rolled back. Name the first offending session, as SQLite would.
    MEZ_ASSIGN_OR_RETURN(std::string id, FirstDuplicateSession(sessions));
    if (id.empty()) return st;  // Deleted meanwhile by another process.
    return Status(Code::kAlreadyExists, "session " + id + " already exists");
  });
}

Status PostgresCatalog::BulkInsertAudit(const std::vector<AuditEvent>& events) {
  std::string data;
  CopyHeader(data);
  for (const AuditEvent& e : events) {
    MEZ_ASSIGN_OR_RETURN(std::string details, CheckAudit(e));
    PutInt16(data, 6);
    CopyInt(data, e.time_us);
    CopyText(data, e.type);
    CopyText(data, e.user);
    CopyText(data, e.session_id);
    CopyText(data, e.node);
    CopyText(data, details);
  }
  PutInt16(data, -1);
  if (events.empty()) return Status::Ok();
  // COPY assigns identity values row by row, in the order sent.
  std::string sql = std::string("COPY audit_events (") + kAuditInsertColumns +
                    ") FROM STDIN (FORMAT binary)";
  std::lock_guard lock(mu_);
  const char* op = "bulk insert audit events";
  return WithConnection(op, [&]() -> Status {
    return InTransaction(
        op, [&]() -> Status { return CopyIn(op, sql.c_str(), data); });
  });
}

bool HasPostgresScheme(std::string_view url) {
  return url.starts_with("postgres://") || url.starts_with("postgresql://");
}

}  // namespace

Result<std::unique_ptr<Catalog>> OpenPostgresCatalog(const std::string& url) {
  if (!HasPostgresScheme(url)) {
    return InvalidArgument(
        "catalog URL must start with postgres:// or postgresql://");
  }
  char* parse_error = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(url.c_str(), &parse_error);
  if (parsed == nullptr) {
    std::string m = "catalog URL: " + Trimmed(parse_error);
    PQfreemem(parse_error);
    return InvalidArgument(m);
  }
  PQconninfoFree(parsed);
  // Keywords before dbname are defaults the URL may override; those after
  // it are forced: the catalog sends and expects UTF-8.
  const char* keys[] = {"connect_timeout", "fallback_application_name",
                        "dbname", "client_encoding", nullptr};
  const char* values[] = {"10", "mezite", url.c_str(), "UTF8", nullptr};
  PGconn* conn = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (conn == nullptr) return Internal("catalog: libpq is out of memory");
  if (PQstatus(conn) != CONNECTION_OK) {
    const char* host = PQhost(conn);
    const char* port = PQport(conn);
    std::string m = std::string("catalog postgres://") + (host ? host : "") +
                    ":" + (port ? port : "") +
                    ": cannot connect: " + Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    return Status(Code::kUnavailable, std::move(m));
  }
  // Server notices ("relation already exists, skipping") are not errors;
  // libpq would print them on stderr.
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  auto catalog = std::make_unique<PostgresCatalog>(conn);
  MEZ_RETURN_IF_ERROR(catalog->Init());
  return std::unique_ptr<Catalog>(std::move(catalog));
}

}  // namespace mez::catalog
