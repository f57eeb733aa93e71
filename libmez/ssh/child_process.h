// Starting the program behind a session channel: a shell or a command,
// under a new pty (forkpty) or with three pipes (stdin, stdout and stderr
// kept apart). Internal to libmez/ssh.
#ifndef MEZ_SSH_CHILD_PROCESS_H_
#define MEZ_SSH_CHILD_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "libmez/ssh/program.h"
#include "libmez/util/status.h"

namespace mez::ssh {

struct ChildSpec {
  std::string shell;             // absolute path, e.g. the login's shell
  std::string command;           // empty: an interactive login shell
  std::string home;              // working directory ("/" when unusable)
  std::vector<std::string> env;  // the whole environment, "NAME=value"
  bool pty = false;
  int width = 80;
  int height = 24;
  // When set (the server runs as root), the child becomes this user before
  // exec: setgid(gid), setgroups(groups) (what initgroups would set,
  // computed before fork), setuid(uid); any failure ends the child with
  // exit status 126 without exec. A pty slave is given to the user (group
  // tty_gid, mode 0620).
  bool change_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;
  gid_t tty_gid = 0;
  // When set, the child waits right after fork (before it changes user,
  // directory or runs anything) until this returned in the parent with
  // its pid. Non-OK: the child is killed without running anything, and
  // Spawn fails with this status.
  std::function<Status(pid_t)> before_start;
};

// The supplementary groups of `user` with primary group `gid`, as
// initgroups(3) would set them. Reads the group database: call before fork.
std::vector<gid_t> GroupsOfUser(const std::string& user, gid_t gid);

// Owns the child and its descriptors (all non-blocking, close-on-exec).
// The destructor hangs up on a child still running (SIGHUP to its process
// group, SIGKILL after a second) and reaps it. Not thread-safe.
class ChildProcess : public Program {
 public:
  static Result<std::unique_ptr<ChildProcess>> Spawn(const ChildSpec& spec);
  ~ChildProcess() override;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool has_pty() const override { return pty_; }
  // With a pty, input and output are the same fd (the master). -1 once
  // closed.
  int input_fd() const override { return pty_ ? out_fd_ : in_fd_; }
  int output_fd() const override { return out_fd_; }
  int error_fd() const override { return err_fd_; }  // -1 with a pty
  // A pidfd that becomes readable when the child exits, or -1 when the
  // kernel has none (callers then poll Reap on a timer).
  int exit_fd() const override { return pid_fd_; }

  void CloseInput() override;  // pipes only: the program sees EOF on stdin
  void CloseOutput() override;
  void CloseError() override;
  void Resize(int width, int height) override;
  // Non-blocking. True once the child exited; *exit_status as ChannelTap
  // documents it.
  bool Reap(int* exit_status) override;
  // After Reap: the signal that killed the child, or 0.
  int term_signal() const override { return term_signal_; }

 private:
  ChildProcess() = default;

  bool pty_ = false;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int term_signal_ = 0;
  int in_fd_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  int pid_fd_ = -1;
};

}  // namespace mez::ssh

#endif  // MEZ_SSH_CHILD_PROCESS_H_
