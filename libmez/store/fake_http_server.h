// A small HTTP/1.1 server on 127.0.0.1 for tests: a free port, one thread
// per connection, keep-alive, requests with Content-Length bodies. Stands
// in for the EC2 instance metadata service, the ECS credentials agent and
// an S3 endpoint that hangs. Not for production use.
#ifndef MEZ_STORE_FAKE_HTTP_SERVER_H_
#define MEZ_STORE_FAKE_HTTP_SERVER_H_

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace mez::store {

struct FakeHttpRequest {
  std::string method;
  std::string target;                          // "/latest/api/token"
  std::map<std::string, std::string> headers;  // Lowercased names.
  std::string body;

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

struct FakeHttpReply {
  int status = 200;
  std::string body;
  // Never answer: hold the connection open until Stop().
  bool hang = false;
};

class FakeHttpServer {
 public:
  using Handler = std::function<FakeHttpReply(const FakeHttpRequest&)>;

  // Listens at once; check ok().
  explicit FakeHttpServer(Handler handler);
  // Stop().
  ~FakeHttpServer();
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  bool ok() const { return listen_fd_ >= 0; }
  int port() const { return port_; }
  std::string url() const {  // "http://127.0.0.1:PORT"
    return "http://127.0.0.1:" + std::to_string(port_);
  }
  // Every request received so far. Thread-safe.
  std::vector<FakeHttpRequest> requests();
  // Closes the listening socket and every connection (hung ones too) and
  // joins the threads. Idempotent.
  void Stop();

 private:
  void AcceptLoop();
  void Serve(int fd);

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;   // Guarded by mu_, as below.
  std::vector<int> conns_;  // Open connection fds.
  std::vector<FakeHttpRequest> log_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace mez::store

#endif  // MEZ_STORE_FAKE_HTTP_SERVER_H_
