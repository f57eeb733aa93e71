#include "libmez/auth/keys.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <utility>

#include "libmez/auth/openssl_ptr.h"
#include "libmez/auth/token.h"
#include "libmez/util/encoding.h"
#include "libmez/util/file.h"
#include "libmez/util/log.h"
#include "libmez/util/path.h"

namespace mez::auth {
namespace {

using internal::BignumPtr;
using internal::BioContents;
using internal::BioPtr;
using internal::ExtensionPtr;
using internal::GeneralNamesPtr;
using internal::LoadEd25519PrivateKey;
using internal::MemBio;
using internal::NoPassphrase;
using internal::PkeyPtr;
using internal::X509NamePtr;
using internal::X509Ptr;

constexpr int64_t kDay = 24 * 3600;
constexpr int64_t kCaValidity = 3652 * kDay;  // ten years
constexpr int64_t kServerValidity = 365 * kDay;
constexpr int64_t kRenewBefore = 30 * kDay;
// Certificates start an hour in the past so that a client whose clock is a
// little behind still accepts a freshly issued one.
constexpr int64_t kBackdate = 3600;
constexpr mode_t kSecretMode = 0600;
constexpr std::string_view kDefaultClusterName = "mezite";

// The file's content, or nullopt when it does not exist.
Result<std::optional<std::string>> ReadIfExists(const std::string& path) {
  Result<std::string> data = ReadFile(path);
  if (data.ok()) return std::optional<std::string>(std::move(*data));
  if (data.status().code() == Code::kNotFound) {
    return std::optional<std::string>();
  }
  return data.status();
}

void WarnIfExposed(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    MEZ_LOG(kWarning) << path << " is accessible to group or others (mode "
                      << std::oct << (st.st_mode & 0777)
                      << "); it should be 0600";
  }
}

Status WriteSecret(const std::string& path, std::string_view data) {
  return AtomicWriteFile(path, data, kSecretMode);
}

// Creates `dir` and missing parents with mode 0700.
Status MakeDataDir(const std::string& dir) {
  if (dir.empty()) return InvalidArgument("data dir is empty");
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos != dir.size() && dir[pos] != '/') continue;
    std::string prefix = dir.substr(0, pos);
    if (mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return ErrnoStatus("create data dir " + prefix, errno);
    }
  }
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) return ErrnoStatus("stat " + dir, errno);
  if (!S_ISDIR(st.st_mode)) {
    return FailedPrecondition("data dir " + dir + " is not a directory");
  }
  return Status::Ok();
}

Result<PkeyPtr> ParsePrivateKey(std::string_view pem, const std::string& path) {
  BioPtr bio = MemBio(pem);
  PkeyPtr key(
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr)
          : nullptr);
  if (!key) {
    ERR_clear_error();
    return DataLoss(path + " is not a readable PEM private key");
  }
  return key;
}

Result<std::string> PrivatePem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0,
                                       nullptr, nullptr) != 1) {
    return Internal("cannot encode private key as PEM");
  }
  return BioContents(bio.get());
}

Result<std::string> PublicPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return Internal("cannot encode public key as PEM");
  }
  return BioContents(bio.get());
}

Result<X509Ptr> ParseCert(std::string_view pem, const std::string& path) {
  BioPtr bio = MemBio(pem);
  X509Ptr cert(
      bio ? PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)
          : nullptr);
  if (!cert) {
    ERR_clear_error();
    return DataLoss(path + " is not a readable PEM certificate");
  }
  return cert;
}

Result<std::string> CertPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) {
    return Internal("cannot encode certificate as PEM");
  }
  return BioContents(bio.get());
}

// Loads an Ed25519 key from `path`, or creates one when the file is absent.
Result<std::string> LoadOrCreateEd25519(const std::string& path) {
  MEZ_ASSIGN_OR_RETURN(std::optional<std::string> existing, ReadIfExists(path));
  if (!existing) {
    MEZ_ASSIGN_OR_RETURN(std::string pem, GenerateEd25519Pem());
    MEZ_RETURN_IF_ERROR(WriteSecret(path, pem));
    return pem;
  }
  MEZ_ASSIGN_OR_RETURN(PkeyPtr key, ParsePrivateKey(*existing, path));
  if (EVP_PKEY_get_id(key.get()) != EVP_PKEY_ED25519) {
    return DataLoss(path + " holds a key that is not Ed25519");
  }
  WarnIfExposed(path);
  return std::move(*existing);
}

