#include "libmez/auth/ssh_cert.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <ctime>
#include <limits>
#include <memory>

#include "libmez/auth/openssl_ptr.h"
#include "libmez/util/encoding.h"

namespace mez::auth {
namespace {

using internal::BioPtr;
using internal::MdCtxPtr;
using internal::PkeyPtr;

constexpr size_t kEd25519KeySize = 32;
constexpr size_t kEd25519SigSize = 64;
constexpr size_t kNonceSize = 32;
constexpr std::string_view kOpenSshKeyMagic{"openssh-key-v1\0", 15};
constexpr size_t kOpenSshBlockSize = 8;  // cipher "none"
constexpr size_t kPemLineWidth = 70;     // what ssh-keygen writes

// Wipes a string that held key material before it is freed.
struct Wiped {
  std::string s;
  ~Wiped() { OPENSSL_cleanse(s.data(), s.size()); }
};

Status Unauthenticated(std::string m) {
  return Status(Code::kUnauthenticated, std::move(m));
}
Status Malformed(std::string_view what) {
  return Unauthenticated("malformed SSH certificate: " + std::string(what));
}

std::string_view AsChars(const unsigned char* p, size_t n) {
  return std::string_view(reinterpret_cast<const char*>(p), n);
}
const unsigned char* AsBytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

// SSH wire encoding (RFC 4251 section 5), big-endian.
void PutU32(uint32_t v, std::string* out) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}
void PutU64(uint64_t v, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((v >> shift) & 0xff));
  }
}
void PutString(std::string_view s, std::string* out) {
  PutU32(static_cast<uint32_t>(s.size()), out);
  out->append(s);
}

// Reads SSH wire fields from untrusted bytes; every read checks the length
// left and fails (returns false, consuming nothing) when it is short.
class WireReader {
 public:
  explicit WireReader(std::string_view data) : rest_(data) {}

  bool U32(uint32_t* v) {
    if (rest_.size() < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v = (*v << 8) | AsBytes(rest_)[i];
    rest_.remove_prefix(4);
    return true;
  }
  bool U64(uint64_t* v) {
    if (rest_.size() < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v = (*v << 8) | AsBytes(rest_)[i];
    rest_.remove_prefix(8);
    return true;
  }
  bool String(std::string_view* s) {
    std::string_view saved = rest_;
    uint32_t n;
    if (!U32(&n) || rest_.size() < n) {
      rest_ = saved;
      return false;
    }
    *s = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return true;
  }
  bool empty() const { return rest_.empty(); }
  size_t left() const { return rest_.size(); }

 private:
  std::string_view rest_;
};

std::string Ed25519Blob(std::string_view raw_key) {
  std::string blob;
  PutString(kSshEd25519, &blob);
  PutString(raw_key, &blob);
  return blob;
}

// The raw key of an "ssh-ed25519" public key blob; false if it is anything
// else or has trailing bytes.
bool ParseEd25519Blob(std::string_view blob, std::string* raw_key) {
  WireReader r(blob);
  std::string_view type, key;
  if (!r.String(&type) || type != kSshEd25519 || !r.String(&key) ||
      key.size() != kEd25519KeySize || !r.empty()) {
    return false;
  }
  raw_key->assign(key);
  return true;
}

Result<PkeyPtr> LoadEd25519PrivateKey(const std::string& pem) {
  return internal::LoadEd25519PrivateKey(pem, "SSH key");
}

Result<std::string> RawPublicKey(EVP_PKEY* key) {
  unsigned char raw[kEd25519KeySize];
  size_t len = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1 || len != sizeof(raw)) {
    ERR_clear_error();
    return Internal("cannot extract the Ed25519 public key");
  }
  return std::string(AsChars(raw, len));
}

Result<std::string> RandomBytes(size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()),
                 static_cast<int>(n)) != 1) {
    ERR_clear_error();
    return Internal("random number generator failed");
  }
  return out;
}

