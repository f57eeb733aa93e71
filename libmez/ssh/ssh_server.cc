#include "libmez/ssh/ssh_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <list>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "libmez/auth/ssh_cert.h"
#include "libmez/ssh/connection.h"
#include "libmez/util/encoding.h"
#include "libmez/util/log.h"
#include "libmez/util/thread_name.h"

namespace mez::ssh {

namespace {

std::string AddressString(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = "?";
  int port = 0;
  if (addr.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
    port = ntohs(a->sin_port);
    return std::string(host) + ":" + std::to_string(port);
  }
  const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
  inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
  port = ntohs(a->sin6_port);
  return "[" + std::string(host) + "]:" + std::to_string(port);
}

struct ConnectionThread {
  std::thread thread;
  std::shared_ptr<std::atomic<bool>> done;
};

}  // namespace

class SshServer::Impl {
 public:
  ~Impl() {
    Stop();
    if (bind_ != nullptr) ssh_bind_free(bind_);
    for (int fd : {listen_fd_, wake_[0], wake_[1]}) {
      if (fd >= 0) close(fd);
    }
  }

  Status Init(SshServerOptions options);
  void Stop();
  // Runs a connection thread for `fd` (always taken over).
  Status Serve(int fd, const std::string& remote, const std::string& target);

  SshServerOptions options_;
  ServerContext ctx_;
  std::atomic<bool> stopping_{false};
  ssh_bind bind_ = nullptr;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  uint16_t port_ = 0;
  std::string host_blob_;
  std::thread acceptor_;
  std::mutex mu_;
  std::list<ConnectionThread> connections_;  // guarded by mu_

 private:
  Status Listen();
  Status LoadHostKey();
  void AcceptLoop();
  void JoinFinished();
};

Status SshServer::Impl::Init(SshServerOptions options) {
  options_ = std::move(options);
  if (options_.clock == nullptr) options_.clock = RealClock();
  if (options_.trusted_user_ca_blob.empty()) {
    return InvalidArgument("ssh server: no trusted user CA");
  }
  if (!options_.login_policy) {
    MEZ_ASSIGN_OR_RETURN(options_.login_policy,
                         LocalLoginPolicy::ForThisProcess());
  }
  ctx_.options = &options_;
  ctx_.clock = options_.clock;
  ctx_.stopping = &stopping_;
  MEZ_RETURN_IF_ERROR(LoadHostKey());
  if (!options_.accept_connections) return Status::Ok();
  MEZ_RETURN_IF_ERROR(Listen());
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) {
    return ErrnoStatus("ssh server: pipe", errno);
  }
  acceptor_ = std::thread([this] {
    NameThisThread("mez-ssh-accept");
    AcceptLoop();
  });
  return Status::Ok();
}

Status SshServer::Impl::Serve(int fd, const std::string& remote,
                              const std::string& target) {
  if (stopping_.load()) {
    close(fd);
    return Status(Code::kUnavailable, "ssh server: stopping");
  }
  JoinFinished();
  // Keystrokes and echoes are small packets: send them at once, as sshd
  // does for interactive sessions (fails harmlessly on a socket pair).
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ssh_session session = ssh_new();
  if (session == nullptr) {
    close(fd);
    return Internal("ssh server: ssh_new failed");
  }
  if (ssh_bind_accept_fd(bind_, session, fd) != SSH_OK) {
    std::string why = ssh_get_error(bind_);
    if (ssh_get_fd(session) != fd) close(fd);
    ssh_free(session);
    return Internal("ssh server: accept: " + why);
  }
  auto conn = std::make_unique<Connection>(&ctx_, session, remote, target);
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_.load()) {  // Stop() may have collected the list already.
    conn.reset();
    return Status(Code::kUnavailable, "ssh server: stopping");
  }
  connections_.push_back(
      ConnectionThread{std::thread([c = std::move(conn), done]() mutable {
                         NameThisThread("mez-ssh");
                         c->Run();
                         c.reset();
                         done->store(true);
                       }),
                       done});
  return Status::Ok();
}

