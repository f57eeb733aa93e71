// A throwaway PostgreSQL server for tests, started with
// scripts/start-postgres: its own data directory under /tmp, 127.0.0.1 on a
// free port, trust authentication, fsync off. Run as the "postgres" user
// when the test runs as root.
#ifndef MEZ_TESTS_POSTGRES_SERVER_H_
#define MEZ_TESTS_POSTGRES_SERVER_H_

#include <memory>
#include <string>

#include "libmez/util/status.h"

namespace mez::testing {

class PostgresServer {
 public:
  // Starts a server (a few seconds: initdb). An error, never a skip, when
  // the PostgreSQL binaries are missing. A watchdog stops the server if
  // this process dies without running the destructor.
  static Result<std::unique_ptr<PostgresServer>> Start();
  // Stops the server (immediate shutdown) and removes its directory.
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // The URL of database "postgres" as superuser "postgres".
  const std::string& url() const { return url_; }
  // Creates a new, empty schema in that database and returns a URL
  // whose connections use it (search_path), so that each test starts from
  // an empty catalog in milliseconds. Thread-safe.
  Result<std::string> CreateSchema();
  // Drops a schema made by CreateSchema, with everything in it.
  Status DropSchema(const std::string& url);

  // Runs `sql` on the database at `url` and returns the first column of
  // every row, joined by ','. For checks that reach past the Catalog API.
  static Result<std::string> Query(const std::string& url,
                                   const std::string& sql);

 private:
  PostgresServer(std::string dir, std::string url)
      : dir_(std::move(dir)), url_(std::move(url)) {}
  friend Result<PostgresServer*> SharedPostgresServer();

  std::string dir_;  // Empty for a server this process did not start.
  std::string url_;  // Of database "postgres".
};

// One server shared by the tests of this process: started on first use,
// stopped at exit. The error of the first start is returned to every
// caller. When MEZ_TEST_POSTGRES_URL is set (a superuser URL of a database,
// e.g. printed by scripts/start-postgres), that server is used instead and
// left running: ctest runs each test in its own process, and one server
// for the whole run saves a start per test.
Result<PostgresServer*> SharedPostgresServer();

}  // namespace mez::testing

#endif  // MEZ_TESTS_POSTGRES_SERVER_H_
