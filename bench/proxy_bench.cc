// proxy_bench: what mezrecd's SSH proxy costs the stock OpenSSH client,
// side by side in one run. Prints figures; asserts nothing (exits non-zero
// only when a step fails). Needs root: it starts /usr/sbin/sshd twice.
//
//   build/bench/proxy_bench [--bytes=256M] [--keystrokes=500] [--reps=3]
//       [--cipher=NAME] [--login=NAME] [--paths=ab]
//
// --paths: which of (a) and (b) to run (the baseline (c) always runs).
//
// Paths, all on 127.0.0.1, the same /usr/bin/ssh and options on every hop,
// the inner hop always authenticated with the same cluster certificate:
//   (a) ssh through the proxy (mezrecd --roles auth,proxy) to an agent
//       node: the proxy relays the encrypted channel to mezd, which
//       records (the cluster's default session_recording, node-sync);
//   (b) ssh through the proxy to an agentless node, a stock sshd trusting
//       `mezctl ca export --type=user`: the proxy terminates the inner SSH,
//       logs in to sshd itself and records in node-sync;
//   (c) the baseline: ssh through a second stock sshd as the jump host
//       (plain public key) to the same sshd as (b).
// The jump is a ProxyCommand `ssh -W %h:%p USER@127.0.0.1 -p PORT`, which
// is what `ssh -J` runs, spelled out so that the jump hop gets -F /dev/null
// and its key too. Goal (issue 6): each of (a) and (b) within 10% of (c).
//
// throughput: `cat FILE` as an exec without a PTY, FILE being --bytes of
//   base64 text made once from /dev/urandom. Not /dev/zero: the recorders
//   gzip what they write, and zeros make recording unrealistically cheap;
//   base64 is printable, like terminal output, and compresses about as
//   well (~3:4). MB/s counts from the first byte to EOF (connection set-up
//   excluded); the median of --reps runs, interleaved across paths. The
//   default 256 MB: at 64 MB a run lasts about a second and no path
//   reaches its steady rate (stock ssh -J measured 64 MB/s there and
//   135-175 MB/s at 256 MB and more).
// cpu: seconds per GB over each throughput run, the whole machine
//   (/proc/stat) and the middle hop (mezrecd; the jump sshd with its
//   reaped sessions).
// echo: the client under a PTY made here (raw), `ssh -t` running
//   `stty raw -echo; exec cat`: one byte written, the time until it comes
//   back; 100 warm-up bytes, then --keystrokes; p50 and p99.
#include <errno.h>
#include <poll.h>
#include <shadow.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_util.h"
#include "libmez/auth/identity.h"
#include "libmez/auth/ssh_cert.h"
#include "mezite/v1/cluster.grpc.pb.h"
#include "tests/mezd_harness.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

#ifndef MEZ_BUILD_TYPE
#define MEZ_BUILD_TYPE "unknown"
#endif

namespace mez::bench {
namespace {

using testing::ShellQuote;

constexpr int kWarmupKeys = 100;
constexpr int kIoTimeoutMs = 20000;
// Every sshd runs under timeout(1), so that none outlives a killed bench.
constexpr const char* kServerLifetime = "1800";

struct Options {
  int64_t bytes = 256 << 20;
  int keystrokes = 500;
  int reps = 3;
  std::string cipher;        // "" = the client's default list
  std::string login;         // "" = the user running the bench
  std::string paths = "ab";  // of (a) and (b); (c) always runs
};

bool ParseFlags(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    size_t eq = arg.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view name = arg.substr(0, eq), value = arg.substr(eq + 1);
    int64_t n = 0;
    if (name == "--paths") {
      if (value.empty() ||
          value.find_first_not_of("ab") != std::string_view::npos) {
        return false;
      }
      o->paths = value;
      continue;
    }
    if (name == "--login" || name == "--cipher") {
      (name == "--login" ? o->login : o->cipher) = value;
      if (value.empty()) return false;
      continue;
    }
    if (!ParseSize(value, &n)) return false;
    if (name == "--bytes") {
      o->bytes = n;
    } else if (name == "--keystrokes") {
      o->keystrokes = static_cast<int>(n);
    } else if (name == "--reps") {
      o->reps = static_cast<int>(n);
    } else {
      return false;
    }
  }
  return true;
}

// A stock sshd -D on a free loopback port, under timeout(1), its log in
// DIR/NAME.log. `extra` is appended to the common config.
class Sshd {
 public:
  Sshd(std::string dir, std::string name)
      : dir_(std::move(dir)), name_(std::move(name)) {}
  ~Sshd() { Stop(); }
  Sshd(const Sshd&) = delete;
  Sshd& operator=(const Sshd&) = delete;

