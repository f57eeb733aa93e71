// Conversions between the recording protocol's messages and ingest's
// types; the protocol's enums are converted by libmez/spool/frame_enums.h.
#ifndef MEZ_INGEST_PROTO_CONVERT_H_
#define MEZ_INGEST_PROTO_CONVERT_H_

#include "libmez/ingest/ingest.h"
#include "mezite/v1/recording.pb.h"

namespace mez::ingest {

// The ingest view of a header (unverified, as received). Directions:
// spool::DirectionFromProto.
StreamHeader HeaderFromProto(const mezite::v1::RecordHeader& p);

// Hands an events frame to the stream (IngestStream::Events), refusing a
// frame over kMaxEventLines lines before anything is built from it.
Status EventsFromProto(IngestStream* stream, const mezite::v1::RecordEvents& p);

}  // namespace mez::ingest

#endif  // MEZ_INGEST_PROTO_CONVERT_H_
