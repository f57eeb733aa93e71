#include "libmez/bpf/event.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string_view>

#include "libmez/bpf/event_abi.h"

namespace mez::bpf {

const uint64_t kArgvCap = MEZ_BPF_ARGV_CAP;

// The layout docs/formats/enhanced-events.md describes.
static_assert(sizeof(mez_bpf_record) == 80);
static_assert(sizeof(mez_bpf_connect) == 48);

const char* EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kExec:
      return "exec";
    case EventKind::kExit:
      return "exit";
    case EventKind::kLoss:
      return "loss";
    case EventKind::kConnect:
      return "connect";
  }
  return "unknown";
}

namespace {

// Components come NUL-terminated from the leaf up to the root.
std::string JoinComponents(std::string_view bytes, bool cut) {
  std::vector<std::string_view> parts;
  while (!bytes.empty()) {
    size_t end = bytes.find('\0');
    if (end == std::string_view::npos) end = bytes.size();
    parts.push_back(bytes.substr(0, end));
    bytes.remove_prefix(std::min(end + 1, bytes.size()));
  }
  std::string path = cut ? "..." : "";
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    path += '/';
    path += *it;
  }
  if (path.empty()) path = "/";
  return path;
}

std::vector<std::string> SplitArgv(std::string_view bytes) {
  std::vector<std::string> argv;
  while (!bytes.empty()) {
    size_t end = bytes.find('\0');
    if (end == std::string_view::npos) {
      argv.emplace_back(bytes);  // the cut last argument
      break;
    }
    argv.emplace_back(bytes.substr(0, end));
    bytes.remove_prefix(end + 1);
  }
  return argv;
}

std::string Address(bool ipv6, const uint8_t* bytes) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(ipv6 ? AF_INET6 : AF_INET, bytes, text, sizeof(text));
  return text;
}

}  // namespace

Result<Event> DecodeRecord(std::span<const uint8_t> record,
                           int64_t realtime_minus_monotonic_ns) {
  mez_bpf_record r;
  if (record.size() < sizeof(r)) {
    return DataLoss("BPF record of " + std::to_string(record.size()) +
                    " bytes is shorter than its header");
  }
  std::memcpy(&r, record.data(), sizeof(r));
  Event e;
  e.cookie = r.cookie;
  e.seq = r.seq;
  e.monotonic_ns = r.time_ns;
  e.time_unix_ns =
      static_cast<int64_t>(r.time_ns) + realtime_minus_monotonic_ns;
  e.pid = static_cast<int>(r.pid);
  e.ppid = static_cast<int>(r.ppid);
  e.uid = r.uid;
  e.euid = r.euid;
  if (r.kind == MEZ_BPF_KIND_EXIT) {
    e.kind = EventKind::kExit;
    if ((r.exit_code & 0x7f) == 0) {
      e.exit_code = static_cast<int>((r.exit_code >> 8) & 0xff);
    } else {
      e.signal = static_cast<int>(r.exit_code & 0x7f);
      e.core_dumped = (r.exit_code & 0x80) != 0;
    }
    e.duration_ns = r.duration_ns;
    return e;
  }
  if (r.kind == MEZ_BPF_KIND_CONNECT) {
    mez_bpf_connect c;
    if (record.size() < sizeof(r) + sizeof(c)) {
      return DataLoss("BPF connect record of " + std::to_string(record.size()) +
                      " bytes is too short");
    }
    std::memcpy(&c, record.data() + sizeof(r), sizeof(c));
    if (c.family != AF_INET && c.family != AF_INET6) {
      return DataLoss("BPF connect record of family " +
                      std::to_string(c.family));
    }
    e.kind = EventKind::kConnect;
    e.ipv6 = c.family == AF_INET6;
    e.remote_addr = Address(e.ipv6, c.remote_addr);
    e.remote_port = ntohs(c.remote_port);
    e.local_addr = Address(e.ipv6, c.local_addr);
    e.local_port = ntohs(c.local_port);
    e.established = c.result == 0;
    e.error = c.result < 0 ? -c.result : 0;
    e.duration_ns = r.duration_ns;
    return e;
  }
  if (r.kind != MEZ_BPF_KIND_EXEC) {
    return DataLoss("BPF record of unknown kind " + std::to_string(r.kind));
  }
  e.kind = EventKind::kExec;
  const uint64_t body = record.size() - sizeof(r);
  const uint64_t need =
      uint64_t{r.exe_len} + uint64_t{r.cwd_len} + uint64_t{r.argv_len};
  if (need > body || r.argv_len > MEZ_BPF_ARGV_CAP ||
      r.argv_len > r.argv_total) {
    return DataLoss("BPF exec record: lengths " + std::to_string(need) +
                    " exceed its " + std::to_string(body) + " bytes");
  }
  std::string_view data(
      reinterpret_cast<const char*>(record.data()) + sizeof(r), body);
  e.path_cut = (r.flags & MEZ_BPF_FLAG_EXE_CUT) != 0;
  e.cwd_cut = (r.flags & MEZ_BPF_FLAG_CWD_CUT) != 0;
  e.argv_unreadable = (r.flags & MEZ_BPF_FLAG_ARGV_UNREADABLE) != 0;
  e.path = JoinComponents(data.substr(0, r.exe_len), e.path_cut);
  e.cwd = JoinComponents(data.substr(r.exe_len, r.cwd_len), e.cwd_cut);
  e.argv = SplitArgv(data.substr(r.exe_len + r.cwd_len, r.argv_len));
  e.argv_bytes = r.argv_total;
  e.argv_cut_bytes = r.argv_total - r.argv_len;
  return e;
}