  bool Start(const std::string& extra, bool use_pam, std::string* error) {
    mkdir("/run/sshd", 0755);
    std::string key = dir_ + "/" + name_ + "_host_key";
    auto r = testing::Run("ssh-keygen -q -t ed25519 -N '' -f " +
                          ShellQuote(key) + " 2>&1");
    if (r.exit_code != 0) {
      *error = "ssh-keygen: " + r.out;
      return false;
    }
    host_pub_ = ReadText(key + ".pub");
    host_pub_ = host_pub_.substr(0, host_pub_.find('\n'));
    port_ = testing::FreeLoopbackPort();
    log_ = dir_ + "/" + name_ + ".log";
    std::string cfg = dir_ + "/" + name_ + "_config";
    // SetEnv SHLVL=1: bash started by sshd otherwise sources ~/.bashrc even
    // for a command, and a slow rc file would slow every connection.
    testing::WriteFileOrDie(
        cfg, "ListenAddress 127.0.0.1\nPort " + std::to_string(port_) +
                 "\nHostKey " + key + "\nUsePAM " + (use_pam ? "yes" : "no") +
                 "\nStrictModes no\nPidFile " + dir_ + "/" + name_ +
                 ".pid\nPasswordAuthentication no\n"
                 "KbdInteractiveAuthentication no\nPrintMotd no\n"
                 "PermitRootLogin prohibit-password\nSetEnv SHLVL=1\n" +
                 extra);
    std::vector<std::string> argv = {"/usr/bin/timeout",
                                     "-k",
                                     "5",
                                     kServerLifetime,
                                     "/usr/sbin/sshd",
                                     "-D",
                                     "-f",
                                     cfg,
                                     "-E",
                                     log_};
    if (!proc_.Start(argv, {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
                     Child::Io::kPipe, dir_ + "/" + name_ + ".stderr")) {
      *error = "cannot start /usr/sbin/sshd";
      return false;
    }
    for (int i = 0; i < 500; ++i) {
      if (ReadText(log_).find("Server listening") != std::string::npos) {
        return true;
      }
      SleepMs(20);
    }
    *error = name_ + " did not start: " + ReadText(log_) +
             ReadText(dir_ + "/" + name_ + ".stderr");
    return false;
  }

  void Stop() {
    if (proc_.pid() > 0) kill(-proc_.pid(), SIGTERM);
    proc_.Reap(5000);
  }

  uint16_t port() const { return port_; }
  const std::string& host_pub() const { return host_pub_; }
  // The listening sshd (from its PidFile), or 0.
  pid_t server_pid() const {
    return static_cast<pid_t>(
        std::atoi(ReadText(dir_ + "/" + name_ + ".pid").c_str()));
  }
  std::string log() const { return ReadText(log_); }

 private:
  std::string dir_;
  std::string name_;
  std::string log_;
  std::string host_pub_;
  uint16_t port_ = 0;
  Child proc_;
};

// A fresh key and a cluster user certificate for it (Cluster.SignUserCert
// with `user`'s token, as msh gets one); valid 10 minutes.
bool Certify(const testing::Mezrecd& cluster, const testing::TestUser& user,
             const std::string& login, const std::string& node,
             const std::string& key_path, std::string* error) {
  auto id = auth::ReadIdentityFile(user.identity);
  if (!id.ok()) {
    *error = id.status().ToString();
    return false;
  }
  auto key = auth::GenerateSshUserKey();
  if (!key.ok()) {
    *error = key.status().ToString();
    return false;
  }
  auto stub = mezite::v1::Cluster::NewStub(cluster.Channel());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + id->token);
  mezite::v1::SignUserCertRequest req;
  req.set_public_key_blob(key->second);
  req.set_login(login);
  req.set_node(node);  // A certificate is for one node.
  mezite::v1::SignUserCertResponse cert;
  grpc::Status s = stub->SignUserCert(&ctx, req, &cert);
  if (!s.ok()) {
    *error = "SignUserCert: " + s.error_message();
    return false;
  }
  testing::WriteFileOrDie(key_path, key->first);
  chmod(key_path.c_str(), 0600);
  testing::WriteFileOrDie(key_path + "-cert.pub",
                          cert.certificate_line() + "\n");
  return true;
}

// ssh options every hop gets: no config file, one key (and its cluster
// certificate when `cert`), host keys not checked (throwaway keys on
// loopback), no prompts, and the cipher when one is forced.
std::vector<std::string> HopOpts(const std::string& key, bool cert,
                                 const std::string& cipher) {
  std::vector<std::string> o = {"-F", "/dev/null",
                                "-i", key,
                                "-o", "IdentitiesOnly=yes",
                                "-o", "BatchMode=yes",
                                "-o", "StrictHostKeyChecking=no",
                                "-o", "UserKnownHostsFile=/dev/null",
                                "-o", "ConnectTimeout=20",
                                "-o", "LogLevel=ERROR"};
  if (cert) {
    o.push_back("-o");
    o.push_back("CertificateFile=" + key + "-cert.pub");
  }
  if (!cipher.empty()) {
    o.push_back("-c");
    o.push_back(cipher);
  }
  return o;
}

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : " ") + ShellQuote(w);
  return out;
}

