// Why mezd cannot talk to mezrecd, in words an operator can act on. gRPC
// reports every failure to connect as one "unavailable"; these probes tell
// apart a name that does not resolve, nothing listening, a peer that does
// not speak TLS (or speaks it when mezd expected plaintext), and a server
// certificate that the CA mezd trusts did not issue. They send no
// credential: a TCP connect, a TLS ClientHello, an HTTP/2 preface.
#ifndef MEZ_AGENT_DIAGNOSE_H_
#define MEZ_AGENT_DIAGNOSE_H_

#include <string>

#include "libmez/util/status.h"

namespace mez::agent {

// A connected TCP socket to `auth_addr` (HOST:PORT), its reads and writes
// bounded by `timeout_ms`; the caller closes it. kUnavailable naming the
// cause: the name does not resolve, nothing listens (connection refused),
// no answer within the timeout; each message says that --auth must be
// mezrecd's --listen address. kInvalidArgument when `auth_addr` is not
// HOST:PORT.
Result<int> DialMezrecd(const std::string& auth_addr, int timeout_ms);

// True when a plaintext gRPC (HTTP/2) server answers at `auth_addr` within
// `timeout_ms`: a mezrecd started with --insecure. Sends no call.
bool SpeaksPlaintextGrpc(const std::string& auth_addr, int timeout_ms);

// How mezd was told to talk to mezrecd.
enum class Expect {
  kUnknown,    // only the TCP-level checks apply
  kPlaintext,  // --insecure
  kTls,        // TLS trusting `ca_pem`
};

// Probes `auth_addr` as mezd would reach it and returns the first thing
// that stands in the way, as kUnavailable (cannot connect, or the other
// side's protocol does not match `expect`) or kFailedPrecondition (TLS
// works, but `ca_pem` did not issue the server's certificate, or the
// certificate does not name the host of `auth_addr`: another cluster, or
// something in between). Ok when nothing was found: the cause is then
// beyond the transport (the caller's own error applies).
Status DiagnoseMezrecd(const std::string& auth_addr, Expect expect,
                       const std::string& ca_pem, int timeout_ms = 5'000);

}  // namespace mez::agent

#endif  // MEZ_AGENT_DIAGNOSE_H_
