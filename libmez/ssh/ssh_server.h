// The SSH server of mezd and of the proxy (libssh): users authenticate with
// an OpenSSH user certificate from the cluster's user CA and get session
// channels (pty, shell, exec, env, window-change) and, with
// permit-port-forwarding, direct-tcpip channels (ssh -L). Every byte through
// a channel is reported to a ChannelTap.
//
// Logins: the SSH user name must be a principal of the certificate (as the
// login policy maps it); SshServerOptions::login_policy then accepts or
// refuses the login and decides what its session channels run (see
// login_policy.h: mezd's local accounts, the proxy's jump host and its
// agentless bridge). direct-tcpip destinations are connected by the server
// process itself, after an optional resolver
// (SshServerOptions::resolve_tcpip) rewrote or refused them.
//
// Threads: one acceptor thread, and one thread per connection owning that
// connection's ssh_session and ssh_event (libssh objects are never shared
// between threads).
#ifndef MEZ_SSH_SSH_SERVER_H_
#define MEZ_SSH_SSH_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "libmez/auth/ssh_cert.h"
#include "libmez/ssh/channel_tap.h"
#include "libmez/ssh/login_policy.h"
#include "libmez/ssh/program.h"
#include "libmez/util/clock.h"
#include "libmez/util/status.h"

