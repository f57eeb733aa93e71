// The names mezrecd's TLS server certificate carries. A node or client
// checks the certificate against the host part of the address it dials
// (mezd --auth, an identity's auth address), so every name it may use has
// to be in the certificate: the --listen host, the operator's tlsNames,
// and, when mezrecd listens on every address (0.0.0.0 or ::), this
// machine's host name and interface addresses. auth::LoadOrCreateClusterKeys
// adds 127.0.0.1, ::1 and localhost and re-issues the certificate when a
// name is missing.
#ifndef MEZ_SERVER_TLS_NAMES_H_
#define MEZ_SERVER_TLS_NAMES_H_

#include <string>
#include <vector>

namespace mez::server {

// What the machine calls itself.
struct HostFacts {
  std::string hostname;                // gethostname(); may be empty
  std::vector<std::string> addresses;  // interface addresses, text form
};

// gethostname() and the addresses of the interfaces that are up, without
// loopback and IPv6 link-local ones (a scope cannot go in a certificate).
HostFacts ThisHost();

// The names for a server listening on `listen` (HOST:PORT or [V6]:PORT),
// in order and without repeats: its host unless it is a wildcard,
// `tls_names`, then, for a wildcard listen only, `host`'s host name (when
// it is a plain DNS name) and addresses.
std::vector<std::string> ServerCertNames(
    const std::string& listen, const std::vector<std::string>& tls_names,
    const HostFacts& host);

}  // namespace mez::server

#endif  // MEZ_SERVER_TLS_NAMES_H_
