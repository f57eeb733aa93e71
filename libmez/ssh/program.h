// What runs behind a session channel, as the SSH server sees it: a local
// child process (ChildProcess), or a channel on another SSH server that the
// proxy bridges to (UpstreamProgram in upstream.h). The server moves bytes
// through the descriptors and learns about the end through exit_fd and
// Reap; it never blocks on them.
#ifndef MEZ_SSH_PROGRAM_H_
#define MEZ_SSH_PROGRAM_H_

#include "libmez/util/status.h"

namespace mez::ssh {

// All descriptors are non-blocking and owned by the program; -1 once
// closed or when there is none. Used from one thread (the connection's).
class Program {
 public:
  // Hangs up on a program still running.
  virtual ~Program() = default;

  // Runs it, when creating the program only prepared it (a bridged
  // program is connected first, and started only once its recording was
  // accepted). A non-OK status means it never ran.
  virtual Status Start() { return Status::Ok(); }

  virtual bool has_pty() const = 0;
  // With a pty, input and output may be the same descriptor.
  virtual int input_fd() const = 0;
  virtual int output_fd() const = 0;
  virtual int error_fd() const = 0;  // -1 with a pty
  // Becomes readable when the program has ended (then call Reap), or -1
  // when there is none (the server then polls Reap on a timer).
  virtual int exit_fd() const = 0;

  virtual void CloseInput() = 0;  // the program sees EOF on its input
  virtual void CloseOutput() = 0;
  virtual void CloseError() = 0;
  virtual void Resize(int width, int height) = 0;
  // True once ended; *exit_status is the exit code, or 128 + the signal
  // number for a program killed by a signal.
  virtual bool Reap(int* exit_status) = 0;
  // After Reap: the signal that ended the program, or 0.
  virtual int term_signal() const = 0;
  // True when everything the program wrote is followed by EOF on
  // output_fd even with a pty, so the server reads to that EOF before it
  // reports the exit. A local pty gives no such guarantee (a background job
  // may hold it open), so the server then stops reading at the exit.
  virtual bool output_ends_with_eof() const { return false; }
};

}  // namespace mez::ssh

#endif  // MEZ_SSH_PROGRAM_H_