// Names must be sorted and unique (std::map gives both); a non-empty value
// is itself wrapped in a string, a flag has empty data.
Status PutOptions(const std::map<std::string, std::string>& options,
                  std::string_view what, std::string* out) {
  std::string list;
  for (const auto& [name, value] : options) {
    if (name.empty() || name.find('\0') != std::string::npos) {
      return InvalidArgument(std::string(what) +
                             " names must be non-empty and contain no NUL");
    }
    PutString(name, &list);
    std::string data;
    if (!value.empty()) PutString(value, &data);
    PutString(data, &list);
  }
  PutString(list, out);
  return Status::Ok();
}

Status ParseOptions(std::string_view list, std::string_view what,
                    std::map<std::string, std::string>* out) {
  WireReader r(list);
  std::string_view previous;
  bool first = true;
  while (!r.empty()) {
    std::string_view name, data;
    if (!r.String(&name) || !r.String(&data)) {
      return Malformed(std::string(what) + " list is truncated");
    }
    if (name.empty() || name.find('\0') != std::string_view::npos) {
      return Malformed(std::string(what) + " name is empty or contains NUL");
    }
    if (!first && name <= previous) {
      return Malformed(std::string(what) + " \"" + std::string(name) +
                       "\" is out of order or repeated");
    }
    std::string_view value;
    if (!data.empty()) {
      WireReader d(data);
      if (!d.String(&value) || !d.empty()) {
        return Malformed(std::string(what) + " \"" + std::string(name) +
                         "\" has malformed data");
      }
    }
    (*out)[std::string(name)] = std::string(value);
    previous = name;
    first = false;
  }
  return Status::Ok();
}

std::string FormatTime(uint64_t t) {
  if (t > static_cast<uint64_t>(std::numeric_limits<time_t>::max())) {
    return "forever";
  }
  time_t tt = static_cast<time_t>(t);
  std::tm tm{};
  char buf[32];
  if (gmtime_r(&tt, &tm) == nullptr ||
      strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
    return std::to_string(t);
  }
  return buf;
}

// "SHA256:..." as ssh-keygen -l prints it, to name keys in messages.
std::string Fingerprint(std::string_view blob) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(blob.data(), blob.size(), md, &len, EVP_sha256(), nullptr) !=
      1) {
    ERR_clear_error();
    return "SHA256:?";
  }
  std::string b64 = Base64Encode(AsChars(md, len));
  while (!b64.empty() && b64.back() == '=') b64.pop_back();
  return "SHA256:" + b64;
}

std::string CertTypeName(uint32_t type) {
  if (type == kSshUserCert) return "user";
  if (type == kSshHostCert) return "host";
  return "type " + std::to_string(type);
}

// PROTOCOL.key: an unencrypted openssh-key-v1 container holding one key.
Result<std::string> OpenSshPrivateKey(EVP_PKEY* key, std::string_view comment) {
  MEZ_ASSIGN_OR_RETURN(std::string pub, RawPublicKey(key));
  Wiped seed{std::string(kEd25519KeySize, '\0')};
  size_t seed_len = seed.s.size();
  if (EVP_PKEY_get_raw_private_key(
          key, reinterpret_cast<unsigned char*>(seed.s.data()), &seed_len) !=
          1 ||
      seed_len != kEd25519KeySize) {
    ERR_clear_error();
    return Internal("cannot extract the Ed25519 private key");
  }
  MEZ_ASSIGN_OR_RETURN(std::string check, RandomBytes(4));

  Wiped secret;  // the "private keys" section, padded
  secret.s.append(check);
  secret.s.append(check);  // the two check ints are equal when decrypted
  PutString(kSshEd25519, &secret.s);
  PutString(pub, &secret.s);
  Wiped both{seed.s + pub};  // OpenSSH stores seed || public key
  PutString(both.s, &secret.s);
  PutString(comment, &secret.s);
  for (char pad = 1; secret.s.size() % kOpenSshBlockSize != 0; ++pad) {
    secret.s.push_back(pad);
  }

  Wiped container{std::string(kOpenSshKeyMagic)};
  PutString("none", &container.s);  // cipher
  PutString("none", &container.s);  // kdf
  PutString("", &container.s);      // kdf options
  PutU32(1, &container.s);          // number of keys
  PutString(Ed25519Blob(pub), &container.s);
  PutString(secret.s, &container.s);

  Wiped b64{Base64Encode(container.s)};
  std::string pem = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
  for (size_t i = 0; i < b64.s.size(); i += kPemLineWidth) {
    pem.append(b64.s, i, kPemLineWidth);
    pem.push_back('\n');
  }
  pem.append("-----END OPENSSH PRIVATE KEY-----\n");
  return pem;
}

}  // namespace

