// ssh_bench: what recording costs an SSH user, side by side in one run.
// Prints figures; asserts nothing (exits non-zero only when a step fails).
//
//   build/bench/ssh_bench [--bytes=256M] [--keystrokes=10000] [--sessions=20]
//       [--reps=3] [--ciphers=auto|default|NAME,...] [--login=NAME]
//
// Targets, all on 127.0.0.1 with the same OpenSSH client and options:
//   (a) msh ssh -> mezd, MEZITE_RECORDING_MODE=node-sync, mezrecd with
//       MEZITE_RECORDING_GZIP=true;
//   (b) msh ssh -> mezd, MEZITE_RECORDING_MODE=off;
//   (c) ssh -> a stock /usr/sbin/sshd started here (needs root; skipped
//       otherwise).
// Goals (issue): throughput of (a) >= 0.9x that of (c); echo latency of (a)
// at p99 less than 1 ms above (c); mezd RSS < 8 MiB per idle session.
//
// --login: the remote account (default: the user running the bench). Its
// shell's rc files run at every connection: pick one with a plain rc (on a
// machine where root's .bashrc runs `pyenv init`, a connection takes
// seconds, and up to a minute while another shell holds pyenv's lock).
//
// Every client goes through a wrapper `ssh` first on PATH (msh execs "ssh")
// that adds `-F /dev/null` and the pass's cipher option, so the three
// differ only in the key (a certificate for mezd) and the server. The
// negotiated cipher is read from `ssh -v` in a separate probe connection;
// with --ciphers=auto a second pass forces aes128-gcm@openssh.com when the
// servers negotiate different ones.
//
// throughput: `head -c BYTES /dev/zero` as an exec without a PTY, stdout a
//   pipe the bench drains. "MB/s" counts from the first byte to EOF (the
//   connection, and msh's certificate request, are not in it); "wall" is
//   spawn to exit. Repeated --reps times, interleaved across targets.
// echo: the client under a PTY made here (raw), `ssh -t` running
//   `stty raw -echo; exec cat` remotely: one byte written to the client,
//   the time until it comes back; 200 warm-up bytes, then --keystrokes.
// RSS: VmRSS of the server before and after --sessions idle interactive
//   shells are up (each has run a command); (after - before) / N. mezd
//   serves every connection on a thread of one process; for sshd the RSS
//   of its per-connection processes is summed (shared pages counted in
//   each), for reference.
#include <shadow.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_util.h"
#include "tests/mezd_harness.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

#ifndef MSH_PATH
#error "MSH_PATH must name the msh binary"
#endif
#ifndef MEZ_BUILD_TYPE
#define MEZ_BUILD_TYPE "unknown"
#endif

extern char** environ;

