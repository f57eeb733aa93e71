#include "libmez/ssh/connection.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "libmez/auth/ssh_cert.h"
#include "libmez/ssh/child_process.h"
#include "libmez/util/encoding.h"
#include "libmez/util/log.h"

namespace mez::ssh {

// Channels per connection, and client bytes buffered for a program that is
// slow to read (beyond it the client's window is not replenished).
constexpr size_t kMaxChannels = 16;
constexpr size_t kMaxPendingInput = 1 << 20;
// Bytes taken from one program stream per poll round, for fairness.
constexpr size_t kMaxReadPerRound = 256 * 1024;

struct Channel {
  Connection* conn = nullptr;
  ssh_channel channel = nullptr;
  ssh_channel_callbacks_struct callbacks{};
  bool started = false;
  bool pty = false;
  std::string term;
  int width = 80;
  int height = 24;
  std::vector<std::string> env;
  std::unique_ptr<ChildProcess> child;
  std::unique_ptr<ChannelTap> tap;
  std::string pending_in;
  bool client_eof = false;
  bool client_closed = false;
  // Registration of the program's fds in the connection's ssh_event.
  bool out_registered = false;
  bool err_registered = false;
  bool pid_registered = false;
  bool out_eof = false;
  bool err_eof = false;
  bool exited = false;
  int exit_status = 0;
  bool close_sent = false;
};

namespace {

// The event only has to wake the poll; the work happens in Pump, outside
// libssh's poll loop (a libssh call from an fd callback re-enters it).
int WakeOnly(socket_t, int, void*) { return 0; }

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

int64_t NowMicros(const ServerContext* ctx) {
  return ctx->clock->MonotonicMicros();
}

}  // namespace

// libssh's C callbacks, forwarding to Connection and Channel.
struct ConnectionCallbacks {
  static int AuthPubkey(ssh_session, const char* user, ssh_key pubkey,
                        char signature_state, void* userdata) {
    return static_cast<Connection*>(userdata)->OnAuthPubkey(user, pubkey,
                                                            signature_state);
  }
  static ssh_channel ChannelOpen(ssh_session, void* userdata) {
    return static_cast<Connection*>(userdata)->OnChannelOpen();
  }
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
  static int Data(ssh_session, ssh_channel, void* data, uint32_t len,
                  int is_stderr, void* userdata) {
    Channel& ch = *static_cast<Channel*>(userdata);
    if (is_stderr || !ch.child || ch.client_eof || ch.close_sent) {
      return static_cast<int>(len);  // Nobody to deliver to: discard.
    }
    // Leaving bytes unconsumed keeps the client's window shut until the
    // program catches up.
    size_t room =
        kMaxPendingInput - std::min(kMaxPendingInput, ch.pending_in.size());
    size_t n = std::min<size_t>(len, room);
    if (n == 0) return 0;
    std::string_view bytes(static_cast<const char*>(data), n);
    if (ch.tap) {
      ch.tap->OnData(Direction::kIn, bytes, NowMicros(ch.conn->ctx_));
    }
    ch.pending_in.append(bytes);
    return static_cast<int>(n);
  }
  static void Eof(ssh_session, ssh_channel, void* userdata) {
    static_cast<Channel*>(userdata)->client_eof = true;
  }
  static void Close(ssh_session, ssh_channel, void* userdata) {
    static_cast<Channel*>(userdata)->client_closed = true;
  }
};

Connection::Connection(const ServerContext* ctx, ssh_session session,
                       std::string remote)
    : ctx_(ctx), session_(session), remote_(std::move(remote)) {}

Connection::~Connection() {
  for (auto& ch : channels_) {
    Unregister(*ch);
    ch->child.reset();  // Hangs up on a program still running.
    ch->tap.reset();
    if (ch->channel != nullptr) {
      ssh_remove_channel_callbacks(ch->channel, &ch->callbacks);
      ssh_channel_free(ch->channel);
    }
  }
  channels_.clear();
  if (event_ != nullptr) {
    ssh_event_remove_session(event_, session_);
    ssh_event_free(event_);
  }
  ssh_disconnect(session_);
  ssh_free(session_);
}

void Connection::Run() {
  long timeout_seconds = 10;
  ssh_options_set(session_, SSH_OPTIONS_TIMEOUT, &timeout_seconds);
  server_callbacks_.userdata = this;
  server_callbacks_.auth_pubkey_function = &ConnectionCallbacks::AuthPubkey;
  server_callbacks_.channel_open_request_session_function =
      &ConnectionCallbacks::ChannelOpen;
  ssh_callbacks_init(&server_callbacks_);
  ssh_set_server_callbacks(session_, &server_callbacks_);
  ssh_set_auth_methods(session_, SSH_AUTH_METHOD_PUBLICKEY);

  if (ssh_handle_key_exchange(session_) != SSH_OK) {
    MEZ_LOG(kInfo) << "ssh: key exchange with " << remote_
                   << " failed: " << ssh_get_error(session_);
    return;
  }
  event_ = ssh_event_new();
  if (event_ == nullptr || ssh_event_add_session(event_, session_) != SSH_OK) {
    MEZ_LOG(kError) << "ssh: cannot poll the session of " << remote_;
    return;
  }
  auto grace_end = std::chrono::steady_clock::now() +
                   std::chrono::seconds(ctx_->options->login_grace_seconds);
  while (!ctx_->stopping->load()) {
    ssh_event_dopoll(event_, NeedsQuickPoll() ? 10 : 200);
    // By index: callbacks run inside Pump (libssh handles packets while
    // it writes) and may append channels.
    for (size_t i = 0; i < channels_.size(); ++i) Pump(*channels_[i]);
    for (auto it = channels_.begin(); it != channels_.end();) {
      Channel& ch = **it;
      if (ch.close_sent && ch.client_closed) {
        ssh_remove_channel_callbacks(ch.channel, &ch.callbacks);
        ssh_channel_free(ch.channel);
        it = channels_.erase(it);
      } else {
        ++it;
      }
    }
    if (!authenticated_ && std::chrono::steady_clock::now() > grace_end) {
      Refuse("", "",
             "no successful authentication within the login grace time");
      break;
    }
    if (ssh_get_status(session_) & (SSH_CLOSED | SSH_CLOSED_ERROR)) break;
  }
}

void Connection::Refuse(const std::string& login, const std::string& key_id,
                        const std::string& reason) {
  MEZ_LOG(kInfo) << "ssh: refused " << remote_ << " login \"" << login
                 << "\": " << reason;
  if (ctx_->options->on_refusal) {
    ctx_->options->on_refusal(AuthRefusal{remote_, login, key_id, reason});
  }
}

int Connection::OnAuthPubkey(const char* user, ssh_key pubkey,
                             char signature_state) {
  std::string login = user != nullptr ? user : "";
  if (signature_state != SSH_PUBLICKEY_STATE_NONE &&
      signature_state != SSH_PUBLICKEY_STATE_VALID) {
    Refuse(login, "", "the public key signature does not verify");
    return SSH_AUTH_DENIED;
  }
  if (ssh_key_type(pubkey) != SSH_KEYTYPE_ED25519_CERT01) {
    const char* type = ssh_key_type_to_char(ssh_key_type(pubkey));
    Refuse(login, "",
           std::string("a plain ") + (type != nullptr ? type : "unknown") +
               " key is not accepted: an OpenSSH user certificate "
               "(ssh-ed25519-cert-v01@openssh.com) from the cluster's "
               "user CA is required");
    return SSH_AUTH_DENIED;
  }
  // The base64 export of a certificate key is the whole certificate blob.
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(pubkey, &b64) != SSH_OK) {
    Refuse(login, "", "cannot read the certificate");
    return SSH_AUTH_DENIED;
  }
  Result<std::string> blob = Base64Decode(b64);
  ssh_string_free_char(b64);
  if (!blob.ok()) {
    Refuse(login, "", "cannot read the certificate");
    return SSH_AUTH_DENIED;
  }
  Result<auth::SshCert> cert = auth::ParseSshCert(*blob);
  if (!cert.ok()) {
    Refuse(login, "", cert.status().message());
    return SSH_AUTH_DENIED;
  }
  int64_t now = ctx_->clock->WallMicros() / 1'000'000;
  Status checked =
      auth::CheckSshCert(*cert, ctx_->options->trusted_user_ca_blob,
                         auth::kSshUserCert, login, now);
  if (!checked.ok()) {
    Refuse(login, cert->key_id, checked.message());
    return SSH_AUTH_DENIED;
  }
  if (login != ctx_->user) {
    Refuse(login, cert->key_id,
           "this server runs as \"" + ctx_->user +
               "\" and starts sessions only as that user, not as \"" + login +
               "\"");
    return SSH_AUTH_DENIED;
  }
  if (signature_state == SSH_PUBLICKEY_STATE_VALID) {
    authenticated_ = true;
    login_ = login;
    key_id_ = cert->key_id;
    cert_extensions_ = cert->extensions;
    MEZ_LOG(kInfo) << "ssh: " << remote_ << " authenticated as \"" << login
                   << "\" (certificate key id \"" << key_id_ << "\")";
  }
  return SSH_AUTH_SUCCESS;
}