// The .pub file is derived from the key: it is written when missing and
// rewritten (with a warning) when it no longer matches.
Result<std::string> SyncPublicLine(const std::string& path,
                                   const std::string& private_pem,
                                   const std::string& comment) {
  MEZ_ASSIGN_OR_RETURN(std::string line,
                       SshPublicKeyLine(private_pem, comment));
  MEZ_ASSIGN_OR_RETURN(std::optional<std::string> existing, ReadIfExists(path));
  if (existing && *existing == line + "\n") return line;
  if (existing) {
    MEZ_LOG(kWarning) << path << " does not match its private key; rewriting";
  }
  MEZ_RETURN_IF_ERROR(WriteSecret(path, line + "\n"));
  return line;
}

Result<std::string> LoadOrCreateClusterName(const std::string& path) {
  MEZ_ASSIGN_OR_RETURN(std::optional<std::string> existing, ReadIfExists(path));
  if (!existing) {
    MEZ_RETURN_IF_ERROR(
        WriteSecret(path, std::string(kDefaultClusterName) + "\n"));
    return std::string(kDefaultClusterName);
  }
  std::string name = std::move(*existing);
  while (!name.empty() && (name.back() == '\n' || name.back() == '\r')) {
    name.pop_back();
  }
  if (!IsPlainIdentifier(name)) {
    return DataLoss(path +
                    " must hold one plain name ([A-Za-z0-9._-], at most 128 "
                    "bytes)");
  }
  return name;
}

// The subjectAltNames a server certificate must carry.
struct SanSet {
  std::vector<std::string> dns;  // lower case
  std::vector<std::string> ips;  // 4 or 16 raw bytes
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

bool IsDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '.' || c == '_' || c == '*';
    if (!ok) return false;
  }
  return true;
}

Result<SanSet> RequiredSans(const std::vector<std::string>& server_names) {
  std::vector<std::string> names = {"127.0.0.1", "::1", "localhost"};
  names.insert(names.end(), server_names.begin(), server_names.end());
  SanSet sans;
  for (const std::string& raw : names) {
    std::string name = raw;
    if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
      name = name.substr(1, name.size() - 2);
    }
    unsigned char buf[16];
    std::string ip;
    if (inet_pton(AF_INET, name.c_str(), buf) == 1) {
      ip.assign(reinterpret_cast<char*>(buf), 4);
    } else if (inet_pton(AF_INET6, name.c_str(), buf) == 1) {
      ip.assign(reinterpret_cast<char*>(buf), 16);
    }
    if (!ip.empty()) {
      if (std::find(sans.ips.begin(), sans.ips.end(), ip) == sans.ips.end()) {
        sans.ips.push_back(ip);
      }
      continue;
    }
    std::string dns = Lower(name);
    if (!IsDnsName(dns)) {
      return InvalidArgument("server name \"" + raw +
                             "\" is neither an IP address nor a DNS name");
    }
    if (std::find(sans.dns.begin(), sans.dns.end(), dns) == sans.dns.end()) {
      sans.dns.push_back(dns);
    }
  }
  return sans;
}

bool CoversSans(X509* cert, const SanSet& want) {
  GeneralNamesPtr names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return false;
  SanSet have;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names.get(), i);
    if (g->type == GEN_DNS) {
      const ASN1_STRING* s = g->d.dNSName;
      have.dns.push_back(Lower(std::string_view(
          reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
          static_cast<size_t>(ASN1_STRING_length(s)))));
    } else if (g->type == GEN_IPADD) {
      const ASN1_STRING* s = g->d.iPAddress;
      have.ips.emplace_back(
          reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
          static_cast<size_t>(ASN1_STRING_length(s)));
    }
  }
  auto contains = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  for (const std::string& d : want.dns) {
    if (!contains(have.dns, d)) return false;
  }
  for (const std::string& ip : want.ips) {
    if (!contains(have.ips, ip)) return false;
  }
  return true;
}

