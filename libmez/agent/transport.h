// How mezd reaches mezrecd. The node's credential rides in every call's
// metadata, so mezd talks TLS, trusting only the cluster's CA, unless an
// operator explicitly asks for plaintext to a mezrecd on the same machine.
#ifndef MEZ_AGENT_TRANSPORT_H_
#define MEZ_AGENT_TRANSPORT_H_

#include <memory>
#include <string>

#include "libmez/rpc/channel.h"
#include "libmez/util/status.h"

namespace mez::agent {

// Channel credentials (rpc::ChannelCredentialsFor) for mezrecd at
// `auth_addr` (HOST:PORT):
//   - `ca_pem` set: TLS trusting only that CA; `insecure` must be false.
//   - `insecure`: plaintext, allowed only when the host of `auth_addr` is a
//     loopback address (127.0.0.0/8, ::1, localhost).
//   - neither: kInvalidArgument naming --ca-file and --insecure, so a
//     missing flag never sends the node's token in clear.
Result<std::shared_ptr<grpc::ChannelCredentials>> NodeChannelCredentials(
    const std::string& auth_addr, const std::string& ca_pem, bool insecure);

// The CA certificate (PEM) among those mezrecd at `auth_addr` presents in
// its TLS handshake whose SHA-256 (auth::CertificateSha256) is
// `ca_sha256` (a join token's pin), provided it is a CA certificate that
// signed the presented server certificate. Nothing about the server is
// trusted before the match: the handshake is only a way to read its chain.
// kUnavailable when it cannot connect or handshake within `timeout_ms`;
// kFailedPrecondition, naming the pin, when no certificate matches.
Result<std::string> FetchPinnedCa(const std::string& auth_addr,
                                  const std::string& ca_sha256,
                                  int timeout_ms = 10'000);

// How mezd trusts mezrecd, first match wins:
//   - `insecure`: plaintext, as NodeChannelCredentials allows it; refused
//     when `ca_sha256` is set (the cluster speaks TLS).
//   - `ca_pem` (--ca-file): that CA, which must match `ca_sha256` if set.
//   - `ca_sha256` set (a join token): data_dir/cluster_ca.pem if it
//     matches, else the CA fetched with FetchPinnedCa, stored there.
//   - data_dir/cluster_ca.pem (the CA of an earlier join).
//   - otherwise NodeChannelCredentials's error, naming --ca-file.
// With TLS, `*ca_in_use` (if not null) receives the CA trusted.
Result<std::shared_ptr<grpc::ChannelCredentials>> ResolveNodeTransport(
    const std::string& auth_addr, const std::string& data_dir,
    const std::string& ca_pem, bool insecure, const std::string& ca_sha256,
    std::string* ca_in_use = nullptr);

}  // namespace mez::agent

#endif  // MEZ_AGENT_TRANSPORT_H_
