#include "libmez/auth/keys.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ctime>
#include <string>
#include <vector>

#include "libmez/auth/token.h"
#include "libmez/util/clock.h"
#include "libmez/util/encoding.h"
#include "libmez/util/file.h"
#include "tests/test_util.h"

namespace mez::auth {
namespace {

using ::mez::testing::HaveProgram;
using ::mez::testing::ShellQuote;
using ::mez::testing::TempDir;
using ::mez::testing::WriteFileOrDie;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Not called Run: inside a TEST body that name is ::testing::Test::Run.
::mez::testing::CommandResult Sh(const std::string& command) {
  return ::mez::testing::Run(command);
}

constexpr int64_t kStart = 1'700'000'000;
constexpr int64_t kDay = 86400;

const char* const kFiles[] = {"cluster_name",  "jwt.key",     "user_ca.key",
                              "user_ca.pub",   "host_ca.key", "host_ca.pub",
                              "tls_ca.crt",    "tls_ca.key",  "tls_server.crt",
                              "tls_server.key"};

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr ParseCert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  return X509Ptr(cert);
}

int64_t ToUnix(const ASN1_TIME* t) {
  std::tm tm{};
  EXPECT_EQ(ASN1_TIME_to_tm(t, &tm), 1);
  return static_cast<int64_t>(timegm(&tm));
}

mode_t ModeOf(const std::string& path) {
  struct stat st;
  EXPECT_EQ(stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 0777;
}

std::string ReadOrDie(const std::string& path) {
  Result<std::string> r = ReadFile(path);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : "";
}

// Chains `server` to `ca` at `when` for the TLS server purpose.
bool ChainsTo(X509* server, X509* ca, int64_t when) {
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, server, nullptr);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx),
                             static_cast<time_t>(when));
  int ok = X509_verify_cert(ctx);
  if (ok != 1) {
    ADD_FAILURE() << "verify: "
                  << X509_verify_cert_error_string(
                         X509_STORE_CTX_get_error(ctx));
  }
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  return ok == 1;
}

class KeysTest : public ::testing::Test {
 protected:
  KeysTest() : clock_(kStart * 1'000'000), dir_(tmp_.path() + "/data/mez") {}

  ClusterKeys LoadOrDie(const std::vector<std::string>& names = {}) {
    Result<ClusterKeys> keys = LoadOrCreateClusterKeys(dir_, names, &clock_);
    EXPECT_TRUE(keys.ok()) << keys.status().ToString();
    return keys.ok() ? *keys : ClusterKeys{};
  }
  std::string File(const std::string& name) const { return dir_ + "/" + name; }

  TempDir tmp_;
  FakeClock clock_;
  std::string dir_;
};

TEST_F(KeysTest, FirstCallCreatesEveryFilePrivately) {
  ClusterKeys keys = LoadOrDie();
  EXPECT_EQ(ModeOf(dir_), 0700u);
  for (const char* name : kFiles) {
    EXPECT_EQ(ModeOf(File(name)), 0600u) << name;
  }
  EXPECT_EQ(keys.cluster_name, "mezite");
  EXPECT_EQ(ReadOrDie(File("cluster_name")), "mezite\n");
  EXPECT_EQ(ReadOrDie(File("jwt.key")), keys.jwt_private_pem);
  EXPECT_EQ(ReadOrDie(File("tls_ca.crt")), keys.tls_ca_cert_pem);
  EXPECT_EQ(ReadOrDie(File("tls_server.key")), keys.tls_server_key_pem);
  EXPECT_EQ(ReadOrDie(File("user_ca.pub")), keys.user_ca_public + "\n");
  EXPECT_THAT(keys.user_ca_public, StartsWith("ssh-ed25519 AAAA"));
  EXPECT_THAT(keys.user_ca_public, ::testing::EndsWith(" mezite-user-ca"));
  EXPECT_THAT(keys.host_ca_public, ::testing::EndsWith(" mezite-host-ca"));
  EXPECT_NE(keys.user_ca_public, keys.host_ca_public);
  EXPECT_NE(keys.jwt_private_pem, keys.user_ca_private_pem);

  // The token key pair works end to end.
  auto signer = TokenSigner::FromPem(keys.jwt_private_pem);
  ASSERT_TRUE(signer.ok());
  EXPECT_EQ((*signer)->PublicKeyPem(), keys.jwt_public_pem);
  auto verifier =
      TokenVerifier::FromPublicPem(keys.jwt_public_pem, keys.cluster_name);
  ASSERT_TRUE(verifier.ok());
  auto token = IssueToken(**signer, keys.cluster_name, Role::kUser, "alice", {},
                          60, &clock_);
  ASSERT_TRUE(token.ok());
  EXPECT_TRUE((*verifier)->Verify(*token, kStart).ok());
}

