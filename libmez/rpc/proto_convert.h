// Conversions between the recording protocol's messages and ingest's
// types, in one place.
#ifndef MEZ_RPC_PROTO_CONVERT_H_
#define MEZ_RPC_PROTO_CONVERT_H_

#include "libmez/rpc/ingest.h"
#include "mezite/v1/recording.pb.h"

namespace mez::rpc {

// The ingest view of a header and a direction (unverified, as received).
StreamHeader HeaderFromProto(const mezite::v1::RecordHeader& p);
ChunkDirection DirectionFromProto(mezite::v1::Direction d);

}  // namespace mez::rpc

#endif  // MEZ_RPC_PROTO_CONVERT_H_
