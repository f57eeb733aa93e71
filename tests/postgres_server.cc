#include "tests/postgres_server.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace mez::testing {
namespace {

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

// Runs `command` with /bin/sh and returns its stdout; stderr passes
// through to the test's log.
Result<std::string> RunCommand(const std::string& command) {
  FILE* f = popen(command.c_str(), "r");
  if (f == nullptr) return ErrnoStatus("popen " + command, errno);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  int status = pclose(f);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Internal("command failed (see its output above): " + command);
  }
  return out;
}

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};

}  // namespace

Result<std::unique_ptr<PostgresServer>> PostgresServer::Start() {
  char tmpl[] = "/tmp/mez_pg.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return ErrnoStatus("mkdtemp", errno);
  std::string dir = tmpl;
  auto out = RunCommand(ShellQuote(MEZ_START_POSTGRES) + " --watch " +
                        std::to_string(getpid()) + " " + ShellQuote(dir));
  if (!out.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return out.status();
  }
  std::string url = *out;
  while (!url.empty() && (url.back() == '\n' || url.back() == '\r')) {
    url.pop_back();
  }
  if (url.find("postgresql://") != 0) {
    return Internal("start-postgres printed no URL: " + *out);
  }
  return std::unique_ptr<PostgresServer>(
      new PostgresServer(std::move(dir), std::move(url)));
}

PostgresServer::~PostgresServer() {
  if (dir_.empty()) return;
  (void)RunCommand(ShellQuote(MEZ_START_POSTGRES) + " --stop " +
                   ShellQuote(dir_));
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Result<std::string> PostgresServer::Query(const std::string& url,
                                          const std::string& sql) {
  std::unique_ptr<PGconn, ConnDeleter> conn(PQconnectdb(url.c_str()));
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return Status(Code::kUnavailable,
                  "connect " + url + ": " + PQerrorMessage(conn.get()));
  }
  PQsetNoticeProcessor(
      conn.get(), [](void*, const char*) {}, nullptr);
  std::unique_ptr<PGresult, ResultDeleter> r(PQexec(conn.get(), sql.c_str()));
  ExecStatusType st = PQresultStatus(r.get());
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    return Internal(sql + ": " + PQresultErrorMessage(r.get()));
  }
  std::string out;
  for (int i = 0; i < PQntuples(r.get()); ++i) {
    if (i > 0) out += ",";
    out += PQgetisnull(r.get(), i, 0) ? "NULL" : PQgetvalue(r.get(), i, 0);
  }
  return out;
}

namespace {
constexpr char kSearchPathOption[] = "options=-csearch_path%3D";
}  // namespace

Result<std::string> PostgresServer::CreateSchema() {
  static std::atomic<int> counter{0};
  // Only a counter goes into the name: no input reaches the SQL text.
  // The pid keeps names apart when processes share a server.
  std::string name =
      "mez_test_" + std::to_string(getpid()) + "_" + std::to_string(++counter);
  auto r = Query(url_, "CREATE SCHEMA " + name);
  if (!r.ok()) return r.status();
  const char* sep = url_.find('?') == std::string::npos ? "?" : "&";
  return url_ + sep + kSearchPathOption + name;
}

Status PostgresServer::DropSchema(const std::string& url) {
  size_t at = url.find(kSearchPathOption);
  if (at == std::string::npos) return InvalidArgument("not a test URL: " + url);
  std::string name = url.substr(at + std::string(kSearchPathOption).size());
  if (name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_0123456789") !=
      std::string::npos) {
    return InvalidArgument("not a test schema: " + url);
  }
  return Query(url_, "DROP SCHEMA IF EXISTS " + name + " CASCADE").status();
}

Result<PostgresServer*> SharedPostgresServer() {
  static std::mutex mu;
  static std::unique_ptr<PostgresServer> server;
  static Status error;
  std::lock_guard lock(mu);
  if (server != nullptr) return server.get();
  if (!error.ok()) return error;
  if (const char* url = getenv("MEZ_TEST_POSTGRES_URL");
      url != nullptr && *url != '\0') {
    server.reset(new PostgresServer("", url));
    return server.get();
  }
  auto started = PostgresServer::Start();
  if (!started.ok()) {
    error = started.status();
    return error;
  }
  server = std::move(started).value();
  return server.get();
}

}  // namespace mez::testing
