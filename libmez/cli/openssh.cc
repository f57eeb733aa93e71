#include "libmez/cli/openssh.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstring>

#include "libmez/util/file.h"

namespace mez::cli {
namespace {

// The ssh child, for the signal handlers below.
volatile sig_atomic_t g_ssh_child = 0;

// A SIGTERM or SIGHUP that reaches msh goes on to ssh, so that msh stays to
// remove the key after ssh exits.
void ForwardSignal(int sig) {
  pid_t child = g_ssh_child;
  if (child > 0) kill(child, sig);
}

// Runs `argv` as a child and waits for it. Returns its exit code (128 + N
// when killed by signal N), or an error when it cannot be started.
Result<int> RunChild(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  // The child reports a failed exec through this pipe (closed on exec).
  int pipefd[2];
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    return Status(Code::kInternal,
                  std::string("pipe: ") + std::strerror(errno));
  }
  std::fflush(stdout);
  std::fflush(stderr);
  // As system(3): ^C and ^\ are for ssh (and the remote side), not msh.
  struct sigaction ign = {}, fwd = {}, old_int, old_quit, old_term, old_hup;
  ign.sa_handler = SIG_IGN;
  fwd.sa_handler = ForwardSignal;
  sigaction(SIGINT, &ign, &old_int);
  sigaction(SIGQUIT, &ign, &old_quit);
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(pipefd[0]);
    close(pipefd[1]);
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGQUIT, &old_quit, nullptr);
    return Status(Code::kInternal, std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    close(pipefd[0]);
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGQUIT, &old_quit, nullptr);
    execvp(argv[0], argv.data());
    int err = errno;
    ssize_t n = write(pipefd[1], &err, sizeof(err));
    (void)n;
    _exit(127);
  }
  g_ssh_child = pid;
  sigaction(SIGTERM, &fwd, &old_term);
  sigaction(SIGHUP, &fwd, &old_hup);
  close(pipefd[1]);
  int exec_errno = 0;
  ssize_t n;
  do {
    n = read(pipefd[0], &exec_errno, sizeof(exec_errno));
  } while (n < 0 && errno == EINTR);
  close(pipefd[0]);
  int status = 0;
  pid_t w;
  do {
    w = waitpid(pid, &status, 0);
  } while (w < 0 && errno == EINTR);
  g_ssh_child = 0;
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGQUIT, &old_quit, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGHUP, &old_hup, nullptr);
  if (n == static_cast<ssize_t>(sizeof(exec_errno))) {
    return FailedPrecondition(std::string("cannot run the OpenSSH client '") +
                              args[0] + "': " + std::strerror(exec_errno) +
                              " (install openssh-client)");
  }
  if (w < 0) {
    return Status(Code::kInternal,
                  std::string("waitpid: ") + std::strerror(errno));
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

bool AllOf(const std::string& s, const char* extra) {
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) &&
        std::strchr(extra, c) == nullptr) {
      return false;
    }
  }
  return !s.empty();
}