Result<std::string> SignSshCert(const std::string& ca_private_pem,
                                const SshCertRequest& request) {
  std::string subject_key;
  if (!ParseEd25519Blob(request.public_key_blob, &subject_key)) {
    return InvalidArgument(
        "the key to certify is not an ssh-ed25519 public key blob");
  }
  if (request.type != kSshUserCert && request.type != kSshHostCert) {
    return InvalidArgument("SSH certificate type must be 1 (user) or 2 (host)");
  }
  if (request.principals.empty()) {
    return InvalidArgument(
        "SSH certificate needs at least one principal (OpenSSH reads none as "
        "any)");
  }
  for (const std::string& p : request.principals) {
    if (p.empty() || p.find('\0') != std::string::npos) {
      return InvalidArgument("SSH certificate principal is empty or has NUL");
    }
  }
  if (request.key_id.find('\0') != std::string::npos) {
    return InvalidArgument("SSH certificate key id contains NUL");
  }
  if (request.valid_after < 0 || request.valid_before <= request.valid_after) {
    return InvalidArgument(
        "SSH certificate validity must satisfy 0 <= valid_after < "
        "valid_before");
  }
  MEZ_ASSIGN_OR_RETURN(PkeyPtr ca, LoadEd25519PrivateKey(ca_private_pem));
  MEZ_ASSIGN_OR_RETURN(std::string ca_raw, RawPublicKey(ca.get()));
  MEZ_ASSIGN_OR_RETURN(std::string nonce, RandomBytes(kNonceSize));
  MEZ_ASSIGN_OR_RETURN(std::string serial_bytes, RandomBytes(8));
  uint64_t serial = 0;
  for (unsigned char c : serial_bytes) serial = (serial << 8) | c;

  std::string blob;
  PutString(kSshEd25519Cert, &blob);
  PutString(nonce, &blob);
  PutString(subject_key, &blob);
  PutU64(serial, &blob);
  PutU32(request.type, &blob);
  PutString(request.key_id, &blob);
  std::string principals;
  for (const std::string& p : request.principals) PutString(p, &principals);
  PutString(principals, &blob);
  PutU64(static_cast<uint64_t>(request.valid_after), &blob);
  PutU64(static_cast<uint64_t>(request.valid_before), &blob);
  MEZ_RETURN_IF_ERROR(
      PutOptions(request.critical_options, "critical option", &blob));
  MEZ_RETURN_IF_ERROR(PutOptions(request.extensions, "extension", &blob));
  PutString("", &blob);  // reserved
  PutString(Ed25519Blob(ca_raw), &blob);

  unsigned char sig[kEd25519SigSize];
  size_t sig_len = sizeof(sig);
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, ca.get()) != 1 ||
      EVP_DigestSign(ctx.get(), sig, &sig_len, AsBytes(blob), blob.size()) !=
          1 ||
      sig_len != sizeof(sig)) {
    ERR_clear_error();
    return Internal("Ed25519 signing of the SSH certificate failed");
  }
  std::string signature;
  PutString(kSshEd25519, &signature);
  PutString(AsChars(sig, sig_len), &signature);
  PutString(signature, &blob);
  return blob;
}

Result<std::string> Ed25519BlobFromPublicLine(std::string_view text) {
  std::string_view line = text.substr(0, text.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos || line.substr(0, sp) != kSshEd25519) {
    return InvalidArgument(
        "not an \"ssh-ed25519 AAAA...\" public key line (only Ed25519 keys "
        "are used)");
  }
  std::string_view b64 = line.substr(sp + 1);
  b64 = b64.substr(0, b64.find(' '));
  auto blob = Base64Decode(b64);
  if (!blob.ok()) return InvalidArgument("public key line: bad base64");
  // string "ssh-ed25519", string key (32 bytes)
  std::string want_prefix("\0\0\0\x0bssh-ed25519\0\0\0\x20", 19);
  if (blob->size() != 51 || blob->compare(0, 19, want_prefix) != 0) {
    return InvalidArgument("public key line: not an Ed25519 key blob");
  }
  return blob;
}