TEST_F(KeysTest, SecondCallLoadsTheSameKeys) {
  ClusterKeys first = LoadOrDie({"mez.example.com"});
  clock_.Advance(3600LL * 1'000'000);
  ClusterKeys second = LoadOrDie({"mez.example.com"});
  EXPECT_EQ(first.cluster_name, second.cluster_name);
  EXPECT_EQ(first.jwt_private_pem, second.jwt_private_pem);
  EXPECT_EQ(first.jwt_public_pem, second.jwt_public_pem);
  EXPECT_EQ(first.user_ca_private_pem, second.user_ca_private_pem);
  EXPECT_EQ(first.user_ca_public, second.user_ca_public);
  EXPECT_EQ(first.host_ca_private_pem, second.host_ca_private_pem);
  EXPECT_EQ(first.host_ca_public, second.host_ca_public);
  EXPECT_EQ(first.tls_ca_cert_pem, second.tls_ca_cert_pem);
  EXPECT_EQ(first.tls_ca_key_pem, second.tls_ca_key_pem);
  EXPECT_EQ(first.tls_server_cert_pem, second.tls_server_cert_pem);
  EXPECT_EQ(first.tls_server_key_pem, second.tls_server_key_pem);
}

TEST_F(KeysTest, ServerCertChainsToCaAndCoversNames) {
  ClusterKeys keys =
      LoadOrDie({"mez.example.com", "10.1.2.3", "2001:db8::1", "Proxy.LAN"});
  X509Ptr ca = ParseCert(keys.tls_ca_cert_pem);
  X509Ptr server = ParseCert(keys.tls_server_cert_pem);
  ASSERT_TRUE(ca && server);

  EXPECT_TRUE(ChainsTo(server.get(), ca.get(), kStart));
  EXPECT_EQ(X509_check_ca(ca.get()), 1);
  EXPECT_EQ(X509_check_ca(server.get()), 0);
  int bc = X509_get_ext_by_NID(ca.get(), NID_basic_constraints, -1);
  ASSERT_GE(bc, 0);
  EXPECT_EQ(X509_EXTENSION_get_critical(X509_get_ext(ca.get(), bc)), 1);
  EXPECT_EQ(X509_get_key_usage(ca.get()), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
  EXPECT_NE(X509_get_extended_key_usage(server.get()) & XKU_SSL_SERVER, 0u);
  EXPECT_EQ(EVP_PKEY_get_id(X509_get0_pubkey(ca.get())), EVP_PKEY_EC);
  EXPECT_EQ(EVP_PKEY_get_id(X509_get0_pubkey(server.get())), EVP_PKEY_EC);

  for (const char* host : {"mez.example.com", "localhost", "proxy.lan"}) {
    EXPECT_EQ(X509_check_host(server.get(), host, 0, 0, nullptr), 1) << host;
  }
  for (const char* ip : {"10.1.2.3", "2001:db8::1", "127.0.0.1", "::1"}) {
    EXPECT_EQ(X509_check_ip_asc(server.get(), ip, 0), 1) << ip;
  }
  EXPECT_NE(X509_check_host(server.get(), "evil.example.com", 0, 0, nullptr),
            1);
  EXPECT_NE(X509_check_ip_asc(server.get(), "10.1.2.4", 0), 1);

  // Validity: CA ten years, server one year, both backdated for skew.
  int64_t ca_days = (ToUnix(X509_get0_notAfter(ca.get())) - kStart) / kDay;
  int64_t server_days =
      (ToUnix(X509_get0_notAfter(server.get())) - kStart) / kDay;
  EXPECT_GE(ca_days, 3650);
  EXPECT_LE(ca_days, 3653);
  EXPECT_EQ(server_days, 365);
  EXPECT_LE(ToUnix(X509_get0_notBefore(server.get())), kStart);
  // Random serials: two certificates never share one.
  EXPECT_NE(ASN1_INTEGER_cmp(X509_get0_serialNumber(ca.get()),
                             X509_get0_serialNumber(server.get())),
            0);

  // An independent implementation agrees (openssl's own verify command).
  if (HaveProgram("openssl")) {
    std::string ca_path = File("tls_ca.crt");
    std::string cmd = "openssl verify -purpose sslserver -attime " +
                      std::to_string(kStart) + " -CAfile " +
                      ShellQuote(ca_path) + " " +
                      ShellQuote(File("tls_server.crt")) + " 2>&1";
    auto r = Sh(cmd);
    EXPECT_EQ(r.exit_code, 0) << r.out;
  }
}

TEST_F(KeysTest, CertificateSha256IsTheHashOfTheDer) {
  ClusterKeys keys = LoadOrDie();
  auto pin = CertificateSha256(keys.tls_ca_cert_pem);
  ASSERT_TRUE(pin.ok()) << pin.status().ToString();
  EXPECT_EQ(pin->size(), 64u);
  // Another certificate, another pin; the CA's again, the same.
  auto other = CertificateSha256(keys.tls_server_cert_pem);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*pin, *other);
  // The first certificate of a chain is the one hashed.
  auto chain =
      CertificateSha256(keys.tls_ca_cert_pem + keys.tls_server_cert_pem);
  ASSERT_TRUE(chain.ok());
  EXPECT_EQ(*chain, *pin);
  EXPECT_EQ(CertificateSha256("not a certificate").status().code(),
            Code::kInvalidArgument);
  // openssl agrees: the SHA-256 of the DER (what operators compare with).
  if (HaveProgram("openssl")) {
    auto r = Sh("openssl x509 -in " + ShellQuote(File("tls_ca.crt")) +
                " -outform DER | sha256sum");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(r.out.substr(0, 64), *pin);
  }
}

