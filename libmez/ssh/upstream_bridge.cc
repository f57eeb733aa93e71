// The proxy's bridged channels to an agentless node: a relay thread that
// moves bytes between an upstream channel and local descriptors, the
// Program a bridged session is, and the stream a bridged direct-tcpip
// channel is.
#include <errno.h>
#include <fcntl.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "libmez/ssh/byte_queue.h"
#include "libmez/ssh/upstream.h"
#include "libmez/ssh/upstream_impl.h"
#include "libmez/util/log.h"
#include "libmez/util/thread_name.h"

namespace mez::ssh {

namespace {

// What the relay holds of the node's output before it stops reading the
// channel (libssh then keeps up to a window, and sshd waits).
constexpr size_t kMaxPendingOut = 256 * 1024;

int WakeOnly(socket_t, int, void*) { return 0; }

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// RFC 4254 signal names (without "SIG") to numbers; 0 for others.
int SignalNumber(const char* name) {
  static const std::map<std::string, int> kSignals = {
      {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"FPE", SIGFPE},
      {"HUP", SIGHUP},   {"ILL", SIGILL},   {"INT", SIGINT},
      {"KILL", SIGKILL}, {"PIPE", SIGPIPE}, {"QUIT", SIGQUIT},
      {"SEGV", SIGSEGV}, {"TERM", SIGTERM}, {"USR1", SIGUSR1},
      {"USR2", SIGUSR2}};
  auto it = kSignals.find(name != nullptr ? name : "");
  return it == kSignals.end() ? 0 : it->second;
}

Status Pipe(int fds[2]) {
  if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    return ErrnoStatus("upstream: pipe", errno);
  }
  return Status::Ok();
}

Status SocketPair(int fds[2]) {
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) !=
      0) {
    return ErrnoStatus("upstream: socketpair", errno);
  }
  return Status::Ok();
}

}  // namespace

// Moves bytes between an upstream channel and local descriptors on a
// thread of its own, which owns the connection from Start on.
class Relay {
 public:
  // The relay's ends: `in` is read and sent to the node; the node's stdout
  // goes to `out` and its stderr to `err` (-1: discarded). `in` and `out`
  // may be one socket, which is then half-closed at the node's EOF.
  struct Ends {
    int in = -1;
    int out = -1;
    int err = -1;
  };

  Relay(std::unique_ptr<Upstream::Impl> upstream, ssh_channel channel,
        Ends ends)
      : upstream_(std::move(upstream)), channel_(channel), ends_(ends) {}

  ~Relay() {
    Stop();
    if (channel_ != nullptr) {
      ssh_remove_channel_callbacks(channel_, &callbacks_);
      ssh_channel_free(channel_);
    }
    upstream_.reset();
    if (ends_.out != ends_.in) CloseFd(&ends_.out);
    CloseFd(&ends_.in);
    CloseFd(&ends_.err);
    CloseFd(&wake_[0]);
    CloseFd(&wake_[1]);
    CloseFd(&done_fd_);
  }
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  Status Start() {
    MEZ_RETURN_IF_ERROR(Pipe(wake_));
    done_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (done_fd_ < 0) return ErrnoStatus("upstream: eventfd", errno);
    callbacks_.userdata = this;
    callbacks_.channel_exit_status_function = &Relay::OnExitStatus;
    callbacks_.channel_exit_signal_function = &Relay::OnExitSignal;
    ssh_callbacks_init(&callbacks_);
    ssh_set_channel_callbacks(channel_, &callbacks_);
    thread_ = std::thread([this] {
      NameThisThread("mez-upstream");
      Loop();
    });
    return Status::Ok();
  }

  // Hangs up: the thread closes the channel and ends. Idempotent.
  void Stop() {
    stop_.store(true);
    Wake();
    if (thread_.joinable()) thread_.join();
  }

