#include "tests/mezd_harness.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "libmez/auth/identity.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/util/file.h"
#include "mezite/v1/cluster.grpc.pb.h"

#ifndef MEZD_PATH
#error "MEZD_PATH must name the mezd binary"
#endif
#ifndef MEZCTL_PATH
#error "MEZCTL_PATH must name the mezctl binary"
#endif
#ifndef MSH_PATH
#error "MSH_PATH must name the msh binary"
#endif

namespace mez::testing {
namespace {

constexpr std::string_view kServing = "mezd: serving SSH on ";

std::string TrimNewlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

Mezd::Mezd(const Mezrecd* cluster, std::string work_dir, MezdOptions options)
    : cluster_(cluster),
      work_dir_(std::move(work_dir)),
      options_(std::move(options)),
      log_path_(work_dir_ + "/mezd-" + options_.node_name + ".log"),
      tls_ca_file_(work_dir_ + "/tls_ca.pem") {}

Mezd::~Mezd() { Kill9(); }

std::string Mezd::log() const {
  auto r = ReadFile(log_path_);
  return r.ok() ? *r : "";
}

std::string Mezd::command_line() const {
  std::string out;
  for (const auto& a : argv_) out += (out.empty() ? "" : " ") + ShellQuote(a);
  return out;
}

bool Mezd::WriteCaFiles() {
  auto id = auth::ReadIdentityFile(cluster_->data_dir() + "/admin.identity");
  if (!id.ok()) {
    WriteFileOrDie(log_path_, "harness: " + id.status().ToString());
    return false;
  }
  tls_ca_file_ = id->tls_ca_pem.empty() ? "" : work_dir_ + "/tls_ca.pem";
  if (!tls_ca_file_.empty()) WriteFileOrDie(tls_ca_file_, id->tls_ca_pem);
  return true;
}

bool Mezd::Start() {
  if (pid_ > 0) return false;
  port_ = 0;
  if (!WriteCaFiles()) return false;
  // The user CA comes from the cluster (JoinNode), as in production.
  argv_ = {MEZD_PATH, "--auth", cluster_->addr(), "--listen", options_.listen};
  if (!options_.token.empty()) {
    argv_.push_back("--token");
    argv_.push_back(options_.token);
  }
  bool has_data_dir = false;
  for (const auto& a : options_.extra_args) {
    has_data_dir |= a == "--data-dir" || a.rfind("--data-dir=", 0) == 0;
  }
  if (!has_data_dir) {
    // Never the shared default (/var/lib/mezd): tests run in parallel.
    std::string dir = work_dir_ + "/mezd-" + options_.node_name;
    mkdir(dir.c_str(), 0700);
    argv_.push_back("--data-dir");
    argv_.push_back(dir);
  }
  if (!tls_ca_file_.empty()) {
    if (options_.give_ca_file) {
      argv_.push_back("--ca-file");
      argv_.push_back(tls_ca_file_);
    }
  } else {
    argv_.push_back("--insecure");  // A plaintext mezrecd on loopback.
  }
  argv_.insert(argv_.end(), options_.extra_args.begin(),
               options_.extra_args.end());
  argv_.insert(argv_.begin(), options_.wrapper.begin(), options_.wrapper.end());
  start_exit_code_ = -1;
  // Truncate: the "serving" line must come from this start.
  WriteFileOrDie(log_path_, "");
  pid_ = fork();
  if (pid_ < 0) return false;
  if (pid_ == 0) {
    // Own process group, so Kill9 also reaches the sessions' programs that
    // did not start a session of their own.
    setpgid(0, 0);
    for (const auto& kv : options_.env) putenv(const_cast<char*>(kv.c_str()));
    FILE* in = freopen("/dev/null", "r", stdin);
    FILE* out = freopen(log_path_.c_str(), "a", stdout);
    FILE* err = freopen(log_path_.c_str(), "a", stderr);
    (void)in;
    (void)out;
    (void)err;
    std::vector<char*> cargv;
    for (auto& a : argv_) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  setpgid(pid_, pid_);  // Also here: no race with an early Kill9.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string text = log();
    size_t at = text.find(kServing);
    if (at != std::string::npos) {
      size_t eol = text.find('\n', at);
      if (eol != std::string::npos) {
        std::string line = text.substr(at, eol - at);
        size_t p = line.find(" port ");
        if (p == std::string::npos) return false;
        int port = std::atoi(line.c_str() + p + 6);
        if (port <= 0 || port > 65535) return false;
        port_ = static_cast<uint16_t>(port);
        return true;
      }
    }
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      start_exit_code_ =
          WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

int Mezd::Wait(int timeout_ms) {
  if (pid_ <= 0) return -1;
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int Mezd::Stop(int timeout_ms) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int rc = Wait(timeout_ms);
  if (rc == -1) Kill9();
  return rc;
}

void Mezd::Kill9() {
  if (pid_ <= 0) return;
  kill(-pid_, SIGKILL);
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

CommandResult Mezctl(const Mezrecd& cluster, const std::string& args,
                     const std::string& home) {
  std::string h = home.empty() ? cluster.data_dir() + "-admin-home" : home;
  mkdir(h.c_str(), 0700);
  return Run("HOME=" + ShellQuote(h) +
             " MEZ_IDENTITY= " + ShellQuote(MEZCTL_PATH) + " --identity " +
             ShellQuote(cluster.data_dir() + "/admin.identity") + " " + args +
             " 2>&1");
}

std::string RegisterNode(const Mezrecd& cluster, const std::string& name,
                         const std::string& addr, std::string* error) {
  auto r = Mezctl(
      cluster, "nodes add " + ShellQuote(name) + " --addr " + ShellQuote(addr));
  // "... join token (shown once):\nTOKEN\n..."
  const std::string marker = "(shown once):\n";
  size_t at = r.out.find(marker);
  if (r.exit_code != 0 || at == std::string::npos) {
    if (error != nullptr) *error = "mezctl nodes add: " + r.out;
    return "";
  }
  at += marker.size();
  return TrimNewlines(r.out.substr(at, r.out.find('\n', at) - at));
}

std::unique_ptr<Mezd> StartRegisteredNode(const Mezrecd* cluster,
                                          const std::string& work_dir,
                                          MezdOptions options,
                                          std::string* error) {
  std::string why;
  for (int attempt = 0; attempt < 3; ++attempt) {
    uint16_t port = FreeLoopbackPort();
    if (port == 0) {
      why = "no free loopback port";
      continue;
    }
    std::string addr = "127.0.0.1:" + std::to_string(port);
    if (attempt > 0) {
      Mezctl(*cluster, "nodes rm " + ShellQuote(options.node_name));
    }
    options.token = RegisterNode(*cluster, options.node_name, addr, &why);
    if (options.token.empty()) break;
    options.listen = addr;
    auto mezd = std::make_unique<Mezd>(cluster, work_dir, options);
    if (mezd->Start()) {
      if (mezd->port() == port) return mezd;
      why = "mezd listens on port " + std::to_string(mezd->port()) +
            ", not the registered " + std::to_string(port);
      break;
    }
    why = "mezd did not start (" + mezd->command_line() + "):\n" + mezd->log();
  }
  if (error != nullptr) *error = why;
  return nullptr;
}

bool AddUserAndLogin(const Mezrecd& cluster, const std::string& dir,
                     const std::string& name, const std::string& logins,
                     TestUser* user, std::string* error) {
  user->name = name;
  user->identity = dir + "/" + name + ".identity";
  user->home = dir + "/home-" + name;
  auto add = Mezctl(cluster, "users add " + ShellQuote(name) + " --logins=" +
                                 ShellQuote(logins) + " --identity-out " +
                                 ShellQuote(user->identity));
  if (add.exit_code != 0) {
    *error = "mezctl users add: " + add.out;
    return false;
  }
  if (mkdir(user->home.c_str(), 0700) != 0 && errno != EEXIST) {
    *error = "cannot create " + user->home;
    return false;
  }
  auto login = Run("HOME=" + ShellQuote(user->home) +
                   " MEZ_IDENTITY= " + ShellQuote(MSH_PATH) +
                   " login --identity " + ShellQuote(user->identity) + " 2>&1");
  if (login.exit_code != 0) {
    *error = "msh login: " + login.out;
    return false;
  }
  return true;
}

std::string CurrentLogin() {
  struct passwd* pw = getpwuid(geteuid());
  return pw != nullptr ? pw->pw_name : "root";
}

uint16_t FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a = {};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

// The stock ssh client with `key` and the certificate beside it
// (KEY-cert.pub), as `login` to mezd on `port`: a command prefix.
std::string StockSsh(const std::string& key, uint16_t port,
                     const std::string& login) {
  return "ssh -F /dev/null -i " + ShellQuote(key) + " -o " +
         ShellQuote("CertificateFile=" + key + "-cert.pub") +
         " -o IdentitiesOnly=yes -o BatchMode=yes"
         " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
         " -o LogLevel=ERROR -p " +
         std::to_string(port) + " " + ShellQuote(login) + "@127.0.0.1 ";
}

// msh needs mezrecd for each certificate; while mezrecd is down a user
// still holds a certificate obtained earlier as msh obtains it (valid for
// minutes; msh itself removes its key when ssh exits) and connects with
// the stock client. Writes the key to `key` (the certificate beside it)
// and returns the ssh command prefix.
std::string StockSshWithClusterCert(const Mezrecd& cluster,
                                    const TestUser& user,
                                    const std::string& key, uint16_t port,
                                    const std::string& login) {
  auto id = auth::ReadIdentityFile(user.identity);
  auto pair = auth::GenerateSshUserKey();
  EXPECT_TRUE(id.ok() && pair.ok());
  if (!id.ok() || !pair.ok()) return "false ";
  auto stub = mezite::v1::Cluster::NewStub(cluster.Channel());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + id->token);
  mezite::v1::SignUserCertRequest req;
  req.set_public_key_blob(pair->second);
  req.set_login(login);
  req.set_node("node-1");
  mezite::v1::SignUserCertResponse cert;
  grpc::Status s = stub->SignUserCert(&ctx, req, &cert);
  EXPECT_TRUE(s.ok()) << s.error_message();
  WriteFileOrDie(key, pair->first);
  chmod(key.c_str(), 0600);
  WriteFileOrDie(key + "-cert.pub", cert.certificate_line() + "\n");
  return StockSsh(key, port, login);
}

}  // namespace mez::testing
