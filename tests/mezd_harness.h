// Starts the real mezd binary on loopback against a running Mezrecd (see
// mezrecd_harness.h), plus the CLI steps a test cluster needs around it:
// registering the node, adding a user and logging them in with msh.
//
// Every process a Mezd starts is killed by its destructor (with mezd's
// process group), so a failed ASSERT never leaves a server behind.
// Not thread-safe; one test thread owns each object.
#ifndef MEZ_TESTS_MEZD_HARNESS_H_
#define MEZ_TESTS_MEZD_HARNESS_H_

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

namespace mez::testing {

struct MezdOptions {
  std::string node_name = "node-1";
  // The node's join token (RegisterNode). Empty: no --token (a node that
  // joined before starts from the credential in its data dir).
  std::string token;
  // Pass --ca-file with the cluster's TLS CA. By default mezd is given no
  // CA, as the README's steps do: it fetches the one its join token pins
  // (or uses the one kept in its data dir).
  bool give_ca_file = false;
  std::string listen = "127.0.0.1:0";
  // Appended to the generated flags, e.g. {"--data-dir", dir}.
  std::vector<std::string> extra_args;
  // "NAME=VALUE" entries added to mezd's environment, e.g.
  // "MEZITE_RECORDING_MODE=off".
  std::vector<std::string> env;
  // A command mezd runs under, e.g. {"/usr/bin/setpriv", "--reuid=65534",
  // ...} (the first word an absolute path).
  std::vector<std::string> wrapper;
};

class Mezd {
 public:
  // `work_dir` must exist; mezd's log, the exported user CA and the TLS CA
  // are written there. `cluster` must outlive this object.
  Mezd(const Mezrecd* cluster, std::string work_dir, MezdOptions options);
  // Kills mezd (and its process group) if it still runs.
  ~Mezd();
  Mezd(const Mezd&) = delete;
  Mezd& operator=(const Mezd&) = delete;

  // Writes the CA files, starts mezd and waits (up to 30 s) for its
  // "serving SSH on ... port N" line. False if it exited or timed out;
  // log() then says why.
  bool Start();
  // SIGTERM and wait; returns the exit code, 128+signal, or -1 on timeout
  // (the process is then killed).
  int Stop(int timeout_ms = 30000);
  void Kill9();
  // Waits for the process to exit by itself; the exit code or -1.
  int Wait(int timeout_ms = 30000);

  bool running() const { return pid_ > 0; }
  // After a Start() that returned false because mezd exited: its exit code
  // (128+signal when killed); -1 otherwise.
  int start_exit_code() const { return start_exit_code_; }
  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  const std::string& node_name() const { return options_.node_name; }
  // The user CA public key line mezd trusts (mezctl ca export --type=user).
  std::string log() const;
  // The argv of the last Start(), for failure messages.
  std::string command_line() const;

 private:
  bool WriteCaFiles();

  const Mezrecd* cluster_;
  std::string work_dir_;
  MezdOptions options_;
  std::string log_path_;
  std::string tls_ca_file_;
  std::vector<std::string> argv_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  int start_exit_code_ = -1;
};

// mezctl with the cluster's admin identity; HOME is `home` (a directory
// under the data dir's parent when empty). stderr is merged into out.
CommandResult Mezctl(const Mezrecd& cluster, const std::string& args,
                     const std::string& home = "");

// `mezctl nodes add NAME --addr ADDR`: the join token, or "" with the
// command's output in *error.
std::string RegisterNode(const Mezrecd& cluster, const std::string& name,
                         const std::string& addr, std::string* error);

// Picks a free loopback port, registers `options.node_name` at it, and
// starts mezd there with the join token (three attempts, in case another
// process takes the port in between). Null on failure, with *error set.
std::unique_ptr<Mezd> StartRegisteredNode(const Mezrecd* cluster,
                                          const std::string& work_dir,
                                          MezdOptions options,
                                          std::string* error);

struct TestUser {
  std::string name;
  std::string identity;  // the identity file from `mezctl users add`
  std::string home;      // a private HOME where `msh login` was run
};

// `mezctl users add NAME --logins=LOGINS` then `msh login` in a fresh HOME
// under `dir`. False with *error set when either step fails.
bool AddUserAndLogin(const Mezrecd& cluster, const std::string& dir,
                     const std::string& name, const std::string& logins,
                     TestUser* user, std::string* error);

// The login of the user running the test (getpwuid(geteuid())).
std::string CurrentLogin();

// The stock ssh client with `key` and the certificate beside it
// (KEY-cert.pub), as `login` to mezd on `port` at 127.0.0.1: a command
// prefix.
std::string StockSsh(const std::string& key, uint16_t port,
                     const std::string& login);

// A certificate for `login` on node-1 as msh obtains it (SignUserCert with
// `user`'s identity), written to `key` and KEY-cert.pub, for the stock
// client: sessions then run while mezrecd is down. Returns StockSsh's
// prefix ("false " when signing failed, which it reports as a failure).
std::string StockSshWithClusterCert(const Mezrecd& cluster,
                                    const TestUser& user,
                                    const std::string& key, uint16_t port,
                                    const std::string& login);

// A loopback TCP port that was free a moment ago (0 on failure).
uint16_t FreeLoopbackPort();

}  // namespace mez::testing

#endif  // MEZ_TESTS_MEZD_HARNESS_H_
