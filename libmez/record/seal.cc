#include "libmez/record/seal.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <utility>

#include "libmez/util/encoding.h"

namespace mez::record {
namespace {

// Domain-separation labels; see docs/formats/encryption.md.
constexpr std::string_view kChunkLabel = "mezite-chunk-v1";
constexpr std::string_view kFinalLabel = "mezite-final-v1";
constexpr std::string_view kChainLabel = "mezite-chain-v1";
constexpr std::string_view kKeyIdLabel = "mezite key id";
constexpr size_t kKeyIdBytes = 8;
constexpr size_t kHashSize = 32;
constexpr size_t kFinalPlaintextSize = 8 + kHashSize;
// EVP takes int lengths: larger buffers are fed in pieces of this size.
constexpr size_t kMaxUpdate = size_t{1} << 30;

const unsigned char* Bytes(const char* p) {
  return reinterpret_cast<const unsigned char*>(p);
}
unsigned char* Bytes(char* p) { return reinterpret_cast<unsigned char*>(p); }

void StoreU64(uint64_t v, char* p) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

uint64_t LoadU64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void PutU64(uint64_t v, std::string* out) {
  char b[8];
  StoreU64(v, b);
  out->append(b, sizeof(b));
}

void PutU32(uint32_t v, std::string* out) {
  char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
               static_cast<char>(v >> 8), static_cast<char>(v)};
  out->append(b, sizeof(b));
}

bool FitsU32(size_t n) { return n <= std::numeric_limits<uint32_t>::max(); }

// label || u32be(len(session_id)) || session_id: the start of every AAD.
std::string AadPrefix(std::string_view label, std::string_view session_id) {
  std::string p(label);
  PutU32(static_cast<uint32_t>(session_id.size()), &p);
  p.append(session_id);
  return p;
}

// REQUIRES: FitsU32(info.context.size()).
void BuildChunkAad(const std::string& prefix, uint64_t seq,
                   const ChunkInfo& info, std::string* aad) {
  aad->assign(prefix);
  PutU64(seq, aad);
  PutU64(static_cast<uint64_t>(info.time_us), aad);
  aad->push_back(static_cast<char>(info.direction));
  PutU32(static_cast<uint32_t>(info.context.size()), aad);
  aad->append(info.context);
}

void BuildFinalAad(const std::string& prefix, uint64_t seq, int64_t time_us,
                   std::string* aad) {
  aad->assign(prefix);
  PutU64(seq, aad);
  PutU64(static_cast<uint64_t>(time_us), aad);
}

struct CipherFree {
  void operator()(EVP_CIPHER* c) const { EVP_CIPHER_free(c); }
};
struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct MdFree {
  void operator()(EVP_MD* m) const { EVP_MD_free(m); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

// One AES-256-GCM key schedule, reused for every message under the key:
// the cipher is fetched and the key expanded once; each message only sets
// its nonce.
class Gcm {
 public:
  Status Init(std::string_view key, bool encrypt) {
    if (key.size() != kKeySize) {
      return InvalidArgument("encryption key is " + std::to_string(key.size()) +
                             " bytes; AES-256 needs " +
                             std::to_string(kKeySize));
    }
    cipher_.reset(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr));
    ctx_.reset(EVP_CIPHER_CTX_new());
    if (!cipher_ || !ctx_)
      return Internal("OpenSSL: cannot set up AES-256-GCM");
    int ok = encrypt ? EVP_EncryptInit_ex2(ctx_.get(), cipher_.get(),
                                           Bytes(key.data()), nullptr, nullptr)
                     : EVP_DecryptInit_ex2(ctx_.get(), cipher_.get(),
                                           Bytes(key.data()), nullptr, nullptr);
    if (ok != 1) return Internal("OpenSSL: cannot load the AES-256-GCM key");
    return Status::Ok();
  }

  // Writes plaintext.size() bytes of ciphertext to `ct` and kTagSize bytes
  // to `tag`. `nonce` is kNonceSize bytes.
  Status Seal(const char* nonce, std::string_view aad,
              std::string_view plaintext, char* ct, char* tag) {
    EVP_CIPHER_CTX* c = ctx_.get();
    if (EVP_CipherInit_ex2(c, nullptr, nullptr, Bytes(nonce), -1, nullptr) !=
            1 ||
        !Update(aad.data(), aad.size(), nullptr) ||
        !Update(plaintext.data(), plaintext.size(), ct)) {
      return Internal("OpenSSL: AES-256-GCM encryption failed");
    }
    int n = 0;
    if (EVP_EncryptFinal_ex(c, Bytes(ct + plaintext.size()), &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, kTagSize, tag) != 1) {
      return Internal("OpenSSL: AES-256-GCM encryption failed");
    }
    return Status::Ok();
  }

  // Writes ciphertext.size() bytes to `pt`. False when the tag does not
  // authenticate (key, nonce, aad, ciphertext or tag differ); `pt` then
  // holds garbage the caller must discard.
  bool Open(const char* nonce, std::string_view aad, std::string_view ct,
            const char* tag, char* pt) {
    EVP_CIPHER_CTX* c = ctx_.get();
    unsigned char tag_copy[kTagSize];  // The ctrl wants a mutable pointer.
    std::memcpy(tag_copy, tag, kTagSize);
    int n = 0;
    return EVP_CipherInit_ex2(c, nullptr, nullptr, Bytes(nonce), -1, nullptr) ==
               1 &&
           Update(aad.data(), aad.size(), nullptr) &&
           Update(ct.data(), ct.size(), pt) &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, kTagSize, tag_copy) ==
               1 &&
           EVP_DecryptFinal_ex(c, Bytes(pt + ct.size()), &n) == 1;
  }

 private:
  // `out` null feeds AAD.
  bool Update(const char* in, size_t size, char* out) {
    while (size > 0) {
      int piece = static_cast<int>(std::min(size, kMaxUpdate));
      int n = 0;
      if (EVP_CipherUpdate(ctx_.get(), out ? Bytes(out) : nullptr, &n,
                           Bytes(in), piece) != 1) {
        return false;
      }
      in += piece;
      if (out) out += piece;
      size -= piece;
    }
    return true;
  }

  std::unique_ptr<EVP_CIPHER, CipherFree> cipher_;
  std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree> ctx_;
};

// The hash chain over the chunks in file order:
//   h0 = SHA-256("mezite-chain-v1" || u32be len || session_id)
//   h_i = SHA-256(h_{i-1} || seq || nonce || tag of sealed chunk i)
// The tag stands in for the ciphertext and the AAD: it is a MAC over both
// under the key, so no other authentic chunk has the same seq, nonce and tag.
// Hashing 36 bytes instead of the whole chunk keeps sealing at GCM speed.
class Chain {
 public:
  Status Init(std::string_view session_id) {
    md_.reset(EVP_MD_fetch(nullptr, "SHA256", nullptr));
    ctx_.reset(EVP_MD_CTX_new());
    if (!md_ || !ctx_) return Internal("OpenSSL: cannot set up SHA-256");
    std::string seed = AadPrefix(kChainLabel, session_id);
    if (!Digest(seed, std::string_view(), std::string_view())) {
      return Internal("OpenSSL: SHA-256 failed");
    }
    return Status::Ok();
  }