Status AddSans(X509* cert, const SanSet& sans) {
  GeneralNamesPtr names(sk_GENERAL_NAME_new_null());
  if (!names) return Internal("out of memory");
  auto push = [&](int type, const std::string& value) {
    ASN1_STRING* s =
        type == GEN_DNS ? ASN1_IA5STRING_new() : ASN1_OCTET_STRING_new();
    GENERAL_NAME* g = GENERAL_NAME_new();
    if (s == nullptr || g == nullptr ||
        ASN1_STRING_set(s, value.data(), static_cast<int>(value.size())) != 1) {
      ASN1_STRING_free(s);
      GENERAL_NAME_free(g);
      return false;
    }
    GENERAL_NAME_set0_value(g, type, s);
    if (sk_GENERAL_NAME_push(names.get(), g) == 0) {
      GENERAL_NAME_free(g);
      return false;
    }
    return true;
  };
  for (const std::string& d : sans.dns) {
    if (!push(GEN_DNS, d)) return Internal("cannot build subjectAltName");
  }
  for (const std::string& ip : sans.ips) {
    if (!push(GEN_IPADD, ip)) return Internal("cannot build subjectAltName");
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0,
                        X509V3_ADD_DEFAULT) != 1) {
    return Internal("cannot add subjectAltName");
  }
  return Status::Ok();
}

Status AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  ExtensionPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return Internal(std::string("cannot add certificate extension ") +
                    OBJ_nid2sn(nid));
  }
  return Status::Ok();
}

Result<PkeyPtr> GenerateP256() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return Internal("P-256 key generation failed");
  return key;
}

int64_t CertNotAfter(X509* cert) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

struct CertSpec {
  std::string common_name;
  bool is_ca = false;
  const SanSet* sans = nullptr;  // server certificates only
  int64_t not_before = 0;
  int64_t not_after = 0;
};

// Issues a certificate for `subject_key`, signed by `issuer_key` under
// `issuer` (self-signed when `issuer` is null).
Result<X509Ptr> IssueCert(const CertSpec& spec, EVP_PKEY* subject_key,
                          X509* issuer, EVP_PKEY* issuer_key) {
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), X509_VERSION_3) != 1) {
    return Internal("cannot create certificate");
  }
  // A random positive 127-bit serial (RFC 5280: at most 20 octets).
  unsigned char serial_bytes[16];
  if (RAND_bytes(serial_bytes, sizeof(serial_bytes)) != 1) {
    return Internal("random generator failed");
  }
  serial_bytes[0] = (serial_bytes[0] & 0x7f) | 0x01;
  BignumPtr serial(BN_bin2bn(serial_bytes, sizeof(serial_bytes), nullptr));
  if (!serial || BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(
                                                      cert.get())) == nullptr) {
    return Internal("cannot set certificate serial");
  }
  X509NamePtr name(X509_NAME_new());
  auto cn = reinterpret_cast<const unsigned char*>(spec.common_name.c_str());
  auto org = reinterpret_cast<const unsigned char*>("Mezite");
  if (!name ||
      X509_NAME_add_entry_by_txt(name.get(), "O", MBSTRING_UTF8, org, -1, -1,
                                 0) != 1 ||
      X509_NAME_add_entry_by_txt(name.get(), "CN", MBSTRING_UTF8, cn, -1, -1,
                                 0) != 1 ||
      X509_set_subject_name(cert.get(), name.get()) != 1 ||
      X509_set_issuer_name(cert.get(), issuer != nullptr
                                           ? X509_get_subject_name(issuer)
                                           : name.get()) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(cert.get()),
                    static_cast<time_t>(spec.not_before)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert.get()),
                    static_cast<time_t>(spec.not_after)) == nullptr) {
    return Internal("cannot fill certificate fields");
  }
  X509* ext_issuer = issuer != nullptr ? issuer : cert.get();
  if (spec.is_ca) {
    MEZ_RETURN_IF_ERROR(AddExtension(cert.get(), ext_issuer,
                                     NID_basic_constraints,
                                     "critical,CA:TRUE,pathlen:0"));
    MEZ_RETURN_IF_ERROR(AddExtension(cert.get(), ext_issuer, NID_key_usage,
                                     "critical,keyCertSign,cRLSign"));
    MEZ_RETURN_IF_ERROR(AddExtension(cert.get(), ext_issuer,
                                     NID_subject_key_identifier, "hash"));
  } else {
    MEZ_RETURN_IF_ERROR(AddExtension(
        cert.get(), ext_issuer, NID_basic_constraints, "critical,CA:FALSE"));
    MEZ_RETURN_IF_ERROR(AddExtension(cert.get(), ext_issuer, NID_key_usage,
                                     "critical,digitalSignature"));
    MEZ_RETURN_IF_ERROR(
        AddExtension(cert.get(), ext_issuer, NID_ext_key_usage, "serverAuth"));
    MEZ_RETURN_IF_ERROR(AddExtension(cert.get(), ext_issuer,
                                     NID_subject_key_identifier, "hash"));
    MEZ_RETURN_IF_ERROR(AddExtension(cert.get(), ext_issuer,
                                     NID_authority_key_identifier, "keyid"));
    MEZ_RETURN_IF_ERROR(AddSans(cert.get(), *spec.sans));
  }
  // Ed25519 signs the message itself and takes no digest.
  const EVP_MD* md =
      EVP_PKEY_get_id(issuer_key) == EVP_PKEY_ED25519 ? nullptr : EVP_sha256();
  if (X509_sign(cert.get(), issuer_key, md) <= 0) {
    return Internal("cannot sign certificate");
  }
  return cert;
}

