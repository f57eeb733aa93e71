#include "libmez/ssh/connection.h"

#include <errno.h>
#include <openssl/rand.h>
#include <poll.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "libmez/auth/ssh_cert.h"
#include "libmez/ssh/channel.h"
#include "libmez/util/encoding.h"
#include "libmez/util/log.h"

namespace mez::ssh {
namespace {

std::string RandomConnectionId() {
  unsigned char bytes[16];
  MEZ_CHECK(RAND_bytes(bytes, sizeof(bytes)) == 1);
  return HexEncode(std::string_view(reinterpret_cast<char*>(bytes), 16));
}

}  // namespace

// libssh's session callbacks, forwarding to Connection.
struct ConnectionCallbacks {
  static int AuthPubkey(ssh_session, const char* user, ssh_key pubkey,
                        char signature_state, void* userdata) {
    return static_cast<Connection*>(userdata)->OnAuthPubkey(user, pubkey,
                                                            signature_state);
  }
  static ssh_channel ChannelOpen(ssh_session, void* userdata) {
    return static_cast<Connection*>(userdata)->OnChannelOpen();
  }
  static int Message(ssh_session, ssh_message message, void* userdata) {
    return static_cast<Connection*>(userdata)->OnMessage(message);
  }
};

int ChannelCallbacks::Data(ssh_session, ssh_channel, void* data, uint32_t len,
                           int is_stderr, void* userdata) {
  Channel& ch = *static_cast<Channel*>(userdata);
  bool open = ch.tcpip ? !ch.in_done : ch.child != nullptr;
  if (is_stderr || !open || ch.client_eof || ch.close_sent) {
    return static_cast<int>(len);  // Nobody to deliver to: discard.
  }
  // Leaving bytes unconsumed keeps the client's window shut until the
  // program catches up.
  size_t room =
      kMaxPendingInput - std::min(kMaxPendingInput, ch.pending_in.size());
  size_t n = std::min<size_t>(len, room);
  if (n < len) ch.leftover = true;
  if (n == 0) return 0;
  std::string_view bytes(static_cast<const char*>(data), n);
  // A destination's bytes are reported when they reach it (PumpTcpip):
  // an unreachable one gets none.
  if (ch.tap && !ch.tcpip) {
    ch.tap->OnData(Direction::kIn, bytes, NowMicros(ch.conn->ctx_));
  }
  ch.pending_in.append(bytes);
  ch.conn->input_arrived_ = true;
  return static_cast<int>(n);
}

void ChannelCallbacks::Eof(ssh_session, ssh_channel, void* userdata) {
  static_cast<Channel*>(userdata)->client_eof = true;
}

void ChannelCallbacks::Close(ssh_session, ssh_channel, void* userdata) {
  static_cast<Channel*>(userdata)->client_closed = true;
}

Connection::Connection(const ServerContext* ctx, ssh_session session,
                       std::string remote, std::string target)
    : ctx_(ctx),
      session_(session),
      remote_(std::move(remote)),
      target_(std::move(target)),
      connection_id_(RandomConnectionId()),
      read_buf_(std::make_unique_for_overwrite<char[]>(kReadChunk)) {}

Connection::~Connection() {
  for (auto& ch : channels_) {
    Unregister(*ch);
    ch->child.reset();  // Hangs up on a program still running.
    if (ch->sock >= 0) close(ch->sock);
    ch->sock = -1;
    if (ch->tcpip && ch->tap) {
      // The connection's end closes a forwarded connection like a close.
      int64_t now = NowMicros(ctx_);
      if (ch->connected && !ch->in_done) {
        ch->tap->OnData(Direction::kIn, "", now);
      }
      if (ch->connected && !ch->sock_eof) {
        ch->tap->OnData(Direction::kOut, "", now);
      }
      ch->tap->OnExit(ch->connected ? 0 : 1, now);
    }
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
  if (authenticated_ && ctx_->options->on_connection_end) {
    ctx_->options->on_connection_end(connection_id_);
  }
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
  // Channel opens other than "session" (direct-tcpip) arrive here.
  ssh_set_message_callback(session_, &ConnectionCallbacks::Message, this);
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
    ssh_event_dopoll(event_, ReadyNow() ? 0 : NeedsQuickPoll() ? 10 : 200);
    // By index: callbacks run inside Pump (libssh handles packets while
    // it writes) and may append channels.
    input_arrived_ = false;
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
    ctx_->options->on_refusal(
        AuthRefusal{remote_, login, key_id, reason, target_});
  }
}

void Connection::TellClient(const std::string& text) {
  // OpenSSH shows a banner at its default LogLevel (INFO), filtering
  // control characters out.
  std::string line = "mezd: " + text + "\n";
  ssh_string banner = ssh_string_from_char(line.c_str());
  if (banner == nullptr) return;
  if (ssh_send_issue_banner(session_, banner) != SSH_OK) {
    MEZ_LOG(kDebug) << "ssh: cannot send a banner to " << remote_;
  }
  ssh_string_free(banner);
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
  const LoginPolicy& policy = *ctx_->options->login_policy;
  int64_t now = ctx_->clock->WallMicros() / 1'000'000;
  Status checked = auth::CheckSshCert(
      *cert, ctx_->options->trusted_user_ca_blob, auth::kSshUserCert,
      policy.Principal(login, *cert), now);
  if (!checked.ok()) {
    Refuse(login, cert->key_id, checked.message());
    return SSH_AUTH_DENIED;
  }
  for (const std::string& ext : ctx_->options->required_cert_extensions) {
    if (cert->extensions.count(ext) == 0) {
      Refuse(login, cert->key_id,
             "the certificate lacks the " + ext +
                 " extension (get certificates from mezrecd: msh ssh)");
      return SSH_AUTH_DENIED;
    }
  }
  // From here on the certificate is the cluster's, valid, for this login.
  // What is refused now is told to the client as well (a userauth banner:
  // `Permission denied` alone hides a login missing on the host), but only
  // once it signed: a certificate alone (public) learns nothing more.
  Status refused = Status::Ok();
  if (ctx_->options->check_certificate) {
    refused = ctx_->options->check_certificate(login, *cert);
  }
  std::unique_ptr<Login> admitted;
  if (refused.ok()) {
    Result<std::unique_ptr<Login>> r = policy.Admit(login, *cert);
    if (r.ok()) {
      admitted = std::move(r).value();
    } else {
      refused = r.status();
    }
  }
  if (!refused.ok()) {
    if (signature_state == SSH_PUBLICKEY_STATE_NONE) {
      return SSH_AUTH_SUCCESS;  // Decided once the client has signed.
    }
    Refuse(login, cert->key_id, refused.message());
    TellClient("refused login \"" + login + "\": " + refused.message());
    return SSH_AUTH_DENIED;
  }
  if (signature_state == SSH_PUBLICKEY_STATE_VALID) {
    authenticated_ = true;
    login_ = login;
    admitted_ = std::move(admitted);
    key_id_ = cert->key_id;
    cert_extensions_ = cert->extensions;
    MEZ_LOG(kInfo) << "ssh: " << remote_ << " authenticated as \"" << login
                   << "\"" << policy.Describe(target_)
                   << " (certificate key id \"" << key_id_ << "\", connection "
                   << connection_id_ << ")";
  }
  return SSH_AUTH_SUCCESS;
}
int Connection::OnMessage(ssh_message message) {
  if (ssh_message_type(message) == SSH_REQUEST_CHANNEL_OPEN &&
      ssh_message_subtype(message) == SSH_CHANNEL_DIRECT_TCPIP) {
    return OnDirectTcpip(message);
  }
  return 1;
}

bool Connection::NeedsQuickPoll() const {
  for (const auto& ch : channels_) {
    if (ch->leftover && !ch->close_sent) return true;
    if (ch->tcpip) {
      if (ch->close_sent) continue;
      if (ch->client_closed) return true;
      // Destination bytes held back for want of window.
      if (ch->connected && !ch->sock_eof && !(ch->sock_events & POLLIN)) {
        return true;
      }
      continue;
    }
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

bool Connection::ReadyNow() const {
  if (input_arrived_) return true;
  for (const auto& ch : channels_) {
    if (ch->close_sent || ch->client_closed) continue;
    if (ssh_channel_window_size(ch->channel) == 0) continue;
    if (ch->tcpip) {
      if (ch->connected && !ch->sock_eof && !(ch->sock_events & POLLIN)) {
        return true;
      }
    } else if (ch->child) {
      // Output held back for want of window (DrainOutput polls it again).
      if ((!ch->out_eof && !ch->out_registered &&
           ch->child->output_fd() >= 0) ||
          (!ch->err_eof && !ch->err_registered && ch->child->error_fd() >= 0)) {
        return true;
      }
    }
  }
  return false;
}

void Connection::Unregister(Channel& ch) {
  SetSocketPoll(ch, 0);
  if (!ch.child || event_ == nullptr) return;
  if (ch.out_registered) ssh_event_remove_fd(event_, ch.child->output_fd());
  if (ch.err_registered) ssh_event_remove_fd(event_, ch.child->error_fd());
  if (ch.pid_registered) ssh_event_remove_fd(event_, ch.child->exit_fd());
  ch.out_registered = ch.err_registered = ch.pid_registered = false;
}

// Takes client bytes that the data callback left in libssh's buffer (it
// calls back only when a packet arrives, and a full buffer stops those).
// All of them: libssh 0.10 grants the client more window on every read
// once half of it is used, whatever it still buffers, so partial reads
// would let its buffer grow without bound. pending_in may then exceed
// kMaxPendingInput by what libssh held; no more is read until it is below.
void Connection::PullLeftover(Channel& ch) {
  if (!ch.leftover || ch.pending_in.size() >= kMaxPendingInput) return;
  ch.leftover = false;
  int avail = ssh_channel_poll(ch.channel, 0);
  char* buf = read_buf_.get();
  while (avail > 0) {
    size_t want = std::min(kReadChunk, static_cast<size_t>(avail));
    int n = ssh_channel_read_nonblocking(ch.channel, buf,
                                         static_cast<uint32_t>(want), 0);
    if (n <= 0) break;
    avail -= n;
    if (ch.tcpip && ch.in_done) continue;  // The destination is gone.
    std::string_view bytes(buf, static_cast<size_t>(n));
    // Session input is reported on arrival, tcpip input on delivery.
    if (ch.tap && !ch.tcpip) {
      ch.tap->OnData(Direction::kIn, bytes, NowMicros(ctx_));
    }
    ch.pending_in.append(bytes);
  }
}

void Connection::Pump(Channel& ch) {
  if (ch.tcpip) {
    PumpTcpip(ch);
    EndTcpipForTap(ch);
  } else {
    PumpSession(ch);
  }
}

}  // namespace mez::ssh
