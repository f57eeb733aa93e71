#include "libmez/util/version.h"

namespace mez {

const char* Version() { return MEZ_VERSION; }

}  // namespace mez