  // REQUIRES: sealed.size() >= kSealOverhead.
  Status Add(std::string_view sealed) {
    std::string_view prev(reinterpret_cast<const char*>(hash_), kHashSize);
    if (!Digest(prev, sealed.substr(0, kSeqSize + kNonceSize),
                sealed.substr(sealed.size() - kTagSize))) {
      return Internal("OpenSSL: SHA-256 failed");
    }
    return Status::Ok();
  }

  const unsigned char* hash() const { return hash_; }

 private:
  // hash_ = SHA-256(a || b || c).
  bool Digest(std::string_view a, std::string_view b, std::string_view c) {
    EVP_MD_CTX* m = ctx_.get();
    unsigned int n = 0;
    return EVP_DigestInit_ex2(m, md_.get(), nullptr) == 1 &&
           EVP_DigestUpdate(m, a.data(), a.size()) == 1 &&
           EVP_DigestUpdate(m, b.data(), b.size()) == 1 &&
           EVP_DigestUpdate(m, c.data(), c.size()) == 1 &&
           EVP_DigestFinal_ex(m, hash_, &n) == 1;
  }

  std::unique_ptr<EVP_MD, MdFree> md_;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx_;
  unsigned char hash_[kHashSize] = {};
};

bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

// A stored key id comes from the file: show it, but only as harmless text.
std::string Printable(std::string_view s) {
  constexpr size_t kMax = 32;
  std::string out;
  for (char c : s.substr(0, kMax)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (s.size() > kMax) out += "...";
  return out;
}

}  // namespace

Result<std::string> ParseKeyHex(std::string_view hex) {
  constexpr size_t kWant = kKeySize * 2;
  if (hex.size() != kWant) {
    std::string m = "encryption key must be " + std::to_string(kWant) +
                    " hex characters (" + std::to_string(kKeySize) +
                    " bytes), found " + std::to_string(hex.size());
    if (hex.find_first_of(" \t\r\n") != std::string_view::npos) {
      m += " (it contains whitespace or a newline)";
    }
    return InvalidArgument(m);
  }
  for (size_t i = 0; i < hex.size(); ++i) {
    if (!IsHexDigit(hex[i])) {
      return InvalidArgument(
          "encryption key has a character that is not hex "
          "at offset " +
          std::to_string(i));
    }
  }
  return HexDecode(hex);
}

std::string KeyId(std::string_view key) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           Bytes(kKeyIdLabel.data()), kKeyIdLabel.size(), mac, &n) == nullptr ||
      n < kKeyIdBytes) {
    return std::string();
  }
  return HexEncode(
      std::string_view(reinterpret_cast<const char*>(mac), kKeyIdBytes));
}

