// The cluster's key material, kept in mezrecd's data dir and created on
// first start: the token signing key, the SSH user and host CAs, and a TLS
// CA with the gRPC server certificate.
#ifndef MEZ_AUTH_KEYS_H_
#define MEZ_AUTH_KEYS_H_

#include <string>
#include <string_view>
#include <vector>

#include "libmez/util/clock.h"
#include "libmez/util/status.h"

namespace mez::auth {

struct ClusterKeys {
  std::string cluster_name;         // Token issuer; "mezite" unless set.
  std::string jwt_private_pem;      // Ed25519, PKCS#8 PEM
  std::string jwt_public_pem;       // SubjectPublicKeyInfo PEM
  std::string user_ca_private_pem;  // Ed25519, PKCS#8 PEM
  std::string user_ca_public;       // "ssh-ed25519 AAAA... mezite-user-ca"
  std::string host_ca_private_pem;
  std::string host_ca_public;   // "ssh-ed25519 AAAA... mezite-host-ca"
  std::string tls_ca_cert_pem;  // Self-signed CA (Ed25519 or P-256)
  std::string tls_ca_key_pem;
  std::string tls_server_cert_pem;  // Signed by the TLS CA
  std::string tls_server_key_pem;
};

// Files in the data dir (mode 0600; the dir 0700):
//   jwt.key, user_ca.key, user_ca.pub, host_ca.key, host_ca.pub,
//   tls_ca.crt, tls_ca.key, tls_server.crt, tls_server.key
// Loads them, creating whatever is missing (written atomically). The server
// certificate's subjectAltNames cover `server_names` (IP literals become
// IP SANs, others DNS SANs) plus 127.0.0.1, ::1 and localhost; if an
// existing certificate does not cover them all, or expires within 30 days,
// a new one is issued from the same CA. A corrupt or unreadable key file
// is an error naming the file, never silently replaced.
Result<ClusterKeys> LoadOrCreateClusterKeys(
    const std::string& data_dir, const std::vector<std::string>& server_names,
    Clock* clock);

// "ssh-ed25519 <base64 of the SSH wire-format public key> <comment>" for an
// Ed25519 private key in PKCS#8 PEM.
Result<std::string> SshPublicKeyLine(const std::string& private_pem,
                                     const std::string& comment);

// SHA-256 (lowercase hex) of the DER encoding of the first certificate in
// `pem`: the TLS CA pin that join tokens carry (Claims::ca_hash).
// kInvalidArgument when `pem` holds no certificate.
Result<std::string> CertificateSha256(std::string_view pem);

}  // namespace mez::auth

#endif  // MEZ_AUTH_KEYS_H_