  // Thread-safe; the latest size wins.
  void Resize(int width, int height) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      resize_ = {width, height};
      resize_pending_ = true;
    }
    Wake();
  }

  int done_fd() const { return done_fd_; }
  bool done() const { return done_.load(); }
  // After done(): as ChannelTap::OnExit documents it (255 when the node
  // sent neither a status nor a signal).
  int exit_status() const { return exit_status_; }
  int term_signal() const { return signal_; }

 private:
  static void OnExitStatus(ssh_session, ssh_channel, int status, void* data) {
    auto* r = static_cast<Relay*>(data);
    r->exit_status_ = status;
    r->exit_known_ = true;
  }
  static void OnExitSignal(ssh_session, ssh_channel, const char* signal, int,
                           const char*, const char*, void* data) {
    auto* r = static_cast<Relay*>(data);
    r->signal_ = SignalNumber(signal);
    r->exit_status_ = 128 + (r->signal_ != 0 ? r->signal_ : SIGTERM);
    r->exit_known_ = true;
  }

  void Wake() {
    if (wake_[1] < 0) return;
    char c = 0;
    ssize_t ignored = write(wake_[1], &c, 1);
    (void)ignored;
  }

  // Registers `fd` for exactly `events` (0: not at all).
  void Want(int fd, short events) {
    if (fd < 0) return;
    auto it = polled_.find(fd);
    short now = it == polled_.end() ? 0 : it->second;
    if (now == events) return;
    if (now != 0) ssh_event_remove_fd(event_, fd);
    if (events != 0) {
      ssh_event_add_fd(event_, fd, events, &WakeOnly, nullptr);
      polled_[fd] = events;
    } else {
      polled_.erase(fd);
    }
  }

  // Node -> local, for stdout (is_err 0) or stderr (1). Each read takes
  // everything libssh holds: libssh 0.10 grants the node more window on
  // every read once half of it is used, whatever it still buffers, so
  // partial reads let its buffer grow without bound (40 MB in proxy_bench,
  // and moving it cost the relay a tenth of its CPU). The pending bytes
  // may then exceed kMaxPendingOut by what libssh held; nothing more is
  // read until they are below it.
  void PumpOut(int is_err) {
    ByteQueue& pending = is_err ? err_pending_ : out_pending_;
    int& fd = is_err ? ends_.err : ends_.out;
    bool& closed = is_err ? err_closed_ : out_closed_;
    char buf[64 * 1024];
    if (pending.size() < kMaxPendingOut || closed || fd < 0) {
      int avail = ssh_channel_poll(channel_, is_err);
      if (avail == SSH_ERROR) broken_ = true;
      while (avail > 0) {
        int n = ssh_channel_read_nonblocking(
            channel_, buf,
            static_cast<uint32_t>(std::min<size_t>(sizeof(buf), avail)),
            is_err);
        if (n == SSH_ERROR) {
          broken_ = true;
          break;
        }
        if (n <= 0) break;
        avail -= n;
        if (!closed && fd >= 0) pending.append(buf, static_cast<size_t>(n));
      }
    }
    while (!pending.empty() && !closed && fd >= 0) {
      ssize_t n = write(fd, pending.data(), pending.size());
      if (n > 0) {
        pending.consume(static_cast<size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        break;
      } else {  // The local side stopped reading: drop the rest.
        pending.clear();
        closed = true;
      }
    }
  }

  // Local -> node, no more than the node's window takes.
  void PumpIn() {
    char buf[16 * 1024];
    while (!in_eof_) {
      if (!in_pending_.empty()) {
        int n = ssh_channel_write(channel_, in_pending_.data(),
                                  static_cast<uint32_t>(in_pending_.size()));
        if (n == SSH_ERROR) {
          broken_ = true;
          return;
        }
        in_pending_.erase(0, static_cast<size_t>(n));
        if (!in_pending_.empty()) return;
      }
      size_t window = ssh_channel_window_size(channel_);
      if (window == 0) return;
      ssize_t n = read(ends_.in, buf, std::min(sizeof(buf), window));
      if (n > 0) {
        in_pending_.assign(buf, static_cast<size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        return;
      } else {  // EOF, or the local end was reset.
        in_eof_ = true;
        if (!ssh_channel_is_closed(channel_)) ssh_channel_send_eof(channel_);
      }
    }
  }

  void Loop() {
    ssh_session session = ssh_channel_get_session(channel_);
    ssh_set_blocking(session, 0);
    event_ = ssh_event_new();
    if (event_ == nullptr || ssh_event_add_session(event_, session) != SSH_OK) {
      broken_ = true;
    }
    if (event_ != nullptr) Want(wake_[0], POLLIN);
    if (ends_.err < 0) err_closed_ = true;
    while (!broken_ && !stop_.load()) {
      char drain[64];
      while (read(wake_[0], drain, sizeof(drain)) > 0) {
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (resize_pending_) {
          ssh_channel_change_pty_size(channel_, resize_.first, resize_.second);
          resize_pending_ = false;
        }
      }
      PumpOut(0);
      PumpOut(1);
      PumpIn();
      bool node_eof =
          ssh_channel_is_eof(channel_) || ssh_channel_is_closed(channel_);
      // Everything the node sent is out once libssh holds nothing more.
      if (node_eof && ssh_channel_poll(channel_, 0) <= 0 &&
          ssh_channel_poll(channel_, 1) <= 0) {
        if (!out_closed_ && out_pending_.empty()) {
          if (ends_.out == ends_.in) {
            shutdown(ends_.out, SHUT_WR);
          } else {
            CloseFd(&ends_.out);
          }
          out_closed_ = true;
        }
        if (!err_closed_ && err_pending_.empty()) {
          CloseFd(&ends_.err);
          err_closed_ = true;
        }
      }
      bool ended = ssh_channel_is_closed(channel_) || exit_known_ ||
                   (in_eof_ && ends_.in == ends_.out);
      if (out_closed_ && err_closed_ && ended) break;
      if (ssh_get_status(session) & (SSH_CLOSED | SSH_CLOSED_ERROR)) {
        broken_ = true;
        break;
      }
      size_t window = ssh_channel_window_size(channel_);
      short in_events =
          !in_eof_ && in_pending_.empty() && window > 0 ? POLLIN : 0;
      short out_events =
          !out_closed_ && !out_pending_.empty() ? short{POLLOUT} : short{0};
      short err_events =
          !err_closed_ && !err_pending_.empty() ? short{POLLOUT} : short{0};
      if (ends_.in == ends_.out) {
        Want(ends_.in, static_cast<short>(in_events | out_events));
      } else {
        Want(ends_.in, in_eof_ ? 0 : in_events);
        if (!out_closed_) Want(ends_.out, out_events);
      }
      if (!err_closed_) Want(ends_.err, err_events);
      // libssh may have taken the node's bytes off the socket while this
      // round wrote (no fd says so then), or the window opened for held
      // input: go round again at once. A shut window or held input is
      // looked at again soon.
      bool ready = (!in_eof_ && !in_pending_.empty() && window > 0) ||
                   (!out_closed_ && out_pending_.size() < kMaxPendingOut &&
                    ssh_channel_poll(channel_, 0) > 0) ||
                   (!err_closed_ && err_pending_.size() < kMaxPendingOut &&
                    ssh_channel_poll(channel_, 1) > 0);
      bool quick = !in_eof_ && (window == 0 || !in_pending_.empty());
      ssh_event_dopoll(event_, ready ? 0 : quick ? 10 : 200);
    }
    for (auto it = polled_.begin(); it != polled_.end();) {
      ssh_event_remove_fd(event_, it->first);
      it = polled_.erase(it);
    }
    if (event_ != nullptr) {
      ssh_event_remove_session(event_, session);
      ssh_event_free(event_);
      event_ = nullptr;
    }
    if (!ssh_channel_is_closed(channel_)) ssh_channel_close(channel_);
    if (!exit_known_) exit_status_ = 255;
    // The local side sees EOF on everything now (a hang-up included).
    if (ends_.out != ends_.in) CloseFd(&ends_.out);
    if (ends_.in >= 0) shutdown(ends_.in, SHUT_RDWR);
    CloseFd(&ends_.err);
    done_.store(true);
    uint64_t one = 1;
    ssize_t ignored = write(done_fd_, &one, sizeof(one));
    (void)ignored;
  }

  std::unique_ptr<Upstream::Impl> upstream_;
  ssh_channel channel_ = nullptr;
  Ends ends_;
  ssh_channel_callbacks_struct callbacks_{};
  int wake_[2] = {-1, -1};
  int done_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> done_{false};
  std::mutex mu_;
  std::pair<int, int> resize_;   // guarded by mu_
  bool resize_pending_ = false;  // guarded by mu_
  // The relay thread's own (before done_; read by others only after).
  ssh_event event_ = nullptr;
  std::map<int, short> polled_;
  ByteQueue out_pending_;
  ByteQueue err_pending_;
  std::string in_pending_;
  bool in_eof_ = false;
  bool out_closed_ = false;
  bool err_closed_ = false;
  bool broken_ = false;
  bool exit_known_ = false;
  int exit_status_ = -1;
  int signal_ = 0;
};

namespace {

class UpstreamProgram : public Program {
 public:
  ~UpstreamProgram() override {
    relay_.reset();  // Hangs up first.
    if (out_fd_ != in_fd_) CloseFd(&out_fd_);
    CloseFd(&in_fd_);
    CloseFd(&err_fd_);
  }

  static Result<std::unique_ptr<UpstreamProgram>> Open(
      const UpstreamOptions& o, const UpstreamSessionRequest& r) {
    std::unique_ptr<UpstreamProgram> p(new UpstreamProgram());
    p->pty_ = r.pty;
    p->command_ = r.command;
    // The descriptors first: the program's ends are closed by its
    // destructor, the relay's by close_ends until the relay owns them.
    Relay::Ends ends;
    auto close_ends = [&ends] {
      if (ends.out != ends.in) CloseFd(&ends.out);
      CloseFd(&ends.in);
      CloseFd(&ends.err);
    };
    if (r.pty) {
      int fds[2];
      MEZ_RETURN_IF_ERROR(SocketPair(fds));
      p->in_fd_ = p->out_fd_ = fds[0];
      ends.in = ends.out = fds[1];
    } else {
      int in[2], out[2], err[2];
      MEZ_RETURN_IF_ERROR(Pipe(in));
      p->in_fd_ = in[1];
      ends.in = in[0];
      Status s = Pipe(out);
      if (s.ok()) {
        p->out_fd_ = out[0];
        ends.out = out[1];
        s = Pipe(err);
      }
      if (s.ok()) {
        p->err_fd_ = err[0];
        ends.err = err[1];
      }
      if (!s.ok()) {
        close_ends();
        return s;
      }
    }
    auto up = std::make_unique<Upstream::Impl>();
    Status connected = up->Connect(o);
    if (!connected.ok()) {
      close_ends();
      return connected;
    }
    ssh_session session = up->session_;
    ssh_channel ch = ssh_channel_new(session);
    if (ch == nullptr) {
      close_ends();
      return Internal("ssh_channel_new failed");
    }
    auto fail = [&](const std::string& what) {
      Status s(Code::kUnavailable, "upstream " + up->where_ + ": " + what +
                                       ": " + ssh_get_error(session));
      ssh_channel_free(ch);
      close_ends();
      return s;
    };
    if (ssh_channel_open_session(ch) != SSH_OK) return fail("open session");
    if (r.pty && ssh_channel_request_pty_size(
                     ch, r.term.empty() ? "xterm" : r.term.c_str(), r.width,
                     r.height) != SSH_OK) {
      return fail("pty");
    }
    for (const std::string& kv : r.env) {
      size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) continue;
      // The node's AcceptEnv decides; a refusal is not an error.
      ssh_channel_request_env(ch, kv.substr(0, eq).c_str(),
                              kv.substr(eq + 1).c_str());
    }
    p->channel_ = ch;
    p->relay_ = std::make_unique<Relay>(std::move(up), ch, ends);
    return p;
  }

  Status Start() override {
    ssh_channel ch = channel_;
    int rc = command_.empty() ? ssh_channel_request_shell(ch)
                              : ssh_channel_request_exec(ch, command_.c_str());
    if (rc != SSH_OK) {
      return Status(Code::kUnavailable,
                    std::string("the node refused to start ") +
                        (command_.empty() ? "a shell" : "the command") + ": " +
                        ssh_get_error(ssh_channel_get_session(ch)));
    }
    return relay_->Start();
  }

  bool has_pty() const override { return pty_; }
  int input_fd() const override { return in_fd_; }
  int output_fd() const override { return out_fd_; }
  int error_fd() const override { return err_fd_; }
  int exit_fd() const override { return relay_->done_fd(); }
  void CloseInput() override {
    if (in_fd_ != out_fd_) CloseFd(&in_fd_);
  }
  void CloseOutput() override {
    if (in_fd_ != out_fd_) CloseFd(&out_fd_);
  }
  void CloseError() override { CloseFd(&err_fd_); }
  void Resize(int width, int height) override {
    if (pty_) relay_->Resize(width, height);
  }
  bool Reap(int* exit_status) override {
    if (!relay_->done()) return false;
    *exit_status = relay_->exit_status();
    return true;
  }
  int term_signal() const override {
    return relay_->done() ? relay_->term_signal() : 0;
  }
  bool output_ends_with_eof() const override { return true; }

 private:
  UpstreamProgram() = default;

  bool pty_ = false;
  std::string command_;
  ssh_channel channel_ = nullptr;  // owned by relay_
  std::unique_ptr<Relay> relay_;
  int in_fd_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
};

}  // namespace

