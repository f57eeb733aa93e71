// A client SSH connection from the proxy to an agentless node's own sshd
// (DESIGN.md "Proxy and agentless nodes"): the node's host key must equal
// the one pinned in the catalog (never accepted blindly), and the proxy
// logs in with a fresh short-lived user certificate from the cluster's
// user CA, which the node trusts through sshd's TrustedUserCAKeys.
//
// Upstream runs one command at a time (Exec), for checks and tests; the
// proxy's bridge uses OpenUpstreamSession and OpenUpstreamTcpip, which own
// their connection on a relay thread. Not thread-safe: one thread owns an
// Upstream.
#ifndef MEZ_SSH_UPSTREAM_H_
#define MEZ_SSH_UPSTREAM_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "libmez/ssh/program.h"
#include "libmez/ssh/ssh_server.h"
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

// A shell or command on the node, bridged: what the proxy runs behind an
// agentless node's session channel.
struct UpstreamSessionRequest {
  std::string command;  // empty: the login shell
  bool pty = false;
  std::string term;  // pty only
  int width = 80;    // pty only
  int height = 24;   // pty only
  // "NAME=value"; the node's sshd applies its own AcceptEnv (refusals are
  // ignored, as by the OpenSSH client).
  std::vector<std::string> env;
};

// Connects (as Upstream::Connect) and opens a session channel with the pty
// and environment asked for. Start() asks for the shell or the command and
// relays on a thread of its own: the program's descriptors carry the
// channel's data, window changes are passed on, and the node's exit status
// or signal becomes the program's. When the program is destroyed while the
// node still runs it, the channel is closed (sshd hangs up on it).
Result<std::unique_ptr<Program>> OpenUpstreamSession(
    const UpstreamOptions& options, const UpstreamSessionRequest& request);

// Connects and opens a direct-tcpip channel from the node to host:port (the
// node's sshd connects; its AllowTcpForwarding applies). The returned
// stream's fd carries the channel's bytes both ways, with half-closes
// passed on; the keeper owns the relay thread and the connection.
Result<OpenedStream> OpenUpstreamTcpip(const UpstreamOptions& options,
                                       const std::string& host, uint16_t port,
                                       const std::string& originator,
                                       uint16_t originator_port);

}  // namespace mez::ssh

#endif  // MEZ_SSH_UPSTREAM_H_
