// direct-tcpip channels of a Connection (ssh -L): the open, the
// non-blocking connect to the destination, the pump between the channel and
// the socket, and the close.
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <utility>

#include "libmez/ssh/channel.h"
#include "libmez/ssh/connection.h"
#include "libmez/util/log.h"

namespace mez::ssh {

// How long a direct-tcpip open may hold the connection's thread while the
// destination is connected. A connect that settles by then is answered
// exactly (a failure refuses the open); a slower one is accepted and
// finishes in the loop, and its failure closes the channel instead.
constexpr int kOpenWaitMs = 500;
// How long bytes still owed to a destination may be flushed after the
// client closed a direct-tcpip channel.
constexpr auto kTcpipLinger = std::chrono::seconds(10);

namespace {

// "host:port" for logs, "[host]:port" for an IPv6 literal.
std::string HostPortText(const std::string& host, int port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
         std::to_string(port);
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
  std::string destination = HostPortText(dst_host, port);
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
    destination += " (" + HostPortText(dst_host, port) + ")";
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
  cb.channel_data_function = &ChannelCallbacks::Data;
  cb.channel_eof_function = &ChannelCallbacks::Eof;
  cb.channel_close_function = &ChannelCallbacks::Close;
  ssh_callbacks_init(&cb);
  ssh_set_channel_callbacks(channel, &cb);
  MEZ_LOG(kInfo) << "ssh: " << remote_ << " (login \"" << login_
                 << "\") forwards to " << destination
                 << (ch->connected ? "" : " (still connecting)");
  channels_.push_back(std::move(ch));
  return 0;
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

void Connection::EndTcpipForTap(Channel& ch) {
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
}

}  // namespace mez::ssh
