#include "libmez/util/host_port.h"

namespace mez {

Status SplitHostPort(const std::string& addr, std::string* host,
                     uint16_t* port) {
  size_t colon = addr.rfind(':');
  auto bad = [&] {
    return InvalidArgument(
        "address must be HOST:PORT (IPv6 as [::1]:PORT), "
        "not \"" +
        addr + "\"");
  };
  if (colon == std::string::npos || colon == 0) return bad();
  *host = addr.substr(0, colon);
  if (host->front() == '[') {
    if (host->size() < 3 || host->back() != ']') return bad();
    *host = host->substr(1, host->size() - 2);
  } else if (host->find(':') != std::string::npos) {
    return bad();
  }
  std::string p = addr.substr(colon + 1);
  if (p.empty() || p.size() > 5 ||
      p.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(p) > 65535) {
    return bad();
  }
  *port = static_cast<uint16_t>(std::stoi(p));
  return Status::Ok();
}

bool IsLoopbackHost(const std::string& addr) {
  std::string host = addr;
  if (!host.empty() && host[0] == '[') {
    host = host.substr(1, host.find(']') - 1);
  } else if (size_t colon = host.rfind(':');
             colon != std::string::npos && host.find(':') == colon) {
    host = host.substr(0, colon);
  }
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

Status ValidateListenAddress(const std::string& addr) {
  std::string host;
  uint16_t port = 0;
  if (!SplitHostPort(addr, &host, &port).ok()) {
    return InvalidArgument("listen address '" + addr +
                           "' must be HOST:PORT (e.g. 127.0.0.1:3025; IPv6 "
                           "as [::1]:3025)");
  }
  return Status::Ok();
}

}  // namespace mez
