// The version every binary reports with --version (the CMake project's).
#ifndef MEZ_UTIL_VERSION_H_
#define MEZ_UTIL_VERSION_H_

namespace mez {

// "0.1.0".
const char* Version();

}  // namespace mez

#endif  // MEZ_UTIL_VERSION_H_
