#include "libmez/catalog/catalog.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "libmez/settings/settings.h"
#include "libmez/util/path.h"

namespace mez::catalog {
namespace {

// `s` in double quotes for an error message, at most 64 bytes of it, with
// quotes, backslashes and bytes outside printable ASCII escaped, so that
// rejected input cannot forge log lines.
std::string Quote(std::string_view s) {
  constexpr size_t kMaxShown = 64;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMaxShown) out += "...";
  out += '"';
  return out;
}

constexpr char kPlainIdentifierRule[] =
    "1-128 characters of [A-Za-z0-9._-], not starting with '.' or '-'";

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool IsHostNameChar(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         c == '.' || c == '_' || c == '-';
}

bool IsValidPort(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  int value = 0;
  for (char c : port) {
    if (!IsDigit(c)) return false;
    value = value * 10 + (c - '0');
  }
  return value >= 1 && value <= 65535;
}

// "[v6]" with an optional "%zone" inside the brackets.
bool IsValidBracketedHost(std::string_view host) {
  if (host.size() < 3 || host.front() != '[' || host.back() != ']') {
    return false;
  }
  std::string_view inner = host.substr(1, host.size() - 2);
  std::string_view zone;
  if (size_t pct = inner.find('%'); pct != std::string_view::npos) {
    zone = inner.substr(pct + 1);
    inner = inner.substr(0, pct);
    if (zone.empty()) return false;
    for (char c : zone) {
      if (!IsHostNameChar(c)) return false;
    }
  }
  if (inner.find(':') == std::string_view::npos) return false;
  for (char c : inner) {
    if (!IsHex(c) && c != ':' && c != '.') return false;
  }
  return true;
}

bool IsValidHostPort(std::string_view addr) {
  size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string_view host = addr.substr(0, colon);
  if (!IsValidPort(addr.substr(colon + 1))) return false;
  if (!host.empty() && host.front() == '[') return IsValidBracketedHost(host);
  if (host.empty() || host.size() > 253) return false;
  for (char c : host) {
    if (!IsHostNameChar(c)) return false;  // ':' included: IPv6 needs [].
  }
  return true;
}

}  // namespace

std::string_view SessionStatusName(SessionStatus s) {
  switch (s) {
    case SessionStatus::kRecording:
      return "recording";
    case SessionStatus::kComplete:
      return "complete";
    case SessionStatus::kIncomplete:
      return "incomplete";
  }
  return "unknown";
}

Result<SessionStatus> ParseSessionStatus(std::string_view name) {
  for (SessionStatus s : {SessionStatus::kRecording, SessionStatus::kComplete,
                          SessionStatus::kIncomplete}) {
    if (SessionStatusName(s) == name) return s;
  }
  return InvalidArgument("unknown session status \"" + std::string(name) +
                         "\" (want recording, complete or incomplete)");
}

std::optional<std::string> DefaultConfigValue(std::string_view key) {
  // Cluster defaults live in code (the settings registry), not in the
  // database, so that changing a default needs no migration and an unset
  // key reads as the default.
  return settings::DefaultValue(key);
}

Status ValidateSession(const Session& session) {
  if (session.id.empty()) return InvalidArgument("session id is empty");
  if (session.bytes >
      static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return InvalidArgument("session " + session.id + ": byte count " +
                           std::to_string(session.bytes) + " out of range");
  }
  return Status::Ok();
}

Result<std::string> NormalizeAuditDetails(const std::string& details) {
  if (details.empty()) return std::string("{}");
  // Parse only to validate: the text is stored as given.
  nlohmann::json parsed = nlohmann::json::parse(details, /*cb=*/nullptr,
                                                /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return InvalidArgument("audit details must be a JSON object, got: " +
                           details.substr(0, 80));
  }
  return details;
}

