#include "libmez/ssh/child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pty.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace mez::ssh {
namespace {

void SetNonBlockingCloexec(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
}

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// Everything the child needs, built before fork: after fork in a threaded
// process only async-signal-safe calls are allowed.
struct ExecArgs {
  std::vector<std::string> argv_storage;
  std::vector<char*> argv;
  std::vector<char*> envp;

  explicit ExecArgs(const ChildSpec& spec) {
    std::string base = spec.shell.substr(spec.shell.rfind('/') + 1);
    if (spec.command.empty()) {
      argv_storage = {"-" + base};  // a login shell, as sshd starts it
    } else {
      argv_storage = {base, "-c", spec.command};
    }
    for (std::string& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (const std::string& e : spec.env) {
      envp.push_back(const_cast<char*>(e.c_str()));
    }
    envp.push_back(nullptr);
  }
};

void WriteStderr(const char* s) {
  ssize_t ignored = write(STDERR_FILENO, s, strlen(s));
  (void)ignored;
}

[[noreturn]] void Fail(const char* what) {
  WriteStderr("mezd: cannot start the session: ");
  WriteStderr(what);
  WriteStderr(" failed\n");
  _exit(126);
}

// Becomes spec.uid, in sshd's order; never returns on a failed step.
void DropPrivileges(const ChildSpec& spec) {
  if (spec.pty) {
    // stdin is the pty slave: let the user own it, like sshd does.
    if (fchown(STDIN_FILENO, spec.uid, spec.tty_gid) != 0) Fail("chown pty");
    if (fchmod(STDIN_FILENO, 0620) != 0) Fail("chmod pty");
  }
  if (setgid(spec.gid) != 0) Fail("setgid");
  if (setgroups(spec.groups.size(), spec.groups.data()) != 0) {
    Fail("setgroups");
  }
  if (setuid(spec.uid) != 0) Fail("setuid");
  // Paranoia (as sshd): a dropped root must not be able to come back.
  if (spec.uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
    Fail("dropping root");
  }
}

// In the child: waits for the parent's go (one byte) on the gate's read
// end; EOF (the parent refused, or died) ends the child unrun.
void AwaitGate(int gate, int gate_write_end) {
  if (gate < 0) return;
  close(gate_write_end);  // Else the parent's close would not be an EOF.
  char go = 0;
  ssize_t n;
  do {
    n = read(gate, &go, 1);
  } while (n < 0 && errno == EINTR);
  close(gate);
  if (n != 1) {
    WriteStderr("mezd: cannot start the session: it could not be followed\n");
    _exit(126);
  }
}

[[noreturn]] void ExecChild(const ChildSpec& spec, ExecArgs& args, int gate,
                            int gate_write_end) {
  // Only async-signal-safe calls from here on.
  AwaitGate(gate, gate_write_end);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  signal(SIGCHLD, SIG_DFL);
  signal(SIGHUP, SIG_DFL);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  if (spec.change_user) DropPrivileges(spec);
  if (spec.home.empty() || chdir(spec.home.c_str()) != 0) {
    WriteStderr("Could not chdir to home directory ");
    WriteStderr(spec.home.c_str());
    WriteStderr(", using /\n");
    if (chdir("/") != 0) _exit(126);
  }
  execve(spec.shell.c_str(), args.argv.data(), args.envp.data());
  static const char kMsg[] = "mezd: cannot execute the shell\n";
  ssize_t ignored = write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
  (void)ignored;
  _exit(127);
}

// The pipe a child waits on until ChildSpec::before_start returned.
struct Gate {
  int read_end = -1;
  int write_end = -1;
  ~Gate() {
    CloseFd(&read_end);
    CloseFd(&write_end);
  }
};

}  // namespace

std::vector<gid_t> GroupsOfUser(const std::string& user, gid_t gid) {
  int n = 64;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  while (getgrouplist(user.c_str(), gid, groups.data(), &n) < 0) {
    if (n <= static_cast<int>(groups.size())) n = 2 * n;  // Defensive.
    groups.resize(static_cast<size_t>(n));
  }
  groups.resize(static_cast<size_t>(n));
  return groups;
}

Result<std::unique_ptr<ChildProcess>> ChildProcess::Spawn(
    const ChildSpec& spec) {
  ExecArgs args(spec);
  Gate gate;
  if (spec.before_start) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
    gate.read_end = fds[0];
    gate.write_end = fds[1];
  }
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->pty_ = spec.pty;
  if (spec.pty) {
    struct winsize ws = {};
    ws.ws_col = static_cast<unsigned short>(spec.width > 0 ? spec.width : 80);
    ws.ws_row = static_cast<unsigned short>(spec.height > 0 ? spec.height : 24);
    int master = -1;
    pid_t pid = forkpty(&master, nullptr, nullptr, &ws);
    if (pid < 0) return ErrnoStatus("forkpty", errno);
    if (pid == 0) ExecChild(spec, args, gate.read_end, gate.write_end);
    child->pid_ = pid;
    child->out_fd_ = master;
    SetNonBlockingCloexec(master);
  } else {
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) != 0) return ErrnoStatus("pipe", errno);
    if (pipe2(out, O_CLOEXEC) != 0) {
      int e = errno;
      close(in[0]), close(in[1]);
      return ErrnoStatus("pipe", e);
    }
    if (pipe2(err, O_CLOEXEC) != 0) {
      int e = errno;
      close(in[0]), close(in[1]), close(out[0]), close(out[1]);
      return ErrnoStatus("pipe", e);
    }
    pid_t pid = fork();
    if (pid < 0) {
      int e = errno;
      for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
      return ErrnoStatus("fork", e);
    }
    if (pid == 0) {
      setsid();
      // dup2 clears close-on-exec on the targets.
      if (dup2(in[0], STDIN_FILENO) < 0 || dup2(out[1], STDOUT_FILENO) < 0 ||
          dup2(err[1], STDERR_FILENO) < 0) {
        _exit(126);
      }
      ExecChild(spec, args, gate.read_end, gate.write_end);
    }
    close(in[0]);
    close(out[1]);
    close(err[1]);
    child->pid_ = pid;
    child->in_fd_ = in[1];
    child->out_fd_ = out[0];
    child->err_fd_ = err[0];
    for (int fd : {in[1], out[0], err[0]}) SetNonBlockingCloexec(fd);
  }
  if (spec.before_start) {
    CloseFd(&gate.read_end);
    Status tracked = spec.before_start(child->pid_);
    if (!tracked.ok()) {
      // The child sees EOF and ends; the destructor reaps it.
      CloseFd(&gate.write_end);
      return tracked;
    }
    ssize_t n;
    do {
      n = write(gate.write_end, "g", 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) return ErrnoStatus("starting the session", errno);
    CloseFd(&gate.write_end);
  }
#ifdef SYS_pidfd_open
  child->pid_fd_ = static_cast<int>(syscall(SYS_pidfd_open, child->pid_, 0));
  if (child->pid_fd_ >= 0) SetNonBlockingCloexec(child->pid_fd_);
#endif
  return child;
}

