#include "libmez/server/tls_names.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>

#include "libmez/util/host_port.h"

namespace mez::server {
namespace {

bool IsWildcard(const std::string& host) {
  return host.empty() || host == "0.0.0.0" || host == "::";
}

// Letters, digits, '-' and '.': what a certificate's DNS name may hold
// (a host name with anything else is left out rather than refused).
bool IsPlainDnsName(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

void AddOnce(const std::string& name, std::vector<std::string>* out) {
  if (std::find(out->begin(), out->end(), name) == out->end()) {
    out->push_back(name);
  }
}

}  // namespace

HostFacts ThisHost() {
  HostFacts facts;
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) == 0) facts.hostname = name;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return facts;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr || (a->ifa_flags & IFF_UP) == 0 ||
        (a->ifa_flags & IFF_LOOPBACK) != 0) {
      continue;
    }
    char text[INET6_ADDRSTRLEN] = {};
    if (a->ifa_addr->sa_family == AF_INET) {
      auto* in = reinterpret_cast<sockaddr_in*>(a->ifa_addr);
      if (inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) == nullptr) {
        continue;
      }
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      auto* in6 = reinterpret_cast<sockaddr_in6*>(a->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&in6->sin6_addr)) continue;
      if (inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text)) == nullptr) {
        continue;
      }
    } else {
      continue;
    }
    AddOnce(text, &facts.addresses);
  }
  freeifaddrs(list);
  return facts;
}

std::vector<std::string> ServerCertNames(
    const std::string& listen, const std::vector<std::string>& tls_names,
    const HostFacts& host) {
  std::vector<std::string> names;
  std::string listen_host;
  uint16_t port = 0;
  bool wildcard = true;
  if (SplitHostPort(listen, &listen_host, &port).ok()) {
    wildcard = IsWildcard(listen_host);
    if (!wildcard) AddOnce(listen_host, &names);
  }
  for (const std::string& n : tls_names) AddOnce(n, &names);
  if (wildcard) {
    if (IsPlainDnsName(host.hostname)) AddOnce(host.hostname, &names);
    for (const std::string& a : host.addresses) AddOnce(a, &names);
  }
  return names;
}

}  // namespace mez::server