ssh_channel Connection::OnChannelOpen() {
  if (!authenticated_ || channels_.size() >= kMaxChannels) return nullptr;
  ssh_channel channel = ssh_channel_new(session_);
  if (channel == nullptr) return nullptr;
  auto ch = std::make_unique<Channel>();
  ch->conn = this;
  ch->channel = channel;
  ssh_channel_callbacks_struct& cb = ch->callbacks;
  cb.userdata = ch.get();
  cb.channel_pty_request_function = &ConnectionCallbacks::PtyRequest;
  cb.channel_shell_request_function = &ConnectionCallbacks::Shell;
  cb.channel_exec_request_function = &ConnectionCallbacks::Exec;
  cb.channel_env_request_function = &ConnectionCallbacks::Env;
  cb.channel_pty_window_change_function = &ConnectionCallbacks::WindowChange;
  cb.channel_data_function = &ConnectionCallbacks::Data;
  cb.channel_eof_function = &ConnectionCallbacks::Eof;
  cb.channel_close_function = &ConnectionCallbacks::Close;
  ssh_callbacks_init(&cb);
  ssh_set_channel_callbacks(channel, &cb);
  channels_.push_back(std::move(ch));
  return channel;
}

// Called from a channel request callback: no libssh calls and no changes
// to the event here; Pump registers the fds.
bool Connection::StartProgram(Channel& ch, ChannelKind kind,
                              const std::string& command) {
  if (ch.started || ch.close_sent) return false;
  ChildSpec spec;
  spec.shell = ctx_->shell;
  spec.command = command;
  spec.home = ctx_->home;
  spec.pty = ch.pty;
  spec.width = ch.width;
  spec.height = ch.height;
  spec.env = {"USER=" + ctx_->user, "LOGNAME=" + ctx_->user,
              "HOME=" + ctx_->home, "SHELL=" + ctx_->shell,
              geteuid() == 0
                  ? "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                    "/sbin:/bin"
                  : "PATH=/usr/local/bin:/usr/bin:/bin"};
  if (ch.pty && !ch.term.empty()) spec.env.push_back("TERM=" + ch.term);
  spec.env.insert(spec.env.end(), ch.env.begin(), ch.env.end());
  Result<std::unique_ptr<ChildProcess>> child = ChildProcess::Spawn(spec);
  if (!child.ok()) {
    MEZ_LOG(kError) << "ssh: cannot start a program for " << remote_ << ": "
                    << child.status().ToString();
    return false;
  }
  ch.child = std::move(child).value();
  ch.started = true;
  ch.err_eof = ch.pty;  // A pty merges stderr into the output.
  if (ctx_->options->tap_factory) {
    ChannelInfo info;
    info.kind = kind;
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
    ch.tap = ctx_->options->tap_factory(info);
  }
  return true;
}

