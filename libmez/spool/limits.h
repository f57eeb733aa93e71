// Limits of the recording protocol's frames, shared by the node's
// recorders (which cut chunks to fit), the spool format and mezrecd's
// ingest (which refuses anything larger).
#ifndef MEZ_SPOOL_LIMITS_H_
#define MEZ_SPOOL_LIMITS_H_

#include <cstddef>

namespace mez::spool {

// Largest chunk payload one Record or Upload frame may carry.
inline constexpr size_t kMaxChunkBytes = 1 << 20;

}  // namespace mez::spool

#endif  // MEZ_SPOOL_LIMITS_H_
