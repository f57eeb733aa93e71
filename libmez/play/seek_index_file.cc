#include "libmez/play/seek_index_file.h"

#include <libdeflate.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "libmez/play/event_reader.h"
#include "libmez/play/screen.h"
#include "libmez/play/timing.h"
#include "libmez/record/seal.h"

namespace mez::play {
namespace {

constexpr std::string_view kBodyMagic = "mezite-seek-v1\n";
constexpr std::string_view kFileMagic = "MEZSEEK1";
constexpr char kPlain = 'p';
constexpr char kSealed = 'e';
constexpr char kChunkFrame = 'c';
constexpr char kFinalFrame = 'f';
// Plaintext per sealed chunk.
constexpr size_t kSealPiece = 1 << 20;
// Bound into every sealed chunk besides the session id (the seal id is the
// session id and this suffix, which no session id can end with: ids have
// no '/'), so that no chunk of a recording passes for one of its index,
// nor the reverse.
constexpr std::string_view kSealSuffix = "/seek-index";
constexpr std::string_view kSealContext = "mezite-seek-index-v1";
// A checkpoint's fixed part: time, offset, lines, last time (8 each),
// rows, cols (2 each), snapshot sizes unpacked and packed (4 each).
constexpr size_t kFixedBytes = 8 * 4 + 2 * 2 + 4 + 4;

void PutU64(uint64_t v, std::string* out) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>(v >> (i * 8)));
}
void PutU32(uint32_t v, std::string* out) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>(v >> (i * 8)));
}
void PutU16(uint16_t v, std::string* out) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