bool Connection::NeedsQuickPoll() const {
  for (const auto& ch : channels_) {
    if (!ch->pending_in.empty()) return true;
    if (ch->child && !ch->pid_registered && !ch->exited) return true;
    // Output held back for want of window is not polled: look again soon.
    if (ch->child && ((!ch->out_eof && !ch->out_registered) ||
                      (!ch->err_eof && !ch->err_registered))) {
      return true;
    }
  }
  return false;
}

void Connection::Unregister(Channel& ch) {
  if (!ch.child || event_ == nullptr) return;
  if (ch.out_registered) ssh_event_remove_fd(event_, ch.child->output_fd());
  if (ch.err_registered) ssh_event_remove_fd(event_, ch.child->error_fd());
  if (ch.pid_registered) ssh_event_remove_fd(event_, ch.child->pid_fd());
  ch.out_registered = ch.err_registered = ch.pid_registered = false;
}

void Connection::DrainOutput(Channel& ch, bool is_err) {
  int fd = is_err ? ch.child->error_fd() : ch.child->output_fd();
  bool& eof = is_err ? ch.err_eof : ch.out_eof;
  bool& registered = is_err ? ch.err_registered : ch.out_registered;
  if (eof || fd < 0) return;
  char buf[16 * 1024];
  size_t total = 0;
  while (total < kMaxReadPerRound) {
    // Read no more than the client's window takes, so that writing never
    // blocks; a stalled client stalls the program (backpressure).
    size_t window = ssh_channel_window_size(ch.channel);
    if (window == 0 && !ch.client_closed) break;
    size_t want = std::min(sizeof(buf), window > 0 ? window : sizeof(buf));
    ssize_t n = read(fd, buf, want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {  // EOF; EIO from a pty master whose slave hung up.
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
    std::string_view bytes(buf, static_cast<size_t>(n));
    if (ch.tap) {
      ch.tap->OnData(is_err ? Direction::kErr : Direction::kOut, bytes,
                     NowMicros(ctx_));
    }
    if (!ch.client_closed) {
      if (is_err) {
        ssh_channel_write_stderr(ch.channel, buf, static_cast<uint32_t>(n));
      } else {
        ssh_channel_write(ch.channel, buf, static_cast<uint32_t>(n));
      }
    }
    total += static_cast<size_t>(n);
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

void Connection::Pump(Channel& ch) {
  if (ch.child) {
    if (!ch.pid_registered && !ch.exited && ch.child->pid_fd() >= 0) {
      ssh_event_add_fd(event_, ch.child->pid_fd(), POLLIN, &WakeOnly, nullptr);
      ch.pid_registered = true;
    }
    // Client -> program.
    while (!ch.pending_in.empty() && ch.child->input_fd() >= 0) {
      ssize_t n = write(ch.child->input_fd(), ch.pending_in.data(),
                        ch.pending_in.size());
      if (n > 0) {
        ch.pending_in.erase(0, static_cast<size_t>(n));
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && errno == EAGAIN) {
        break;
      } else {
        ch.pending_in.clear();  // The program stopped reading (EPIPE).
      }
    }
    if (ch.client_eof && ch.pending_in.empty() && !ch.pty) {
      ch.child->CloseInput();
    }
    // Reap before draining, so that after the exit everything the program
    // wrote is read.
    if (!ch.exited && ch.child->Reap(&ch.exit_status)) {
      ch.exited = true;
      if (ch.pid_registered) ssh_event_remove_fd(event_, ch.child->pid_fd());
      ch.pid_registered = false;
    }
    DrainOutput(ch, false);
    if (!ch.pty) DrainOutput(ch, true);
    // With a pty, the session ends with the shell even if a background job
    // still holds the terminal (as sshd does); pipes are read to EOF.
    bool drained = ch.pty || (ch.out_eof && ch.err_eof);
    if (ch.exited && drained && !ch.close_sent) Finish(ch);
  }
  if (ch.tap && !ch.close_sent && !ch.client_closed) {
    std::string reason = ch.tap->EndReason();
    if (!reason.empty()) {
      MEZ_LOG(kWarning) << "ssh: ending a session of " << remote_ << ": "
                        << reason;
      std::string line = "\r\n" + reason + "\r\n";
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