TEST_F(KeysTest, NewServerNameReissuesServerCertButKeepsCa) {
  ClusterKeys first = LoadOrDie({"a.example.com"});
  ClusterKeys second = LoadOrDie({"a.example.com", "b.example.com"});
  EXPECT_NE(first.tls_server_cert_pem, second.tls_server_cert_pem);
  EXPECT_EQ(first.tls_server_key_pem, second.tls_server_key_pem);
  EXPECT_EQ(first.tls_ca_cert_pem, second.tls_ca_cert_pem);
  EXPECT_EQ(first.tls_ca_key_pem, second.tls_ca_key_pem);
  EXPECT_EQ(first.jwt_private_pem, second.jwt_private_pem);
  EXPECT_EQ(ReadOrDie(File("tls_server.crt")), second.tls_server_cert_pem);
  X509Ptr server = ParseCert(second.tls_server_cert_pem);
  X509Ptr ca = ParseCert(second.tls_ca_cert_pem);
  EXPECT_EQ(X509_check_host(server.get(), "b.example.com", 0, 0, nullptr), 1);
  EXPECT_TRUE(ChainsTo(server.get(), ca.get(), kStart));

  // A subset of the names already covered needs nothing new.
  ClusterKeys third = LoadOrDie({"b.example.com"});
  EXPECT_EQ(third.tls_server_cert_pem, second.tls_server_cert_pem);
}

TEST_F(KeysTest, ServerCertIsRenewedWithinThirtyDaysOfExpiry) {
  ClusterKeys first = LoadOrDie();
  clock_.Advance(300 * kDay * 1'000'000);
  EXPECT_EQ(LoadOrDie().tls_server_cert_pem, first.tls_server_cert_pem);
  clock_.Advance(40 * kDay * 1'000'000);
  ClusterKeys renewed = LoadOrDie();
  EXPECT_NE(renewed.tls_server_cert_pem, first.tls_server_cert_pem);
  EXPECT_EQ(renewed.tls_ca_cert_pem, first.tls_ca_cert_pem);
  X509Ptr server = ParseCert(renewed.tls_server_cert_pem);
  X509Ptr ca = ParseCert(renewed.tls_ca_cert_pem);
  EXPECT_TRUE(ChainsTo(server.get(), ca.get(), kStart + 340 * kDay));
}

TEST_F(KeysTest, CorruptKeyFileIsAnErrorAndLeftAlone) {
  for (const char* name : {"jwt.key", "user_ca.key", "host_ca.key",
                           "tls_ca.key", "tls_server.key", "tls_ca.crt"}) {
    SCOPED_TRACE(name);
    LoadOrDie();
    const std::string path = File(name);
    const std::string garbage = "-----BEGIN PRIVATE KEY-----\nnot a key\n";
    WriteFileOrDie(path, garbage);
    Result<ClusterKeys> keys = LoadOrCreateClusterKeys(dir_, {}, &clock_);
    ASSERT_FALSE(keys.ok());
    EXPECT_THAT(keys.status().message(), HasSubstr(path));
    EXPECT_EQ(ReadOrDie(path), garbage);
    Sh("rm -rf " + ShellQuote(dir_));
  }
}