struct TlsMaterial {
  std::string ca_cert_pem;
  std::string ca_key_pem;
  std::string server_cert_pem;
  std::string server_key_pem;
};

// Why an existing server certificate must be replaced, or empty when it
// is still good.
std::string ServerCertProblem(X509* cert, EVP_PKEY* server_key,
                              EVP_PKEY* ca_key, const SanSet& sans,
                              int64_t now) {
  if (X509_check_private_key(cert, server_key) != 1) {
    return "it does not match tls_server.key";
  }
  if (X509_verify(cert, ca_key) != 1) return "it is not signed by the TLS CA";
  if (ASN1_TIME_cmp_time_t(X509_get0_notBefore(cert),
                           static_cast<time_t>(now)) > 0) {
    return "it is not yet valid";
  }
  int cmp = ASN1_TIME_cmp_time_t(X509_get0_notAfter(cert),
                                 static_cast<time_t>(now + kRenewBefore));
  if (cmp < 0) return "it expires within 30 days";  // -2: unreadable
  if (!CoversSans(cert, sans)) return "it does not cover every server name";
  return "";
}

Result<TlsMaterial> LoadOrCreateTls(const std::string& dir,
                                    const std::string& cluster_name,
                                    const SanSet& sans, int64_t now) {
  const std::string ca_key_path = dir + "/tls_ca.key";
  const std::string ca_cert_path = dir + "/tls_ca.crt";
  const std::string server_key_path = dir + "/tls_server.key";
  const std::string server_cert_path = dir + "/tls_server.crt";
  TlsMaterial out;

  // The CA: its key is never replaced; a lost certificate is re-created
  // from the key (same subject and key, so existing trust still works).
  MEZ_ASSIGN_OR_RETURN(std::optional<std::string> ca_key_pem,
                       ReadIfExists(ca_key_path));
  MEZ_ASSIGN_OR_RETURN(std::optional<std::string> ca_cert_pem,
                       ReadIfExists(ca_cert_path));
  PkeyPtr ca_key;
  if (ca_key_pem) {
    MEZ_ASSIGN_OR_RETURN(ca_key, ParsePrivateKey(*ca_key_pem, ca_key_path));
    WarnIfExposed(ca_key_path);
  } else {
    if (ca_cert_pem) {
      return FailedPrecondition(
          ca_cert_path + " exists but " + ca_key_path +
          " is missing; restore the key, or remove both to create a new TLS "
          "CA (clients must then fetch the new CA)");
    }
    MEZ_ASSIGN_OR_RETURN(ca_key, GenerateP256());
    MEZ_ASSIGN_OR_RETURN(std::string pem, PrivatePem(ca_key.get()));
    MEZ_RETURN_IF_ERROR(WriteSecret(ca_key_path, pem));
    ca_key_pem = std::move(pem);
  }
  X509Ptr ca_cert;
  if (ca_cert_pem) {
    MEZ_ASSIGN_OR_RETURN(ca_cert, ParseCert(*ca_cert_pem, ca_cert_path));
    if (X509_check_private_key(ca_cert.get(), ca_key.get()) != 1) {
      return FailedPrecondition(ca_cert_path + " does not match " +
                                ca_key_path);
    }
  } else {
    CertSpec spec;
    // X.520 limits a common name to 64 characters.
    spec.common_name = cluster_name.substr(0, 48) + " TLS CA";
    spec.is_ca = true;
    spec.not_before = now - kBackdate;
    spec.not_after = now + kCaValidity;
    MEZ_ASSIGN_OR_RETURN(ca_cert,
                         IssueCert(spec, ca_key.get(), nullptr, ca_key.get()));
    MEZ_ASSIGN_OR_RETURN(std::string pem, CertPem(ca_cert.get()));
    MEZ_RETURN_IF_ERROR(WriteSecret(ca_cert_path, pem));
    ca_cert_pem = std::move(pem);
  }
  int64_t ca_not_after = CertNotAfter(ca_cert.get());
  if (ca_not_after <= now) {
    return FailedPrecondition(
        ca_cert_path +
        " has expired; remove tls_ca.* to create a new TLS CA (clients must "
        "then fetch the new CA)");
  }
  out.ca_key_pem = std::move(*ca_key_pem);
  out.ca_cert_pem = std::move(*ca_cert_pem);

  // The server key is kept across certificate renewals.
  MEZ_ASSIGN_OR_RETURN(std::optional<std::string> server_key_pem,
                       ReadIfExists(server_key_path));
  PkeyPtr server_key;
  if (server_key_pem) {
    MEZ_ASSIGN_OR_RETURN(server_key,
                         ParsePrivateKey(*server_key_pem, server_key_path));
    WarnIfExposed(server_key_path);
  } else {
    MEZ_ASSIGN_OR_RETURN(server_key, GenerateP256());
    MEZ_ASSIGN_OR_RETURN(std::string pem, PrivatePem(server_key.get()));
    MEZ_RETURN_IF_ERROR(WriteSecret(server_key_path, pem));
    server_key_pem = std::move(pem);
  }
  out.server_key_pem = std::move(*server_key_pem);

  // The server certificate is derived material: anything wrong with it
  // (unreadable, stale, too few names) gets a fresh one.
  MEZ_ASSIGN_OR_RETURN(std::optional<std::string> server_cert_pem,
                       ReadIfExists(server_cert_path));
  if (server_cert_pem) {
    Result<X509Ptr> cert = ParseCert(*server_cert_pem, server_cert_path);
    std::string problem = cert.ok()
                              ? ServerCertProblem(cert->get(), server_key.get(),
                                                  ca_key.get(), sans, now)
                              : "it is unreadable";
    if (problem.empty()) {
      out.server_cert_pem = std::move(*server_cert_pem);
      return out;
    }
    MEZ_LOG(kInfo) << "issuing a new " << server_cert_path << ": " << problem;
  }
  CertSpec spec;
  spec.common_name = cluster_name.substr(0, 48) + " server";
  spec.sans = &sans;
  spec.not_before = now - kBackdate;
  spec.not_after = std::min(now + kServerValidity, ca_not_after);
  MEZ_ASSIGN_OR_RETURN(X509Ptr cert, IssueCert(spec, server_key.get(),
                                               ca_cert.get(), ca_key.get()));
  MEZ_ASSIGN_OR_RETURN(out.server_cert_pem, CertPem(cert.get()));
  MEZ_RETURN_IF_ERROR(WriteSecret(server_cert_path, out.server_cert_pem));
  return out;
}

