// The one place where the recording protocol's enums (mezite.v1.Direction,
// mezite.v1.SessionKind) meet the code's vocabulary (libmez/util/stream.h):
// the recorder uses it to send frames, mezrecd to read streams and spools.
#ifndef MEZ_SPOOL_FRAME_ENUMS_H_
#define MEZ_SPOOL_FRAME_ENUMS_H_

#include <optional>

#include "libmez/util/stream.h"
#include "mezite/v1/recording.pb.h"

namespace mez::spool {

mezite::v1::Direction DirectionToProto(Direction direction);
// DIRECTION_IN and DIRECTION_ERR as such; anything else (unset or a value
// this build does not know) is output, as the protocol defines.
Direction DirectionFromProto(mezite::v1::Direction direction);

mezite::v1::SessionKind KindToProto(ChannelKind kind);
// nullopt for SESSION_KIND_UNSPECIFIED and values this build does not know.
std::optional<ChannelKind> KindFromProto(int kind);

}  // namespace mez::spool

#endif  // MEZ_SPOOL_FRAME_ENUMS_H_
