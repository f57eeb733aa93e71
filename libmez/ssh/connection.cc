#include "libmez/ssh/connection.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "libmez/auth/ssh_cert.h"
#include "libmez/ssh/byte_queue.h"
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
// One write to the client from a program or a destination, gathered from
// as many reads as it takes: libssh cuts it into packets, then flushes,
// and with output still queued polls, on every channel write, so bulk
// output costs few system calls only in large writes.
constexpr size_t kReadChunk = 256 * 1024;
// How long a direct-tcpip open may hold the connection's thread while the
// destination is connected. A connect that settles by then is answered
// exactly (a failure refuses the open); a slower one is accepted and
// finishes in the loop, and its failure closes the channel instead.
constexpr int kOpenWaitMs = 500;
// How long bytes still owed to a destination may be flushed after the
// client closed a direct-tcpip channel.
constexpr auto kTcpipLinger = std::chrono::seconds(10);

using SteadyTime = std::chrono::steady_clock::time_point;

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
  std::unique_ptr<Program> child;
  std::unique_ptr<ChannelTap> tap;
  ByteQueue pending_in;
  // Set before a program ran: Pump writes it to the user's stderr and
  // closes the channel with exit status 255.
  std::string end_message;
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

  // direct-tcpip only.
  bool tcpip = false;
  std::string destination;  // "host:port", for logs
  int sock = -1;
  short sock_events = 0;  // registered in the event; 0: not registered
  int polled_sock = -1;   // the fd registered with sock_events
  std::shared_ptr<void> stream_keeper;  // OpenedStream::keeper
  bool connecting = false;
  bool connected = false;
  std::vector<std::pair<sockaddr_storage, socklen_t>> addrs;
  size_t next_addr = 0;
  int connect_errno = 0;
  SteadyTime connect_deadline;
  bool lingering = false;  // flushing to the destination after the close
  SteadyTime linger_deadline;
  bool leftover = false;  // libssh may hold client bytes we did not take
  bool in_done = false;   // client -> destination ended (SHUT_WR sent)
  bool sock_eof = false;  // destination -> client ended
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

std::string RandomConnectionId() {
  unsigned char bytes[16];
  MEZ_CHECK(RAND_bytes(bytes, sizeof(bytes)) == 1);
  return HexEncode(std::string_view(reinterpret_cast<char*>(bytes), 16));
}

Result<LoginUser> LookUpLogin(const std::string& login) {
  struct passwd pw;
  struct passwd* found = nullptr;
  std::vector<char> buf(16384);
  int err = getpwnam_r(login.c_str(), &pw, buf.data(), buf.size(), &found);
  if (err != 0) return ErrnoStatus("getpwnam", err);
  if (found == nullptr) {
    return NotFound("the login \"" + login +
                    "\" does not exist on this host (no passwd entry)");
  }
  LoginUser user;
  user.name = pw.pw_name;
  user.uid = pw.pw_uid;
  user.gid = pw.pw_gid;
  user.home = pw.pw_dir != nullptr ? pw.pw_dir : "";
  user.shell =
      pw.pw_shell != nullptr && pw.pw_shell[0] == '/' ? pw.pw_shell : "/bin/sh";
  return user;
}

gid_t TtyGroup(gid_t fallback) {
  struct group gr;
  struct group* found = nullptr;
  std::vector<char> buf(16384);
  if (getgrnam_r("tty", &gr, buf.data(), buf.size(), &found) == 0 &&
      found != nullptr) {
    return gr.gr_gid;
  }
  return fallback;
}

// Starts a non-blocking connect to the next address that does not fail at
// once. False when none is left (ch.connect_errno says why).
bool StartConnect(Channel& ch) {
  while (ch.next_addr < ch.addrs.size()) {
    const auto& [addr, len] = ch.addrs[ch.next_addr++];
    int fd =
        socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      ch.connect_errno = errno;
      continue;
    }
    if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), len) == 0 ||
        errno == EINPROGRESS) {
      ch.sock = fd;
      return true;
    }
    ch.connect_errno = errno;
    close(fd);
  }
  return false;
}

