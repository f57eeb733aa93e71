// Owners for the raw handles the agent's TLS probes use (transport.cc,
// diagnose.cc): an OpenSSL context and connection, and a socket.
#ifndef MEZ_AGENT_SSL_HANDLES_H_
#define MEZ_AGENT_SSL_HANDLES_H_

#include <openssl/ssl.h>
#include <unistd.h>

namespace mez::agent {

struct SslCtxFree {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct SslFree {
  void operator()(SSL* p) const { SSL_free(p); }
};

// Closes the descriptor it holds (none when negative).
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace mez::agent

#endif  // MEZ_AGENT_SSL_HANDLES_H_