TEST_F(KeysTest, KeyOfTheWrongTypeIsAnError) {
  ClusterKeys keys = LoadOrDie();
  // A P-256 key where an Ed25519 key belongs.
  WriteFileOrDie(File("user_ca.key"), keys.tls_ca_key_pem);
  Result<ClusterKeys> r = LoadOrCreateClusterKeys(dir_, {}, &clock_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(File("user_ca.key")));
  EXPECT_THAT(r.status().message(), HasSubstr("not Ed25519"));
}

TEST_F(KeysTest, MissingCaKeyNextToItsCertIsAnError) {
  LoadOrDie();
  ASSERT_EQ(unlink(File("tls_ca.key").c_str()), 0);
  Result<ClusterKeys> r = LoadOrCreateClusterKeys(dir_, {}, &clock_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("tls_ca.key"));
  EXPECT_EQ(access(File("tls_ca.key").c_str(), F_OK), -1);
}

TEST_F(KeysTest, MissingFilesAreRecreatedWithoutTouchingOthers) {
  ClusterKeys first = LoadOrDie();
  ASSERT_EQ(unlink(File("user_ca.pub").c_str()), 0);
  ASSERT_EQ(unlink(File("tls_server.crt").c_str()), 0);
  ClusterKeys second = LoadOrDie();
  EXPECT_EQ(second.user_ca_public, first.user_ca_public);
  EXPECT_EQ(ReadOrDie(File("user_ca.pub")), first.user_ca_public + "\n");
  EXPECT_EQ(second.tls_ca_cert_pem, first.tls_ca_cert_pem);
  X509Ptr server = ParseCert(second.tls_server_cert_pem);
  X509Ptr ca = ParseCert(second.tls_ca_cert_pem);
  EXPECT_TRUE(ChainsTo(server.get(), ca.get(), kStart));
}

TEST_F(KeysTest, ExistingClusterNameIsKept) {
  ASSERT_EQ(Sh("mkdir -p " + ShellQuote(dir_)).exit_code, 0);
  WriteFileOrDie(File("cluster_name"), "prod-eu\n");
  EXPECT_EQ(LoadOrDie().cluster_name, "prod-eu");
  EXPECT_EQ(LoadOrDie().cluster_name, "prod-eu");
  WriteFileOrDie(File("cluster_name"), "two words\n");
  Result<ClusterKeys> r = LoadOrCreateClusterKeys(dir_, {}, &clock_);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(File("cluster_name")));
}

TEST_F(KeysTest, LongClusterNameStillGetsCertificates) {
  ASSERT_EQ(Sh("mkdir -p " + ShellQuote(dir_)).exit_code, 0);
  WriteFileOrDie(File("cluster_name"), std::string(128, 'c') + "\n");
  ClusterKeys keys = LoadOrDie();
  EXPECT_EQ(keys.cluster_name, std::string(128, 'c'));
  X509Ptr server = ParseCert(keys.tls_server_cert_pem);
  X509Ptr ca = ParseCert(keys.tls_ca_cert_pem);
  ASSERT_TRUE(server && ca);
  EXPECT_TRUE(ChainsTo(server.get(), ca.get(), kStart));
}

