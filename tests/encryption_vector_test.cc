// The known-answer vector of docs/formats/encryption.md, checked two ways:
// independently of our sealer (raw OpenSSL EVP, HMAC and SHA-256 calls that
// follow the page's layout, nothing from libmez/record/seal.*), and through
// our reader, which must open the documented file to the same plaintexts
// and name each tamper case. The vector is read from the page itself, so
// the page and the code cannot drift apart unnoticed.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "libmez/record/asciicast_reader.h"
#include "libmez/record/plain_cast.h"
#include "libmez/record/sink.h"
#include "libmez/util/file.h"

namespace mez::testing {
namespace {

std::string DocPath() {
  return std::string(MEZ_SOURCE_DIR) + "/docs/formats/encryption.md";
}

// The fenced block that follows `marker` in the page.
std::string Block(const std::string& doc, const std::string& marker) {
  size_t at = doc.find(marker);
  if (at == std::string::npos) return {};
  size_t open = doc.find("```\n", at);
  if (open == std::string::npos) return {};
  open += 4;
  size_t close = doc.find("\n```", open);
  if (close == std::string::npos) return {};
  return doc.substr(open, close - open + 1);
}

// "name = value" lines; a line without '=' continues the previous value.
std::map<std::string, std::string> ParseValues(const std::string& block) {
  std::map<std::string, std::string> out;
  std::istringstream in(block);
  std::string line;
  std::string last;
  auto trim = [](std::string s) {
    size_t b = s.find_first_not_of(' ');
    size_t e = s.find_last_not_of(' ');
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
  };
  while (std::getline(in, line)) {
    if (trim(line).empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) {
      out[last] += trim(line);
      continue;
    }
    last = trim(line.substr(0, eq));
    out[last] = trim(line.substr(eq + 1));
  }
  return out;
}

std::string Unhex(const std::string& hex) {
  std::string out;
  EXPECT_EQ(hex.size() % 2, 0u) << hex;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

std::string Hex(const std::string& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

std::string Be(uint64_t v, int bytes) {
  std::string out;
  for (int i = bytes - 1; i >= 0; --i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  return out;
}

std::string Sha256(const std::string& data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return std::string(reinterpret_cast<char*>(md), sizeof(md));
}

std::string Base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

// AES-256-GCM with a 12-byte IV and a 16-byte tag, straight from EVP.
// Returns ciphertext || tag (encrypt) or the plaintext (decrypt; nullopt
// when the tag does not verify).
std::optional<std::string> Gcm(bool encrypt, const std::string& key,
                               const std::string& iv, const std::string& aad,
                               const std::string& in) {
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(
      EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  auto u = [](const std::string& s) {
    return reinterpret_cast<const unsigned char*>(s.data());
  };
  std::string body = encrypt ? in : in.substr(0, in.size() - 16);
  std::string tag = encrypt ? std::string(16, '\0') : in.substr(body.size());
  if (EVP_CipherInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr,
                        encrypt ? 1 : 0) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, 12, nullptr) !=
          1 ||
      EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, u(key), u(iv), -1) != 1) {
    return std::nullopt;
  }
  int n = 0;
  if (EVP_CipherUpdate(ctx.get(), nullptr, &n, u(aad),
                       static_cast<int>(aad.size())) != 1) {
    return std::nullopt;
  }
  std::string out(body.size() + 16, '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (EVP_CipherUpdate(ctx.get(), o, &n, u(body),
                       static_cast<int>(body.size())) != 1) {
    return std::nullopt;
  }
  int total = n;
  if (!encrypt && EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, 16,
                                      tag.data()) != 1) {
    return std::nullopt;
  }
  if (EVP_CipherFinal_ex(ctx.get(), o + total, &n) != 1) return std::nullopt;
  total += n;
  out.resize(static_cast<size_t>(total));
  if (encrypt) {
    if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, 16, tag.data()) !=
        1) {
      return std::nullopt;
    }
    out += tag;
  }
  return out;
}

class EncryptionVectorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto doc = ReadFile(DocPath());
    ASSERT_TRUE(doc.ok()) << doc.status().ToString();
    v_ = ParseValues(Block(*doc, "<!-- kat:values -->"));
    cast_ = Block(*doc, "<!-- kat:cast -->");
    ASSERT_FALSE(cast_.empty()) << "no <!-- kat:cast --> block";
    for (const char* name :
         {"key", "key_id", "session_id", "h_0", "chunk0.sealed",
          "chunk1.sealed", "h_2", "final.sealed"}) {
      ASSERT_TRUE(v_.count(name)) << "the page has no value '" << name << "'";
    }
  }
  std::string B(const std::string& name) { return Unhex(v_.at(name)); }
  std::vector<std::string> CastLines() const {
    std::vector<std::string> lines;
    std::istringstream in(cast_);
    std::string l;
    while (std::getline(in, l)) lines.push_back(l);
    return lines;
  }
  static std::string Join(const std::vector<std::string>& lines) {
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }

  std::map<std::string, std::string> v_;
  std::string cast_;
};

// Every documented value follows from the layout, computed without our
// sealer: key id, AADs, both directions of GCM, the chain, the final record.
TEST_F(EncryptionVectorTest, ValuesFollowFromTheLayoutWithRawOpenssl) {
  const std::string key = B("key");
  ASSERT_EQ(key.size(), 32u);
  const std::string sid = B("session_id");

  unsigned char mac[32];
  unsigned int mac_len = 0;
  const std::string label = "mezite key id";
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(label.data()), label.size(), mac,
       &mac_len);
  EXPECT_EQ(Hex(std::string(reinterpret_cast<char*>(mac), 8)), v_["key_id"]);

  std::string h = Sha256("mezite-chain-v1" + Be(sid.size(), 4) + sid);
  EXPECT_EQ(Hex(h), v_["h_0"]);
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    std::string p = "chunk" + std::to_string(i) + ".";
    uint64_t seq = std::stoull(v_[p + "seq"]);
    int64_t time_us = std::stoll(v_[p + "time_us"]);
    std::string aad = "mezite-chunk-v1" + Be(sid.size(), 4) + sid + Be(seq, 8) +
                      Be(static_cast<uint64_t>(time_us), 8) +
                      B(p + "direction") + Be(0, 4);
    EXPECT_EQ(Hex(aad), v_[p + "aad"]);
    std::string sealed = B(p + "sealed");
    ASSERT_EQ(sealed.size(), 36 + B(p + "plaintext").size());
    EXPECT_EQ(sealed.substr(0, 8), Be(seq, 8));
    EXPECT_EQ(Hex(sealed.substr(8, 12)), v_[p + "nonce"]);
    auto opened = Gcm(false, key, sealed.substr(8, 12), aad, sealed.substr(20));
    ASSERT_TRUE(opened.has_value()) << "GCM tag does not verify";
    EXPECT_EQ(Hex(*opened), v_[p + "plaintext"]);
    auto resealed = Gcm(true, key, B(p + "nonce"), aad, B(p + "plaintext"));
    ASSERT_TRUE(resealed.has_value());
    EXPECT_EQ(Hex(Be(seq, 8) + B(p + "nonce") + *resealed), v_[p + "sealed"]);
    // One flipped bit anywhere in the ciphertext or tag fails.
    std::string bad = sealed;
    bad[20] ^= 1;
    EXPECT_FALSE(
        Gcm(false, key, bad.substr(8, 12), aad, bad.substr(20)).has_value());
    h = Sha256(h + sealed.substr(0, 20) + sealed.substr(sealed.size() - 16));
    EXPECT_EQ(Hex(h), v_["h_" + std::to_string(i + 1)]);
  }

  uint64_t n = std::stoull(v_["final.seq"]);
  EXPECT_EQ(n, 2u);
  std::string faad = "mezite-final-v1" + Be(sid.size(), 4) + sid + Be(n, 8) +
                     Be(std::stoull(v_["final.time_us"]), 8);
  EXPECT_EQ(Hex(faad), v_["final.aad"]);
  std::string fsealed = B("final.sealed");
  ASSERT_EQ(fsealed.size(), 76u);
  auto fplain =
      Gcm(false, key, fsealed.substr(8, 12), faad, fsealed.substr(20));
  ASSERT_TRUE(fplain.has_value());
  EXPECT_EQ(*fplain, Be(n, 8) + h);
  EXPECT_EQ(Hex(*fplain), v_["final.plaintext"]);
}

