#include "libmez/store/fake_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace mez::store {

FakeHttpServer::FakeHttpServer(Handler handler) : handler_(std::move(handler)) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(fd, 64) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return;
  }
  listen_fd_ = fd;
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FakeHttpServer::~FakeHttpServer() { Stop(); }

std::vector<FakeHttpRequest> FakeHttpServer::requests() {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

void FakeHttpServer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    for (int fd : conns_) shutdown(fd, SHUT_RDWR);
    cv_.notify_all();
  }
  if (listen_fd_ >= 0) shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  if (listen_fd_ >= 0) close(listen_fd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
}

void FakeHttpServer::AcceptLoop() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      if (fd >= 0) close(fd);
      return;
    }
    if (fd < 0) continue;
    conns_.push_back(fd);
    threads_.emplace_back([this, fd] { Serve(fd); });
  }
}

void FakeHttpServer::Serve(int fd) {
  std::string in;
  char buf[65536];
  auto fill = [&]() {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) return false;
    in.append(buf, static_cast<size_t>(n));
    return true;
  };
  // Serves requests until the peer closes, an error, or Stop().
  auto serve = [&]() {
    for (;;) {
      size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        if (!fill()) return;
      }
      FakeHttpRequest req;
      {
        std::string head = in.substr(0, end);
        in.erase(0, end + 4);
        size_t line_end = head.find("\r\n");
        std::string first = head.substr(0, line_end);
        size_t sp1 = first.find(' ');
        size_t sp2 = first.find(' ', sp1 + 1);
        if (sp1 == std::string::npos || sp2 == std::string::npos) return;
        req.method = first.substr(0, sp1);
        req.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
        size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
        while (pos < head.size()) {
          size_t next = head.find("\r\n", pos);
          if (next == std::string::npos) next = head.size();
          std::string line = head.substr(pos, next - pos);
          pos = next + 2;
          size_t colon = line.find(':');
          if (colon == std::string::npos) continue;
          std::string name = line.substr(0, colon);
          std::transform(name.begin(), name.end(), name.begin(),
                         [](unsigned char c) { return std::tolower(c); });
          std::string value = line.substr(colon + 1);
          while (!value.empty() && value.front() == ' ') value.erase(0, 1);
          req.headers[name] = value;
        }
      }
      size_t want = 0;
      if (auto cl = req.Header("content-length"); !cl.empty()) {
        want = std::stoul(cl);
      }
      while (in.size() < want) {
        if (!fill()) return;
      }
      req.body = in.substr(0, want);
      in.erase(0, want);
      {
        std::lock_guard<std::mutex> lock(mu_);
        log_.push_back(req);
      }
      FakeHttpReply reply = handler_(req);
      if (reply.hang) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_; });
        return;
      }
      std::string out =
          "HTTP/1.1 " + std::to_string(reply.status) +
          " X\r\nContent-Length: " + std::to_string(reply.body.size()) +
          "\r\n\r\n";
      if (req.method != "HEAD") out += reply.body;
      size_t sent = 0;
      while (sent < out.size()) {
        ssize_t n =
            send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return;
        sent += static_cast<size_t>(n);
      }
    }
  };
  serve();
  std::lock_guard<std::mutex> lock(mu_);
  conns_.erase(std::find(conns_.begin(), conns_.end(), fd));
  close(fd);
}

}  // namespace mez::store