Status SshServer::Impl::LoadHostKey() {
  std::string pem = options_.host_key_openssh;
  if (pem.empty()) {
    MEZ_ASSIGN_OR_RETURN(auto generated, auth::GenerateSshUserKey());
    pem = std::move(generated.first);
  }
  ssh_key key = nullptr;
  if (ssh_pki_import_privkey_base64(pem.c_str(), nullptr, nullptr, nullptr,
                                    &key) != SSH_OK) {
    return InvalidArgument(
        "ssh server: the host key is not an OpenSSH "
        "private key");
  }
  if (ssh_key_type(key) != SSH_KEYTYPE_ED25519) {
    ssh_key_free(key);
    return InvalidArgument("ssh server: the host key is not Ed25519");
  }
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK) {
    ssh_key_free(key);
    return Internal("ssh server: cannot export the host public key");
  }
  Result<std::string> blob = Base64Decode(b64);
  ssh_string_free_char(b64);
  if (!blob.ok()) {
    ssh_key_free(key);
    return Internal("ssh server: cannot export the host public key");
  }
  host_blob_ = std::move(blob).value();

  bind_ = ssh_bind_new();
  if (bind_ == nullptr) {
    ssh_key_free(key);
    return Internal("ssh server: ssh_bind_new failed");
  }
  bool process_config = false;
  ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_PROCESS_CONFIG, &process_config);
  // The bind takes ownership of the key.
  if (ssh_bind_options_set(bind_, SSH_BIND_OPTIONS_IMPORT_KEY, key) != SSH_OK) {
    ssh_key_free(key);
    return InvalidArgument(std::string("ssh server: host key refused: ") +
                           ssh_get_error(bind_));
  }
  return Status::Ok();
}

Status SshServer::Impl::Listen() {
  sockaddr_storage addr = {};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, options_.listen_address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(options_.port);
    len = sizeof(*v4);
  } else if (inet_pton(AF_INET6, options_.listen_address.c_str(),
                       &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(options_.port);
    len = sizeof(*v6);
  } else {
    return InvalidArgument("ssh server: listen address \"" +
                           options_.listen_address + "\" is not an IP address");
  }
  listen_fd_ = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return ErrnoStatus("ssh server: socket", errno);
  int one = 1;
  setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  std::string where =
      options_.listen_address + ":" + std::to_string(options_.port);
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      listen(listen_fd_, 64) != 0) {
    return Status(Code::kUnavailable, "ssh server: cannot listen on " + where +
                                          ": " + strerror(errno));
  }
  sockaddr_storage bound = {};
  socklen_t bound_len = sizeof(bound);
  getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &bound_len);
  port_ = ntohs(bound.ss_family == AF_INET
                    ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                    : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  MEZ_LOG(kInfo) << "ssh: listening on " << options_.listen_address << ":"
                 << port_;
  return Status::Ok();
}

void SshServer::Impl::AcceptLoop() {
  while (!stopping_.load()) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      MEZ_LOG(kError) << "ssh: poll: " << strerror(errno);
      return;
    }
    if (stopping_.load()) return;
    if (!(fds[0].revents & POLLIN)) continue;
    sockaddr_storage peer = {};
    socklen_t peer_len = sizeof(peer);
    int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &peer_len,
                     SOCK_CLOEXEC);
    if (fd < 0) continue;  // ECONNABORTED, EMFILE, ...: keep serving.
    Status served = Serve(fd, AddressString(peer), "");
    if (!served.ok()) MEZ_LOG(kError) << "ssh: " << served.message();
  }
}

void SshServer::Impl::JoinFinished() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = connections_.begin(); it != connections_.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void SshServer::Impl::Stop() {
  // Under mu_, so that Serve never adds a connection after the list
  // was taken.
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    first = !stopping_.exchange(true);
  }
  if (first && wake_[1] >= 0) {
    char c = 0;
    ssize_t ignored = write(wake_[1], &c, 1);
    (void)ignored;
  }
  if (acceptor_.joinable()) acceptor_.join();
  std::list<ConnectionThread> connections;
  {
    std::lock_guard<std::mutex> lock(mu_);
    connections.swap(connections_);
  }
  for (ConnectionThread& t : connections) t.thread.join();
}

Result<std::unique_ptr<SshServer>> SshServer::Start(SshServerOptions options) {
  static std::once_flag init_once;
  std::call_once(init_once, [] {
    ssh_init();
    // Programs, destinations and bridged channels close their ends
    // whenever they like: a write into one must fail with EPIPE, not kill
    // the server. (Children get the default back before exec.)
    signal(SIGPIPE, SIG_IGN);
  });
  auto impl = std::make_unique<Impl>();
  MEZ_RETURN_IF_ERROR(impl->Init(std::move(options)));
  return std::unique_ptr<SshServer>(new SshServer(std::move(impl)));
}

SshServer::SshServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SshServer::~SshServer() { Stop(); }

uint16_t SshServer::port() const { return impl_->port_; }

const std::string& SshServer::host_public_key_blob() const {
  return impl_->host_blob_;
}

void SshServer::Stop() { impl_->Stop(); }

Status SshServer::Adopt(int fd, const std::string& remote,
                        const std::string& target) {
  return impl_->Serve(fd, remote, target);
}

}  // namespace mez::ssh