struct Path {
  std::string label;  // "(a)"
  std::string what;   // for the table
  std::string host;   // the inner hop's host: a node name, or 127.0.0.1
  uint16_t port = 22;
  std::string jump_key;  // the jump hop's key
  bool jump_cert = false;
  std::string jump_user;
  uint16_t jump_port = 0;
  // The middle hop whose CPU the throughput runs account: mezrecd, or the
  // jump host's listening sshd (its sessions count once it reaps them).
  pid_t middle = 0;
  bool middle_forks = false;
  // The inner hop's key (certificate beside it); "" for Env::user_key. A
  // certificate carries a recording grant for one node.
  std::string key;
};

struct Env {
  std::string dir;
  std::string user_key;  // KEY-cert.pub beside it
  std::string login;
  std::string cipher;
  std::vector<std::string> env;
};

// The client's argv: ssh to LOGIN@HOST through the path's jump host;
// `inner_extra` go to the inner ssh, `jump_extra` to the jump's.
std::vector<std::string> Client(
    const Env& e, const Path& p, bool tty, const std::string& command,
    const std::vector<std::string>& inner_extra = {},
    const std::vector<std::string>& jump_extra = {}) {
  std::vector<std::string> jump = {"/usr/bin/ssh"};
  for (auto& o : HopOpts(p.jump_key, p.jump_cert, e.cipher)) jump.push_back(o);
  for (auto& o : jump_extra) jump.push_back(o);
  jump.insert(jump.end(), {"-p", std::to_string(p.jump_port), "-W", "%h:%p",
                           p.jump_user + "@127.0.0.1"});
  std::vector<std::string> argv = {"/usr/bin/ssh"};
  for (auto& o : HopOpts(p.key.empty() ? e.user_key : p.key, true, e.cipher)) {
    argv.push_back(o);
  }
  for (auto& o : inner_extra) argv.push_back(o);
  if (tty) argv.push_back("-t");
  argv.insert(argv.end(),
              {"-o", "ProxyCommand=" + Join(jump), "-p", std::to_string(p.port),
               e.login + "@" + p.host, "--", command});
  return argv;
}

