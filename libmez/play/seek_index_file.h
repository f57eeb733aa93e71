// The stored seek index: the checkpoints of a whole recording, built once
// (by mezrecd, when the recording ends) and kept beside it in the store, so
// that `msh play` can seek anywhere from its first frame instead of
// indexing the recording itself first. Format, bounds and what a forged
// index can do: docs/formats/seek-index.md.
//
// Two layers: the *body* (SerializeSeekIndex / ParseSeekIndex), which is
// what ReadRecording serves, each snapshot in it compressed on its own (so
// that adopting an index costs no inflating: a seek unpacks the one
// snapshot it lands on); and the *file* (EncodeSeekIndexFile /
// DecodeSeekIndexFile), the body as is or, when recordings are encrypted,
// sealed with the recording key (AES-256-GCM) bound to the session id and
// to this purpose.
#ifndef MEZ_PLAY_SEEK_INDEX_FILE_H_
#define MEZ_PLAY_SEEK_INDEX_FILE_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "libmez/play/seek_index.h"
#include "libmez/play/source.h"
#include "libmez/record/sink.h"
#include "libmez/util/status.h"

namespace mez::play {

// Bounds a parser holds every stored index to, before allocating.
inline constexpr uint32_t kMaxStoredCheckpoints = 1 << 20;
// All snapshots together, packed and unpacked alike: the player's default
// checkpoint budget.
inline constexpr uint64_t kMaxStoredSnapshotBytes = 64 << 20;
// The whole body (the packed snapshots and 44 bytes a checkpoint).
inline constexpr uint64_t kMaxSeekIndexBytes =
    kMaxStoredSnapshotBytes + 44ull * kMaxStoredCheckpoints + 64;
// A stored file (compressed, perhaps sealed) is never larger than this.
// (41 bytes of framing and seal per MiB.)
inline constexpr uint64_t kMaxSeekIndexFileBytes =
    kMaxSeekIndexBytes + (64 << 10);

// The intervals a stored index is built with: a checkpoint every 256 KiB
// of stream (so a seek re-reads at most that: about 25 ms of emulation
// where output scrolls) or every 60 s of timeline (sparse output is cheap
// to re-read; a checkpoint every 5 s would store a whole screen per 5 s of
// an idle session). Snapshots within the usual budget.
inline SeekIndexOptions StoredSeekIndexOptions() {
  SeekIndexOptions o;
  o.interval_us = 60'000'000;
  o.interval_bytes = 256 << 10;
  o.budget = kMaxStoredSnapshotBytes;
  return o;
}

struct StoredSeekIndex {
  // Length of the plain stream it was built from; every offset is below.
  uint64_t stream_size = 0;
  // The idle cap its timeline used (the header's idle_time_limit when
  // mezrecd builds it); nullopt: none. Its times are only valid for a
  // player whose effective cap is the same.
  std::optional<int64_t> idle_cap_us;
  int64_t end_us = 0;  // Timeline time of the last event.
  // In stream order; the first at time 0, at the first event line, with
  // the header's size and an empty screen.
  std::vector<Checkpoint> checkpoints;
};

// Packs every snapshot not packed yet.
std::string SerializeSeekIndex(const StoredSeekIndex& index);
// The snapshot's escape sequences, unpacked when packed; kDataLoss when
// the packed form does not inflate to its stated size.
Result<std::string> UnpackSnapshot(const Checkpoint& cp);
// Checks every field against the bounds above and the player's screen
// limits, offsets strictly increasing within the stream, lines increasing,
// times never going backwards and within end_us, and no trailing bytes.
// kDataLoss naming what is wrong.
Result<StoredSeekIndex> ParseSeekIndex(std::string_view body);

// Reads `source` once from its start, as the player would with
// `idle_cap_us` given (nullopt: the header's), and keeps a checkpoint per
// interval of `options`. A read error, a refused screen size or `*cancel`
// set is an error (no partial index is ever stored).
Result<StoredSeekIndex> BuildSeekIndex(
    RecordingSource* source, SeekIndexOptions options,
    std::optional<int64_t> idle_cap_us,
    const std::atomic<bool>* cancel = nullptr);

// The stored file: `body`, sealed with `key` (kKeySize bytes) for
// `session_id` when a key is given.
Result<std::string> EncodeSeekIndexFile(std::string_view body,
                                        const std::optional<std::string>& key,
                                        std::string_view session_id);
// Reads a stored file back to its body: kDataLoss for a damaged, forged,
// truncated or too large file, or one sealed for another session or
// purpose; kFailedPrecondition for a sealed file without a key (or a plain
// one when a key is given: recordings are sealed, so must their index be).
Result<std::string> DecodeSeekIndexFile(record::ByteSource* file,
                                        const std::optional<std::string>& key,
                                        std::string_view session_id);

}  // namespace mez::play

#endif  // MEZ_PLAY_SEEK_INDEX_FILE_H_
