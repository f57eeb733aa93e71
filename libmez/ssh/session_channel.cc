// Shell and exec channels of a Connection: the requests before the program
// starts, the start through the login's policy, the pump between the
// program and the channel, and the end.
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

#include "libmez/ssh/channel.h"
#include "libmez/ssh/connection.h"
#include "libmez/util/log.h"

namespace mez::ssh {
namespace {

bool EnvAccepted(const std::vector<std::string>& accept,
                 const std::string& name) {
  if (name.empty() || name.find('=') != std::string::npos) return false;
  for (const std::string& pattern : accept) {
    if (!pattern.empty() && pattern.back() == '*') {
      if (name.compare(0, pattern.size() - 1, pattern, 0, pattern.size() - 1) ==
          0) {
        return true;
      }
    } else if (pattern == name) {
      return true;
    }
  }
  return false;
}

}  // namespace

// libssh's callbacks for the requests of a session channel, forwarding to
// the Channel in `userdata`.
struct SessionCallbacks {
  static int PtyRequest(ssh_session, ssh_channel, const char* term, int width,
                        int height, int, int, void* userdata) {
    Channel& ch = *static_cast<Channel*>(userdata);
    if (ch.started || ch.pty) return -1;
    ch.pty = true;
    ch.term = term != nullptr ? term : "";
    ch.width = width;
    ch.height = height;
    return 0;
  }
  static int Shell(ssh_session, ssh_channel, void* userdata) {
    Channel& ch = *static_cast<Channel*>(userdata);
    return ch.conn->StartProgram(ch, ChannelKind::kShell, "") ? 0 : -1;
  }
  static int Exec(ssh_session, ssh_channel, const char* command,
                  void* userdata) {
    Channel& ch = *static_cast<Channel*>(userdata);
    return ch.conn->StartProgram(ch, ChannelKind::kExec,
                                 command != nullptr ? command : "")
               ? 0
               : -1;
  }
  static int Env(ssh_session, ssh_channel, const char* name, const char* value,
                 void* userdata) {
    Channel& ch = *static_cast<Channel*>(userdata);
    std::string n = name != nullptr ? name : "";
    if (ch.started || !EnvAccepted(ch.conn->ctx_->options->accept_env, n)) {
      return -1;
    }
    ch.env.push_back(n + "=" + (value != nullptr ? value : ""));
    return 0;
  }
  static int WindowChange(ssh_session, ssh_channel, int width, int height, int,
                          int, void* userdata) {
    Channel& ch = *static_cast<Channel*>(userdata);
    if (!ch.pty) return -1;
    ch.width = width;
    ch.height = height;
    if (ch.child) ch.child->Resize(width, height);
    if (ch.tap) ch.tap->OnResize(width, height, NowMicros(ch.conn->ctx_));
    return 0;
  }
};

ssh_channel Connection::OnChannelOpen() {
  if (!authenticated_ || channels_.size() >= kMaxChannels) return nullptr;
  if (std::string why = admitted_->SessionRefusal(); !why.empty()) {
    MEZ_LOG(kInfo) << "ssh: refused a session channel of " << remote_ << ": "
                   << why;
    return nullptr;
  }
  ssh_channel channel = ssh_channel_new(session_);
  if (channel == nullptr) return nullptr;
  auto ch = std::make_unique<Channel>();
  ch->conn = this;
  ch->channel = channel;
  ssh_channel_callbacks_struct& cb = ch->callbacks;
  cb.userdata = ch.get();
  cb.channel_pty_request_function = &SessionCallbacks::PtyRequest;
  cb.channel_shell_request_function = &SessionCallbacks::Shell;
  cb.channel_exec_request_function = &SessionCallbacks::Exec;
  cb.channel_env_request_function = &SessionCallbacks::Env;
  cb.channel_pty_window_change_function = &SessionCallbacks::WindowChange;
  cb.channel_data_function = &ChannelCallbacks::Data;
  cb.channel_eof_function = &ChannelCallbacks::Eof;
  cb.channel_close_function = &ChannelCallbacks::Close;
  ssh_callbacks_init(&cb);
  ssh_set_channel_callbacks(channel, &cb);
  channels_.push_back(std::move(ch));
  return channel;
}

ChannelInfo Connection::SessionInfo(const Channel& ch, ChannelKind kind,
                                    const std::string& command) const {
  ChannelInfo info;
  info.kind = kind;
  info.connection_id = connection_id_;
  info.login = login_;
  info.key_id = key_id_;
  info.remote = remote_;
  info.command = command;
  info.pty = ch.pty;
  info.term = ch.term;
  info.width = ch.pty ? ch.width : 0;
  info.height = ch.pty ? ch.height : 0;
  info.start_micros = NowMicros(ctx_);
  info.cert_extensions = cert_extensions_;
  info.target = target_;
  return info;
}

bool Connection::EndBeforeStart(Channel& ch, const std::string& message) {
  ch.end_message = message.empty() ? "the session cannot start" : message;
  ch.started = true;
  ch.out_eof = ch.err_eof = true;
  return true;
}

// Called from a channel request callback: no libssh calls and no changes
// to the event here; Pump registers the fds.
bool Connection::StartProgram(Channel& ch, ChannelKind kind,
                              const std::string& command) {
  if (ch.started || ch.close_sent) return false;
  SessionRequest request;
  request.info = SessionInfo(ch, kind, command);
  request.width = ch.width;
  request.height = ch.height;
  request.env = ch.env;
  // A program the login's policy makes before the tap (a bridged session
  // connects upstream) is started only once the tap accepted.
  Result<std::unique_ptr<Program>> launched = admitted_->Launch(request);
  if (!launched.ok()) {
    MEZ_LOG(kWarning) << "ssh: cannot start a session of " << remote_ << " for "
                      << (target_.empty() ? "?" : target_) << ": "
                      << launched.status().message();
    return EndBeforeStart(ch, launched.status().message());
  }
  std::unique_ptr<Program> program = std::move(launched).value();
  if (ctx_->options->tap_factory) {
    ch.tap = ctx_->options->tap_factory(request.info);
  }
  // A recorder that cannot record (refused, unreachable, spool full) ends
  // the session before the program ever runs: Pump writes its reason to
  // the user's terminal and closes the channel.
  if (ch.tap && !ch.tap->EndReason().empty()) {
    ch.started = true;
    ch.out_eof = ch.err_eof = true;
    return true;
  }
  if (program) {
    Status started = program->Start();
    if (!started.ok()) {
      MEZ_LOG(kWarning) << "ssh: cannot start a session of " << remote_
                        << " for " << (target_.empty() ? "?" : target_) << ": "
                        << started.message();
      if (ch.tap) ch.tap->OnExit(255, NowMicros(ctx_));
      ch.tap.reset();
      return EndBeforeStart(ch, started.message());
    }
    ch.child = std::move(program);
    ch.started = true;
    ch.err_eof = ch.pty;  // A pty merges stderr into the output.
    return true;
  }
  if (ch.tap) {
    // The tap follows the first process before it runs (enhanced
    // recording); the tap outlives the spawn.
    ChannelTap* tap = ch.tap.get();
    request.track = [tap](pid_t pid) { return tap->TrackProcess(pid); };
  }
  Result<std::unique_ptr<Program>> spawned = admitted_->Spawn(request);
  if (!spawned.ok()) {
    MEZ_LOG(kError) << "ssh: cannot start a program for " << remote_ << ": "
                    << spawned.status().ToString();
    if (spawned.status().code() == Code::kFailedPrecondition && ch.tap) {
      // The recording could not follow the program (it never ran): end
      // the channel with the reason rather than refuse the request.
      ch.tap->OnExit(255, NowMicros(ctx_));
      ch.tap.reset();
      return EndBeforeStart(ch, spawned.status().message());
    }
    ch.tap.reset();
    return false;
  }
  ch.child = std::move(spawned).value();
  ch.started = true;
  ch.err_eof = ch.pty;  // A pty merges stderr into the output.
  return true;
}

void Connection::DrainOutput(Channel& ch, bool is_err) {
  int fd = is_err ? ch.child->error_fd() : ch.child->output_fd();
  bool& eof = is_err ? ch.err_eof : ch.out_eof;
  bool& registered = is_err ? ch.err_registered : ch.out_registered;
  if (eof || fd < 0) return;
  char* buf = read_buf_.get();
  const size_t buf_size = kReadChunk;
  size_t total = 0;
  while (total < kMaxReadPerRound) {
    // Read no more than the client's window takes, so that writing never
    // blocks; a stalled client stalls the program (backpressure).
    size_t window = ssh_channel_window_size(ch.channel);
    if (window == 0 && !ch.client_closed) break;
    size_t want = std::min(buf_size, window > 0 ? window : buf_size);
    // Fill the buffer before writing: libssh flushes (and, with output
    // still queued, polls) on every channel write.
    size_t got = 0;
    bool ended = false;
    while (got < want) {
      ssize_t n = read(fd, buf + got, want - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n <= 0) {  // EOF; EIO from a pty master whose slave hung up.
        ended = true;
        break;
      }
      got += static_cast<size_t>(n);
    }
    if (got > 0) {
      std::string_view bytes(buf, got);
      if (ch.tap) {
        ch.tap->OnData(is_err ? Direction::kErr : Direction::kOut, bytes,
                       NowMicros(ctx_));
      }
      if (!ch.client_closed) {
        if (is_err) {
          ssh_channel_write_stderr(ch.channel, buf, static_cast<uint32_t>(got));
        } else {
          ssh_channel_write(ch.channel, buf, static_cast<uint32_t>(got));
        }
      }
      total += got;
    }
    if (ended) {
      if (registered) ssh_event_remove_fd(event_, fd);
      registered = false;
      eof = true;
      if (is_err) {
        ch.child->CloseError();
      } else if (!ch.pty) {
        ch.child->CloseOutput();
      }
      return;
    }
    if (got < want) break;  // Nothing more for now.
  }
  // Poll the fd only while the client can take more.
  bool want_poll = ssh_channel_window_size(ch.channel) > 0;
  if (want_poll && !registered) {
    ssh_event_add_fd(event_, fd, POLLIN, &WakeOnly, nullptr);
    registered = true;
  } else if (!want_poll && registered) {
    ssh_event_remove_fd(event_, fd);
    registered = false;
  }
}

void Connection::PumpSession(Channel& ch) {
  if (ch.child) {
    if (!ch.pid_registered && !ch.exited && ch.child->exit_fd() >= 0) {
      ssh_event_add_fd(event_, ch.child->exit_fd(), POLLIN, &WakeOnly, nullptr);
      ch.pid_registered = true;
    }
    // Client -> program.
    PullLeftover(ch);
    while (!ch.pending_in.empty() && ch.child->input_fd() >= 0) {
      ssize_t n = write(ch.child->input_fd(), ch.pending_in.data(),
                        ch.pending_in.size());
      if (n > 0) {
        ch.pending_in.consume(static_cast<size_t>(n));
        PullLeftover(ch);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        break;
      } else {
        ch.pending_in.clear();  // The program stopped reading (EPIPE).
      }
    }
    if (ch.client_eof && ch.pending_in.empty() && !ch.leftover && !ch.pty) {
      ch.child->CloseInput();
    }
    // Reap before draining, so that after the exit everything the program
    // wrote is read.
    if (!ch.exited && ch.child->Reap(&ch.exit_status)) {
      ch.exited = true;
      if (ch.pid_registered) ssh_event_remove_fd(event_, ch.child->exit_fd());
      ch.pid_registered = false;
    }
    DrainOutput(ch, false);
    if (!ch.pty) DrainOutput(ch, true);
    // With a pty, the session ends with the shell even if a background job
    // still holds the terminal (as sshd does); pipes are read to EOF.
    bool drained = (ch.pty && !ch.child->output_ends_with_eof()) ||
                   (ch.out_eof && ch.err_eof);
    if (ch.exited && drained && !ch.close_sent) Finish(ch);
  }
  if (ch.tap && !ch.close_sent && !ch.client_closed) {
    std::string reason = ch.tap->EndReason();
    if (!reason.empty()) {
      MEZ_LOG(kWarning) << "ssh: ending a session of " << remote_ << ": "
                        << reason;
      ch.end_message = reason;
    }
  }
  if (!ch.end_message.empty() && !ch.close_sent && !ch.client_closed) {
    std::string line = "\r\n" + ch.end_message + "\r\n";
    ssh_channel_write_stderr(ch.channel, line.data(),
                             static_cast<uint32_t>(line.size()));
    Unregister(ch);
    ch.child.reset();  // SIGHUP to the program.
    ch.tap.reset();
    ssh_channel_send_eof(ch.channel);
    ssh_channel_request_send_exit_status(ch.channel, 255);
    ssh_channel_close(ch.channel);
    ch.close_sent = true;
  }
  if (ch.client_closed && !ch.close_sent) {
    Unregister(ch);
    ch.child.reset();  // SIGHUP to a program still running.
    ch.tap.reset();
    ssh_channel_close(ch.channel);
    ch.close_sent = true;
  }
}

void Connection::Finish(Channel& ch) {
  int signal_number = ch.child->term_signal();
  Unregister(ch);
  ch.child.reset();
  if (ch.tap) {
    ch.tap->OnExit(ch.exit_status, NowMicros(ctx_));
    ch.tap.reset();
  }
  if (!ch.client_closed) {
    ssh_channel_send_eof(ch.channel);
    const char* abbrev =
        signal_number > 0 ? sigabbrev_np(signal_number) : nullptr;
    if (abbrev != nullptr) {
      ssh_channel_request_send_exit_signal(ch.channel, abbrev, 0, "", "");
    } else {
      ssh_channel_request_send_exit_status(ch.channel, ch.exit_status);
    }
    // The channel is freed once the client's close arrives; the loop keeps
    // polling until then.
    ssh_channel_close(ch.channel);
  }
  ch.close_sent = true;
}

}  // namespace mez::ssh