// One word for /bin/sh (ProxyCommand is run by the user's shell).
std::string ShellWord(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

Result<std::string> KnownHostsLine(const std::string& node,
                                   const std::string& host,
                                   const std::string& port,
                                   const std::string& key) {
  size_t sp = key.find(' ');
  std::string type = key.substr(0, sp);
  std::string blob;
  if (sp != std::string::npos) {
    blob = key.substr(sp + 1);
    blob = blob.substr(0, blob.find(' '));
  }
  if (!AllOf(type, "@.-") || !AllOf(blob, "+/=")) {
    return FailedPrecondition("the host key on record for node " + node +
                              " is malformed; ask an admin to re-register "
                              "the node");
  }
  if (!AllOf(host, ".:-_%")) {
    return FailedPrecondition("node " + node + " has an unusable address '" +
                              host + "'");
  }
  std::string pattern = port == "22" ? host : "[" + host + "]:" + port;
  return pattern + " " + type + " " + blob + "\n";
}

void SplitAddr(const std::string& addr, std::string* host, std::string* port) {
  *host = addr;
  *port = "22";
  if (!host->empty() && host->front() == '[') {
    size_t close = host->find(']');
    if (close != std::string::npos) {
      if (close + 1 < host->size() && (*host)[close + 1] == ':') {
        *port = host->substr(close + 2);
      }
      *host = host->substr(1, close - 1);
    }
  } else if (size_t colon = host->find(':');
             colon != std::string::npos && host->rfind(':') == colon) {
    *port = host->substr(colon + 1);
    *host = host->substr(0, colon);
  }
}

std::vector<std::string> OpenSshArgv(const OpenSshLaunch& launch,
                                     const std::string& key_dir) {
  std::string key_path = key_dir + "/id_ed25519";
  std::string known_hosts = key_dir + "/known_hosts";
  // LogLevel INFO (OpenSSH's default), not ERROR: it shows why a node
  // refused the login (mezd's userauth banner).
  std::vector<std::string> args = {"ssh",
                                   "-i",
                                   key_path,
                                   "-o",
                                   "CertificateFile=" + key_path + "-cert.pub",
                                   "-o",
                                   "IdentitiesOnly=yes",
                                   "-o",
                                   "StrictHostKeyChecking=yes",
                                   "-o",
                                   "UserKnownHostsFile=" + known_hosts,
                                   "-o",
                                   "GlobalKnownHostsFile=/dev/null",
                                   "-o",
                                   "UpdateHostKeys=no",
                                   "-o",
                                   "LogLevel=INFO"};
  if (!launch.local_forwards.empty()) {
    // Loopback unless the spec names an address, whatever ~/.ssh/config
    // says; and a port that cannot be bound is an error, not a warning.
    for (const char* opt : {"GatewayPorts=no", "ExitOnForwardFailure=yes"}) {
      args.push_back("-o");
      args.push_back(opt);
    }
    for (const auto& spec : launch.local_forwards) {
      args.push_back("-L");
      args.push_back(spec);
    }
  }
  if (launch.via_proxy) {
    // What -J would run, with this key and certificate on the first hop
    // too (-J takes no identity options).
    std::string jump =
        "ssh -F /dev/null -i " + ShellWord(key_path) +
        " -o CertificateFile=" + ShellWord(key_path + "-cert.pub") +
        " -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes"
        " -o UserKnownHostsFile=" +
        ShellWord(known_hosts) +
        " -o GlobalKnownHostsFile=/dev/null -o LogLevel=ERROR -p " +
        ShellWord(launch.proxy_port) + " -W %h:%p " +
        ShellWord(launch.login + "@" + launch.proxy_host);
    args.push_back("-o");
    args.push_back("ProxyCommand=" + jump);
  }
  if (launch.no_command) args.push_back("-N");
  if (launch.force_tty) args.push_back("-t");
  if (launch.no_tty) args.push_back("-T");
  args.push_back("-p");
  args.push_back(launch.port);
  // "--" before the destination: after it, ssh would send "--" as part of
  // the remote command (a real sshd's shell then refuses it).
  args.push_back("--");
  args.push_back(launch.login + "@" + launch.host);
  // CLI11 keeps the "--" that ends msh's own options; it is not part of
  // the command.
  const auto& command = launch.command;
  size_t first = !command.empty() && command.front() == "--" ? 1 : 0;
  for (size_t i = first; i < command.size(); ++i) {
    args.push_back(command[i]);
  }
  return args;
}

Result<int> RunOpenSsh(const OpenSshLaunch& launch, const std::string& key_dir,
                       const std::string& private_key,
                       const std::string& certificate_line,
                       const std::string& known_hosts) {
  std::string key_path = key_dir + "/id_ed25519";
  MEZ_RETURN_IF_ERROR(AtomicWriteFile(key_path, private_key, 0600));
  MEZ_RETURN_IF_ERROR(
      AtomicWriteFile(key_path + "-cert.pub", certificate_line + "\n", 0600));
  MEZ_RETURN_IF_ERROR(
      AtomicWriteFile(key_dir + "/known_hosts", known_hosts, 0600));
  return RunChild(OpenSshArgv(launch, key_dir));
}

}  // namespace mez::cli