std::string_view IntegrityName(Integrity i) {
  switch (i) {
    case Integrity::kOk:
      return "ok";
    case Integrity::kWrongKey:
      return "wrong key";
    case Integrity::kTampered:
      return "tampered";
    case Integrity::kReordered:
      return "reordered";
    case Integrity::kDuplicated:
      return "duplicated";
    case Integrity::kDropped:
      return "dropped";
    case Integrity::kAppended:
      return "appended";
    case Integrity::kTruncated:
      return "truncated";
    case Integrity::kMalformed:
      return "malformed";
  }
  return "unknown";
}

// ---------------------------------------------------------------- sealer

struct ChunkSealer::Impl {
  Gcm gcm;
  Chain chain;
  std::string chunk_prefix;  // AAD prefix of data chunks.
  std::string final_prefix;  // AAD prefix of the final record.
  std::string aad;           // Reused so that sealing does not allocate.
  bool finished = false;
  // Nonces are drawn from RAND_bytes in batches: one call costs about as
  // much as sealing 8 KiB, so one call per chunk would dominate small
  // chunks. Each nonce is still 12 fresh random bytes used once.
  char nonces[kNonceSize * 128];
  size_t nonces_used = sizeof(nonces);

  // Writes seq || nonce || ciphertext || tag at `p`, which has room for
  // kSealOverhead + plaintext.size() bytes.
  Status SealAt(uint64_t seq, std::string_view plaintext, char* p) {
    StoreU64(seq, p);
    if (nonces_used == sizeof(nonces)) {
      if (RAND_bytes(Bytes(nonces), sizeof(nonces)) != 1) {
        return Internal("OpenSSL: no random bytes for a nonce");
      }
      nonces_used = 0;
    }
    char* nonce = p + kSeqSize;
    std::memcpy(nonce, nonces + nonces_used, kNonceSize);
    nonces_used += kNonceSize;
    char* ct = nonce + kNonceSize;
    return gcm.Seal(nonce, aad, plaintext, ct, ct + plaintext.size());
  }
};

ChunkSealer::ChunkSealer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChunkSealer::~ChunkSealer() = default;