// Advances a connect in progress without blocking: sets ch.connected, or
// moves on to the next address, or clears ch.connecting when all failed
// or the deadline passed.
void ContinueConnect(Channel& ch) {
  while (ch.connecting) {
    if (ch.sock >= 0) {
      pollfd p = {ch.sock, POLLOUT, 0};
      if (poll(&p, 1, 0) == 0) {
        if (std::chrono::steady_clock::now() < ch.connect_deadline) return;
        ch.connect_errno = ETIMEDOUT;
      } else {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(ch.sock, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
          err = errno;
        }
        if (err == 0) {
          ch.connecting = false;
          ch.connected = true;
          return;
        }
        ch.connect_errno = err;
      }
      close(ch.sock);
      ch.sock = -1;
      if (ch.connect_errno == ETIMEDOUT) {
        ch.connecting = false;
        return;
      }
    }
    if (!StartConnect(ch)) ch.connecting = false;
  }
}

// Resolves and starts connecting `ch` to host:port, waiting up to
// kOpenWaitMs for the outcome. "" when connected or still connecting;
// otherwise why it failed.
std::string ConnectWithin(Channel& ch, const std::string& host, int port,
                          int timeout_ms) {
  addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string port_text = std::to_string(port);
  int gai = getaddrinfo(host.c_str(), port_text.c_str(), &hints, &found);
  if (gai != 0) return gai_strerror(gai);
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_addrlen > sizeof(sockaddr_storage)) continue;
    sockaddr_storage addr = {};
    memcpy(&addr, a->ai_addr, a->ai_addrlen);
    ch.addrs.emplace_back(addr, a->ai_addrlen);
  }
  freeaddrinfo(found);

  auto start = std::chrono::steady_clock::now();
  ch.connect_deadline = start + std::chrono::milliseconds(timeout_ms);
  auto wait_end = std::min(ch.connect_deadline,
                           start + std::chrono::milliseconds(kOpenWaitMs));
  ch.connecting = true;
  ContinueConnect(ch);
  while (ch.connecting && std::chrono::steady_clock::now() < wait_end) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        wait_end - std::chrono::steady_clock::now());
    pollfd p = {ch.sock, POLLOUT, 0};
    poll(&p, 1, static_cast<int>(std::max<int64_t>(1, left.count())));
    ContinueConnect(ch);
  }
  if (!ch.connecting && !ch.connected) {
    return ch.connect_errno != 0 ? strerror(ch.connect_errno) : "no address";
  }
  return "";
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
  static int Message(ssh_session, ssh_message message, void* userdata) {
    return static_cast<Connection*>(userdata)->OnMessage(message);
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
  static void Eof(ssh_session, ssh_channel, void* userdata) {
    static_cast<Channel*>(userdata)->client_eof = true;
  }
  static void Close(ssh_session, ssh_channel, void* userdata) {
    static_cast<Channel*>(userdata)->client_closed = true;
  }
};

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
  // A jump host takes the Mezite user name (the key id) for a login: the
  // principals name logins on the nodes behind it, not on the jump host.
  std::string principal = login;
  bool jump_host = ctx_->options->jump_host_only;
  if (jump_host && login == cert->key_id && !cert->principals.empty() &&
      std::find(cert->principals.begin(), cert->principals.end(), login) ==
          cert->principals.end()) {
    principal = cert->principals.front();
  }
  Status checked =
      auth::CheckSshCert(*cert, ctx_->options->trusted_user_ca_blob,
                         auth::kSshUserCert, principal, now);
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
  if (ctx_->options->check_certificate) {
    Status accepted = ctx_->options->check_certificate(login, *cert);
    if (!accepted.ok()) {
      Refuse(login, cert->key_id, accepted.message());
      return SSH_AUTH_DENIED;
    }
  }
  if (jump_host) {
    if (signature_state == SSH_PUBLICKEY_STATE_VALID) {
      authenticated_ = true;
      login_ = login;
      key_id_ = cert->key_id;
      cert_extensions_ = cert->extensions;
      MEZ_LOG(kInfo) << "ssh: " << remote_ << " authenticated as \"" << login
                     << "\" on the jump host (certificate key id \"" << key_id_
                     << "\", connection " << connection_id_ << ")";
    }
    return SSH_AUTH_SUCCESS;
  }
  if (ctx_->options->launch_program) {
    // Logins are accounts on the node behind, checked there; here the
    // certificate must name it (CheckSshCert did).
    if (signature_state == SSH_PUBLICKEY_STATE_VALID) {
      authenticated_ = true;
      login_ = login;
      key_id_ = cert->key_id;
      cert_extensions_ = cert->extensions;
      MEZ_LOG(kInfo) << "ssh: " << remote_ << " authenticated as \"" << login
                     << "\" for " << (target_.empty() ? "?" : target_)
                     << " (certificate key id \"" << key_id_
                     << "\", connection " << connection_id_ << ")";
    }
    return SSH_AUTH_SUCCESS;
  }
  if (!ctx_->is_root && login != ctx_->user) {
    Refuse(login, cert->key_id,
           "mezd runs as " + ctx_->user + " and can only start sessions for " +
               ctx_->user + ", not for " + login +
               "; run mezd as root to allow other logins");
    return SSH_AUTH_DENIED;
  }
  Result<LoginUser> entry = LookUpLogin(login);
  if (!entry.ok()) {
    Refuse(login, cert->key_id, entry.status().message());
    return SSH_AUTH_DENIED;
  }
  if (signature_state == SSH_PUBLICKEY_STATE_VALID) {
    authenticated_ = true;
    login_ = login;
    user_ = std::move(entry).value();
    key_id_ = cert->key_id;
    cert_extensions_ = cert->extensions;
    MEZ_LOG(kInfo) << "ssh: " << remote_ << " authenticated as \"" << login
                   << "\" (certificate key id \"" << key_id_
                   << "\", connection " << connection_id_ << ")";
  }
  return SSH_AUTH_SUCCESS;
}

