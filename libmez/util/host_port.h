// "HOST:PORT" addresses, as every binary takes them ("[v6]:PORT" for IPv6).
#ifndef MEZ_UTIL_HOST_PORT_H_
#define MEZ_UTIL_HOST_PORT_H_

#include <cstdint>
#include <string>

#include "libmez/util/status.h"

namespace mez {

// Splits "HOST:PORT" ("[v6]:PORT" for IPv6). kInvalidArgument otherwise.
Status SplitHostPort(const std::string& addr, std::string* host,
                     uint16_t* port);

// Checks an address to listen on: "HOST:PORT" or "[v6]:PORT", port 0-65535
// (0: any). The message names the address and the expected form.
Status ValidateListenAddress(const std::string& addr);

// True when the host of `addr` ("HOST:PORT", "[v6]:PORT" or a bare host)
// is 127.0.0.0/8, ::1 or "localhost".
bool IsLoopbackHost(const std::string& addr);

}  // namespace mez

#endif  // MEZ_UTIL_HOST_PORT_H_
