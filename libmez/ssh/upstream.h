// A client SSH connection from the proxy to an agentless node's own sshd
// (DESIGN.md "Proxy and agentless nodes"): the node's host key must equal
// the one pinned in the catalog (never accepted blindly), and the proxy
// logs in with a fresh short-lived user certificate from the cluster's
// user CA, which the node trusts through sshd's TrustedUserCAKeys.
//
// The building block of the agentless bridge; today it runs one command
// at a time (Exec). Not thread-safe: one thread owns an Upstream.
#ifndef MEZ_SSH_UPSTREAM_H_
#define MEZ_SSH_UPSTREAM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "libmez/util/status.h"

namespace mez::ssh {

struct UpstreamOptions {
  std::string host;  // host name or address literal
  uint16_t port = 22;
  std::string login;
  // The node's Ed25519 host key, SSH wire format. Required: a node whose
  // key differs is refused (kUnauthenticated) before authenticating.
  std::string pinned_host_key_blob;
  // The certified key: an unencrypted OpenSSH private key, and its
  // certificate blob (wire format).
  std::string user_key_openssh;
  std::string user_cert_blob;
  long timeout_seconds = 10;  // connect, key exchange, each read
};

struct ExecResult {
  std::string out;
  std::string err;
  int exit_status = -1;  // -1: the node sent none
};

class Upstream {
 public:
  // Connects, checks the host key, authenticates. kUnavailable when the
  // node cannot be reached; kUnauthenticated for a host key that is not
  // the pinned one; kPermissionDenied when the node refuses the
  // certificate.
  static Result<std::unique_ptr<Upstream>> Connect(
      const UpstreamOptions& options);
  ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  // Runs `command` without a pty, feeding it `input` then EOF, and
  // collects its output and exit status (blocking). Meant for short
  // outputs: stdout is read to its end before stderr, so a program that
  // writes more than a window (~1 MiB) to stderr first stalls until the
  // read timeout.
  Result<ExecResult> Exec(const std::string& command, std::string_view input);

  class Impl;

 private:
  explicit Upstream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mez::ssh

#endif  // MEZ_SSH_UPSTREAM_H_