// Reads big-endian integers off the front of a body, never past its end.
class Cursor {
 public:
  explicit Cursor(std::string_view data) : data_(data) {}
  bool Take(size_t n, std::string_view* out) {
    if (data_.size() - pos_ < n) return false;
    *out = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool U64(uint64_t* v) {
    std::string_view b;
    if (!Take(8, &b)) return false;
    *v = 0;
    for (char c : b) *v = (*v << 8) | static_cast<unsigned char>(c);
    return true;
  }
  bool I64(int64_t* v) {
    uint64_t u = 0;
    if (!U64(&u)) return false;
    *v = static_cast<int64_t>(u);
    return true;
  }
  bool U32(uint32_t* v) {
    uint64_t u = 0;
    std::string_view b;
    if (!Take(4, &b)) return false;
    for (char c : b) u = (u << 8) | static_cast<unsigned char>(c);
    *v = static_cast<uint32_t>(u);
    return true;
  }
  bool U16(uint16_t* v) {
    std::string_view b;
    if (!Take(2, &b)) return false;
    *v = static_cast<uint16_t>((static_cast<unsigned char>(b[0]) << 8) |
                               static_cast<unsigned char>(b[1]));
    return true;
  }
  size_t left() const { return data_.size() - pos_; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

Status Bad(const std::string& what) { return DataLoss("seek index: " + what); }

// Reads all of `src`, failing beyond `limit` bytes.
Result<std::string> ReadBounded(record::ByteSource* src, uint64_t limit,
                                const char* what) {
  std::string out;
  char buf[1 << 16];
  for (;;) {
    MEZ_ASSIGN_OR_RETURN(size_t n, src->Read(buf, sizeof(buf)));
    if (n == 0) return out;
    if (out.size() + n > limit) {
      return Bad(std::string(what) + " is larger than " +
                 std::to_string(limit) + " bytes");
    }
    out.append(buf, n);
  }
}

using Deflater =
    std::unique_ptr<libdeflate_compressor, void (*)(libdeflate_compressor*)>;

// Raw DEFLATE of a snapshot (level 6: snapshots are written once, read at
// each seek that lands on them).
std::string Pack(libdeflate_compressor* c, std::string_view text) {
  std::string out(libdeflate_deflate_compress_bound(c, text.size()), '\0');
  size_t n = libdeflate_deflate_compress(c, text.data(), text.size(),
                                         out.data(), out.size());
  out.resize(n);
  return out;
}

}  // namespace

Result<std::string> UnpackSnapshot(const Checkpoint& cp) {
  if (!cp.packed) return cp.snapshot;
  std::unique_ptr<libdeflate_decompressor, void (*)(libdeflate_decompressor*)>
      d(libdeflate_alloc_decompressor(), libdeflate_free_decompressor);
  if (d == nullptr) return Internal("cannot allocate a decompressor");
  std::string text(cp.text_size, '\0');
  size_t got = 0;
  libdeflate_result r = libdeflate_deflate_decompress(
      d.get(), cp.snapshot.data(), cp.snapshot.size(), text.data(), text.size(),
      &got);
  if (r != LIBDEFLATE_SUCCESS || got != text.size()) {
    return Bad("a snapshot does not unpack");
  }
  return text;
}

std::string SerializeSeekIndex(const StoredSeekIndex& index) {
  Deflater c(libdeflate_alloc_compressor(6), libdeflate_free_compressor);
  MEZ_CHECK(c != nullptr);
  std::string out(kBodyMagic);
  PutU64(index.stream_size, &out);
  out.push_back(index.idle_cap_us.has_value() ? 1 : 0);
  PutU64(static_cast<uint64_t>(index.idle_cap_us.value_or(0)), &out);
  PutU64(static_cast<uint64_t>(index.end_us), &out);
  PutU32(static_cast<uint32_t>(index.checkpoints.size()), &out);
  for (const Checkpoint& cp : index.checkpoints) {
    PutU64(static_cast<uint64_t>(cp.time_us), &out);
    PutU64(cp.at.offset, &out);
    PutU64(cp.at.lines_before, &out);
    PutU64(static_cast<uint64_t>(cp.at.last_time_us), &out);
    PutU16(static_cast<uint16_t>(cp.rows), &out);
    PutU16(static_cast<uint16_t>(cp.cols), &out);
    std::string packed = cp.packed ? cp.snapshot : Pack(c.get(), cp.snapshot);
    PutU32(cp.packed ? cp.text_size : static_cast<uint32_t>(cp.snapshot.size()),
           &out);
    PutU32(static_cast<uint32_t>(packed.size()), &out);
    out += packed;
  }
  return out;
}

Result<StoredSeekIndex> ParseSeekIndex(std::string_view body) {
  if (body.size() > kMaxSeekIndexBytes) return Bad("too large");
  Cursor in(body);
  std::string_view magic;
  if (!in.Take(kBodyMagic.size(), &magic) || magic != kBodyMagic) {
    return Bad("not a seek index (bad magic)");
  }
  StoredSeekIndex index;
  uint8_t has_cap = 0;
  std::string_view flag;
  uint64_t cap = 0;
  uint32_t count = 0;
  if (!in.U64(&index.stream_size) || !in.Take(1, &flag) || !in.U64(&cap) ||
      !in.I64(&index.end_us) || !in.U32(&count)) {
    return Bad("truncated header");
  }
  has_cap = static_cast<uint8_t>(flag[0]);
  if (has_cap > 1) return Bad("bad idle cap flag");
  if (has_cap == 1) {
    if (cap == 0 || cap > static_cast<uint64_t>(INT64_MAX)) {
      return Bad("idle cap out of range");
    }
    index.idle_cap_us = static_cast<int64_t>(cap);
  }
  if (index.end_us < 0) return Bad("negative length");
  if (count == 0 || count > kMaxStoredCheckpoints) {
    return Bad("checkpoint count " + std::to_string(count) +
               " is not within 1.." + std::to_string(kMaxStoredCheckpoints));
  }
  // Each checkpoint takes its fixed part at least: a count the body cannot
  // hold is refused before anything is reserved for it.
  if (in.left() / kFixedBytes < count) return Bad("truncated checkpoints");
  index.checkpoints.reserve(count);
  uint64_t texts = 0;  // Unpacked, and packed: each within the budget.
  uint64_t snapshots = 0;
  for (uint32_t i = 0; i < count; ++i) {
    Checkpoint cp;
    uint16_t rows = 0;
    uint16_t cols = 0;
    uint32_t text_len = 0;
    uint32_t len = 0;
    std::string_view snap;
    if (!in.I64(&cp.time_us) || !in.U64(&cp.at.offset) ||
        !in.U64(&cp.at.lines_before) || !in.I64(&cp.at.last_time_us) ||
        !in.U16(&rows) || !in.U16(&cols) || !in.U32(&text_len) ||
        !in.U32(&len)) {
      return Bad("truncated checkpoint " + std::to_string(i));
    }
    std::string where = "checkpoint " + std::to_string(i) + ": ";
    if (len > kMaxStoredSnapshotBytes - snapshots ||
        text_len > kMaxStoredSnapshotBytes - texts) {
      return Bad(where + "snapshots beyond " +
                 std::to_string(kMaxStoredSnapshotBytes) + " bytes");
    }
    texts += text_len;
    if (!in.Take(len, &snap)) return Bad(where + "truncated snapshot");
    snapshots += len;
    cp.rows = rows;
    cp.cols = cols;
    Status size = CheckScreenSize(cp.cols, cp.rows);
    if (!size.ok()) return Bad(where + size.message());
    if (cp.time_us < 0 || cp.time_us > index.end_us || cp.at.last_time_us < 0) {
      return Bad(where + "time out of range");
    }
    if (cp.at.offset == 0 || cp.at.offset >= index.stream_size ||
        cp.at.lines_before == 0) {
      return Bad(where + "offset out of range");
    }
    if (i == 0) {
      if (cp.time_us != 0 || cp.at.lines_before != 1) {
        return Bad(where + "the first must be at the first event");
      }
    } else {
      const Checkpoint& prev = index.checkpoints.back();
      if (cp.at.offset <= prev.at.offset ||
          cp.at.lines_before <= prev.at.lines_before) {
        return Bad(where + "offsets not increasing");
      }
      if (cp.time_us < prev.time_us) {
        return Bad(where + "time goes backwards");
      }
    }
    cp.snapshot.assign(snap);
    cp.packed = true;
    cp.text_size = text_len;
    index.checkpoints.push_back(std::move(cp));
  }
  if (in.left() != 0) return Bad("trailing bytes");
  return index;
}

Result<StoredSeekIndex> BuildSeekIndex(RecordingSource* source,
                                       SeekIndexOptions options,
                                       std::optional<int64_t> idle_cap_us,
                                       const std::atomic<bool>* cancel) {
  CastHeader header;
  MEZ_ASSIGN_OR_RETURN(auto reader, OpenEvents(source, &header));
  idle_cap_us = EffectiveIdleLimit(idle_cap_us, header.idle_time_limit_us);
  MEZ_RETURN_IF_ERROR(CheckScreenSize(header.info.width, header.info.height)
                          .WithContext("line 1"));
  Checkpoint first;
  first.at = reader->position();
  first.rows = header.info.height;
  first.cols = header.info.width;
  first.snapshot = Screen(first.rows, first.cols).Snapshot();
  SeekIndex index(options, std::move(first));
  MEZ_RETURN_IF_ERROR(index.IndexAll(reader.get(), header.info.height,
                                     header.info.width, idle_cap_us, cancel));
  StoredSeekIndex out;
  out.stream_size = reader->position().offset;
  out.idle_cap_us = idle_cap_us;
  out.end_us = index.end_us().value_or(0);
  out.checkpoints = index.checkpoints();
  return out;
}

Result<std::string> EncodeSeekIndexFile(std::string_view body,
                                        const std::optional<std::string>& key,
                                        std::string_view session_id) {
  std::string out(kFileMagic);
  if (!key.has_value()) {
    out.push_back(kPlain);
    out += body;
    return out;
  }
  out.push_back(kSealed);
  out += record::KeyId(*key);
  std::string seal_id = std::string(session_id) + std::string(kSealSuffix);
  MEZ_ASSIGN_OR_RETURN(auto sealer, record::ChunkSealer::Create(*key, seal_id));
  std::string_view data = body;
  std::string sealed;
  uint64_t n = 0;
  for (size_t at = 0; at < data.size(); at += kSealPiece, ++n) {
    record::ChunkInfo info;
    info.time_us = static_cast<int64_t>(n);
    info.direction = 's';
    info.context = kSealContext;
    sealed.clear();
    MEZ_RETURN_IF_ERROR(
        sealer->Seal(info, data.substr(at, kSealPiece), &sealed));
    out.push_back(kChunkFrame);
    PutU32(static_cast<uint32_t>(sealed.size()), &out);
    out += sealed;
  }
  sealed.clear();
  MEZ_RETURN_IF_ERROR(sealer->SealFinal(static_cast<int64_t>(n), &sealed));
  out.push_back(kFinalFrame);
  PutU32(static_cast<uint32_t>(sealed.size()), &out);
  out += sealed;
  return out;
}

Result<std::string> DecodeSeekIndexFile(record::ByteSource* file,
                                        const std::optional<std::string>& key,
                                        std::string_view session_id) {
  std::string raw;
  {
    auto got = ReadBounded(file, kMaxSeekIndexFileBytes, "the file");
    if (!got.ok()) return got.status();
    raw.swap(*got);
  }
  Cursor in(raw);
  std::string_view magic;
  std::string_view kind;
  if (!in.Take(kFileMagic.size(), &magic) || magic != kFileMagic ||
      !in.Take(1, &kind)) {
    return Bad("not a seek index file (bad magic)");
  }
  std::string body;
  if (kind[0] == kPlain) {
    if (key.has_value()) {
      return FailedPrecondition(
          "seek index: stored unsealed while recordings are encrypted");
    }
    // In place: a copy of a few MiB costs a page fault per 4 KiB of it.
    raw.erase(0, kFileMagic.size() + 1);
    body = std::move(raw);
  } else if (kind[0] == kSealed) {
    if (!key.has_value()) {
      return FailedPrecondition("seek index: sealed, and no key is set");
    }
    std::string_view key_id;
    if (!in.Take(16, &key_id)) return Bad("truncated key id");
    std::string seal_id = std::string(session_id) + std::string(kSealSuffix);
    MEZ_ASSIGN_OR_RETURN(auto opener,
                         record::ChunkOpener::Create(*key, seal_id));
    MEZ_RETURN_IF_ERROR(opener->CheckKeyId(key_id));
    opener->RequireContiguous();
    uint64_t n = 0;
    bool final_seen = false;
    while (in.left() > 0 && !final_seen) {
      std::string_view type;
      uint32_t len = 0;
      std::string_view sealed;
      if (!in.Take(1, &type) || !in.U32(&len) ||
          len > kSealPiece + record::kSealOverhead || !in.Take(len, &sealed)) {
        return Bad("damaged frame after chunk " + std::to_string(n));
      }
      if (type[0] == kChunkFrame) {
        record::ChunkInfo info;
        info.time_us = static_cast<int64_t>(n);
        info.direction = 's';
        info.context = kSealContext;
        MEZ_ASSIGN_OR_RETURN(std::string piece, opener->Open(info, sealed));
        body += piece;
        ++n;
      } else if (type[0] == kFinalFrame) {
        MEZ_RETURN_IF_ERROR(opener->OpenFinal(static_cast<int64_t>(n), sealed));
        final_seen = true;
      } else {
        return Bad("unknown frame type");
      }
    }
    if (in.left() != 0) return Bad("data after the final record");
    MEZ_RETURN_IF_ERROR(opener->Finish());
  } else {
    return Bad("unknown file kind");
  }
  if (body.size() > kMaxSeekIndexBytes) return Bad("the index is too large");
  return body;
}

}  // namespace mez::play