Result<std::unique_ptr<ChunkSealer>> ChunkSealer::Create(
    std::string_view key, std::string_view session_id) {
  if (!FitsU32(session_id.size())) {
    return InvalidArgument("session id is too long");
  }
  auto impl = std::make_unique<Impl>();
  MEZ_RETURN_IF_ERROR(impl->gcm.Init(key, /*encrypt=*/true));
  MEZ_RETURN_IF_ERROR(impl->chain.Init(session_id));
  impl->chunk_prefix = AadPrefix(kChunkLabel, session_id);
  impl->final_prefix = AadPrefix(kFinalLabel, session_id);
  return std::unique_ptr<ChunkSealer>(new ChunkSealer(std::move(impl)));
}

Status ChunkSealer::Seal(const ChunkInfo& info, std::string_view plaintext,
                         std::string* out) {
  Impl& m = *impl_;
  if (m.finished) {
    return FailedPrecondition("cannot seal a chunk after the final record");
  }
  if (!FitsU32(info.context.size())) {
    return InvalidArgument("chunk context is too long");
  }
  BuildChunkAad(m.chunk_prefix, next_seq_, info, &m.aad);
  size_t start = out->size();
  size_t size = kSealOverhead + plaintext.size();
  out->resize(start + size);
  char* p = out->data() + start;
  Status s = m.SealAt(next_seq_, plaintext, p);
  if (s.ok()) s = m.chain.Add(std::string_view(p, size));
  if (!s.ok()) {
    out->resize(start);
    return s;
  }
  ++next_seq_;
  return Status::Ok();
}

Status ChunkSealer::SealFinal(int64_t time_us, std::string* out) {
  Impl& m = *impl_;
  if (m.finished) {
    return FailedPrecondition("the final record was already sealed");
  }
  char plain[kFinalPlaintextSize];
  StoreU64(next_seq_, plain);
  std::memcpy(plain + 8, m.chain.hash(), kHashSize);
  BuildFinalAad(m.final_prefix, next_seq_, time_us, &m.aad);
  size_t start = out->size();
  out->resize(start + kSealOverhead + sizeof(plain));
  Status s = m.SealAt(next_seq_, std::string_view(plain, sizeof(plain)),
                      out->data() + start);
  if (!s.ok()) {
    out->resize(start);
    return s;
  }
  m.finished = true;
  return Status::Ok();
}

// ---------------------------------------------------------------- opener

struct ChunkOpener::Impl {
  Gcm gcm;
  Chain chain;
  std::string chunk_prefix;
  std::string final_prefix;
  std::string aad;
  std::string key_id;
  // Every seq below next_seq has been accepted except those in `gaps`
  // (start -> end, exclusive), which were skipped over and not seen yet.
  uint64_t next_seq = 0;
  std::map<uint64_t, uint64_t> gaps;
  uint64_t position = 0;       // Data records offered to Open.
  bool key_confirmed = false;  // Key id checked, or something authenticated.
  bool reorder_seen = false;
  bool final_seen = false;
  Status first_failure;

  // Removes `seq` from the gaps; false when it was not in one.
  bool FillGap(uint64_t seq) {
    auto it = gaps.upper_bound(seq);
    if (it == gaps.begin()) return false;
    --it;
    uint64_t start = it->first;
    uint64_t end = it->second;
    if (seq >= end) return false;
    gaps.erase(it);
    if (start < seq) gaps.emplace(start, seq);
    if (seq + 1 < end) gaps.emplace(seq + 1, end);
    return true;
  }

  std::string AuthHint() const {
    return key_confirmed ? "the recording was tampered with (or the session "
                           "id does not match)"
                         : "tampered or wrong key (or the session id does "
                           "not match)";
  }
};

ChunkOpener::ChunkOpener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ChunkOpener::~ChunkOpener() = default;

Result<std::unique_ptr<ChunkOpener>> ChunkOpener::Create(
    std::string_view key, std::string_view session_id) {
  if (!FitsU32(session_id.size())) {
    return InvalidArgument("session id is too long");
  }
  auto impl = std::make_unique<Impl>();
  MEZ_RETURN_IF_ERROR(impl->gcm.Init(key, /*encrypt=*/false));
  MEZ_RETURN_IF_ERROR(impl->chain.Init(session_id));
  impl->chunk_prefix = AadPrefix(kChunkLabel, session_id);
  impl->final_prefix = AadPrefix(kFinalLabel, session_id);
  impl->key_id = KeyId(key);
  return std::unique_ptr<ChunkOpener>(new ChunkOpener(std::move(impl)));
}