ssh_channel Connection::OnChannelOpen() {
  if (!authenticated_ || channels_.size() >= kMaxChannels) return nullptr;
  if (ctx_->options->jump_host_only) {
    MEZ_LOG(kInfo) << "ssh: refused a session channel of " << remote_
                   << ": this server is a jump host (use ssh -J)";
    return nullptr;
  }
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

int Connection::OnMessage(ssh_message message) {
  if (ssh_message_type(message) == SSH_REQUEST_CHANNEL_OPEN &&
      ssh_message_subtype(message) == SSH_CHANNEL_DIRECT_TCPIP) {
    return OnDirectTcpip(message);
  }
  return 1;
}

// Called from libssh's message callback, which must answer the open before
// it returns (libssh frees the message): the connect is waited for here,
// but only up to kOpenWaitMs and without any libssh call or change to the
// event; PumpTcpip takes over from there.
int Connection::OnDirectTcpip(ssh_message message) {
  const char* host = ssh_message_channel_request_open_destination(message);
  const char* src = ssh_message_channel_request_open_originator(message);
  int port = ssh_message_channel_request_open_destination_port(message);
  int src_port = ssh_message_channel_request_open_originator_port(message);
  std::string dst_host = host != nullptr ? host : "";
  std::string destination =
      (dst_host.find(':') != std::string::npos ? "[" + dst_host + "]"
                                               : dst_host) +
      ":" + std::to_string(port);
  auto refuse = [&](const std::string& why) {
    MEZ_LOG(kInfo) << "ssh: refused a direct-tcpip channel of " << remote_
                   << " (login \"" << login_ << "\") to " << destination << ": "
                   << why;
    return 1;
  };
  if (!authenticated_) return refuse("not authenticated");
  if (!ctx_->options->allow_tcpip_forwarding) {
    return refuse("port forwarding is disabled on this server");
  }
  if (cert_extensions_.count("permit-port-forwarding") == 0) {
    return refuse(
        "the certificate does not carry permit-port-forwarding (key id \"" +
        key_id_ + "\")");
  }
  if (channels_.size() >= kMaxChannels) {
    return refuse("too many channels on this connection");
  }
  if (dst_host.empty() || port <= 0 || port > 65535) {
    return refuse("not a valid destination");
  }

  ChannelInfo info;
  info.kind = ChannelKind::kTcpip;
  info.connection_id = connection_id_;
  info.login = login_;
  info.key_id = key_id_;
  info.remote = remote_;
  info.src_host = src != nullptr ? src : "";
  info.src_port =
      static_cast<uint16_t>(src_port > 0 && src_port <= 65535 ? src_port : 0);
  info.dst_host = dst_host;
  info.dst_port = static_cast<uint16_t>(port);
  info.start_micros = NowMicros(ctx_);
  info.cert_extensions = cert_extensions_;
  info.target = target_;
  if (ctx_->options->resolve_tcpip) {
    Result<TcpipDestination> resolved = ctx_->options->resolve_tcpip(info);
    if (!resolved.ok()) return refuse(resolved.status().message());
    if (resolved->host.empty() || resolved->port == 0) {
      return refuse("the resolver gave no destination");
    }
    dst_host = resolved->host;
    port = resolved->port;
    destination +=
        " (" +
        (dst_host.find(':') != std::string::npos ? "[" + dst_host + "]"
                                                 : dst_host) +
        ":" + std::to_string(port) + ")";
  }

  auto ch = std::make_unique<Channel>();
  ch->conn = this;
  ch->tcpip = true;
  ch->destination = destination;
  if (ctx_->options->tap_factory) ch->tap = ctx_->options->tap_factory(info);
  auto fail = [&](const std::string& why) {
    if (ch->tap) ch->tap->OnExit(1, NowMicros(ctx_));
    return refuse("cannot connect: " + why);
  };

  OpenedStream opened;
  if (ctx_->options->open_tcpip) {
    Result<OpenedStream> made = ctx_->options->open_tcpip(info);
    if (!made.ok()) return fail(made.status().message());
    opened = std::move(made).value();
  }
  if (opened.fd >= 0) {
    ch->sock = opened.fd;
    ch->stream_keeper = std::move(opened.keeper);
    int flags = fcntl(ch->sock, F_GETFL);
    if (flags >= 0) fcntl(ch->sock, F_SETFL, flags | O_NONBLOCK);
    ch->connected = true;
  } else if (std::string why = ConnectWithin(*ch, dst_host, port,
                                             ctx_->options->connect_timeout_ms);
             !why.empty()) {
    return fail(why);
  }

  ssh_channel channel = ssh_message_channel_request_open_reply_accept(message);
  if (channel == nullptr) {
    if (ch->sock >= 0) close(ch->sock);
    if (ch->tap) ch->tap->OnExit(1, NowMicros(ctx_));
    MEZ_LOG(kError) << "ssh: cannot accept a direct-tcpip channel of "
                    << remote_ << ": " << ssh_get_error(session_);
    return 0;
  }
  ch->channel = channel;
  ssh_channel_callbacks_struct& cb = ch->callbacks;
  cb.userdata = ch.get();
  cb.channel_data_function = &ConnectionCallbacks::Data;
  cb.channel_eof_function = &ConnectionCallbacks::Eof;
  cb.channel_close_function = &ConnectionCallbacks::Close;
  ssh_callbacks_init(&cb);
  ssh_set_channel_callbacks(channel, &cb);
  MEZ_LOG(kInfo) << "ssh: " << remote_ << " (login \"" << login_
                 << "\") forwards to " << destination
                 << (ch->connected ? "" : " (still connecting)");
  channels_.push_back(std::move(ch));
  return 0;
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
  ChannelInfo info = SessionInfo(ch, kind, command);
  std::unique_ptr<Program> program;
  if (ctx_->options->launch_program) {
    std::vector<std::string> env = ch.env;
    if (ch.pty && !ch.term.empty()) env.push_back("TERM=" + ch.term);
    Result<std::unique_ptr<Program>> made =
        ctx_->options->launch_program(info, env);
    if (!made.ok()) {
      MEZ_LOG(kWarning) << "ssh: cannot start a session of " << remote_
                        << " for " << (target_.empty() ? "?" : target_) << ": "
                        << made.status().message();
      return EndBeforeStart(ch, made.status().message());
    }
    program = std::move(made).value();
  }
  if (ctx_->options->tap_factory) ch.tap = ctx_->options->tap_factory(info);
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
  ChildSpec spec;
  spec.shell = user_.shell;
  spec.command = command;
  spec.home = user_.home;
  spec.pty = ch.pty;
  spec.width = ch.width;
  spec.height = ch.height;
  spec.env = {"USER=" + user_.name, "LOGNAME=" + user_.name,
              "HOME=" + user_.home, "SHELL=" + user_.shell,
              user_.uid == 0
                  ? "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                    "/sbin:/bin"
                  : "PATH=/usr/local/bin:/usr/bin:/bin"};
  if (ctx_->is_root) {
    spec.change_user = true;
    spec.uid = user_.uid;
    spec.gid = user_.gid;
    spec.groups = GroupsOfUser(user_.name, user_.gid);
    spec.tty_gid = TtyGroup(user_.gid);
  }
  if (ch.pty && !ch.term.empty()) spec.env.push_back("TERM=" + ch.term);
  spec.env.insert(spec.env.end(), ch.env.begin(), ch.env.end());
  Result<std::unique_ptr<ChildProcess>> child = ChildProcess::Spawn(spec);
  if (!child.ok()) {
    MEZ_LOG(kError) << "ssh: cannot start a program for " << remote_ << ": "
                    << child.status().ToString();
    ch.tap.reset();
    return false;
  }
  ch.child = std::move(child).value();
  ch.started = true;
  ch.err_eof = ch.pty;  // A pty merges stderr into the output.
  return true;
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

void Connection::SetSocketPoll(Channel& ch, short events) {
  if (ch.sock < 0 || event_ == nullptr) events = 0;
  if (events == ch.sock_events && ch.sock == ch.polled_sock) return;
  if (ch.sock_events != 0) ssh_event_remove_fd(event_, ch.polled_sock);
  if (events != 0) {
    ssh_event_add_fd(event_, ch.sock, events, &WakeOnly, nullptr);
  }
  ch.sock_events = events;
  ch.polled_sock = events != 0 ? ch.sock : -1;
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

// Ends a direct-tcpip channel: OnExit(0) when the destination was reached
// (ending the directions still open first), OnExit(1) when not.
void Connection::CloseTcpip(Channel& ch, bool reached) {
  SetSocketPoll(ch, 0);
  if (ch.sock >= 0) close(ch.sock);
  ch.sock = -1;
  if (ch.tap) {
    int64_t now = NowMicros(ctx_);
    if (reached && !ch.in_done) ch.tap->OnData(Direction::kIn, "", now);
    if (reached && !ch.sock_eof) ch.tap->OnData(Direction::kOut, "", now);
    ch.tap->OnExit(reached ? 0 : 1, now);
    ch.tap.reset();
  }
  ch.in_done = ch.sock_eof = true;
  ch.pending_in.clear();
  if (!ch.close_sent) {
    ssh_channel_close(ch.channel);
    ch.close_sent = true;
  }
}

void Connection::PumpTcpip(Channel& ch) {
  if (ch.close_sent) return;
  if (ch.connecting) {
    SetSocketPoll(ch, 0);  // The connect may move on to another socket.
    ContinueConnect(ch);
    if (ch.connecting && !ch.client_closed) {
      SetSocketPoll(ch, POLLOUT);
      return;
    }
    if (!ch.connected) {
      MEZ_LOG(kInfo) << "ssh: direct-tcpip of " << remote_ << " to "
                     << ch.destination << " failed: "
                     << (ch.client_closed ? "the client closed the channel"
                                          : strerror(ch.connect_errno));
      CloseTcpip(ch, false);
      return;
    }
  }
  if (ch.client_closed) {
    // Nothing more comes from the client and nothing can go back to it;
    // what it sent may still be flushed to the destination for a while.
    if (!ch.lingering) {
      ch.lingering = true;
      ch.client_eof = true;
      ch.linger_deadline = std::chrono::steady_clock::now() + kTcpipLinger;
    }
    if (std::chrono::steady_clock::now() > ch.linger_deadline) {
      CloseTcpip(ch, true);
      return;
    }
  }
  int64_t now = NowMicros(ctx_);
  PullLeftover(ch);
  // Client -> destination.
  while (!ch.pending_in.empty() && !ch.in_done) {
    ssize_t n =
        send(ch.sock, ch.pending_in.data(), ch.pending_in.size(), MSG_NOSIGNAL);
    if (n > 0) {
      if (ch.tap) {
        ch.tap->OnData(
            Direction::kIn,
            std::string_view(ch.pending_in.data(), static_cast<size_t>(n)),
            now);
      }
      ch.pending_in.consume(static_cast<size_t>(n));
      PullLeftover(ch);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && errno == EAGAIN) {
      break;
    } else {
      ch.pending_in.clear();  // The destination stopped reading.
      ch.in_done = true;
      if (ch.tap) ch.tap->OnData(Direction::kIn, "", now);
    }
  }
  if (ch.client_eof && !ch.in_done && ch.pending_in.empty() && !ch.leftover) {
    shutdown(ch.sock, SHUT_WR);
    ch.in_done = true;
    if (ch.tap) ch.tap->OnData(Direction::kIn, "", now);
  }
  // Destination -> client, no more than the client's window takes.
  char* buf = read_buf_.get();
  const size_t buf_size = kReadChunk;
  size_t total = 0;
  while (!ch.sock_eof && total < kMaxReadPerRound) {
    size_t window =
        ch.client_closed ? buf_size : ssh_channel_window_size(ch.channel);
    if (window == 0) break;
    ssize_t n = recv(ch.sock, buf, std::min(buf_size, window), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      ch.sock_eof = true;
      if (ch.tap) ch.tap->OnData(Direction::kOut, "", NowMicros(ctx_));
      if (!ch.client_closed) ssh_channel_send_eof(ch.channel);
      break;
    }
    if (!ch.client_closed) {
      // Bytes the client no longer takes are not reported either.
      if (ch.tap) {
        ch.tap->OnData(Direction::kOut,
                       std::string_view(buf, static_cast<size_t>(n)),
                       NowMicros(ctx_));
      }
      ssh_channel_write(ch.channel, buf, static_cast<uint32_t>(n));
    }
    total += static_cast<size_t>(n);
  }
  if (ch.in_done && (ch.sock_eof || ch.client_closed)) {
    CloseTcpip(ch, true);
    return;
  }
  short events = 0;
  if (!ch.pending_in.empty() && !ch.in_done) events |= POLLOUT;
  if (!ch.sock_eof &&
      (ch.client_closed || ssh_channel_window_size(ch.channel) > 0)) {
    events |= POLLIN;
  }
  SetSocketPoll(ch, events);
}

void Connection::Pump(Channel& ch) {
  if (ch.tcpip) {
    PumpTcpip(ch);
    if (ch.tap && !ch.close_sent && !ch.client_closed) {
      std::string reason = ch.tap->EndReason();
      if (!reason.empty()) {
        MEZ_LOG(kWarning) << "ssh: ending a direct-tcpip channel of " << remote_
                          << " to " << ch.destination << ": " << reason;
        SetSocketPoll(ch, 0);
        if (ch.sock >= 0) close(ch.sock);
        ch.sock = -1;
        ch.tap.reset();
        ssh_channel_close(ch.channel);
        ch.close_sent = true;
      }
    }
    return;
  }
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