bool IsValidLoginName(std::string_view login) {
  if (login.empty() || login.size() > 32) return false;
  if (!(login.front() >= 'a' && login.front() <= 'z') && login.front() != '_') {
    return false;
  }
  for (char c : login) {
    if (!((c >= 'a' && c <= 'z') || IsDigit(c) || c == '_' || c == '-')) {
      return false;
    }
  }
  return true;
}

std::string NewIdentityId() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof(bytes)) {
    ssize_t n = getrandom(bytes + got, sizeof(bytes) - got, 0);
    if (n < 0 && errno == EINTR) continue;
    MEZ_CHECK(n > 0);  // Only fails on a kernel without getrandom(2).
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id;
  for (unsigned char b : bytes) {
    id += kHex[b >> 4];
    id += kHex[b & 0xf];
  }
  return id;
}

bool IsIdentityId(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!(IsDigit(c) || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

namespace {

Status ValidateIdentityId(std::string_view what, std::string_view id) {
  if (id.empty() || IsIdentityId(id)) return Status::Ok();
  return InvalidArgument(std::string(what) + ": id " + Quote(id) +
                         " is not 32 lowercase hex digits (leave it empty "
                         "to have one assigned)");
}

}  // namespace

Status ValidateUser(const User& user) {
  if (!IsPlainIdentifier(user.name)) {
    return InvalidArgument("user name " + Quote(user.name) +
                           " is not a plain identifier (" +
                           kPlainIdentifierRule + ")");
  }
  MEZ_RETURN_IF_ERROR(ValidateIdentityId("user " + user.name, user.id));
  if (user.role != "user" && user.role != "admin" && user.role != "proxy") {
    return InvalidArgument("user " + user.name + ": role " + Quote(user.role) +
                           " is not \"user\", \"admin\" or \"proxy\"");
  }
  if (user.role == "proxy" && !user.logins.empty()) {
    return InvalidArgument("user " + user.name +
                           ": logins must be empty for a proxy (a proxy "
                           "never logs in to a node)");
  }
  for (size_t i = 0; i < user.logins.size(); ++i) {
    std::string field = "logins[" + std::to_string(i) + "]";
    const std::string& login = user.logins[i];
    if (!IsValidLoginName(login)) {
      return InvalidArgument(
          "user " + user.name + ": " + field + " " + Quote(login) +
          " is not a login name (1-32 characters of [a-z0-9_-], the first "
          "one of [a-z_])");
    }
    for (size_t j = 0; j < i; ++j) {
      if (user.logins[j] == login) {
        return InvalidArgument("user " + user.name + ": " + field + " " +
                               Quote(login) + " repeats logins[" +
                               std::to_string(j) + "]");
      }
    }
  }
  return Status::Ok();
}

Status ValidateNodeAddr(std::string_view node_name, std::string_view addr) {
  std::string prefix = "node " + std::string(node_name) + ": addr ";
  if (addr.empty())
    return InvalidArgument(prefix + "is empty (want HOST:PORT)");
  if (!IsValidHostPort(addr)) {
    return InvalidArgument(prefix + Quote(addr) +
                           " is not HOST:PORT (port 1-65535; host of "
                           "[A-Za-z0-9._-], or an IPv6 address in brackets)");
  }
  return Status::Ok();
}

Status ValidateNode(const Node& node) {
  if (!IsPlainIdentifier(node.name)) {
    return InvalidArgument("node name " + Quote(node.name) +
                           " is not a plain identifier (" +
                           kPlainIdentifierRule + ")");
  }
  MEZ_RETURN_IF_ERROR(ValidateIdentityId("node " + node.name, node.id));
  return ValidateNodeAddr(node.name, node.addr);
}

Result<std::unique_ptr<Catalog>> OpenCatalog(const std::string& url_or_path) {
  std::string_view v = url_or_path;
  if (v.starts_with("postgres://") || v.starts_with("postgresql://")) {
    return OpenPostgresCatalog(url_or_path);
  }
  return OpenSqliteCatalog(url_or_path);
}

}  // namespace mez::catalog