namespace mez::bench {
namespace {

using testing::ShellQuote;

constexpr const char* kCommonCipher = "aes128-gcm@openssh.com";
constexpr int kWarmupKeys = 200;
constexpr int kIoTimeoutMs = 20000;

struct Options {
  int64_t bytes = 256 << 20;
  int keystrokes = 10000;
  int sessions = 20;
  int reps = 3;
  // "" is the client's default cipher list.
  std::vector<std::string> ciphers;
  bool auto_ciphers = true;
  std::string login;  // "" = the user running the bench
};

bool ParseFlags(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    size_t eq = arg.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view name = arg.substr(0, eq), value = arg.substr(eq + 1);
    int64_t n = 0;
    if (name == "--login") {
      o->login = value;
      if (o->login.empty()) return false;
      continue;
    }
    if (name == "--ciphers") {
      o->ciphers.clear();
      o->auto_ciphers = value == "auto";
      while (!o->auto_ciphers && !value.empty()) {
        size_t comma = std::min(value.find(','), value.size());
        std::string c(value.substr(0, comma));
        o->ciphers.push_back(c == "default" ? "" : c);
        value.remove_prefix(std::min(comma + 1, value.size()));
      }
      if (!o->auto_ciphers && o->ciphers.empty()) return false;
      continue;
    }
    if (!ParseSize(value, &n)) return false;
    if (name == "--bytes") {
      o->bytes = n;
    } else if (name == "--keystrokes") {
      o->keystrokes = static_cast<int>(n);
    } else if (name == "--sessions") {
      o->sessions = static_cast<int>(n);
    } else if (name == "--reps") {
      o->reps = static_cast<int>(n);
    } else {
      return false;
    }
  }
  return true;
}

// ---- /proc ----

int64_t StatusKiB(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(field + ":")) {
      return std::strtoll(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return -1;
}

struct ProcStat {
  pid_t ppid = 0;
  std::string comm;
  double cpu_s = 0;  // utime + stime + cutime + cstime
};

std::optional<ProcStat> ReadStat(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  size_t open = stat.find('('), close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos) {
    return std::nullopt;
  }
  ProcStat s;
  s.comm = stat.substr(open + 1, close - open - 1);
  std::istringstream fields(stat.substr(close + 2));
  std::string f;
  double ticks = 0;
  for (int i = 3; i <= 17 && fields >> f; ++i) {
    if (i == 4) s.ppid = std::atoi(f.c_str());
    if (i >= 14) ticks += std::strtod(f.c_str(), nullptr);
  }
  s.cpu_s = ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
  return s;
}

// `root` and its descendants whose command name starts with `comm`.
std::vector<pid_t> Tree(pid_t root, const std::string& comm) {
  std::map<pid_t, ProcStat> all;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = std::atoi(name.c_str());
    if (auto s = ReadStat(pid)) all[pid] = *s;
  }
  std::vector<pid_t> out = {root};
  for (size_t i = 0; i < out.size(); ++i) {
    for (const auto& [pid, s] : all) {
      if (s.ppid == out[i] && s.comm.starts_with(comm)) out.push_back(pid);
    }
  }
  return out;
}

// mezrecd's pid, found by its data dir (the harness does not expose it).
pid_t FindMezrecd(const std::string& data_dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(e.path() / "cmdline", std::ios::binary);
    std::string arg, argv0;
    bool match = false;
    while (std::getline(in, arg, '\0')) {
      if (argv0.empty()) argv0 = arg;
      match |= arg == data_dir;
    }
    if (match && argv0.ends_with("mezrecd")) return std::atoi(name.c_str());
  }
  return -1;
}

// ---- children ----

// ---- stock sshd ----

class StockSshd {
 public:
  StockSshd(std::string dir, std::string login)
      : dir_(std::move(dir)), login_(std::move(login)) {}
  ~StockSshd() { Stop(); }
  StockSshd(const StockSshd&) = delete;
  StockSshd& operator=(const StockSshd&) = delete;