// The ciphers negotiated on the inner and the jump hop ("kex:
// server->client cipher: NAME MAC: ..."), from `ssh -v` logs.
std::string ProbeCiphers(const Env& e, const Path& p, std::string* error) {
  std::string inner_log = e.dir + "/probe_inner.log";
  std::string jump_log = e.dir + "/probe_jump.log";
  std::remove(inner_log.c_str());
  std::remove(jump_log.c_str());
  Child c;
  if (!c.Start(Client(e, p, false, "true", {"-v", "-E", inner_log},
                      {"-v", "-E", jump_log}),
               e.env, Child::Io::kPipe, e.dir + "/probe.err")) {
    *error = "cannot start the client";
    return "";
  }
  std::string out;
  ReadUntil(c.fd(), "\x01", kIoTimeoutMs, &out);  // until EOF
  int rc = c.Reap(kIoTimeoutMs);
  auto cipher = [](const std::string& text) -> std::string {
    const std::string key = "kex: server->client cipher: ";
    size_t at = text.find(key);
    if (at == std::string::npos) return "?";
    at += key.size();
    std::string name = text.substr(at, text.find(' ', at) - at);
    return name.substr(0, name.find("@openssh.com"));
  };
  std::string inner = ReadText(inner_log);
  if (rc != 0) {
    *error = "probe exited " + std::to_string(rc) + ": " +
             Tail(ReadText(e.dir + "/probe.err") + inner);
    return "";
  }
  return cipher(inner) + " / " + cipher(ReadText(jump_log));
}

struct Throughput {
  double mbps = 0;
  // CPU seconds per GB (1e9 bytes) over the whole run, connection set-up
  // included: the whole machine, and the middle hop.
  double machine_s_per_gb = 0;
  double middle_s_per_gb = 0;
};

