// Enhanced recording events as mezrecd receives them (RecordEvents frames,
// docs/formats/enhanced-events.md): the checks of a frame's lines, the
// stored form of a line, and the audit events made from them. Independent
// of gRPC; IngestStream::Events uses it.
#ifndef MEZ_INGEST_EVENTS_H_
#define MEZ_INGEST_EVENTS_H_

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "libmez/util/status.h"

namespace mez::ingest {

// Lines in one events frame. An agent sends what it read from the kernel
// in one poll (a few hundred at most under load); more is refused.
inline constexpr size_t kMaxEventLines = 4096;
// Bytes of one line. The largest legitimate line is an exec whose 16,384
// bytes of argv are all control bytes (each JSON-escaped to 6 bytes:
// ~98 KiB) plus two 4 KiB paths: 256 KiB leaves room and stays bounded.
inline constexpr size_t kMaxEventLineBytes = 256 * 1024;
// Nesting of arrays and objects in a line (the schema needs 2: an object
// holding arrays of strings).
inline constexpr int kMaxEventDepth = 4;
// Bytes of argv kept in a session.command audit row (the events file keeps
// all of it), and of any other string copied into an audit row.
inline constexpr size_t kMaxAuditArgvBytes = 4096;
inline constexpr size_t kMaxAuditStringBytes = 4096;
// Audit rows per session and kind; past them the events are only in the
// events file, and session.events_omitted counts them at the session end.
inline constexpr uint64_t kMaxCommandAuditRows = 10'000;
inline constexpr uint64_t kMaxNetworkAuditRows = 10'000;
inline constexpr uint64_t kMaxFileAuditRows = 1'000;
inline constexpr uint64_t kMaxLossAuditRows = 1'000;  // also session.untracked
// The event code of a line in the events file.
inline constexpr char kEventCode = 'e';

// One checked line.
struct CheckedEvent {
  std::string_view line;  // As received (points into the frame).
  nlohmann::json json;    // Parsed: an object with a known type.
  std::string type;
  int64_t offset_us = 0;  // From the recording's start (see StoredLine).
};

// Checks every line of a frame before anything is stored: at most
// kMaxEventLines lines of 1..kMaxEventLineBytes bytes, no newline, nesting
// at most kMaxEventDepth, each a JSON object with a known `type`, an
// integer `seq` >= 0 and no `offset_us` key. The offset of each is its
// `time_unix_ns` minus `started_us` (both from the node's clock), or the
// frame's `frame_offset_us` when it has no integer time; never negative.
// kInvalidArgument naming the line on any failure.
Result<std::vector<CheckedEvent>> CheckEventLines(
    const std::vector<std::string_view>& lines, int64_t frame_offset_us,
    int64_t started_us);

// The line as stored in the events file: the received line with
// `"offset_us":N,` put first in its object.
std::string StoredLine(const CheckedEvent& e);

// The audit event type for an event ("session.command", "session.network",
// "session.file", "session.events_lost", "session.untracked"), empty for
// those not audited (exit).
std::string AuditTypeOf(const std::string& event_type);
// The audit row's details for an event (bounded: argv to
// kMaxAuditArgvBytes, strings to kMaxAuditStringBytes).
nlohmann::json AuditDetailsOf(const CheckedEvent& e);

}  // namespace mez::ingest

#endif  // MEZ_INGEST_EVENTS_H_