  // Generates a host key and a user key, writes the config, starts sshd -D
  // and waits for "Server listening". False with *error set on failure.
  bool Start(std::string* error) {
    mkdir("/run/sshd", 0755);
    mkdir(dir_.c_str(), 0711);
    auto keys = testing::Run(
        "ssh-keygen -q -t ed25519 -N '' -f " + ShellQuote(dir_ + "/host_key") +
        " && ssh-keygen -q -t ed25519 -N '' -f " + ShellQuote(user_key()) +
        " && cp " + ShellQuote(user_key() + ".pub") + " " +
        ShellQuote(dir_ + "/authorized_keys") + " && chmod 644 " +
        ShellQuote(dir_ + "/authorized_keys") + " 2>&1");
    if (keys.exit_code != 0) {
      *error = "ssh-keygen: " + keys.out;
      return false;
    }
    port_ = testing::FreeLoopbackPort();
    std::string cfg = dir_ + "/sshd_config";
    std::string config;
    config += "ListenAddress 127.0.0.1\nPort " + std::to_string(port_) + "\n";
    config += "HostKey " + dir_ + "/host_key\n";
    config += "AuthorizedKeysFile " + dir_ + "/authorized_keys\n";
    config += std::string("UsePAM ") + (uses_pam() ? "yes" : "no") + "\n";
    config += "StrictModes no\nPidFile " + dir_ + "/sshd.pid\n";
    config += "PasswordAuthentication no\nKbdInteractiveAuthentication no\n";
    config += "PermitRootLogin prohibit-password\nPrintMotd no\n";
    // --sessions clients connect at once; the default (10:30:100) drops
    // some of them before authentication.
    config += "MaxStartups 1000\n";
    testing::WriteFileOrDie(cfg, config);
    log_ = dir_ + "/sshd.log";
    std::vector<std::string> argv = {
        "/usr/sbin/sshd", "-D", "-f", cfg, "-E", log_};
    std::vector<std::string> env = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin"};
    if (!proc_.Start(argv, env, Child::Io::kPipe, dir_ + "/sshd.stderr")) {
      *error = "cannot start /usr/sbin/sshd";
      return false;
    }
    for (int i = 0; i < 500; ++i) {
      if (ReadText(log_).find("Server listening") != std::string::npos) {
        return true;
      }
      if (waitpid(proc_.pid(), nullptr, WNOHANG) == proc_.pid()) break;
      SleepMs(20);
    }
    *error = "sshd did not start: " + ReadText(log_) +
             ReadText(dir_ + "/sshd.stderr");
    return false;
  }

  void Stop() {
    if (proc_.pid() > 0) kill(proc_.pid(), SIGTERM);
    proc_.Reap(5000);
  }

  // Without PAM sshd refuses an account whose password is locked ("!"),
  // as service accounts' often are; PAM's account check allows keys.
  bool uses_pam() const {
    struct spwd* sp = getspnam(login_.c_str());
    return sp != nullptr && sp->sp_pwdp != nullptr && sp->sp_pwdp[0] == '!';
  }
  pid_t pid() const { return proc_.pid(); }
  uint16_t port() const { return port_; }
  std::string user_key() const { return dir_ + "/user_key"; }
  std::string log() const { return ReadText(log_); }

 private:
  std::string dir_;
  std::string login_;
  std::string log_;
  uint16_t port_ = 0;
  Child proc_;
};

// ---- targets ----

struct Target {
  std::string label;  // "(a)"
  std::string what;
  std::string node;   // msh's node name; "" for the stock sshd
  pid_t server = -1;  // mezd, or the sshd listener
  uint16_t port = 0;  // the stock sshd's
  std::string key;    // the stock client's key
};

struct Env {
  std::string dir;
  std::string wrapper;     // our `ssh`
  std::string alice_home;  // msh's HOME
  std::string login;       // the remote login
  std::vector<std::string> base_env;
};

// The client's argv and environment; `ssh_opts` go to the wrapper.
std::pair<std::vector<std::string>, std::vector<std::string>> Client(
    const Env& e, const Target& t, const std::string& ssh_opts, bool tty,
    const std::string& command) {
  std::vector<std::string> argv;
  if (!t.node.empty()) {
    argv = {MSH_PATH, "ssh"};
    if (tty) argv.push_back("-t");
    argv.push_back(t.node);
  } else {
    // What msh passes to ssh, with a plain key instead of a certificate.
    argv = {e.wrapper,
            "-i",
            t.key,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-p",
            std::to_string(t.port),
            e.login + "@127.0.0.1"};
    if (tty) argv.push_back("-t");
    if (!command.empty()) argv.push_back("--");
  }
  if (!command.empty()) argv.push_back(command);
  std::vector<std::string> env = e.base_env;
  env.push_back("SSH_BENCH_OPTS=" + ssh_opts);
  return {argv, env};
}

std::string CipherOpts(const std::string& cipher) {
  return cipher.empty() ? "" : "-c " + cipher;
}