// The documented file carries exactly the documented sealed chunks, and
// our reader opens it to the documented plaintexts with nothing amiss.
TEST_F(EncryptionVectorTest, OurReaderOpensTheDocumentedFile) {
  auto lines = CastLines();
  ASSERT_EQ(lines.size(), 4u);
  auto header = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(header["mezite_encryption"]["key_id"], v_["key_id"]);
  EXPECT_EQ(header["mezite_encryption"]["session_id"], B("session_id"));
  for (int i = 0; i < 3; ++i) {
    auto e = nlohmann::json::parse(lines[i + 1]);
    std::string name =
        i < 2 ? "chunk" + std::to_string(i) + ".sealed" : "final.sealed";
    EXPECT_EQ(e[2], Base64(B(name))) << name;
  }

  auto reader = record::AsciicastReader::Open(
      std::make_unique<record::StringSource>(cast_), B("key"));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  std::vector<record::AsciicastEvent> events;
  for (;;) {
    record::AsciicastEvent e;
    auto more = (*reader)->Next(&e);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    events.push_back(e);
  }
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].time_us, 250000);
  EXPECT_EQ(events[0].code, "o");
  EXPECT_EQ(Hex(events[0].data), v_["chunk0.plaintext"]);
  EXPECT_EQ(events[0].data, "hello\r\n");
  EXPECT_EQ(events[1].time_us, 500000);
  EXPECT_EQ(events[1].data, "world\r\n");
  EXPECT_EQ((*reader)->integrity(), record::Integrity::kOk);

  // The plain form the player and the playback RPC serve.
  auto plain = record::OpenPlainCast(
      std::make_unique<record::StringSource>(cast_), B("key"));
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  std::string text;
  char buf[4096];
  for (;;) {
    auto n = (*plain)->Read(buf, sizeof(buf));
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (*n == 0) break;
    text.append(buf, *n);
  }
  EXPECT_NE(text.find("[0.250000, \"o\", \"hello\\r\\n\"]\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("[0.500000, \"o\", \"world\\r\\n\"]\n"),
            std::string::npos)
      << text;
}

// What the page says about tampering with the documented file holds.
TEST_F(EncryptionVectorTest, AlteredFilesAreNamedAsThePageSays) {
  auto lines = CastLines();
  auto verdict = [&](const std::vector<std::string>& ls) {
    auto r = record::AsciicastReader::Open(
        std::make_unique<record::StringSource>(Join(ls)), B("key"));
    if (!r.ok()) return r.status().message();
    for (;;) {
      record::AsciicastEvent e;
      auto more = (*r)->Next(&e);
      if (!more.ok()) return more.status().message();
      if (!*more) return std::string("ok");
    }
  };
  EXPECT_EQ(verdict(lines), "ok");
  auto flipped = lines;
  auto e = nlohmann::json::parse(flipped[2]);
  std::string sealed = B("chunk1.sealed");
  sealed[30] ^= 0x01;
  e[2] = Base64(sealed);
  flipped[2] = e.dump();
  EXPECT_NE(verdict(flipped).find("line 3: chunk 1 failed authentication"),
            std::string::npos)
      << verdict(flipped);
  auto swapped = lines;
  std::swap(swapped[1], swapped[2]);
  EXPECT_NE(
      verdict(swapped).find("line 2: chunk 1 comes where chunk 0 belongs"),
      std::string::npos)
      << verdict(swapped);
  auto dropped = lines;
  dropped.erase(dropped.begin() + 1);
  EXPECT_NE(
      verdict(dropped).find("line 2: chunk 1 comes where chunk 0 belongs"),
      std::string::npos)
      << verdict(dropped);
  auto truncated = lines;
  truncated.pop_back();
  EXPECT_NE(verdict(truncated).find("truncat"), std::string::npos)
      << verdict(truncated);
  auto wrong = record::AsciicastReader::Open(
      std::make_unique<record::StringSource>(cast_), std::string(32, '\0'));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("wrong key"), std::string::npos);
}

}  // namespace
}  // namespace mez::testing