std::string SshCertLine(std::string_view blob, std::string_view comment) {
  std::string line(kSshEd25519Cert);
  line.push_back(' ');
  Base64EncodeTo(blob, &line);
  if (!comment.empty()) {
    line.push_back(' ');
    line.append(comment);
  }
  return line;
}

Result<SshCert> ParseSshCert(std::string_view blob) {
  if (blob.size() > kMaxSshCertSize) {
    return Malformed("larger than " + std::to_string(kMaxSshCertSize) +
                     " bytes");
  }
  WireReader r(blob);
  SshCert cert;
  std::string_view type_name, nonce, key, key_id, principals, critical,
      extensions, reserved, signature_key;
  if (!r.String(&type_name)) return Malformed("truncated key type");
  if (type_name != kSshEd25519Cert) {
    return Malformed("key type is not " + std::string(kSshEd25519Cert));
  }
  if (!r.String(&nonce)) return Malformed("truncated nonce");
  if (!r.String(&key)) return Malformed("truncated public key");
  if (key.size() != kEd25519KeySize) {
    return Malformed("public key is not 32 bytes");
  }
  if (!r.U64(&cert.serial)) return Malformed("truncated serial");
  if (!r.U32(&cert.type)) return Malformed("truncated type");
  if (cert.type != kSshUserCert && cert.type != kSshHostCert) {
    return Malformed("type " + std::to_string(cert.type) +
                     " is neither user (1) nor host (2)");
  }
  if (!r.String(&key_id)) return Malformed("truncated key id");
  if (key_id.find('\0') != std::string_view::npos) {
    return Malformed("key id contains NUL");
  }
  if (!r.String(&principals)) return Malformed("truncated principals");
  if (!r.U64(&cert.valid_after) || !r.U64(&cert.valid_before)) {
    return Malformed("truncated validity");
  }
  if (!r.String(&critical)) return Malformed("truncated critical options");
  if (!r.String(&extensions)) return Malformed("truncated extensions");
  if (!r.String(&reserved)) return Malformed("truncated reserved field");
  if (!r.String(&signature_key)) return Malformed("truncated signature key");
  std::string ca_raw;
  if (!ParseEd25519Blob(signature_key, &ca_raw)) {
    return Malformed("signature key is not an ssh-ed25519 public key");
  }
  cert.signed_data.assign(blob.substr(0, blob.size() - r.left()));
  std::string_view signature;
  if (!r.String(&signature)) return Malformed("truncated signature");
  if (!r.empty()) return Malformed("trailing bytes after the signature");

  WireReader sig(signature);
  std::string_view sig_type, sig_bytes;
  if (!sig.String(&sig_type) || sig_type != kSshEd25519 ||
      !sig.String(&sig_bytes) || sig_bytes.size() != kEd25519SigSize ||
      !sig.empty()) {
    return Malformed("signature is not an ssh-ed25519 signature");
  }

  WireReader p(principals);
  while (!p.empty()) {
    std::string_view name;
    if (!p.String(&name)) return Malformed("principal list is truncated");
    if (name.find('\0') != std::string_view::npos) {
      return Malformed("principal contains NUL");
    }
    cert.principals.emplace_back(name);
  }
  MEZ_RETURN_IF_ERROR(
      ParseOptions(critical, "critical option", &cert.critical_options));
  MEZ_RETURN_IF_ERROR(ParseOptions(extensions, "extension", &cert.extensions));

  cert.nonce.assign(nonce);
  cert.public_key.assign(key);
  cert.public_key_blob = Ed25519Blob(key);
  cert.key_id.assign(key_id);
  cert.reserved.assign(reserved);
  cert.signature_key.assign(signature_key);
  cert.signature.assign(sig_bytes);
  return cert;
}