// The cipher the client negotiated ("kex: server->client cipher: ...").
std::string ProbeCipher(const Env& e, const Target& t,
                        const std::string& cipher, std::string* error) {
  std::string log = e.dir + "/probe.log";
  std::remove(log.c_str());
  auto [argv, env] =
      Client(e, t, "-v -E " + log + " " + CipherOpts(cipher), false, "true");
  Child c;
  if (!c.Start(argv, env, Child::Io::kPipe, e.dir + "/probe.err")) {
    *error = "cannot start the client";
    return "";
  }
  std::string out;
  ReadUntil(c.fd(), "\x01", kIoTimeoutMs, &out);  // until EOF
  int rc = c.Reap(kIoTimeoutMs);
  std::string text = ReadText(log);
  const std::string key = "kex: server->client cipher: ";
  size_t at = text.find(key);
  if (rc != 0 || at == std::string::npos) {
    *error = "probe exited " + std::to_string(rc) + ": " +
             Tail(ReadText(e.dir + "/probe.err") + text);
    return "";
  }
  at += key.size();
  std::string line = text.substr(at, text.find('\n', at) - at);
  // "chacha20-poly1305@openssh.com MAC: <implicit> compression: none"
  std::string name = line.substr(0, line.find(' '));
  size_t mac = line.find("MAC: ");
  if (mac != std::string::npos) {
    std::string m = line.substr(mac + 5, line.find(' ', mac + 5) - mac - 5);
    if (m != "<implicit>") name += "+" + m;
  }
  return name;
}

struct Throughput {
  std::vector<double> mbps, wall_s;
  double server_cpu_s_per_gb = 0, client_cpu_s_per_gb = 0;
};