Status ChunkOpener::Fail(Integrity what, std::string message) {
  Status s = DataLoss(std::move(message));
  if (integrity_ == Integrity::kOk) {
    integrity_ = what;
    impl_->first_failure = s;
  }
  return s;
}

Status ChunkOpener::CheckKeyId(std::string_view stored_key_id) {
  std::string stored(stored_key_id);
  std::transform(stored.begin(), stored.end(), stored.begin(), [](char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
  });
  if (stored != impl_->key_id) {
    return Fail(Integrity::kWrongKey,
                "wrong key: the key given (key id " + impl_->key_id +
                    ") does not match the key the recording was written "
                    "with (key id " +
                    Printable(stored_key_id) + ")");
  }
  impl_->key_confirmed = true;
  return Status::Ok();
}

Result<std::string> ChunkOpener::Open(const ChunkInfo& info,
                                      std::string_view sealed) {
  Impl& m = *impl_;
  uint64_t position = m.position++;
  if (m.final_seen) {
    std::string what = sealed.size() >= kSeqSize
                           ? "chunk " + std::to_string(LoadU64(sealed.data()))
                           : std::string("data");
    return Fail(Integrity::kAppended,
                what +
                    " follows the final record: data was appended to the "
                    "recording after it was closed");
  }
  if (sealed.size() < kSealOverhead) {
    return Fail(Integrity::kMalformed,
                "the chunk at position " + std::to_string(position) + " is " +
                    std::to_string(sealed.size()) +
                    " bytes, shorter than any sealed chunk (" +
                    std::to_string(kSealOverhead) +
                    "): malformed, the file is corrupt");
  }
  if (!FitsU32(info.context.size())) {
    return Fail(Integrity::kMalformed, "the chunk at position " +
                                           std::to_string(position) +
                                           " has an oversized context: "
                                           "malformed, the file is corrupt");
  }
  const uint64_t seq = LoadU64(sealed.data());
  const std::string seq_text = std::to_string(seq);
  BuildChunkAad(m.chunk_prefix, seq, info, &m.aad);
  const char* nonce = sealed.data() + kSeqSize;
  std::string_view ct(nonce + kNonceSize, sealed.size() - kSealOverhead);
  std::string plaintext(ct.size(), '\0');
  if (!m.gcm.Open(nonce, m.aad, ct, ct.data() + ct.size(), plaintext.data())) {
    return Fail(
        Integrity::kTampered,
        "chunk " + seq_text + " failed authentication: " + m.AuthHint());
  }
  m.key_confirmed = true;
  if (contiguous_ && seq > m.next_seq) {
    std::string missing = std::to_string(m.next_seq);
    if (seq > m.next_seq + 1) missing += ".." + std::to_string(seq - 1);
    return Fail(Integrity::kDropped,
                "chunk " + seq_text + " comes where chunk " +
                    std::to_string(m.next_seq) + " belongs: chunk " + missing +
                    " is missing here (dropped or moved): the recording was "
                    "altered");
  }
  if (seq < m.next_seq) {
    if (m.FillGap(seq)) {
      m.reorder_seen = true;
      return Fail(Integrity::kReordered, "chunk " + seq_text +
                                             " appears after chunk " +
                                             std::to_string(m.next_seq - 1) +
                                             ": the recording was reordered");
    }
    return Fail(Integrity::kDuplicated,
                "chunk " + seq_text +
                    " appears twice: a duplicated chunk was inserted into "
                    "the recording");
  }
  // A seq beyond the next one leaves a gap. The chunk itself is authentic,
  // so it is returned; the gap is reported if it is still open at the
  // final record.
  if (seq > m.next_seq) m.gaps.emplace(m.next_seq, seq);
  m.next_seq = seq + 1;
  MEZ_RETURN_IF_ERROR(m.chain.Add(sealed));
  ++opened_;
  return plaintext;
}

