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
static_assert(sizeof(mez_bpf_record) == 88);
static_assert(sizeof(mez_bpf_connect) == 48);
static_assert(sizeof(mez_bpf_file) == MEZ_BPF_FILE_HEADER);

const char* EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kExec:
      return "exec";
    case EventKind::kExit:
      return "exit";
    case EventKind::kLoss:
      return "loss";
    case EventKind::kUntracked:
      return "untracked";
    case EventKind::kConnect:
      return "connect";
    case EventKind::kFile:
      return "file";
    case EventKind::kListen:
      return "listen";
    case EventKind::kAccept:
      return "accept";
    case EventKind::kUdpSend:
      return "udp_send";
  }
  return "unknown";
}

namespace {

// The kernel returns errors as -1 to -4095 (MAX_ERRNO); anything below is
// no error it writes (and INT_MIN cannot be negated: found by fuzzing).
constexpr int32_t kMinResult = -4095;

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

// The names of the O_* flags set in an open's flags (x86_64 and arm64
// share these values), the access mode first.
std::vector<std::string> OpenFlagNames(uint32_t flags) {
  static const struct {
    uint32_t bit;
    const char* name;
  } kFlags[] = {
      {0100, "O_CREAT"},        {0200, "O_EXCL"},
      {0400, "O_NOCTTY"},       {01000, "O_TRUNC"},
      {02000, "O_APPEND"},      {04000, "O_NONBLOCK"},
      {010000, "O_DSYNC"},      {020000, "O_ASYNC"},
      {040000, "O_DIRECT"},     {0100000, "O_LARGEFILE"},
      {0200000, "O_DIRECTORY"}, {0400000, "O_NOFOLLOW"},
      {01000000, "O_NOATIME"},  {02000000, "O_CLOEXEC"},
      {010000000, "O_PATH"},
  };
  std::vector<std::string> names;
  switch (flags & 3) {
    case 0:
      names.push_back("O_RDONLY");
      break;
    case 1:
      names.push_back("O_WRONLY");
      break;
    default:
      names.push_back("O_RDWR");
      break;
  }
  // O_TMPFILE is 020200000 (it includes O_DIRECTORY).
  const bool tmpfile = (flags & 020200000) == 020200000;
  if (tmpfile) names.push_back("O_TMPFILE");
  for (const auto& f : kFlags) {
    if (tmpfile && f.bit == 0200000) continue;
    if ((flags & f.bit) != 0) names.push_back(f.name);
  }
  if ((flags & 04010000) == 04010000) names.push_back("O_SYNC");
  return names;
}

std::vector<std::string> RenameFlagNames(uint32_t flags) {
  std::vector<std::string> names;
  if (flags & 1) names.push_back("RENAME_NOREPLACE");
  if (flags & 2) names.push_back("RENAME_EXCHANGE");
  if (flags & 4) names.push_back("RENAME_WHITEOUT");
  return names;
}

// A name as the process passed it (with its NUL), joined to the
// components of the directory it is relative to.
std::string JoinName(std::string_view base_components, bool base_cut,
                     std::string_view name) {
  if (!name.empty() && name.back() == '\0') name.remove_suffix(1);
  if (base_components.empty()) return std::string(name);  // absolute
  std::string base = JoinComponents(base_components, base_cut);
  if (name.empty()) return base;
  if (base != "/") base += '/';
  base += name;
  return base;
}

Result<Event> DecodeFile(Event e, const mez_bpf_record& r,
                         std::string_view body) {
  mez_bpf_file f;
  if (body.size() < sizeof(f)) {
    return DataLoss("BPF file record of " + std::to_string(body.size()) +
                    " bytes is too short");
  }
  std::memcpy(&f, body.data(), sizeof(f));
  body.remove_prefix(sizeof(f));
  const uint64_t need =
      uint64_t{r.exe_len} + r.cwd_len + f.name_len + uint64_t{f.name2_len};
  if (need > body.size() || f.op < MEZ_BPF_FILE_OPEN ||
      f.op > MEZ_BPF_FILE_RENAME || f.result < kMinResult) {
    return DataLoss("BPF file record: lengths " + std::to_string(need) +
                    " exceed its " + std::to_string(body.size()) +
                    " bytes, or operation " + std::to_string(f.op) +
                    " or result " + std::to_string(f.result) + " unknown");
  }
  e.kind = EventKind::kFile;
  e.path_cut = (r.flags & MEZ_BPF_FLAG_EXE_CUT) != 0;
  std::string_view base = body.substr(0, r.exe_len);
  std::string_view base2 = body.substr(r.exe_len, r.cwd_len);
  std::string_view name = body.substr(r.exe_len + r.cwd_len, f.name_len);
  std::string_view name2 =
      body.substr(r.exe_len + r.cwd_len + f.name_len, f.name2_len);
  if (f.resolved) {
    e.path = JoinComponents(base, e.path_cut);
  } else {
    e.path = JoinName(base, e.path_cut, name);
  }
  e.flags = f.flags;
  e.mode = f.mode;
  e.error = f.result < 0 ? -f.result : 0;
  switch (f.op) {
    case MEZ_BPF_FILE_OPEN:
      e.file_op = "open";
      e.flag_names = OpenFlagNames(f.flags);
      if (f.result >= 0) e.fd = f.result;
      break;
    case MEZ_BPF_FILE_UNLINK:
      e.file_op = (f.flags & 0x200) != 0 ? "rmdir" : "unlink";  // AT_REMOVEDIR
      break;
    default:
      e.file_op = "rename";
      e.flag_names = RenameFlagNames(f.flags);
      e.new_path =
          JoinName(base2, (r.flags & MEZ_BPF_FLAG_CWD_CUT) != 0, name2);
      break;
  }
  return e;
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
  // Modulo 2^64: a stamp no kernel writes (found by fuzzing) must not
  // overflow a signed sum.
  e.time_unix_ns = static_cast<int64_t>(
      r.time_ns + static_cast<uint64_t>(realtime_minus_monotonic_ns));
  e.pid = static_cast<int>(r.pid);
  e.ppid = static_cast<int>(r.ppid);
  if (r.kind == MEZ_BPF_KIND_EXEC) e.pgid = static_cast<int>(r.pgid);
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
  if (r.kind == MEZ_BPF_KIND_FILE) {
    return DecodeFile(
        std::move(e), r,
        std::string_view(
            reinterpret_cast<const char*>(record.data()) + sizeof(r),
            record.size() - sizeof(r)));
  }
  if (r.kind == MEZ_BPF_KIND_CONNECT) {
    mez_bpf_connect c;
    if (record.size() < sizeof(r) + sizeof(c)) {
      return DataLoss("BPF connect record of " + std::to_string(record.size()) +
                      " bytes is too short");
    }
    std::memcpy(&c, record.data() + sizeof(r), sizeof(c));
    if ((c.family != AF_INET && c.family != AF_INET6) ||
        c.op > MEZ_BPF_NET_UDP || c.result < kMinResult) {
      return DataLoss("BPF network record of family " +
                      std::to_string(c.family) + ", operation " +
                      std::to_string(c.op) + ", result " +
                      std::to_string(c.result));
    }
    e.kind = c.op == MEZ_BPF_NET_LISTEN   ? EventKind::kListen
             : c.op == MEZ_BPF_NET_ACCEPT ? EventKind::kAccept
             : c.op == MEZ_BPF_NET_UDP    ? EventKind::kUdpSend
                                          : EventKind::kConnect;
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
      j["pgid"] = e.pgid;
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
    case EventKind::kUntracked:
      // What the process ran when the session ended (/proc), if it could
      // be read: it is no longer followed from here on.
      j["pid"] = e.pid;
      j["ppid"] = e.ppid;
      j["uid"] = e.uid;
      if (!e.path.empty()) j["path"] = e.path;
      if (!e.argv.empty()) j["argv"] = e.argv;
      break;
    case EventKind::kLoss:
      j["lost_exec"] = e.lost_exec;
      j["lost_exit"] = e.lost_exit;
      j["lost_net"] = e.lost_net;
      j["lost_file"] = e.lost_file;
      j["lost_forks"] = e.lost_forks;
      break;
    case EventKind::kFile:
      j["pid"] = e.pid;
      j["ppid"] = e.ppid;
      j["uid"] = e.uid;
      j["euid"] = e.euid;
      j["op"] = e.file_op;
      j["path"] = e.path;
      if (e.path_cut) j["path_cut"] = true;
      if (e.file_op == "rename") j["new_path"] = e.new_path;
      if (e.file_op == "open" || !e.flag_names.empty()) {
        j["flags"] = e.flag_names;
      }
      if (e.file_op == "open" && (e.flags & 0100) != 0) j["mode"] = e.mode;
      if (e.error != 0) {
        j["errno"] = e.error;
        const char* name = strerrorname_np(e.error);
        j["error"] = name != nullptr ? name : std::to_string(e.error);
      } else if (e.file_op == "open") {
        j["fd"] = e.fd;
      }
      if (e.count > 1) {
        j["count"] = e.count;
        j["last_time_unix_ns"] = e.last_time_unix_ns;
      }
      break;
    case EventKind::kConnect:
    case EventKind::kListen:
    case EventKind::kAccept:
    case EventKind::kUdpSend:
      j["pid"] = e.pid;
      j["ppid"] = e.ppid;
      j["uid"] = e.uid;
      j["euid"] = e.euid;
      j["family"] = e.ipv6 ? "ipv6" : "ipv4";
      if (e.kind != EventKind::kListen) {
        j["remote_addr"] = e.remote_addr;
        j["remote_port"] = e.remote_port;
      }
      j["local_addr"] = e.local_addr;
      j["local_port"] = e.local_port;
      if (e.kind == EventKind::kConnect) {
        j["established"] = e.established;
        if (!e.established) {
          j["errno"] = e.error;
          const char* name = strerrorname_np(e.error);
          j["error"] = name != nullptr ? name : std::to_string(e.error);
        }
        j["duration_ns"] = e.duration_ns;
      }
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
