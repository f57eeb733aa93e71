// OpenSSH certificates (OpenSSH PROTOCOL.certkeys), Ed25519 only: the
// cluster's user and host CAs sign "ssh-ed25519-cert-v01@openssh.com"
// certificates for Ed25519 keys. Stock OpenSSH (sshd TrustedUserCAKeys,
// ssh-keygen -L) accepts what SignSshCert produces. The byte layout is in
// docs/formats/ssh-certificates.md.
//
// libssh checks only a certificate's signature. Whoever accepts a
// certificate (mezd, the proxy) must call ParseSshCert then CheckSshCert,
// which also checks the CA, the type, the validity window and the
// principal. All functions are thread-safe.
#ifndef MEZ_AUTH_SSH_CERT_H_
#define MEZ_AUTH_SSH_CERT_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "libmez/util/status.h"

namespace mez::auth {

inline constexpr std::string_view kSshEd25519 = "ssh-ed25519";
inline constexpr std::string_view kSshEd25519Cert =
    "ssh-ed25519-cert-v01@openssh.com";
inline constexpr uint32_t kSshUserCert = 1;
inline constexpr uint32_t kSshHostCert = 2;
// The user certificate extension that carries the user's cluster JWT.
inline constexpr std::string_view kMeziteTokenExtension = "mezite-token@mezite";
// Larger blobs are refused unread (sshd's own packet limit is 256 KiB).
inline constexpr size_t kMaxSshCertSize = 64 * 1024;

struct SshCertRequest {
  // The key being certified, SSH wire format: string "ssh-ed25519",
  // string key (32 bytes).
  std::string public_key_blob;
  uint32_t type = kSshUserCert;  // kSshUserCert or kSshHostCert
  std::string key_id;            // users: the username
  // Logins (user certs) or host names (host certs). Must not be empty:
  // OpenSSH reads an empty list as "any principal".
  std::vector<std::string> principals;
  int64_t valid_after = 0;   // Unix seconds, inclusive
  int64_t valid_before = 0;  // Unix seconds, exclusive
  // Name -> value; an empty value is a flag ("permit-pty"). User certs:
  // permit-pty, permit-port-forwarding, ... and kMeziteTokenExtension.
  std::map<std::string, std::string> extensions;
  std::map<std::string, std::string> critical_options;
};

// The certificate a proxy logs in to an agentless node's sshd with, on
// `user`'s behalf: key id `user`, the one principal `login`, valid from a
// minute before `now` (clock skew) for kUpstreamCertSeconds,
// permit-pty and permit-port-forwarding.
inline constexpr int64_t kUpstreamCertSeconds = 300;
SshCertRequest UpstreamCertRequest(const std::string& public_key_blob,
                                   const std::string& user,
                                   const std::string& login, int64_t now);

// A parsed certificate. Nothing in it is trusted until CheckSshCert passes.
struct SshCert {
  std::string nonce;
  std::string public_key_blob;  // string "ssh-ed25519" || string key
  std::string public_key;       // the raw 32-byte Ed25519 key
  uint64_t serial = 0;
  uint32_t type = 0;  // kSshUserCert or kSshHostCert
  std::string key_id;
  std::vector<std::string> principals;
  uint64_t valid_after = 0;   // Unix seconds, inclusive
  uint64_t valid_before = 0;  // exclusive; UINT64_MAX means "forever"
  std::map<std::string, std::string> critical_options;
  std::map<std::string, std::string> extensions;
  std::string reserved;
  std::string signature_key;  // the CA's public key blob (ssh-ed25519)
  std::string signature;      // the raw 64-byte Ed25519 signature
  std::string signed_data;    // the blob up to the signature field
};

// Signs `request` with the CA key (Ed25519, PKCS#8 PEM) and returns the
// certificate blob (wire format) with a random nonce and serial.
// kInvalidArgument for a malformed request or key.
Result<std::string> SignSshCert(const std::string& ca_private_pem,
                                const SshCertRequest& request);

// "ssh-ed25519-cert-v01@openssh.com AAAA... comment", the content of a
// -cert.pub file (with a trailing newline when written to one).
std::string SshCertLine(std::string_view blob, std::string_view comment);

// Strict parser of untrusted bytes: every length is checked, the key types
// must be ssh-ed25519, the type 1 or 2, option and extension names sorted
// and unique, and nothing may follow the signature. Does NOT verify the
// signature. Errors are kUnauthenticated "malformed SSH certificate: ...".
Result<SshCert> ParseSshCert(std::string_view blob);

// Accepts `cert` only when all hold, else returns the first failure:
//   the signature verifies with the CA key embedded in the cert,
//   that key equals `trusted_ca_public_blob` (wire format),
//   the type is `expected_type`,
//   valid_after <= now < valid_before (Unix seconds),
//   `principal` is listed (an empty list is refused),
//   there are no critical options (Mezite enforces none, and the protocol
//   requires refusing a certificate with an option one does not enforce).
// Failures of proof (signature, CA, type, validity) are kUnauthenticated;
// a proven certificate that does not grant `principal` is kPermissionDenied.
Status CheckSshCert(const SshCert& cert,
                    const std::string& trusted_ca_public_blob,
                    uint32_t expected_type, const std::string& principal,
                    int64_t now);

// The wire-format blob of an "ssh-ed25519 AAAA... [comment]" line (the
// first line of `text`; a .pub file, `mezctl ca export` output).
// kInvalidArgument for any other key type or a malformed line.
Result<std::string> Ed25519BlobFromPublicLine(std::string_view text);

// The SSH wire-format public key blob of an Ed25519 private key given as
// PKCS#8 PEM.
Result<std::string> Ed25519PublicBlobFromPem(const std::string& private_pem);

// An Ed25519 private key (PKCS#8 PEM) re-encoded as an unencrypted
// OpenSSH private key ("-----BEGIN OPENSSH PRIVATE KEY-----"), which ssh,
// ssh-keygen and libssh load.
Result<std::string> OpenSshPrivateKeyFromPem(const std::string& private_pem,
                                             std::string_view comment);

// A fresh Ed25519 key pair: {unencrypted OpenSSH private key, public key
// blob}.
Result<std::pair<std::string, std::string>> GenerateSshUserKey();

}  // namespace mez::auth

#endif  // MEZ_AUTH_SSH_CERT_H_