namespace mez::ssh {

// One refused authentication attempt, for the audit log.
struct AuthRefusal {
  std::string remote;  // "address:port"
  std::string login;   // the requested SSH user name
  std::string key_id;  // the certificate's key id, when there was one
  std::string reason;  // for an operator, e.g. "SSH certificate expired at ..."
  std::string target;  // ChannelInfo::target of the connection
};

using RefusalHook = std::function<void(const AuthRefusal&)>;
// Has the last word on a user certificate that passed the server's own
// checks (CA, type, validity, principal, critical options, required
// extensions); mezd refuses the certificates of users removed from the
// cluster this way. OK accepts; otherwise the certificate is refused and
// the status message is the reason (logged and given to on_refusal), so
// it should say what happened and what to do. `login` is the requested SSH
// user name. Called from connection threads, possibly concurrently, at
// every public key attempt with a certificate (the client's query without
// a signature too), before the connection counts as authenticated. A
// connection already authenticated is not asked again: its sessions and
// channels go on.
using CertificateCheck =
    std::function<Status(const std::string& login, const auth::SshCert& cert)>;
// Returns the tap for a starting shell, exec or direct-tcpip channel, or
// nullptr for none.
using TapFactory =
    std::function<std::unique_ptr<ChannelTap>(const ChannelInfo&)>;
// Called once when an authenticated connection has ended (all its taps are
// destroyed by then), with its ChannelInfo::connection_id.
using ConnectionEndHook = std::function<void(const std::string& connection_id)>;

// Where a direct-tcpip channel is connected, as decided by a TcpipResolver.
struct TcpipDestination {
  std::string host;  // a host name or an address literal
  uint16_t port = 0;
};
// Decides where a direct-tcpip channel goes. `info` is the channel as the
// client asked for it (kind kTcpip, dst_host/dst_port as sent). A non-OK
// result refuses the open; its message is logged (the resolver audits on
// its own if it wants to). Called from connection threads, possibly
// concurrently, before any tap is made.
using TcpipResolver =
    std::function<Result<TcpipDestination>(const ChannelInfo& info)>;

// A direct-tcpip destination opened by a TcpipOpener: `fd` is a connected
// stream socket (the server makes it non-blocking and closes it), or -1
// for "connect to the destination as without an opener"; `keeper` is
// released when the channel ends (it owns whatever serves the other end
// of `fd`).
struct OpenedStream {
  int fd = -1;
  std::shared_ptr<void> keeper;
};
// Opens direct-tcpip destinations instead of connecting to them from this
// host (the proxy forwards through an agentless node's sshd this way).
// Called on the connection's thread; a non-OK result refuses the open.
using TcpipOpener =
    std::function<Result<OpenedStream>(const ChannelInfo& info)>;

struct SshServerOptions {
  std::string listen_address = "127.0.0.1";  // IPv4 or IPv6 literal
  uint16_t port = 0;                         // 0: any free port
  // Ed25519 host key as an unencrypted OpenSSH private key
  // (OpenSshPrivateKeyFromPem). Empty: a fresh key per server.
  std::string host_key_openssh;
  // The user CA's public key, SSH wire format (Ed25519PublicBlobFromPem).
  // Required: only certificates signed by it are accepted.
  std::string trusted_user_ca_blob;
  // Called from connection threads, possibly concurrently.
  RefusalHook on_refusal;
  // Called from connection threads, possibly concurrently.
  TapFactory tap_factory;
  // Called from connection threads, possibly concurrently.
  ConnectionEndHook on_connection_end;
  // direct-tcpip channels (ssh -L), for certificates that carry
  // permit-port-forwarding. Destinations are connected from this host.
  bool allow_tcpip_forwarding = true;
  // How long a direct-tcpip destination may take to accept. The client's
  // open is answered within 0.5 s at most: a connect that fails by then
  // refuses the open; a slower one is accepted and, should it fail later,
  // the channel is closed instead. Either way the tap sees OnExit(1) and no
  // data. Host names are resolved (getaddrinfo, IPv4 and IPv6) before that.
  int connect_timeout_ms = 10'000;
  // Certificate extensions a user certificate must carry (e.g. the
  // cluster's token extension, without which nothing can be recorded);
  // certificates without one are refused at authentication.
  std::vector<std::string> required_cert_extensions;
  // Unset: every certificate that passes the checks above is accepted.
  CertificateCheck check_certificate;
  // Environment variables a client may set (exact names, or a prefix
  // ending in '*'), as sshd's AcceptEnv.
  std::vector<std::string> accept_env = {"LANG", "LC_*"};
  // Connections that have not authenticated by then are dropped.
  int login_grace_seconds = 30;
  Clock* clock = nullptr;  // nullptr: RealClock()
  // Unset: the destination the client asked for. Set: the resolver's
  // answer is connected instead, or the open is refused (a proxy routes
  // node names to nodes this way).
  TcpipResolver resolve_tcpip;
  // Who may log in and what their session channels run (called from
  // connection threads, possibly concurrently, after check_certificate).
  // Unset: LocalLoginPolicy::ForThisProcess() (mezd's local accounts).
  std::shared_ptr<const LoginPolicy> login_policy;
  // False: no listening socket; connections only come through Adopt.
  bool accept_connections = true;
  // Set: direct-tcpip destinations are opened by it (after
  // resolve_tcpip, if that is set too).
  TcpipOpener open_tcpip;
};

class SshServer {
 public:
  // Binds, listens and starts accepting. The first Start sets SIGPIPE to
  // be ignored process-wide (a peer that closed must give EPIPE, not end
  // the process). kInvalidArgument for bad options
  // (address, host key, CA); kUnavailable when the address cannot be bound;
  // kFailedPrecondition without a login_policy when the server's uid has
  // no passwd entry.
  static Result<std::unique_ptr<SshServer>> Start(SshServerOptions options);
  // Stop().
  ~SshServer();
  SshServer(const SshServer&) = delete;
  SshServer& operator=(const SshServer&) = delete;

  // The bound port (the chosen one when options.port was 0).
  uint16_t port() const;
  // The host key's public blob (SSH wire format), e.g. for known_hosts.
  const std::string& host_public_key_blob() const;

  // Serves an SSH connection on `fd` (a connected stream socket, taken
  // over: closed on every path) as if it had been accepted from `remote`;
  // `target` becomes ChannelInfo::target of its channels. kUnavailable
  // once stopping.
  Status Adopt(int fd, const std::string& remote, const std::string& target);

  // Stops accepting, hangs up every connection (their programs get SIGHUP)
  // and joins all threads. Returns within about a second plus any key
  // exchange in progress (bounded by its 10 s timeout). Idempotent.
  void Stop();

  class Impl;

 private:
  explicit SshServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mez::ssh

#endif  // MEZ_SSH_SSH_SERVER_H_