Result<std::unique_ptr<Program>> OpenUpstreamSession(
    const UpstreamOptions& options, const UpstreamSessionRequest& request) {
  static std::once_flag init_once;
  std::call_once(init_once, [] { ssh_init(); });
  MEZ_ASSIGN_OR_RETURN(std::unique_ptr<UpstreamProgram> p,
                       UpstreamProgram::Open(options, request));
  return std::unique_ptr<Program>(std::move(p));
}

Result<OpenedStream> OpenUpstreamTcpip(const UpstreamOptions& options,
                                       const std::string& host, uint16_t port,
                                       const std::string& originator,
                                       uint16_t originator_port) {
  static std::once_flag init_once;
  std::call_once(init_once, [] { ssh_init(); });
  auto up = std::make_unique<Upstream::Impl>();
  MEZ_RETURN_IF_ERROR(up->Connect(options));
  ssh_session session = up->session_;
  ssh_channel ch = ssh_channel_new(session);
  if (ch == nullptr) return Internal("ssh_channel_new failed");
  if (ssh_channel_open_forward(
          ch, host.c_str(), port,
          originator.empty() ? "127.0.0.1" : originator.c_str(),
          originator_port) != SSH_OK) {
    Status s(Code::kUnavailable, "upstream " + up->where_ + ": the node " +
                                     "cannot forward to " + host + ":" +
                                     std::to_string(port) + ": " +
                                     ssh_get_error(session));
    ssh_channel_free(ch);
    return s;
  }
  int fds[2];
  Status pair = SocketPair(fds);
  if (!pair.ok()) {
    ssh_channel_free(ch);
    return pair;
  }
  Relay::Ends ends;
  ends.in = ends.out = fds[1];
  auto relay = std::make_shared<Relay>(std::move(up), ch, ends);
  Status started = relay->Start();
  if (!started.ok()) {
    close(fds[0]);
    return started;
  }
  OpenedStream opened;
  opened.fd = fds[0];
  opened.keeper = std::move(relay);
  return opened;
}

}  // namespace mez::ssh
