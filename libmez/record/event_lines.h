// The enhanced recording events of a session as JSON lines, from its
// stored events file (docs/formats/enhanced-events.md, "Stored form"):
// the file is an asciicast v2 stream whose events carry the code 'e'; this
// gives their data, one line each, ending in '\n'.
#ifndef MEZ_RECORD_EVENT_LINES_H_
#define MEZ_RECORD_EVENT_LINES_H_

#include <memory>

#include "libmez/record/sink.h"

namespace mez::record {

// `plain_cast` as OpenPlainCast returns it (decompressed and decrypted).
// A line that is not an asciicast event, or an 'e' event whose data is not
// a JSON object, is kDataLoss (final, as OpenPlainCast's errors); events
// of other codes are skipped.
std::unique_ptr<ByteSource> NewEventLinesSource(
    std::unique_ptr<ByteSource> plain_cast);

}  // namespace mez::record

#endif  // MEZ_RECORD_EVENT_LINES_H_