Status CheckSshCert(const SshCert& cert,
                    const std::string& trusted_ca_public_blob,
                    uint32_t expected_type, const std::string& principal,
                    int64_t now) {
  std::string trusted_raw, ca_raw;
  if (!ParseEd25519Blob(trusted_ca_public_blob, &trusted_raw)) {
    return InvalidArgument("trusted SSH CA key is not an ssh-ed25519 blob");
  }
  if (!ParseEd25519Blob(cert.signature_key, &ca_raw)) {
    return Unauthenticated(
        "SSH certificate signature key is not an ssh-ed25519 key");
  }
  PkeyPtr ca(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                         AsBytes(ca_raw), ca_raw.size()));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ca || !ctx) {
    ERR_clear_error();
    return Internal("cannot set up Ed25519 verification");
  }
  bool verified = EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr,
                                       ca.get()) == 1 &&
                  EVP_DigestVerify(
                      ctx.get(), AsBytes(cert.signature), cert.signature.size(),
                      AsBytes(cert.signed_data), cert.signed_data.size()) == 1;
  ERR_clear_error();
  if (!verified) {
    return Unauthenticated("SSH certificate signature does not verify");
  }
  if (cert.signature_key != trusted_ca_public_blob) {
    return Unauthenticated("SSH certificate is signed by an untrusted CA (" +
                           Fingerprint(cert.signature_key) + ", trusted " +
                           Fingerprint(trusted_ca_public_blob) + ")");
  }
  if (cert.type != expected_type) {
    return Unauthenticated("SSH certificate is a " + CertTypeName(cert.type) +
                           " certificate, expected a " +
                           CertTypeName(expected_type) + " certificate");
  }
  uint64_t t = now < 0 ? 0 : static_cast<uint64_t>(now);
  if (t < cert.valid_after) {
    return Unauthenticated("SSH certificate is not valid before " +
                           FormatTime(cert.valid_after) + " (now " +
                           FormatTime(t) + ")");
  }
  if (t >= cert.valid_before) {
    return Unauthenticated("SSH certificate expired at " +
                           FormatTime(cert.valid_before) + " (now " +
                           FormatTime(t) + ")");
  }
  if (cert.principals.empty()) {
    return PermissionDenied(
        "SSH certificate lists no principals; refusing it for any");
  }
  bool listed = false;
  for (const std::string& p : cert.principals) listed |= (p == principal);
  if (!listed) {
    std::string names;
    for (const std::string& p : cert.principals) {
      names += (names.empty() ? "" : ", ") + p;
    }
    return PermissionDenied("SSH certificate for \"" + cert.key_id +
                            "\" does not allow principal \"" + principal +
                            "\" (allows: " + names + ")");
  }
  if (!cert.critical_options.empty()) {
    return PermissionDenied("SSH certificate carries critical option \"" +
                            cert.critical_options.begin()->first +
                            "\", which Mezite does not enforce");
  }
  return Status::Ok();
}

Result<std::string> Ed25519PublicBlobFromPem(const std::string& private_pem) {
  MEZ_ASSIGN_OR_RETURN(PkeyPtr key, LoadEd25519PrivateKey(private_pem));
  MEZ_ASSIGN_OR_RETURN(std::string raw, RawPublicKey(key.get()));
  return Ed25519Blob(raw);
}

Result<std::string> OpenSshPrivateKeyFromPem(const std::string& private_pem,
                                             std::string_view comment) {
  MEZ_ASSIGN_OR_RETURN(PkeyPtr key, LoadEd25519PrivateKey(private_pem));
  return OpenSshPrivateKey(key.get(), comment);
}

Result<std::pair<std::string, std::string>> GenerateSshUserKey() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) {
    ERR_clear_error();
    return Internal("Ed25519 key generation failed");
  }
  MEZ_ASSIGN_OR_RETURN(std::string private_key,
                       OpenSshPrivateKey(key.get(), ""));
  MEZ_ASSIGN_OR_RETURN(std::string raw, RawPublicKey(key.get()));
  return std::make_pair(std::move(private_key), Ed25519Blob(raw));
}

SshCertRequest UpstreamCertRequest(const std::string& public_key_blob,
                                   const std::string& user,
                                   const std::string& login, int64_t now) {
  SshCertRequest r;
  r.public_key_blob = public_key_blob;
  r.type = kSshUserCert;
  r.key_id = user;
  r.principals = {login};
  r.valid_after = now - 60;
  r.valid_before = now + kUpstreamCertSeconds;
  r.extensions = {{"permit-pty", ""}, {"permit-port-forwarding", ""}};
  return r;
}

}  // namespace mez::auth