TEST_F(KeysTest, RefusesServerNamesThatAreNeitherIpNorDns) {
  Result<ClusterKeys> r =
      LoadOrCreateClusterKeys(dir_, {"bad name,DNS:evil"}, &clock_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
}

TEST_F(KeysTest, CaPublicKeyFilesAreAcceptedBySshKeygen) {
  ASSERT_TRUE(HaveProgram("ssh-keygen"))
      << "ssh-keygen is missing: run scripts/deps";
  LoadOrDie();
  for (const char* name : {"user_ca.pub", "host_ca.pub"}) {
    auto r = Sh("ssh-keygen -l -f " + ShellQuote(File(name)) + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_THAT(r.out, HasSubstr("(ED25519)"));
    EXPECT_THAT(r.out, HasSubstr("mezite-"));
  }
}

// Reads the SSH wire format (RFC 4251 section 5) of an OpenSSH private key.
class SshReader {
 public:
  explicit SshReader(std::string_view data) : rest_(data) {}
  bool ok() const { return ok_; }
  uint32_t U32() {
    if (rest_.size() < 4) {
      ok_ = false;
      return 0;
    }
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      v = v << 8 | static_cast<unsigned char>(rest_[i]);
    }
    rest_.remove_prefix(4);
    return v;
  }
  std::string_view String() {
    uint32_t n = U32();
    if (!ok_ || rest_.size() < n) {
      ok_ = false;
      return {};
    }
    std::string_view s = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return s;
  }
  std::string_view Raw(size_t n) {
    if (rest_.size() < n) {
      ok_ = false;
      return {};
    }
    std::string_view s = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return s;
  }

 private:
  std::string_view rest_;
  bool ok_ = true;
};

// Converts an unencrypted OpenSSH-format Ed25519 private key (what
// ssh-keygen writes) to PKCS#8 PEM. ssh-keygen 9.2 cannot read PKCS#8
// Ed25519 keys itself, so the comparison runs in this direction.
std::string OpenSshToPkcs8(const std::string& file) {
  std::string b64;
  std::string_view text = file;
  size_t begin = text.find("-----\n");
  size_t end = text.find("-----END");
  EXPECT_NE(begin, std::string::npos);
  EXPECT_NE(end, std::string::npos);
  for (char c : text.substr(begin + 6, end - begin - 6)) {
    if (c != '\n') b64 += c;
  }
  Result<std::string> blob = Base64Decode(b64);
  EXPECT_TRUE(blob.ok());
  SshReader r(*blob);
  EXPECT_EQ(r.Raw(15), std::string_view("openssh-key-v1\0", 15));
  EXPECT_EQ(r.String(), "none");  // cipher
  EXPECT_EQ(r.String(), "none");  // kdf
  r.String();                     // kdf options
  EXPECT_EQ(r.U32(), 1u);
  r.String();  // public key blob
  SshReader priv(r.String());
  EXPECT_EQ(priv.U32(), priv.U32());  // check integers
  EXPECT_EQ(priv.String(), "ssh-ed25519");
  priv.String();                            // public key
  std::string_view secret = priv.String();  // seed || public key
  EXPECT_TRUE(r.ok() && priv.ok());
  EXPECT_EQ(secret.size(), 64u);
  EVP_PKEY* key = EVP_PKEY_new_raw_private_key(
      EVP_PKEY_ED25519, nullptr,
      reinterpret_cast<const unsigned char*>(secret.data()), 32);
  EXPECT_NE(key, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, static_cast<size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(key);
  return pem;
}

TEST(SshPublicKeyLineTest, MatchesSshKeygenForTheSameKey) {
  ASSERT_TRUE(HaveProgram("ssh-keygen"))
      << "ssh-keygen is missing: run scripts/deps";
  TempDir tmp;
  std::string key = tmp.File("id");
  auto gen = Sh("ssh-keygen -q -t ed25519 -N '' -C test-comment -f " +
                ShellQuote(key) + " 2>&1");
  ASSERT_EQ(gen.exit_code, 0) << gen.out;
  std::string pem = OpenSshToPkcs8(ReadOrDie(key));

  Result<std::string> line = SshPublicKeyLine(pem, "test-comment");
  ASSERT_TRUE(line.ok()) << line.status().ToString();
  EXPECT_EQ(*line + "\n", ReadOrDie(key + ".pub"));

  // ssh-keygen reads our line and computes the same fingerprint as for the
  // key it generated.
  WriteFileOrDie(tmp.File("ours.pub"), *line + "\n");
  auto ours = Sh("ssh-keygen -l -E sha256 -f " +
                 ShellQuote(tmp.File("ours.pub")) + " 2>&1");
  auto theirs = Sh("ssh-keygen -l -E sha256 -f " + ShellQuote(key) + " 2>&1");
  ASSERT_EQ(ours.exit_code, 0) << ours.out;
  ASSERT_EQ(theirs.exit_code, 0) << theirs.out;
  EXPECT_EQ(ours.out.substr(0, ours.out.find(' ', 4)),
            theirs.out.substr(0, theirs.out.find(' ', 4)));
}

TEST(SshPublicKeyLineTest, CommentIsOptionalAndOneLine) {
  Result<std::string> pem = GenerateEd25519Pem();
  ASSERT_TRUE(pem.ok());
  Result<std::string> bare = SshPublicKeyLine(*pem, "");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->find(' ', 12), std::string::npos);
  // 4+11+4+32 = 51 bytes of wire format = 68 base64 characters.
  EXPECT_EQ(bare->size(), 12u + 68u);
  EXPECT_FALSE(SshPublicKeyLine(*pem, "two\nlines").ok());
  EXPECT_FALSE(SshPublicKeyLine("not a key", "c").ok());
}

}  // namespace
}  // namespace mez::auth
