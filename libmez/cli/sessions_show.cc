// msh sessions show: a session's metadata, then its enhanced recording
// events (commands, files, connections) in time order.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "libmez/cli/call.h"
#include "libmez/cli/commands.h"
#include "libmez/cli/output.h"

namespace mez::cli {
namespace {

namespace pb = mezite::v1;
using nlohmann::json;

// The events text mode holds in memory to sort them.
constexpr size_t kMaxShownEventBytes = 512u << 20;

// What a terminal may show of text from the recorded session (argv,
// paths): TerminalSafe.
std::string Printable(const std::string& s) { return TerminalSafe(s); }

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return "";
  if (it->is_string()) return Printable(it->get<std::string>());
  return Printable(it->dump());
}

// An integer field, 0 when absent or of another type (the lines are the
// node's: json::value would throw on a string).
int64_t Int(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return 0;
  return it->get<int64_t>();
}

// "12:03.250": minutes and seconds from the recording's start.
std::string Offset(int64_t us) {
  if (us < 0) us = 0;
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%lld:%02lld.%03lld",
                static_cast<long long>(us / 60'000'000),
                static_cast<long long>(us / 1'000'000 % 60),
                static_cast<long long>(us / 1000 % 1000));
  return buf;
}

std::string Endpoint(const json& j, const char* addr, const char* port) {
  std::string a = Str(j, addr);
  if (a.find(':') != std::string::npos) a = "[" + a + "]";
  return a + ":" + Str(j, port);
}

// An event's argv, its arguments separated by blanks.
std::string Argv(const json& j) {
  std::string argv;
  if (j.contains("argv") && j["argv"].is_array()) {
    for (const auto& a : j["argv"]) {
      if (!argv.empty()) argv += ' ';
      argv += Printable(a.is_string() ? a.get<std::string>() : a.dump());
    }
  }
  return argv;
}

std::string Describe(const json& j) {
  std::string type = Str(j, "type");
  std::string pid = "pid " + Str(j, "pid");
  if (type == "exec") {
    std::string argv = Argv(j);
    std::string d = Str(j, "path") + "  " + argv;
    if (Int(j, "argv_cut_bytes") != 0) {
      d += "  [argv cut: " + Str(j, "argv_cut_bytes") + " bytes missing]";
    }
    return d + "  (" + pid + ", uid " + Str(j, "uid") + ", cwd " +
           Str(j, "cwd") + ")";
  }
  if (type == "exit") {
    std::string how = j.contains("signal") ? "signal " + Str(j, "signal")
                                           : "exit " + Str(j, "exit_code");
    return how + "  (" + pid + ")";
  }
  if (type == "file") {
    std::string d = Str(j, "op") + " " + Str(j, "path");
    if (j.contains("new_path")) d += " -> " + Str(j, "new_path");
    if (j.contains("flags") && j["flags"].is_array()) {
      std::string f;
      for (const auto& x : j["flags"]) {
        if (!f.empty()) f += '|';
        f += Printable(x.is_string() ? x.get<std::string>() : x.dump());
      }
      d += "  " + f;
    }
    if (j.contains("error")) d += "  " + Str(j, "error");
    return d + "  (" + pid + ")";
  }
  if (type == "connect") {
    std::string d = Endpoint(j, "local_addr", "local_port") + " -> " +
                    Endpoint(j, "remote_addr", "remote_port");
    auto est = j.find("established");
    bool established = est != j.end() && est->is_boolean() && est->get<bool>();
    d += established ? "  established" : "  failed " + Str(j, "error");
    return d + "  (" + pid + ")";
  }
  if (type == "listen") {
    return Endpoint(j, "local_addr", "local_port") + "  (" + pid + ")";
  }
  if (type == "accept") {
    return Endpoint(j, "remote_addr", "remote_port") + " -> " +
           Endpoint(j, "local_addr", "local_port") + "  (" + pid + ")";
  }
  if (type == "udp_send") {
    return "-> " + Endpoint(j, "remote_addr", "remote_port") + "  (" + pid +
           ")";
  }
  if (type == "loss") {
    return "LOST exec " + Str(j, "lost_exec") + ", exit " +
           Str(j, "lost_exit") + ", file " + Str(j, "lost_file") +
           ", network " + Str(j, "lost_net") + ", forks " +
           Str(j, "lost_forks");
  }
  if (type == "untracked") {
    std::string argv = Argv(j);
    return "LEFT RUNNING, no longer followed: " + Str(j, "path") + "  " + argv +
           "  (" + pid + ")";
  }
  return "";
}

}  // namespace

