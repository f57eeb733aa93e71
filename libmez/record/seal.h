// Encrypted chunks: AES-256-GCM sealing of recording payloads that leaves the
// structure (times, directions, framing) readable without the key, plus an
// authenticated final record carrying the chunk count and a hash chain, so
// that tampering, reordering, dropping, duplicating, appending and
// truncation are each detected and named. Format: docs/formats/encryption.md.
//
// The container (asciicast, pcap) decides where a sealed chunk goes; this
// module only turns plaintext + readable context into sealed bytes and back.
#ifndef MEZ_RECORD_SEAL_H_
#define MEZ_RECORD_SEAL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "libmez/util/status.h"

namespace mez::record {

inline constexpr size_t kKeySize = 32;
inline constexpr size_t kSeqSize = 8;
inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;
// Bytes a sealed chunk adds to its plaintext: seq || nonce || ... || tag.
inline constexpr size_t kSealOverhead = kSeqSize + kNonceSize + kTagSize;

// Parses MEZITE_RECORDING_ENC_KEY-style text: exactly 64 hex characters.
// The error says what is wrong (length or the offending character) without
// echoing the key.
Result<std::string> ParseKeyHex(std::string_view hex);

// A short public identifier of a key (hex of the first 8 bytes of
// HMAC-SHA256(key, "mezite key id")), stored in file headers so that a
// wrong key is reported as such instead of as tampering.
std::string KeyId(std::string_view key);

// What the readable framing says about a chunk; bound into the GCM AAD.
struct ChunkInfo {
  int64_t time_us = 0;       // The container's readable time, microseconds.
  uint8_t direction = 0;     // Container-defined ('o', 'i', 'r', 'x', ...).
  std::string_view context;  // Container-defined (e.g. a pcap flow 4-tuple).
};

// Seals chunks in order. REQUIRES: external synchronization. Nonces are
// drawn from the CSPRNG in batches, so a sealer must not be used on both
// sides of a fork().
class ChunkSealer {
 public:
  static Result<std::unique_ptr<ChunkSealer>> Create(
      std::string_view key, std::string_view session_id);
  ~ChunkSealer();

  // Appends seq(8, big-endian) || nonce(12) || ciphertext || tag(16) of
  // the next chunk to `out`. Each call uses a fresh random nonce.
  Status Seal(const ChunkInfo& info, std::string_view plaintext,
              std::string* out);
  // Appends the sealed final record (count and hash chain). No Seal after.
  Status SealFinal(int64_t time_us, std::string* out);
  uint64_t count() const { return next_seq_; }

 private:
  struct Impl;
  explicit ChunkSealer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  uint64_t next_seq_ = 0;
};

// What an integrity failure was.
enum class Integrity {
  kOk,
  kWrongKey,    // The header's key id does not match the key given.
  kTampered,    // A chunk or the final record failed authentication.
  kReordered,   // A chunk appears after one with a higher sequence number.
  kDuplicated,  // A sequence number appears twice.
  kDropped,     // A chunk is missing (seen only once the final record is).
  kAppended,    // Data follows the final record.
  kTruncated,   // The file ends without a final record.
  kMalformed,   // A sealed chunk is too short to be one.
};
std::string_view IntegrityName(Integrity i);

// Opens chunks in file order and checks the whole sequence. Every error it
// returns is kDataLoss with a message naming the failure class and chunk;
// integrity() then tells the class. REQUIRES: external synchronization.
class ChunkOpener {
 public:
  static Result<std::unique_ptr<ChunkOpener>> Create(
      std::string_view key, std::string_view session_id);
  ~ChunkOpener();

  // Compares the key id stored in a file header with KeyId(key); a
  // mismatch is kWrongKey.
  Status CheckKeyId(std::string_view stored_key_id);
  // Returns the plaintext of the next chunk in file order. A chunk whose
  // seq skips ahead is authentic and returned; the gap is reported by
  // OpenFinal or Finish. After a failure later calls still open what they
  // can, but integrity() keeps the first failure.
  Result<std::string> Open(const ChunkInfo& info, std::string_view sealed);
  // For containers that store chunks in seq order with none left out
  // (asciicast): an authentic chunk whose seq is above the next one is
  // reported at once, as kDropped naming the missing seq, instead of at the
  // final record. A reader then never yields a chunk while an earlier one
  // is missing or moved (and a compressed stream is never inflated past a
  // missing piece). Call before the first Open.
  void RequireContiguous() { contiguous_ = true; }
  // Checks the final record against everything opened so far.
  Status OpenFinal(int64_t time_us, std::string_view sealed);
  // Call at the end of the file: reports kTruncated when no final record
  // was seen, and any gap still open.
  Status Finish();

  Integrity integrity() const { return integrity_; }
  uint64_t opened() const { return opened_; }

 private:
  struct Impl;
  explicit ChunkOpener(std::unique_ptr<Impl> impl);
  Status Fail(Integrity what, std::string message);
  std::unique_ptr<Impl> impl_;
  Integrity integrity_ = Integrity::kOk;
  uint64_t opened_ = 0;
  bool contiguous_ = false;
};

namespace internal {

// Raw AES-256-GCM with a 12-byte nonce and a 16-byte tag, through the same
// EVP code the sealer and opener use. Exposed so tests can check it against
// published vectors; recordings never call these.
// Returns ciphertext || tag.
Result<std::string> AesGcmSeal(std::string_view key, std::string_view nonce,
                               std::string_view aad,
                               std::string_view plaintext);
// `sealed` is ciphertext || tag; an authentication failure is kDataLoss.
Result<std::string> AesGcmOpen(std::string_view key, std::string_view nonce,
                               std::string_view aad, std::string_view sealed);

}  // namespace internal

}  // namespace mez::record

#endif  // MEZ_RECORD_SEAL_H_
