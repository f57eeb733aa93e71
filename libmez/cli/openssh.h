// The OpenSSH launcher behind msh ssh: the known_hosts lines that pin the
// node's (and the proxy's) host key, the ssh command line that uses only
// the run's key, certificate and known_hosts, and running it.
#ifndef MEZ_CLI_OPENSSH_H_
#define MEZ_CLI_OPENSSH_H_

#include <string>
#include <vector>

#include "libmez/util/status.h"

namespace mez::cli {

// One run of the system ssh client.
struct OpenSshLaunch {
  std::string login;  // On the node (and on the proxy's first hop).
  std::string host;   // The node as ssh dials it (through the proxy: its name).
  std::string port;
  // Through the cluster's SSH proxy at proxy_host:proxy_port: a
  // ProxyCommand that runs what -J would, with this run's key and
  // certificate on the first hop too.
  bool via_proxy = false;
  std::string proxy_host, proxy_port;
  std::vector<std::string> local_forwards;  // -L specs, already checked.
  bool no_command = false;                  // -N
  bool force_tty = false;                   // -t
  bool no_tty = false;                      // -T
  // The remote command; a leading "--" (kept by CLI11 from msh's own
  // command line) is dropped.
  std::vector<std::string> command;
};

// The argv of ssh for `launch` with the key files in `key_dir`
// (id_ed25519, id_ed25519-cert.pub, known_hosts): no other identity, no
// other known_hosts file, strict host key checking, no host key updates;
// with -L, forwards bind loopback unless the spec names an address and a
// port that cannot be bound ends ssh. argv[0] is "ssh".
std::vector<std::string> OpenSshArgv(const OpenSshLaunch& launch,
                                     const std::string& key_dir);

// Writes `private_key`, `certificate_line` and `known_hosts` (0600) into
// `key_dir` and runs OpenSshArgv(launch, key_dir), waiting for it. ^C and
// ^\ go to ssh only; SIGTERM and SIGHUP are passed on to it, so the caller
// stays to remove the key. Returns ssh's exit code (128 + N when killed by
// signal N); kFailedPrecondition when ssh cannot be run.
Result<int> RunOpenSsh(const OpenSshLaunch& launch, const std::string& key_dir,
                       const std::string& private_key,
                       const std::string& certificate_line,
                       const std::string& known_hosts);

// The known_hosts line that pins `key` ("TYPE BASE64 [comment]", as `node`
// reported it) for `host` and `port` as ssh looks them up: "[host]:port",
// or the bare host for port 22. kFailedPrecondition when the key or the
// host holds characters that do not belong there.
Result<std::string> KnownHostsLine(const std::string& node,
                                   const std::string& host,
                                   const std::string& port,
                                   const std::string& key);

// Splits "host:port", "[v6]:port", or a host alone (port "22"). A bare
// IPv6 address (more than one colon) is all host.
void SplitAddr(const std::string& addr, std::string* host, std::string* port);

}  // namespace mez::cli

#endif  // MEZ_CLI_OPENSSH_H_