Status ChunkOpener::OpenFinal(int64_t time_us, std::string_view sealed) {
  Impl& m = *impl_;
  if (m.final_seen) {
    return Fail(Integrity::kAppended,
                "a second final record follows the final record: data was "
                "appended to the recording after it was closed");
  }
  m.final_seen = true;
  if (sealed.size() != kSealOverhead + kFinalPlaintextSize) {
    return Fail(Integrity::kMalformed,
                "the final record is " + std::to_string(sealed.size()) +
                    " bytes, not " +
                    std::to_string(kSealOverhead + kFinalPlaintextSize) +
                    ": malformed, the file is corrupt");
  }
  const uint64_t seq = LoadU64(sealed.data());
  BuildFinalAad(m.final_prefix, seq, time_us, &m.aad);
  const char* nonce = sealed.data() + kSeqSize;
  std::string_view ct(nonce + kNonceSize, kFinalPlaintextSize);
  char plain[kFinalPlaintextSize];
  if (!m.gcm.Open(nonce, m.aad, ct, ct.data() + ct.size(), plain) ||
      LoadU64(plain) != seq) {
    return Fail(Integrity::kTampered,
                "the final record failed authentication: " + m.AuthHint());
  }
  m.key_confirmed = true;
  const uint64_t count = seq;
  const std::string count_text = std::to_string(count);
  if (!m.gaps.empty() || count > m.next_seq) {
    uint64_t missing = m.gaps.empty() ? m.next_seq : m.gaps.begin()->first;
    return Fail(Integrity::kDropped,
                "chunk " + std::to_string(missing) +
                    " is missing (the final record counts " + count_text +
                    " chunks): chunks were dropped from the recording");
  }
  if (count < m.next_seq) {
    return Fail(Integrity::kAppended,
                "the final record counts " + count_text + " chunks but chunk " +
                    std::to_string(m.next_seq - 1) +
                    " was seen: chunks were appended to the recording");
  }
  if (std::memcmp(plain + 8, m.chain.hash(), kHashSize) != 0) {
    if (m.reorder_seen) {
      return Fail(Integrity::kReordered,
                  "the hash chain of the " + count_text +
                      " chunks does not match the final record: the "
                      "recording was reordered");
    }
    return Fail(Integrity::kTampered,
                "the hash chain of the " + count_text +
                    " chunks does not match the final record: a chunk was "
                    "replaced, the recording was tampered with");
  }
  return Status::Ok();
}

Status ChunkOpener::Finish() {
  Impl& m = *impl_;
  if (!m.first_failure.ok()) return m.first_failure;
  if (!m.final_seen) {
    return Fail(Integrity::kTruncated,
                (m.next_seq == 0
                     ? std::string("the recording ends before its first chunk")
                     : "the recording ends after chunk " +
                           std::to_string(m.next_seq - 1)) +
                    " without its final record: truncated (the writer "
                    "stopped early or the file was cut)");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- internal

namespace internal {

Result<std::string> AesGcmSeal(std::string_view key, std::string_view nonce,
                               std::string_view aad,
                               std::string_view plaintext) {
  if (nonce.size() != kNonceSize)
    return InvalidArgument("nonce must be 12 bytes");
  Gcm gcm;
  MEZ_RETURN_IF_ERROR(gcm.Init(key, /*encrypt=*/true));
  std::string out(plaintext.size() + kTagSize, '\0');
  MEZ_RETURN_IF_ERROR(gcm.Seal(nonce.data(), aad, plaintext, out.data(),
                               out.data() + plaintext.size()));
  return out;
}

Result<std::string> AesGcmOpen(std::string_view key, std::string_view nonce,
                               std::string_view aad, std::string_view sealed) {
  if (nonce.size() != kNonceSize)
    return InvalidArgument("nonce must be 12 bytes");
  if (sealed.size() < kTagSize) return DataLoss("shorter than a tag");
  Gcm gcm;
  MEZ_RETURN_IF_ERROR(gcm.Init(key, /*encrypt=*/false));
  std::string_view ct = sealed.substr(0, sealed.size() - kTagSize);
  std::string out(ct.size(), '\0');
  if (!gcm.Open(nonce.data(), aad, ct, ct.data() + ct.size(), out.data())) {
    return DataLoss("authentication failed");
  }
  return out;
}

}  // namespace internal
}  // namespace mez::record