bool RunThroughput(const Env& e, const Target& t, const std::string& cipher,
                   int64_t bytes, Throughput* out, std::string* error) {
  auto [argv, env] = Client(e, t, CipherOpts(cipher), false,
                            "head -c " + std::to_string(bytes) + " /dev/zero");
  auto cpu0 = ReadStat(t.server);
  Child c;
  int64_t t0 = NowNs();
  if (!c.Start(argv, env, Child::Io::kPipe, e.dir + "/tput.err")) {
    *error = "cannot start the client";
    return false;
  }
  std::vector<char> buf(1 << 20);
  int64_t got = 0, first = 0;
  for (;;) {
    ssize_t n = read(c.fd(), buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (got == 0) first = NowNs();
    got += n;
  }
  int64_t last = NowNs();
  struct rusage ru = {};
  int rc = c.Reap(60000, &ru);
  int64_t t1 = NowNs();
  if (rc != 0 || got != bytes) {
    *error = "exit " + std::to_string(rc) + " after " + std::to_string(got) +
             " of " + std::to_string(bytes) +
             " bytes: " + Tail(ReadText(e.dir + "/tput.err"));
    return false;
  }
  // The session's processes count in the server's CPU figures once it has
  // reaped them (sshd: the per-connection processes; mezd: shell and head).
  for (int64_t until = NowNs() + 5'000'000'000;
       Tree(t.server, "").size() > 1 && NowNs() < until;) {
    SleepMs(20);
  }
  auto cpu1 = ReadStat(t.server);
  double gb = static_cast<double>(bytes) / 1e9;
  out->mbps.push_back(static_cast<double>(got) / 1e6 /
                      (static_cast<double>(last - first) / 1e9));
  out->wall_s.push_back(static_cast<double>(t1 - t0) / 1e9);
  if (cpu0 && cpu1)
    out->server_cpu_s_per_gb += (cpu1->cpu_s - cpu0->cpu_s) / gb;
  auto secs = [](const struct timeval& tv) {
    return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6;
  };
  out->client_cpu_s_per_gb += (secs(ru.ru_utime) + secs(ru.ru_stime)) / gb;
  return true;
}

struct Echo {
  std::vector<double> us;  // sorted
  double Pct(double q) const { return Quantile(us, q); }
};

bool RunEcho(const Env& e, const Target& t, const std::string& cipher,
             int keystrokes, Echo* out, std::string* error) {
  auto [argv, env] = Client(e, t, CipherOpts(cipher), true,
                            "stty raw -echo; echo RE''ADY; exec cat");
  Child c;
  if (!c.Start(argv, env, Child::Io::kPty, e.dir + "/echo.err")) {
    *error = "cannot start the client";
    return false;
  }
  std::string seen;
  if (!ReadUntil(c.fd(), "READY", kIoTimeoutMs, &seen)) {
    *error = "no READY from the remote cat: " + Tail(seen) +
             Tail(ReadText(e.dir + "/echo.err"));
    return false;
  }
  if (!EchoLoop(c.fd(), kWarmupKeys, keystrokes, &out->us, error)) {
    *error += ": " + Tail(ReadText(e.dir + "/echo.err"));
    return false;
  }
  return true;
}

// The server's memory in KiB: mezd's VmRSS, or the sum over the sshd
// listener and its per-connection processes.
int64_t ServerKiB(const Target& t) {
  if (!t.node.empty()) return StatusKiB(t.server, "VmRSS");
  int64_t sum = 0;
  for (pid_t p : Tree(t.server, "sshd"))
    sum += std::max<int64_t>(0, StatusKiB(p, "VmRSS"));
  return sum;
}

// (after - before) / n in KiB, with n idle interactive shells up.
bool RunIdleSessions(const Env& e, const Target& t, int n, double* kib,
                     std::string* error) {
  int64_t before = ServerKiB(t);
  std::vector<std::unique_ptr<Child>> clients;
  for (int i = 0; i < n; ++i) {
    auto [argv, env] = Client(e, t, "", true, "");
    clients.push_back(std::make_unique<Child>());
    if (!clients.back()->Start(argv, env, Child::Io::kPty,
                               e.dir + "/idle" + std::to_string(i) + ".err")) {
      *error = "cannot start client " + std::to_string(i);
      return false;
    }
  }
  for (int i = 0; i < n; ++i) {
    int fd = clients[static_cast<size_t>(i)]->fd();
    std::string seen;
    // The prompt first, then a command: "UP42" only appears once it ran.
    bool ok = ReadSome(fd, kIoTimeoutMs, &seen);
    const std::string cmd = "echo UP$((6*7))\r";
    if (!ok ||
        write(fd, cmd.data(), cmd.size()) != static_cast<ssize_t>(cmd.size()) ||
        !ReadUntil(fd, "UP42", kIoTimeoutMs, &seen)) {
      *error = "session " + std::to_string(i) +
               " did not come up: " + Tail(seen) +
               Tail(ReadText(e.dir + "/idle" + std::to_string(i) + ".err"));
      return false;
    }
  }
  SleepMs(1000);
  int64_t after = ServerKiB(t);
  *kib = static_cast<double>(after - before) / n;
  for (auto& c : clients) {
    const std::string bye = "exit\r";
    if (write(c->fd(), bye.data(), bye.size()) < 0) continue;
  }
  for (auto& c : clients) c->Reap(5000);
  return true;
}

int Fail(const std::string& what, const std::string& detail) {
  std::fprintf(stderr, "ssh_bench: %s\n%s\n", what.c_str(), detail.c_str());
  return 1;
}

struct Pass {
  std::string cipher;  // "" = default list
  std::vector<std::string> negotiated;
  std::vector<Throughput> tput;
  std::vector<Echo> echo;
};

int Main(int argc, char** argv) {
  Options opt;
  if (!ParseFlags(argc, argv, &opt)) {
    std::fprintf(stderr,
                 "usage: ssh_bench [--bytes=256M] [--keystrokes=10000] "
                 "[--sessions=20] [--reps=3] "
                 "[--ciphers=auto|default|NAME,...] [--login=NAME]\n");
    return 2;
  }
  InstallSignalHandlers();
  testing::TempDir tmp;
  Env e;
  e.dir = tmp.path();
  e.login = opt.login.empty() ? testing::CurrentLogin() : opt.login;
  // Another login's sshd reads authorized_keys as that user.
  chmod(e.dir.c_str(), 0711);

  // The `ssh` msh runs, and the one the stock client runs.
  std::string bin = e.dir + "/bin";
  mkdir(bin.c_str(), 0700);
  e.wrapper = bin + "/ssh";
  testing::WriteFileOrDie(
      e.wrapper,
      "#!/bin/sh\nexec /usr/bin/ssh -F /dev/null $SSH_BENCH_OPTS \"$@\"\n");
  chmod(e.wrapper.c_str(), 0755);

  testing::Mezrecd cluster(e.dir + "/data", {},
                           {{"MEZITE_RECORDING_GZIP", "true"}});
  if (!cluster.Start()) return Fail("mezrecd did not start", cluster.log());
  pid_t mezrecd_pid = FindMezrecd(e.dir + "/data");
  if (mezrecd_pid > 0) Track(mezrecd_pid);
  testing::TestUser alice;
  std::string error;
  if (!testing::AddUserAndLogin(cluster, e.dir, "alice", e.login, &alice,
                                &error)) {
    return Fail("cannot add alice", error);
  }
  e.alice_home = alice.home;
  const char* path = std::getenv("PATH");
  e.base_env = {"HOME=" + alice.home, "MEZ_IDENTITY=",
                "PATH=" + bin + ":" + (path ? path : "/usr/bin:/bin"),
                "LANG=C.UTF-8", "TERM=xterm"};

  struct Node {
    const char* name;
    const char* mode;
  };
  const Node kNodes[] = {
      {"node-sync", "node-sync"}, {"node-off", "off"}, {"node-spool", "node"}};
  std::vector<std::unique_ptr<testing::Mezd>> mezds;
  for (const Node& n : kNodes) {
    testing::MezdOptions o;
    o.node_name = n.name;
    o.env = {std::string("MEZITE_RECORDING_MODE=") + n.mode};
    auto m = testing::StartRegisteredNode(&cluster, e.dir, o, &error);
    if (m == nullptr)
      return Fail(std::string(n.name) + " did not start", error);
    Track(m->pid());
    mezds.push_back(std::move(m));
  }
  std::vector<Target> targets = {
      {"(a)", "msh->mezd node-sync, gzip", "node-sync", mezds[0]->pid(), 0, ""},
      {"(b)", "msh->mezd off", "node-off", mezds[1]->pid(), 0, ""},
  };
  Target spool = {
      "", "msh->mezd node (spool)", "node-spool", mezds[2]->pid(), 0, ""};
  std::unique_ptr<StockSshd> sshd;
  std::string sshd_note;
  if (geteuid() != 0) {
    sshd_note = "skipped: needs root";
  } else if (access("/usr/sbin/sshd", X_OK) != 0) {
    sshd_note = "skipped: no /usr/sbin/sshd";
  } else {
    sshd = std::make_unique<StockSshd>(e.dir + "/sshd", e.login);
    if (!sshd->Start(&error)) return Fail("stock sshd", error);
    Track(sshd->pid());
    if (sshd->uses_pam()) sshd_note = "with UsePAM yes (the account is locked)";
    targets.push_back({"(c)", "ssh->stock sshd", "", sshd->pid(), sshd->port(),
                       sshd->user_key()});
  }

  std::printf(
      "# ssh_bench: %ld CPUs (%s); build %s; client %s; all on 127.0.0.1\n",
      sysconf(_SC_NPROCESSORS_ONLN), CpuModel().c_str(), MEZ_BUILD_TYPE,
      [] {
        auto r = testing::Run("ssh -V 2>&1");
        std::string s = r.out;
        while (!s.empty() && s.back() == '\n') s.pop_back();
        return s;
      }()
          .c_str());
  std::printf("# remote login %s; load average (1 min) at start %s\n",
              e.login.c_str(), LoadAvg().c_str());
  for (const Target& t : targets) {
    std::printf("#   %s %s\n", t.label.c_str(), t.what.c_str());
  }
  if (!sshd_note.empty())
    std::printf("#   (c) stock sshd %s\n", sshd_note.c_str());
  std::fflush(stdout);

  // Passes: the default cipher list, and with --ciphers=auto a common
  // cipher too when the servers negotiate different ones.
  std::vector<Pass> passes;
  std::vector<std::string> ciphers =
      opt.auto_ciphers ? std::vector<std::string>{""} : opt.ciphers;
  for (size_t i = 0; i < ciphers.size(); ++i) {
    Pass p;
    p.cipher = ciphers[i];
    for (const Target& t : targets) {
      std::string c = ProbeCipher(e, t, p.cipher, &error);
      if (c.empty()) {
        if (sshd) error += "\n--- sshd log ---\n" + Tail(sshd->log());
        return Fail(t.label + " cipher probe failed", error);
      }
      p.negotiated.push_back(c);
    }
    bool differ = std::any_of(
        p.negotiated.begin(), p.negotiated.end(),
        [&](const std::string& c) { return c != p.negotiated.front(); });
    if (opt.auto_ciphers && i == 0 && differ) ciphers.push_back(kCommonCipher);
    passes.push_back(std::move(p));
  }
  // The probes above warmed every server up; the spool node too.
  {
    std::string c = ProbeCipher(e, spool, "", &error);
    if (c.empty()) return Fail("node-spool probe failed", error);
  }

  // Memory first, on servers that have served only the probes.
  std::vector<Target> rss_targets = {targets[0], spool, targets[1]};
  if (targets.size() > 2) rss_targets.push_back(targets[2]);
  std::vector<double> rss_kib;
  for (const Target& t : rss_targets) {
    double kib = 0;
    if (!RunIdleSessions(e, t, opt.sessions, &kib, &error)) {
      for (auto& m : mezds)
        error += "\n--- " + m->node_name() + " log ---\n" + Tail(m->log());
      return Fail(t.what + ": idle sessions", error);
    }
    rss_kib.push_back(kib);
  }

  for (Pass& p : passes) {
    p.tput.resize(targets.size());
    for (int rep = 0; rep < opt.reps; ++rep) {
      for (size_t i = 0; i < targets.size(); ++i) {
        if (!RunThroughput(e, targets[i], p.cipher, opt.bytes, &p.tput[i],
                           &error)) {
          return Fail(targets[i].what + ": throughput", error);
        }
      }
    }
    p.echo.resize(targets.size());
    for (size_t i = 0; i < targets.size(); ++i) {
      if (!RunEcho(e, targets[i], p.cipher, opt.keystrokes, &p.echo[i],
                   &error)) {
        return Fail(targets[i].what + ": echo", error);
      }
    }
  }

  // ---- report ----
  bool have_c = targets.size() > 2;
  std::printf(
      "\n# throughput: head -c %lld /dev/zero, exec without PTY, %d runs "
      "each; MB = 1e6 bytes; MB/s from first byte to EOF; wall = spawn to "
      "exit (incl. connect and msh's certificate request).\n"
      "# srv/cli CPU s/GB: server process (+ its reaped children: the "
      "session's shell and head) / ssh client, mean over the runs.\n",
      static_cast<long long>(opt.bytes), opt.reps);
  for (const Pass& p : passes) {
    std::printf("\n## cipher option: %s\n", p.cipher.empty()
                                                ? "(client default list)"
                                                : ("-c " + p.cipher).c_str());
    std::printf("%-4s %-27s %-34s %8s %8s %7s %8s %8s %8s\n", "", "target",
                "negotiated", "best", "median", "wall s", "srv s/GB",
                "cli s/GB", "vs (c)");
    for (size_t i = 0; i < targets.size(); ++i) {
      const Throughput& tp = p.tput[i];
      std::string ratio = "-";
      if (have_c) {
        char b[32];
        std::snprintf(b, sizeof(b), "%.2fx",
                      Median(tp.mbps) / Median(p.tput[2].mbps));
        ratio = b;
      }
      std::printf("%-4s %-27s %-34s %8.1f %8.1f %7.2f %8.2f %8.2f %8s\n",
                  targets[i].label.c_str(), targets[i].what.c_str(),
                  p.negotiated[i].c_str(), Best(tp.mbps), Median(tp.mbps),
                  Median(tp.wall_s), tp.server_cpu_s_per_gb / opt.reps,
                  tp.client_cpu_s_per_gb / opt.reps, ratio.c_str());
    }
    if (have_c) {
      double r = Median(p.tput[0].mbps) / Median(p.tput[2].mbps);
      std::printf("goal (a) >= 0.9x (c), median MB/s: %.2fx  %s\n", r,
                  r >= 0.9 ? "MET" : "NOT MET");
    }
    std::printf(
        "\n# echo: 1 byte through ssh -t to `stty raw -echo; exec cat`, "
        "%d keystrokes after %d warm-up; microseconds\n",
        opt.keystrokes, kWarmupKeys);
    std::printf("%-4s %-27s %8s %8s %8s %8s %12s %12s\n", "", "target", "p50",
                "p90", "p99", "max", "added p50", "added p99");
    for (size_t i = 0; i < targets.size(); ++i) {
      const Echo& ec = p.echo[i];
      std::string a50 = "-", a99 = "-";
      if (have_c && i < 2) {
        char b[32];
        std::snprintf(b, sizeof(b), "%+.0f", ec.Pct(0.5) - p.echo[2].Pct(0.5));
        a50 = b;
        std::snprintf(b, sizeof(b), "%+.0f",
                      ec.Pct(0.99) - p.echo[2].Pct(0.99));
        a99 = b;
      }
      std::printf("%-4s %-27s %8.0f %8.0f %8.0f %8.0f %12s %12s\n",
                  targets[i].label.c_str(), targets[i].what.c_str(),
                  ec.Pct(0.5), ec.Pct(0.9), ec.Pct(0.99), ec.us.back(),
                  a50.c_str(), a99.c_str());
    }
    if (have_c) {
      double added = p.echo[0].Pct(0.99) - p.echo[2].Pct(0.99);
      std::printf("goal added echo p99 of (a) < 1000 us: %+.0f us  %s\n", added,
                  added < 1000 ? "MET" : "NOT MET");
    }
  }
  std::printf(
      "\n# memory per idle interactive session: %d shells up (each ran a "
      "command), (RSS after - before) / %d; KiB\n",
      opt.sessions, opt.sessions);
  std::printf("%-4s %-27s %10s\n", "", "server", "KiB/sess");
  for (size_t i = 0; i < rss_targets.size(); ++i) {
    const Target& t = rss_targets[i];
    std::printf("%-4s %-27s %10.0f%s\n", t.label.c_str(), t.what.c_str(),
                rss_kib[i],
                t.node.empty() ? "  (sum of sshd processes' RSS)" : "");
  }
  std::printf("goal mezd node-sync < 8192 KiB/session: %s\n",
              rss_kib[0] < 8192 ? "MET" : "NOT MET");
  std::printf("# load average (1 min) at end %s\n", LoadAvg().c_str());
  std::fflush(stdout);

  // Orderly shutdown; the destructors kill whatever is left.
  if (sshd) sshd->Stop();
  for (auto& m : mezds) {
    pid_t pid = m->pid();
    int rc = m->Stop();
    Untrack(pid);
    if (rc != 0) std::fprintf(stderr, "ssh_bench: mezd exited %d\n", rc);
  }
  cluster.Stop();
  Untrack(mezrecd_pid);
  return 0;
}

}  // namespace
}  // namespace mez::bench

int main(int argc, char** argv) { return mez::bench::Main(argc, argv); }