ChildProcess::~ChildProcess() {
  CloseFd(&in_fd_);
  CloseFd(&out_fd_);
  CloseFd(&err_fd_);
  if (!reaped_ && pid_ > 0) {
    kill(-pid_, SIGHUP);
    kill(pid_, SIGHUP);
    int status = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        kill(-pid_, SIGKILL);
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  CloseFd(&pid_fd_);
}

void ChildProcess::CloseInput() {
  if (!pty_) CloseFd(&in_fd_);
}

void ChildProcess::CloseOutput() { CloseFd(&out_fd_); }

void ChildProcess::CloseError() { CloseFd(&err_fd_); }

void ChildProcess::Resize(int width, int height) {
  if (!pty_ || out_fd_ < 0 || width <= 0 || height <= 0) return;
  struct winsize ws = {};
  ws.ws_col = static_cast<unsigned short>(width);
  ws.ws_row = static_cast<unsigned short>(height);
  ioctl(out_fd_, TIOCSWINSZ, &ws);
}

bool ChildProcess::Reap(int* exit_status) {
  if (reaped_) return true;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == 0) return false;
  reaped_ = true;
  if (r < 0) {
    *exit_status = 255;  // Someone else reaped it; the status is lost.
  } else if (WIFEXITED(status)) {
    *exit_status = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    term_signal_ = WTERMSIG(status);
    *exit_status = 128 + term_signal_;
  } else {
    *exit_status = 255;
  }
  return true;
}

}  // namespace mez::ssh