Status SessionsShow(const SessionsShowOptions& o) {
  if (o.format != "text" && o.format != "json") {
    return InvalidArgument("--format must be text or json");
  }
  MEZ_ASSIGN_OR_RETURN(auto client, Connect(o.identity));
  pb::SessionInfo s;
  pb::GetSessionRequest req;
  req.set_id(o.id);
  MEZ_RETURN_IF_ERROR(client->GetSession(req, &s));
  auto events = client->ReadEvents(s.id());
  if (!events.ok() && events.status().code() != Code::kNotFound) {
    return events.status();
  }
  std::string body;
  if (events.ok()) {
    char buf[1 << 16];
    for (;;) {
      auto r = (*events)->Read(buf, sizeof(buf));
      if (!r.ok() && r.status().code() == Code::kDataLoss &&
          s.status() == "recording") {
        // An encrypted file still being written has no final record yet:
        // what came before is sound.
        std::fprintf(stderr,
                     "msh: session %s is still recording; these are its "
                     "events so far\n",
                     s.id().c_str());
        break;
      }
      MEZ_RETURN_IF_ERROR(r.status());
      size_t n = *r;
      if (n == 0) break;
      if (o.format == "json") {
        // Passed through as it comes: no bound needed.
        std::fwrite(buf, 1, n, stdout);
        continue;
      }
      if (body.size() + n > kMaxShownEventBytes) {
        return Status(
            Code::kOutOfRange,
            "session " + s.id() + " has more than " +
                std::to_string(kMaxShownEventBytes >> 20) +
                " MiB of events, too many to sort here; use --format=json");
      }
      body.append(buf, n);
    }
  }
  if (o.format == "json") return Status::Ok();
  std::printf("Session:  %s\nUser:     %s\nNode:     %s\nLogin:    %s\n",
              s.id().c_str(), Printable(s.user()).c_str(),
              Printable(s.node()).c_str(), Printable(s.login()).c_str());
  std::printf("Kind:     %s\n", s.kind().c_str());
  if (!s.command().empty()) {
    std::printf("Command:  %s\n", Printable(s.command()).c_str());
  }
  std::printf("Started:  %s\nEnded:    %s\nStatus:   %s\n",
              IsoUtc(s.started_us()).c_str(),
              s.ended_us() ? IsoUtc(s.ended_us()).c_str() : "-",
              s.status().c_str());
  struct Row {
    int64_t offset;
    uint64_t seq;
    size_t order;
    json j;
  };
  std::vector<Row> rows;
  size_t start = 0;
  while (start < body.size()) {
    size_t nl = body.find('\n', start);
    if (nl == std::string::npos) nl = body.size();
    json j = json::parse(body.substr(start, nl - start), nullptr, false);
    start = nl + 1;
    if (!j.is_object())
      return DataLoss("the server sent an event that is not JSON");
    Row r{Int(j, "offset_us"), 0, rows.size(), j};
    if (j.contains("seq") && j["seq"].is_number_unsigned()) {
      r.seq = j["seq"].get<uint64_t>();
    }
    rows.push_back(std::move(r));
  }
  if (!events.ok()) {
    std::printf("\nNo enhanced recording events for this session.\n");
    return Status::Ok();
  }
  // Time order; events of one moment in the kernel's order (seq).
  std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    if (a.offset != b.offset) return a.offset < b.offset;
    return a.seq < b.seq;
  });
  std::printf("\n%zu events:\n", rows.size());
  for (const Row& r : rows) {
    std::printf("%10s  %-8s  %s\n", Offset(r.offset).c_str(),
                Str(r.j, "type").c_str(), Describe(r.j).c_str());
  }
  return Status::Ok();
}

}  // namespace mez::cli