// MB/s from the first byte to EOF of `cat FILE` (`bytes` long), and what
// the run cost in CPU.
bool RunThroughput(const Env& e, const Path& p, const std::string& file,
                   int64_t bytes, Throughput* t, std::string* error) {
  double machine0 = MachineCpuSeconds();
  double middle0 = ProcessCpuSeconds(p.middle, p.middle_forks);
  Child c;
  if (!c.Start(Client(e, p, false, "cat " + ShellQuote(file)), e.env,
               Child::Io::kPipe, e.dir + "/tput.err")) {
    *error = "cannot start the client";
    return false;
  }
  std::vector<char> buf(1 << 20);
  int64_t got = 0, first = 0;
  int64_t deadline = NowNs() + int64_t{300} * 1000000000;
  bool timed_out = false;
  for (;;) {
    struct pollfd pfd = {c.fd(), POLLIN, 0};
    int left = static_cast<int>((deadline - NowNs()) / 1000000);
    if (left <= 0 || poll(&pfd, 1, left) == 0) {
      timed_out = true;
      break;
    }
    ssize_t n = read(c.fd(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (got == 0) first = NowNs();
    got += n;
  }
  int64_t last = NowNs();
  int rc = c.Reap(10000);
  if (timed_out || rc != 0 || got != bytes) {
    *error = std::string(timed_out ? "timed out, " : "") + "exit " +
             std::to_string(rc) + " after " + std::to_string(got) + " of " +
             std::to_string(bytes) +
             " bytes: " + Tail(ReadText(e.dir + "/tput.err"));
    return false;
  }
  // A forking server counts a session's CPU once it has reaped it.
  for (int i = 0; p.middle_forks && i < 150 && !ChildrenOf(p.middle).empty();
       ++i) {
    SleepMs(20);
  }
  double gb = static_cast<double>(got) / 1e9;
  t->mbps = gb * 1e3 / (static_cast<double>(last - first) / 1e9);
  t->machine_s_per_gb = (MachineCpuSeconds() - machine0) / gb;
  t->middle_s_per_gb =
      (ProcessCpuSeconds(p.middle, p.middle_forks) - middle0) / gb;
  return true;
}

// Echo latencies in microseconds, sorted.
bool RunEcho(const Env& e, const Path& p, int keystrokes,
             std::vector<double>* us, std::string* error) {
  Child c;
  if (!c.Start(Client(e, p, true, "stty raw -echo; echo RE''ADY; exec cat"),
               e.env, Child::Io::kPty, e.dir + "/echo.err")) {
    *error = "cannot start the client";
    return false;
  }
  std::string seen;
  if (!ReadUntil(c.fd(), "READY", kIoTimeoutMs, &seen)) {
    *error = "no READY from the remote cat: " + Tail(seen) +
             Tail(ReadText(e.dir + "/echo.err"));
    return false;
  }
  if (!EchoLoop(c.fd(), kWarmupKeys, keystrokes, us, error)) {
    *error += ": " + Tail(ReadText(e.dir + "/echo.err"));
    return false;
  }
  return true;
}

// Without PAM sshd refuses an account whose password is locked ("!"), as
// service accounts' often are; PAM's account check allows keys.
bool LockedAccount(const std::string& login) {
  struct spwd* sp = getspnam(login.c_str());
  return sp != nullptr && sp->sp_pwdp != nullptr && sp->sp_pwdp[0] == '!';
}

int Fail(const std::string& what, const std::string& detail) {
  std::fprintf(stderr, "proxy_bench: %s\n%s\n", what.c_str(), detail.c_str());
  return 1;
}

struct Figures {
  std::string ciphers;  // "INNER / JUMP"
  std::vector<double> mbps;
  std::vector<double> machine_s_per_gb;
  std::vector<double> middle_s_per_gb;
  std::vector<double> echo_us;  // sorted
};

std::string Ratio(double x, double base) {
  char b[32];
  std::snprintf(b, sizeof(b), "%.2fx", base > 0 ? x / base : 0.0);
  return b;
}

std::string Chomp(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

int Main(int argc, char** argv) {
  Options opt;
  if (!ParseFlags(argc, argv, &opt)) {
    std::fprintf(stderr,
                 "usage: proxy_bench [--bytes=256M] [--keystrokes=500] "
                 "[--reps=3] [--cipher=NAME] [--login=NAME] [--paths=ab]\n");
    return 2;
  }
  if (geteuid() != 0) {
    std::fprintf(stderr,
                 "proxy_bench: needs root: it starts /usr/sbin/sshd (the "
                 "agentless node and the baseline's jump host); run it as "
                 "root, e.g. with sudo\n");
    return 1;
  }
  if (access("/usr/sbin/sshd", X_OK) != 0 ||
      access("/usr/bin/ssh", X_OK) != 0) {
    std::fprintf(stderr,
                 "proxy_bench: needs /usr/sbin/sshd and /usr/bin/ssh "
                 "(scripts/deps installs them)\n");
    return 1;
  }
  InstallSignalHandlers();
  testing::TempDir tmp;
  Env e;
  e.dir = tmp.path();
  e.login = opt.login.empty() ? testing::CurrentLogin() : opt.login;
  e.cipher = opt.cipher;
  // Another login's sshd reads files here as that user.
  chmod(e.dir.c_str(), 0711);
  std::string home = e.dir + "/home";
  mkdir(home.c_str(), 0700);
  e.env = {"HOME=" + home, "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "TERM=xterm"};
  std::string error;

  // The payload, made once: base64 text, exactly --bytes long.
  std::string payload = e.dir + "/payload.b64";
  auto made =
      testing::Run("base64 -w 76 /dev/urandom 2>/dev/null | head -c " +
                   std::to_string(opt.bytes) + " > " + ShellQuote(payload) +
                   " && chmod 644 " + ShellQuote(payload));
  if (made.exit_code != 0) return Fail("cannot make the payload", made.out);

  // The cluster: auth and proxy roles in one mezrecd.
  testing::Mezrecd cluster(
      e.dir + "/data", {},
      {{"MEZITE_ROLES", "auth,proxy"}, {"MEZITE_PROXY_LISTEN", "127.0.0.1:0"}});
  if (!cluster.Start()) return Fail("mezrecd did not start", cluster.log());
  const std::string kLine = "mezrecd: proxy serving SSH on 127.0.0.1:";
  std::string log = cluster.log();
  size_t at = log.find(kLine);
  if (at == std::string::npos) return Fail("no proxy line in the log", log);
  auto proxy_port =
      static_cast<uint16_t>(std::atoi(log.c_str() + at + kLine.size()));
  testing::TestUser alice;
  if (!testing::AddUserAndLogin(cluster, e.dir, "alice", e.login, &alice,
                                &error)) {
    return Fail("cannot add alice", error);
  }

  // (a)'s agent node, in the cluster's recording mode.
  testing::MezdOptions mo;
  mo.node_name = "node-1";
  auto mezd = testing::StartRegisteredNode(&cluster, e.dir, mo, &error);
  if (mezd == nullptr) return Fail("mezd did not start", error);
  Track(mezd->pid());

  // The agentless node of (b) and (c), trusting the exported user CA.
  auto ca = testing::Mezctl(cluster, "ca export --type=user");
  if (ca.exit_code != 0) return Fail("mezctl ca export", ca.out);
  testing::WriteFileOrDie(e.dir + "/user_ca.pub", ca.out);
  bool pam = LockedAccount(e.login);
  Sshd node(e.dir, "node_sshd");
  if (!node.Start("TrustedUserCAKeys " + e.dir +
                      "/user_ca.pub\nAuthorizedKeysFile none\n",
                  pam, &error)) {
    return Fail("the agentless node's sshd", error);
  }
  auto add = testing::Mezctl(cluster,
                             "nodes add web-os --openssh --addr 127.0.0.1:" +
                                 std::to_string(node.port()) + " --host-key " +
                                 ShellQuote(node.host_pub()));
  if (add.exit_code != 0) return Fail("mezctl nodes add web-os", add.out);
  auto mode = testing::Mezctl(cluster, "config get session_recording");

  // (c)'s jump host: plain public-key authentication with a throwaway key.
  std::string jump_key = e.dir + "/jump_key";
  std::string jump_keys = e.dir + "/jump_authorized_keys";
  auto jk = testing::Run(
      "ssh-keygen -q -t ed25519 -N '' -f " + ShellQuote(jump_key) +
      " 2>&1 && cp " + ShellQuote(jump_key + ".pub") + " " +
      ShellQuote(jump_keys) + " && chmod 644 " + ShellQuote(jump_keys));
  if (jk.exit_code != 0) return Fail("ssh-keygen", jk.out);
  Sshd jump(e.dir, "jump_sshd");
  if (!jump.Start(
          "AuthorizedKeysFile " + jump_keys + "\nAllowTcpForwarding yes\n", pam,
          &error)) {
    return Fail("the jump host's sshd", error);
  }

  // Valid 10 minutes: the default run takes two or three.
  e.user_key = e.dir + "/alice_key";
  if (!Certify(cluster, alice, e.login, "node-1", e.user_key, &error)) {
    return Fail("cannot get alice's certificate", error);
  }
  std::string os_key = e.dir + "/alice_key_web_os";
  if (!Certify(cluster, alice, e.login, "web-os", os_key, &error)) {
    return Fail("cannot get alice's certificate for web-os", error);
  }
  std::vector<Path> paths = {
      {"(a)", "ssh -> proxy -> mezd (agent)", "node-1", 22, e.user_key, true,
       "alice", proxy_port, cluster.pid(), false, ""},
      {"(b)", "ssh -> proxy -> sshd (agentless)", "web-os", 22, os_key, true,
       "alice", proxy_port, cluster.pid(), false, os_key},
      {"(c)", "ssh -J sshd -> sshd (stock)", "127.0.0.1", node.port(), jump_key,
       false, e.login, jump.port(), jump.server_pid(), true, ""},
  };
  for (auto it = paths.begin(); it + 1 != paths.end();) {
    it = opt.paths.find(it->label[1]) == std::string::npos ? paths.erase(it)
                                                           : it + 1;
  }

  std::printf(
      "# proxy_bench: %ld CPUs (%s); build %s; client %s; all on 127.0.0.1\n",
      sysconf(_SC_NPROCESSORS_ONLN), CpuModel().c_str(), MEZ_BUILD_TYPE,
      Chomp(testing::Run("ssh -V 2>&1").out).c_str());
  std::printf(
      "# remote login %s%s; session_recording: %s; load average (1 min) at "
      "start %s\n",
      e.login.c_str(), pam ? " (locked: sshd with UsePAM yes)" : "",
      mode.exit_code == 0 ? Chomp(mode.out).c_str() : "?", LoadAvg().c_str());
  std::fflush(stdout);

  std::vector<Figures> figs(paths.size());
  auto fail = [&](size_t i, const std::string& step) {
    return Fail(paths[i].what + ": " + step,
                error + "\n--- mezrecd log ---\n" + Tail(cluster.log()) +
                    "\n--- mezd log ---\n" + Tail(mezd->log()));
  };
  for (size_t i = 0; i < paths.size(); ++i) {
    figs[i].ciphers = ProbeCiphers(e, paths[i], &error);
    if (figs[i].ciphers.empty()) return fail(i, "probe");
  }
  for (int rep = 0; rep < opt.reps; ++rep) {
    for (size_t i = 0; i < paths.size(); ++i) {
      Throughput t;
      if (!RunThroughput(e, paths[i], payload, opt.bytes, &t, &error)) {
        return fail(i, "throughput");
      }
      figs[i].mbps.push_back(t.mbps);
      figs[i].machine_s_per_gb.push_back(t.machine_s_per_gb);
      figs[i].middle_s_per_gb.push_back(t.middle_s_per_gb);
    }
  }
  for (size_t i = 0; i < paths.size(); ++i) {
    if (!RunEcho(e, paths[i], opt.keystrokes, &figs[i].echo_us, &error)) {
      return fail(i, "echo");
    }
  }

  // ---- report ----
  std::printf(
      "\n# throughput: `cat` of %lld bytes of base64 text, exec without a "
      "PTY; MB = 1e6 bytes, first byte to EOF, median of %d runs "
      "(interleaved)\n"
      "# echo: 1 byte through ssh -t to `stty raw -echo; exec cat`, %d "
      "keystrokes after %d warm-up; microseconds\n"
      "# within 10%%: MB/s >= 0.9x (c), echo p50 and p99 <= 1.1x (c)\n\n",
      static_cast<long long>(opt.bytes), opt.reps, opt.keystrokes, kWarmupKeys);
  std::printf("%-4s %-33s %-38s %7s %6s %7s %6s %7s %6s  %s\n", "", "path",
              "cipher: inner / jump hop", "MB/s", "vs(c)", "p50 us", "vs(c)",
              "p99 us", "vs(c)", "within 10%");
  const Figures& base = figs.back();
  double base_mbps = Median(base.mbps);
  double base50 = Quantile(base.echo_us, 0.5);
  double base99 = Quantile(base.echo_us, 0.99);
  for (size_t i = 0; i < paths.size(); ++i) {
    const Figures& f = figs[i];
    double mbps = Median(f.mbps);
    double p50 = Quantile(f.echo_us, 0.5), p99 = Quantile(f.echo_us, 0.99);
    std::string verdict = "(baseline)";
    if (i + 1 < paths.size()) {
      std::string misses;
      if (mbps < 0.9 * base_mbps) misses += " MB/s";
      if (p50 > 1.1 * base50) misses += " p50";
      if (p99 > 1.1 * base99) misses += " p99";
      verdict = misses.empty() ? "MET" : "NOT MET:" + misses;
    }
    std::printf("%-4s %-33s %-38s %7.1f %6s %7.0f %6s %7.0f %6s  %s\n",
                paths[i].label.c_str(), paths[i].what.c_str(),
                f.ciphers.c_str(), mbps, Ratio(mbps, base_mbps).c_str(), p50,
                Ratio(p50, base50).c_str(), p99, Ratio(p99, base99).c_str(),
                verdict.c_str());
  }
  std::printf("\n# MB/s of each run:");
  for (size_t i = 0; i < paths.size(); ++i) {
    std::printf(" %s", paths[i].label.c_str());
    for (double m : figs[i].mbps) std::printf(" %.1f", m);
    std::printf(i + 1 < paths.size() ? ";" : "\n");
  }
  // On a machine the runs saturate, MB/s follows the CPU a byte costs: the
  // middle hop's share says how much of a gap it alone explains.
  std::printf(
      "\n# CPU seconds per GB moved, throughput runs (median; set-up "
      "included): the whole machine (every process: client, hops, node, "
      "cat, this benchmark), and the middle hop alone (mezrecd: proxy and "
      "recording ingest; for (c) the jump host's sshd)\n");
  std::printf("%-4s %-33s %13s %6s %13s %6s\n", "", "path", "machine s/GB",
              "vs(c)", "middle s/GB", "vs(c)");
  double base_machine = Median(base.machine_s_per_gb);
  double base_middle = Median(base.middle_s_per_gb);
  for (size_t i = 0; i < paths.size(); ++i) {
    double machine = Median(figs[i].machine_s_per_gb);
    double middle = Median(figs[i].middle_s_per_gb);
    std::printf("%-4s %-33s %13.2f %6s %13.2f %6s\n", paths[i].label.c_str(),
                paths[i].what.c_str(), machine,
                Ratio(machine, base_machine).c_str(), middle,
                Ratio(middle, base_middle).c_str());
  }
  // Every connection above was a session the node (a) or the proxy (b)
  // recorded: the probe, --reps throughputs and the echo.
  std::map<std::string, int> starts;
  auto audit =
      testing::Mezctl(cluster, "audit ls --type=session.start --format=json");
  auto events = nlohmann::json::parse(audit.out, nullptr, false);
  if (events.is_array()) {
    for (const auto& ev : events) {
      if (ev.is_object()) ++starts[ev.value("node", "")];
    }
  }
  auto expected = [&](char path) {
    return opt.paths.find(path) == std::string::npos ? 0 : opt.reps + 2;
  };
  std::printf(
      "# session.start audited: node-1 %d (expected %d), web-os %d "
      "(expected %d)\n",
      starts["node-1"], expected('a'), starts["web-os"], expected('b'));
  std::printf("# load average (1 min) at end %s\n", LoadAvg().c_str());
  std::fflush(stdout);

  // Orderly shutdown; the destructors kill whatever is left.
  jump.Stop();
  node.Stop();
  pid_t mezd_pid = mezd->pid();
  int rc = mezd->Stop();
  Untrack(mezd_pid);
  if (rc != 0) std::fprintf(stderr, "proxy_bench: mezd exited %d\n", rc);
  cluster.Stop();
  return 0;
}

}  // namespace
}  // namespace mez::bench

int main(int argc, char** argv) { return mez::bench::Main(argc, argv); }
