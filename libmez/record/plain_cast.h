// A plain asciicast v2 byte stream from any stored cast: plain and gzip
// files pass through; an encrypted cast is opened with the key and
// re-encoded as a plain one (header without the encryption block, the same
// times, codes and text). Players and the playback RPC read this form.
#ifndef MEZ_RECORD_PLAIN_CAST_H_
#define MEZ_RECORD_PLAIN_CAST_H_

#include <memory>
#include <optional>
#include <string>

#include "libmez/record/sink.h"

namespace mez::record {

// `src` as OpenRecording returns it (already decompressed). An encrypted
// cast without a key is kFailedPrecondition naming the setting to use; an
// integrity failure surfaces from Read() as the reader's kDataLoss error
// (naming the line and the chunk), after the bytes of every event before
// it. That error is final: every later Read() returns it again, so a
// caller that goes on reading (the playback RPC sends what it has before
// it reports) never gets bytes from past the failed chunk.
Result<std::unique_ptr<ByteSource>> OpenPlainCast(
    std::unique_ptr<ByteSource> src, const std::optional<std::string>& key);

}  // namespace mez::record

#endif  // MEZ_RECORD_PLAIN_CAST_H_