void PutString(std::string_view s, std::string* out) {
  uint32_t n = static_cast<uint32_t>(s.size());
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((n >> shift) & 0xff));
  }
  out->append(s);
}

}  // namespace

Result<std::string> SshPublicKeyLine(const std::string& private_pem,
                                     const std::string& comment) {
  if (comment.find_first_of("\r\n") != std::string::npos) {
    return InvalidArgument("SSH key comment must be one line");
  }
  MEZ_ASSIGN_OR_RETURN(PkeyPtr key,
                       LoadEd25519PrivateKey(private_pem, "SSH CA key"));
  unsigned char raw[32];
  size_t raw_len = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(key.get(), raw, &raw_len) != 1 ||
      raw_len != sizeof(raw)) {
    return Internal("cannot extract the Ed25519 public key");
  }
  // RFC 8709 section 4: string "ssh-ed25519" || string key.
  std::string blob;
  PutString("ssh-ed25519", &blob);
  PutString(std::string_view(reinterpret_cast<const char*>(raw), raw_len),
            &blob);
  std::string line = "ssh-ed25519 " + Base64Encode(blob);
  if (!comment.empty()) line += " " + comment;
  return line;
}

Result<ClusterKeys> LoadOrCreateClusterKeys(
    const std::string& data_dir, const std::vector<std::string>& server_names,
    Clock* clock) {
  MEZ_ASSIGN_OR_RETURN(SanSet sans, RequiredSans(server_names));
  MEZ_RETURN_IF_ERROR(MakeDataDir(data_dir));
  const std::string& d = data_dir;
  int64_t now = clock->WallMicros() / 1'000'000;

  ClusterKeys keys;
  MEZ_ASSIGN_OR_RETURN(keys.cluster_name,
                       LoadOrCreateClusterName(d + "/cluster_name"));
  MEZ_ASSIGN_OR_RETURN(keys.jwt_private_pem,
                       LoadOrCreateEd25519(d + "/jwt.key"));
  {
    MEZ_ASSIGN_OR_RETURN(PkeyPtr jwt,
                         ParsePrivateKey(keys.jwt_private_pem, d + "/jwt.key"));
    MEZ_ASSIGN_OR_RETURN(keys.jwt_public_pem, PublicPem(jwt.get()));
  }
  MEZ_ASSIGN_OR_RETURN(keys.user_ca_private_pem,
                       LoadOrCreateEd25519(d + "/user_ca.key"));
  MEZ_ASSIGN_OR_RETURN(
      keys.user_ca_public,
      SyncPublicLine(d + "/user_ca.pub", keys.user_ca_private_pem,
                     "mezite-user-ca"));
  MEZ_ASSIGN_OR_RETURN(keys.host_ca_private_pem,
                       LoadOrCreateEd25519(d + "/host_ca.key"));
  MEZ_ASSIGN_OR_RETURN(
      keys.host_ca_public,
      SyncPublicLine(d + "/host_ca.pub", keys.host_ca_private_pem,
                     "mezite-host-ca"));
  MEZ_ASSIGN_OR_RETURN(TlsMaterial tls,
                       LoadOrCreateTls(d, keys.cluster_name, sans, now));
  keys.tls_ca_cert_pem = std::move(tls.ca_cert_pem);
  keys.tls_ca_key_pem = std::move(tls.ca_key_pem);
  keys.tls_server_cert_pem = std::move(tls.server_cert_pem);
  keys.tls_server_key_pem = std::move(tls.server_key_pem);
  return keys;
}

Result<std::string> CertificateSha256(std::string_view pem) {
  Result<X509Ptr> cert = ParseCert(pem, "certificate");
  if (!cert.ok()) return InvalidArgument("not a PEM certificate");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert->get(), EVP_sha256(), md, &len) != 1) {
    return Internal("cannot hash the certificate");
  }
  return HexEncode(std::string_view(reinterpret_cast<char*>(md), len));
}

}  // namespace mez::auth