std::string ToJsonLine(const Event& e) {
  nlohmann::ordered_json j;
  j["type"] = EventKindName(e.kind);
  j["cookie"] = e.cookie;
  j["seq"] = e.seq;
  j["time_unix_ns"] = e.time_unix_ns;
  switch (e.kind) {
    case EventKind::kExec:
      j["pid"] = e.pid;
      j["ppid"] = e.ppid;
      j["uid"] = e.uid;
      j["euid"] = e.euid;
      j["path"] = e.path;
      if (e.path_cut) j["path_cut"] = true;
      j["cwd"] = e.cwd;
      if (e.cwd_cut) j["cwd_cut"] = true;
      j["argv"] = e.argv;
      j["argv_bytes"] = e.argv_bytes;
      j["argv_cut_bytes"] = e.argv_cut_bytes;
      if (e.argv_unreadable) j["argv_unreadable"] = true;
      break;
    case EventKind::kExit:
      j["pid"] = e.pid;
      j["ppid"] = e.ppid;
      j["uid"] = e.uid;
      j["euid"] = e.euid;
      if (e.exit_code) j["exit_code"] = *e.exit_code;
      if (e.signal) {
        j["signal"] = *e.signal;
        j["core_dumped"] = e.core_dumped;
      }
      j["duration_ns"] = e.duration_ns;
      break;
    case EventKind::kLoss:
      j["lost_exec"] = e.lost_exec;
      j["lost_exit"] = e.lost_exit;
      j["lost_connect"] = e.lost_connect;
      j["lost_forks"] = e.lost_forks;
      break;
    case EventKind::kConnect:
      j["pid"] = e.pid;
      j["ppid"] = e.ppid;
      j["uid"] = e.uid;
      j["euid"] = e.euid;
      j["family"] = e.ipv6 ? "ipv6" : "ipv4";
      j["remote_addr"] = e.remote_addr;
      j["remote_port"] = e.remote_port;
      j["local_addr"] = e.local_addr;
      j["local_port"] = e.local_port;
      j["established"] = e.established;
      if (!e.established) {
        j["errno"] = e.error;
        const char* name = strerrorname_np(e.error);
        j["error"] = name != nullptr ? name : std::to_string(e.error);
      }
      j["duration_ns"] = e.duration_ns;
      break;
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int64_t RealtimeMinusMonotonicNs() {
  timespec real{}, mono{};
  clock_gettime(CLOCK_REALTIME, &real);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  return (int64_t{real.tv_sec} - int64_t{mono.tv_sec}) * 1'000'000'000 +
         (int64_t{real.tv_nsec} - int64_t{mono.tv_nsec});
}

}  // namespace mez::bpf
