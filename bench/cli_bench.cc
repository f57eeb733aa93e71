// cli_bench: msh and mezctl against a large catalog, and local playback.
// Prints figures; asserts nothing (exits non-zero only when a step fails).
//
//   build/bench/cli_bench [--sessions=1000000] [--audit=10000000] [--runs=50]
//       [--play-mib=1024] [--batch=250000] [--ids=v7|v4] [--user=user042]
//       [--db=sqlite,postgres]
//
// --db: the catalogs to fill and query, one after the other with the same
// history: "sqlite" (mezrecd's default, <data_dir>/catalog.db) and
// "postgres" (MEZITE_DB_URL; a throwaway server from
// scripts/start-postgres with fsync off, or MEZ_TEST_POSTGRES_URL's, each
// run in a fresh schema that is dropped afterwards; ANALYZE runs after the
// load, as autovacuum would on a live cluster).
//
// Goals (issue): `msh sessions ls --user=X --limit=50` and `mezctl audit ls
// --type=session.end --last=24h --limit=100` under 50 ms, p50 and p99 of the
// wall time of the whole process (spawn to exit), on a catalog of 1M
// sessions and 10M audit events; `msh play --format=text` of a 1 GiB plain
// .cast at 300 MB/s or more (MB = 10^6 bytes).
//
// The catalog is filled through BulkInsertSessions/BulkInsertAudit before
// mezrecd starts on the same data dir: 200 users (a few much busier than
// the rest), 500 nodes, times over the last 30 days with a working-hours
// peak, every session with its session.start and session.end events and
// the rest of the audit log a mix of denials, recording accesses, rejected
// recordings and admin changes. Rows go in time order, as a live cluster
// appends them, and the next batch is built on the other core while one is
// written. Session (and connection) ids are time-ordered UUIDs (version 7)
// by default, so each index grows at a few hot spots that stay in SQLite's
// page cache; --ids=v4 makes them random, which scatters the inserts into
// the id indexes over the whole file (much slower to load; the benchmarked
// queries do not use those indexes).
//
// Each command runs once unmeasured, then --runs times. The identity is
// the bootstrap admin's: an admin listing --user=X runs the same query as
// X listing their own sessions. "msh --help" shows what a process costs
// before any RPC.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "libmez/catalog/catalog.h"
#include "libmez/record/asciicast_writer.h"
#include "libmez/record/sink.h"
#include "tests/mezrecd_harness.h"
#include "tests/postgres_server.h"

#ifndef MEZ_BUILD_TYPE
#define MEZ_BUILD_TYPE "unknown"
#endif

extern char** environ;

namespace mez::bench {
namespace {

using catalog::AuditEvent;
using catalog::Session;

constexpr int kUsers = 200;
constexpr int kNodes = 500;
constexpr int64_t kSecondUs = 1'000'000;
constexpr int64_t kDayUs = 86'400 * kSecondUs;
constexpr int64_t kWindowUs = 30 * kDayUs;
constexpr size_t kPlayChunk = 4096;
constexpr double kGoalMs = 50;
constexpr double kGoalMBps = 300;
constexpr double kMiB = 1 << 20;
constexpr double kGiB = 1 << 30;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since)
      .count();
}

struct Options {
  int64_t sessions = 1'000'000;
  int64_t audit = 10'000'000;
  int runs = 50;
  int64_t play_mib = 1024;
  int64_t batch = 250'000;
  bool v7_ids = true;
  std::string user = "user042";
  std::vector<std::string> dbs = {"sqlite"};
};

bool ParseCount(std::string_view s, int64_t* out, int64_t min) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && *out >= min;
}

bool ParseFlags(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    size_t eq = arg.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view name = arg.substr(0, eq), value = arg.substr(eq + 1);
    int64_t n = 0;
    if (name == "--sessions") {
      if (!ParseCount(value, &o->sessions, 1) || o->sessions > (1 << 30)) {
        return false;
      }
    } else if (name == "--audit") {
      if (!ParseCount(value, &o->audit, 0)) return false;
    } else if (name == "--runs") {
      if (!ParseCount(value, &n, 1) || n > 100'000) return false;
      o->runs = static_cast<int>(n);
    } else if (name == "--play-mib") {
      if (!ParseCount(value, &o->play_mib, 0)) return false;
    } else if (name == "--batch") {
      if (!ParseCount(value, &o->batch, 1)) return false;
    } else if (name == "--ids") {
      if (value != "v7" && value != "v4") return false;
      o->v7_ids = value == "v7";
    } else if (name == "--user") {
      o->user = std::string(value);
    } else if (name == "--db") {
      o->dbs.clear();
      while (!value.empty()) {
        size_t comma = std::min(value.find(','), value.size());
        std::string db(value.substr(0, comma));
        if (db != "sqlite" && db != "postgres") return false;
        o->dbs.push_back(db);
        value.remove_prefix(std::min(comma + 1, value.size()));
      }
      if (o->dbs.empty()) return false;
    } else {
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Synthetic cluster history.

// A UUID as two halves. Version 7 puts the Unix milliseconds first, so ids
// sort by creation time; version 4 is all random.
struct Uuid {
  uint64_t hi = 0;
  uint64_t lo = 0;
};

Uuid MakeUuid(std::mt19937_64& rng, int64_t unix_us, bool v7) {
  Uuid u{rng(), rng()};
  if (v7) {
    u.hi = (static_cast<uint64_t>(unix_us / 1000) << 16) | (u.hi & 0x0fff);
  }
  u.hi = (u.hi & ~uint64_t{0xf000}) | (v7 ? 0x7000 : 0x4000);
  u.lo = (u.lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  return u;
}

std::string UuidText(const Uuid& u) {
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx",
                static_cast<unsigned>(u.hi >> 32),
                static_cast<unsigned>((u.hi >> 16) & 0xffff),
                static_cast<unsigned>(u.hi & 0xffff),
                static_cast<unsigned>(u.lo >> 48),
                static_cast<unsigned long long>(u.lo & 0xffffffffffffULL));
  return buf;
}

std::string UserName(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "user%03d", i);
  return buf;
}

std::string NodeName(int i) {
  static const char* const kRoles[] = {"web", "api", "db", "cache", "batch"};
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%s-%03d", kRoles[i % 5], i / 5);
  return buf;
}

// User 0 is the busiest; user k has a share of about 1 / (2 sqrt(200 k)).
int SkewedUser(std::mt19937_64& rng) {
  double u = std::uniform_real_distribution<double>(0, 1)(rng);
  return std::min(kUsers - 1, static_cast<int>(kUsers * u * u));
}

int SkewedNode(std::mt19937_64& rng) {
  double u = std::uniform_real_distribution<double>(0, 1)(rng);
  return std::min(kNodes - 1, static_cast<int>(kNodes * std::pow(u, 1.5)));
}

// A time in the window, four times as likely in working hours (08-19 UTC
// on weekdays) as outside them.
int64_t ActivityTime(std::mt19937_64& rng, int64_t begin_us, int64_t end_us) {
  std::uniform_int_distribution<int64_t> when(begin_us, end_us - 1);
  std::uniform_real_distribution<double> accept(0, 1);
  for (;;) {
    int64_t t = when(rng);
    int64_t day = t / kDayUs;
    int hour = static_cast<int>(t % kDayUs / (3600 * kSecondUs));
    bool weekday = (day + 4) % 7 < 5;  // 1970-01-01 was a Thursday.
    bool busy = weekday && hour >= 8 && hour < 19;
    if (busy || accept(rng) < 0.25) return t;
  }
}

enum Kind : uint8_t { kShell, kExec, kTcpip };
const char* const kKindNames[] = {"shell", "exec", "tcpip"};
const char* const kLogins[] = {"root", "ubuntu", "deploy", "postgres", "admin"};
const char* const kExecCommands[] = {
    "uptime", "systemctl status nginx",         "tail -n 200 /var/log/syslog",
    "df -h",  "git -C /srv/app pull --ff-only", "docker ps"};
const int kTcpipPorts[] = {5432, 6379, 443, 9200};

// A session in compact form; rows and audit events are made from it in
// batches, so the whole history never sits in memory as strings.
struct PlannedSession {
  int64_t start_us;
  int64_t end_us;
  Uuid id;
  Uuid connection;
  uint64_t bytes;
  uint16_t user;
  uint16_t node;
  uint8_t kind;
  uint8_t login;
  uint8_t detail;  // exec command or tcpip port
  bool complete;
  bool encrypted;
};

std::string StorageKey(const PlannedSession& p) {
  std::string user = UserName(p.user);
  if (p.kind == kTcpip) {
    return user + "/tcpip/" + UuidText(p.connection) + "_10.0.3." +
           std::to_string(p.node % 250 + 1) + "_" +
           std::to_string(kTcpipPorts[p.detail]) + ".pcap";
  }
  return user + "/" + kKindNames[p.kind] + "/" + UuidText(p.id) + ".cast";
}

// Sorted by start time.
std::vector<PlannedSession> PlanSessions(int64_t n, int64_t now_us, bool v7) {
  std::mt19937_64 rng(42);
  std::vector<int64_t> starts(static_cast<size_t>(n));
  for (auto& t : starts) {
    t = ActivityTime(rng, now_us - kWindowUs, now_us - 60 * kSecondUs);
  }
  std::sort(starts.begin(), starts.end());
  std::uniform_real_distribution<double> unit(0, 1);
  std::normal_distribution<double> normal(0, 1);
  auto lognormal = [&](double median, double sigma) {
    return median * std::exp(sigma * normal(rng));
  };
  std::vector<PlannedSession> plan(starts.size());
  for (size_t i = 0; i < plan.size(); ++i) {
    PlannedSession& p = plan[i];
    p.start_us = starts[i];
    double kind = unit(rng);
    p.kind = kind < 0.70 ? kShell : kind < 0.95 ? kExec : kTcpip;
    double seconds = p.kind == kShell  ? lognormal(600, 1.2)
                     : p.kind == kExec ? lognormal(3, 1.0)
                                       : lognormal(60, 1.5);
    seconds = std::min(seconds, 12.0 * 3600);
    p.end_us = std::min(p.start_us + static_cast<int64_t>(seconds * kSecondUs),
                        now_us - kSecondUs);
    double bytes = p.kind == kShell  ? seconds * lognormal(200, 1.5)
                   : p.kind == kExec ? lognormal(4096, 1.5)
                                     : lognormal(1 << 20, 2.0);
    p.bytes = static_cast<uint64_t>(std::min(bytes, 1e12));
    p.id = MakeUuid(rng, p.start_us, v7);
    p.connection = MakeUuid(rng, p.start_us - 2 * kSecondUs, v7);
    p.user = static_cast<uint16_t>(SkewedUser(rng));
    p.node = static_cast<uint16_t>(SkewedNode(rng));
    p.login = static_cast<uint8_t>(rng() % std::size(kLogins));
    p.detail =
        static_cast<uint8_t>(p.kind == kExec ? rng() % std::size(kExecCommands)
                                             : rng() % std::size(kTcpipPorts));
    p.complete = unit(rng) < 0.995;
    p.encrypted = unit(rng) < 0.2;
  }
  return plan;
}

std::vector<Session> MakeSessions(const std::vector<PlannedSession>& plan,
                                  size_t begin, size_t end) {
  std::vector<Session> out;
  out.reserve(end - begin);
  for (size_t i = begin; i < end; ++i) {
    const PlannedSession& p = plan[i];
    Session s;
    s.id = UuidText(p.id);
    s.connection_id = UuidText(p.connection);
    s.user = UserName(p.user);
    s.node = NodeName(p.node);
    s.login = kLogins[p.login];
    s.kind = kKindNames[p.kind];
    if (p.kind == kExec) s.command = kExecCommands[p.detail];
    s.started_us = p.start_us;
    s.ended_us = p.end_us;
    s.bytes = p.bytes;
    s.status = p.complete ? catalog::SessionStatus::kComplete
                          : catalog::SessionStatus::kIncomplete;
    s.storage_key = StorageKey(p);
    s.format = p.kind == kTcpip ? "pcap" : "asciicast-v2";
    s.encrypted = p.kind != kTcpip && p.encrypted;
    out.push_back(std::move(s));
  }
  return out;
}

enum AuditType : uint8_t {
  kSessionStart,
  kSessionEnd,
  kRecordingAccess,
  kAccessDenied,
  kAuthDenied,
  kRecordingRejected,
  kConfigSet,
  kUserCreate,
  kNodeCreate,
};
const char* const kAuditTypeNames[] = {
    "session.start", "session.end", "session.recording.access",
    "access.denied", "auth.denied", "recording.rejected",
    "config.set",    "user.create", "node.create"};

// One audit event in compact form. `ref` is the session index for the
// session types, otherwise a random number the details are made from.
struct PlannedAudit {
  int64_t time_us;
  uint32_t ref;
  uint16_t user;
  uint8_t type;
};

// Every session's start and end (as far as `total` allows), the rest other
// types; sorted by time.
std::vector<PlannedAudit> PlanAudit(const std::vector<PlannedSession>& plan,
                                    int64_t total, int64_t now_us) {
  std::mt19937_64 rng(43);
  std::vector<PlannedAudit> out;
  out.reserve(static_cast<size_t>(total));
  int64_t n = static_cast<int64_t>(plan.size());
  int64_t with_events = std::min(n, total / 2);
  for (int64_t k = 0; k < with_events; ++k) {
    auto i = static_cast<uint32_t>(k * n / with_events);
    out.push_back({plan[i].start_us, i, plan[i].user, kSessionStart});
    out.push_back({plan[i].end_us, i, plan[i].user, kSessionEnd});
  }
  // Per mille of the other events.
  static const std::pair<AuditType, int> kMix[] = {
      {kAccessDenied, 350},      {kAuthDenied, 250}, {kRecordingAccess, 200},
      {kRecordingRejected, 100}, {kConfigSet, 50},   {kUserCreate, 25},
      {kNodeCreate, 25}};
  std::uniform_real_distribution<double> unit(0, 1);
  while (static_cast<int64_t>(out.size()) < total) {
    PlannedAudit a;
    a.time_us = ActivityTime(rng, now_us - kWindowUs, now_us);
    a.ref = static_cast<uint32_t>(rng());
    a.user = static_cast<uint16_t>(SkewedUser(rng));
    int pick = static_cast<int>(rng() % 1000);
    a.type = kMix[0].first;
    for (const auto& [type, share] : kMix) {
      if (pick < share) {
        a.type = type;
        break;
      }
      pick -= share;
    }
    if (a.type == kRecordingAccess) {
      // Mostly recent sessions are replayed.
      auto started = std::partition_point(
          plan.begin(), plan.end(),
          [&](const PlannedSession& p) { return p.start_us < a.time_us; });
      auto before = static_cast<size_t>(started - plan.begin());
      if (before == 0) {
        a.type = kAccessDenied;
      } else {
        double u = unit(rng);
        size_t back = static_cast<size_t>(before * u * u * u * u);
        a.ref = static_cast<uint32_t>(before - 1 - std::min(back, before - 1));
      }
    }
    out.push_back(a);
  }
  std::sort(
      out.begin(), out.end(), [](const PlannedAudit& a, const PlannedAudit& b) {
        return a.time_us != b.time_us ? a.time_us < b.time_us : a.type < b.type;
      });
  return out;
}

std::vector<AuditEvent> MakeAudit(const std::vector<PlannedSession>& plan,
                                  const std::vector<PlannedAudit>& events,
                                  size_t begin, size_t end, bool v7) {
  static const char* const kMethods[] = {"GetSession",    "ListSessions",
                                         "ReadRecording", "ListAudit",
                                         "SetConfig",     "CreateUser"};
  std::vector<AuditEvent> out;
  out.reserve(end - begin);
  std::mt19937_64 rng(begin);
  char buf[512];
  for (size_t i = begin; i < end; ++i) {
    const PlannedAudit& a = events[i];
    AuditEvent e;
    e.time_us = a.time_us;
    e.type = kAuditTypeNames[a.type];
    switch (a.type) {
      case kSessionStart:
      case kSessionEnd: {
        const PlannedSession& p = plan[a.ref];
        e.user = UserName(p.user);
        e.session_id = UuidText(p.id);
        e.node = NodeName(p.node);
        std::string key = StorageKey(p);
        if (a.type == kSessionStart) {
          std::snprintf(buf, sizeof(buf),
                        "{\"kind\":\"%s\",\"login\":\"%s\",\"storage_key\":"
                        "\"%s\",\"format\":\"%s\",\"encrypted\":%s,"
                        "\"caller\":\"%s\"%s%s%s}",
                        kKindNames[p.kind], kLogins[p.login], key.c_str(),
                        p.kind == kTcpip ? "pcap" : "asciicast-v2",
                        p.encrypted && p.kind != kTcpip ? "true" : "false",
                        e.node.c_str(),
                        p.kind == kExec ? ",\"command\":\"" : "",
                        p.kind == kExec ? kExecCommands[p.detail] : "",
                        p.kind == kExec ? "\"" : "");
        } else {
          std::snprintf(
              buf, sizeof(buf),
              "{\"duration_us\":%lld,\"bytes\":%llu,\"status\":\"%s\","
              "\"kind\":\"%s\",\"storage_key\":\"%s\"}",
              static_cast<long long>(p.end_us - p.start_us),
              static_cast<unsigned long long>(p.bytes),
              p.complete ? "complete" : "incomplete", kKindNames[p.kind],
              key.c_str());
        }
        break;
      }
      case kRecordingAccess: {
        const PlannedSession& p = plan[a.ref];
        e.user = UserName(a.user);
        e.session_id = UuidText(p.id);
        std::snprintf(buf, sizeof(buf),
                      "{\"storage_key\":\"%s\",\"owner\":\"%s\"}",
                      StorageKey(p).c_str(), UserName(p.user).c_str());
        break;
      }
      case kAccessDenied:
        e.user = UserName(a.user);
        std::snprintf(buf, sizeof(buf),
                      "{\"method\":\"%s\",\"code\":\"PERMISSION_DENIED\","
                      "\"reason\":\"only admins may call %s\","
                      "\"role\":\"user\"}",
                      kMethods[a.ref % std::size(kMethods)],
                      kMethods[a.ref % std::size(kMethods)]);
        break;
      case kAuthDenied:
        std::snprintf(buf, sizeof(buf),
                      "{\"method\":\"%s\",\"code\":\"UNAUTHENTICATED\","
                      "\"reason\":\"token expired %u s ago\"}",
                      kMethods[a.ref % std::size(kMethods)], a.ref % 86'400);
        break;
      case kRecordingRejected:
        e.node = NodeName(static_cast<int>(a.ref % kNodes));
        e.session_id = UuidText(MakeUuid(rng, a.time_us, v7));
        std::snprintf(buf, sizeof(buf),
                      "{\"caller\":\"%s\",\"caller_role\":\"node\","
                      "\"code\":\"UNAUTHENTICATED\",\"reason\":\"user_token: "
                      "token expired\"}",
                      e.node.c_str());
        break;
      case kConfigSet:
        e.user = "admin";
        std::snprintf(buf, sizeof(buf),
                      "{\"key\":\"session_recording\",\"value\":\"%s\","
                      "\"previous\":\"node-sync\"}",
                      a.ref % 2 == 0 ? "node" : "off");
        break;
      case kUserCreate:
        e.user = "admin";
        std::snprintf(buf, sizeof(buf),
                      "{\"name\":\"%s\",\"role\":\"user\","
                      "\"logins\":[\"root\",\"ubuntu\"]}",
                      UserName(static_cast<int>(a.ref % kUsers)).c_str());
        break;
      default:
        e.user = "admin";
        std::snprintf(buf, sizeof(buf),
                      "{\"name\":\"%s\",\"addr\":\"10.0.%u.%u:3022\","
                      "\"openssh\":false}",
                      NodeName(static_cast<int>(a.ref % kNodes)).c_str(),
                      a.ref % 250, a.ref / 250 % 250 + 1);
    }
    e.details = buf;
    out.push_back(std::move(e));
  }
  return out;
}

// Inserts `total` rows made by `make(begin, end)` in batches of `batch`,
// making the next batch on another thread while one is written. Prints
// progress to stderr.
template <typename Make, typename Insert>
Status LoadInBatches(const char* what, size_t total, size_t batch, Make make,
                     Insert insert) {
  auto start = std::chrono::steady_clock::now();
  auto next =
      std::async(std::launch::async, make, size_t{0}, std::min(batch, total));
  for (size_t at = 0; at < total; at += batch) {
    auto rows = next.get();
    size_t after = std::min(at + batch, total);
    if (after < total) {
      next = std::async(std::launch::async, make, after,
                        std::min(after + batch, total));
    }
    MEZ_RETURN_IF_ERROR(insert(rows));
    std::fprintf(stderr, "cli_bench: %s %zu/%zu (%.1f s)\n", what, after, total,
                 Seconds(start));
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Processes.

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed.
  double ms = 0;
  uint64_t out_bytes = 0;
  std::string out;  // When kept.
};

enum class Stdout { kKeep, kCount, kDevNull };

// Spawns `argv` (stdin /dev/null, stderr to `err_path`) and times it from
// spawn to reap.
RunResult RunTimed(const std::vector<std::string>& argv,
                   const std::vector<std::string>& env, Stdout mode,
                   const std::string& err_path) {
  RunResult r;
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);
  int fds[2] = {-1, -1};
  if (mode != Stdout::kDevNull && pipe2(fds, O_CLOEXEC) != 0) return r;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  if (mode == Stdout::kDevNull) {
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  } else {
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  }
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  auto start = std::chrono::steady_clock::now();
  pid_t pid = -1;
  int rc =
      posix_spawn(&pid, cargv[0], &actions, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  if (fds[1] >= 0) close(fds[1]);
  if (rc != 0) {
    if (fds[0] >= 0) close(fds[0]);
    return r;
  }
  if (fds[0] >= 0) {
    std::vector<char> buf(1 << 20);
    ssize_t n;
    while ((n = read(fds[0], buf.data(), buf.size())) != 0) {
      if (n < 0) {
        if (errno == EINTR) continue;
        break;
      }
      r.out_bytes += static_cast<uint64_t>(n);
      if (mode == Stdout::kKeep) r.out.append(buf.data(), n);
    }
    close(fds[0]);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.ms = Seconds(start) * 1000;
  r.exit_code = WIFEXITED(status)     ? WEXITSTATUS(status)
                : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                      : -1;
  return r;
}

std::string ReadAll(const std::string& path) {
  std::string out;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  std::fclose(f);
  return out;
}

// The environment of the CLIs: ours, with HOME in the bench's directory and
// no identity or key from the caller's shell.
std::vector<std::string> CliEnv(const std::string& home) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view v = *e;
    if (v.rfind("HOME=", 0) == 0 || v.rfind("MEZ_IDENTITY=", 0) == 0 ||
        v.rfind("MEZITE_RECORDING_ENC_KEY=", 0) == 0) {
      continue;
    }
    env.emplace_back(v);
  }
  env.push_back("HOME=" + home);
  return env;
}

// Nearest rank.
double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(p / 100 * v.size()));
  return v[std::max<size_t>(rank, 1) - 1];
}

size_t CountLines(const std::string& s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

// ---------------------------------------------------------------------------
// Playback input.

// Terminal output of a busy session: prompts, coloured `ls -l`, build
// progress, log tails, UTF-8 prose, top-style redraws with cursor moves.
std::string TerminalText(size_t total) {
  std::mt19937 rng(11);
  auto pick = [&rng](unsigned n) { return static_cast<unsigned>(rng() % n); };
  static const char* const kWords[] = {
      "Grüße", "naïve",  "déjà",  "vu",    "Ελληνικά", "ру́сский",
      "中文",  "한국어", "✓",     "⚠",     "→",        "\xF0\x9F\x94\xA5",
      "build", "deploy", "ready", "error", "commit",   "résumé"};
  std::string text;
  text.reserve(total + 1024);
  char buf[320];
  while (text.size() < total) {
    switch (pick(7)) {
      case 0:
        std::snprintf(buf, sizeof(buf),
                      "\x1b]0;deploy@api-%03u: /srv/app\x07\x1b[1;32mdeploy@"
                      "api-%03u\x1b[0m:\x1b[1;34m/srv/app\x1b[0m$ ",
                      pick(100), pick(100));
        text += buf;
        text += pick(2) ? "make -j2 all\r\n" : "tail -f log/app.log\r\n";
        break;
      case 1:
        std::snprintf(buf, sizeof(buf),
                      "-rw-r--r-- 1 deploy deploy %7u Mar %2u %02u:%02u "
                      "\x1b[0;3%um%s_%u.%s\x1b[0m\r\n",
                      pick(1 << 20), 1 + pick(28), pick(24), pick(60),
                      1 + pick(6), pick(2) ? "report" : "data", pick(1000),
                      pick(2) ? "csv" : "tar.gz");
        text += buf;
        break;
      case 2:
        std::snprintf(buf, sizeof(buf),
                      "[%3u%%] \x1b[32mBuilding CXX object "
                      "src/CMakeFiles/core.dir/module_%u.cc.o\x1b[0m\r\n",
                      pick(101), pick(400));
        text += buf;
        break;
      case 3:
        std::snprintf(buf, sizeof(buf),
                      "2024-03-%02u %02u:%02u:%02u.%03u \x1b[%sm%s\x1b[0m "
                      "[worker-%u] GET /v2/orders/%u 200 %u ms\r\n",
                      1 + pick(28), pick(24), pick(60), pick(60), pick(1000),
                      pick(5) ? "36" : "1;31", pick(5) ? "INFO " : "ERROR",
                      pick(16), pick(1000000), pick(2000));
        text += buf;
        break;
      case 4:
        for (int i = 0; i < 10; ++i) {
          text += kWords[pick(std::size(kWords))];
          text += ' ';
        }
        text += "\r\n";
        break;
      case 5:
        for (unsigned row = 1; row <= 8; ++row) {
          std::snprintf(buf, sizeof(buf),
                        "\x1b[%u;1H\x1b[K%6u deploy    20   0 %7u %6u S "
                        "%4.1f  %4.1f   %u:%02u.%02u python3",
                        row + 6, 1000 + pick(60000), pick(4000000),
                        pick(500000), pick(1000) / 10.0, pick(300) / 10.0,
                        pick(100), pick(60), pick(100));
          text += buf;
        }
        text += "\x1b[24;1H";
        break;
      default:
        for (int p = 0; p <= 100; p += 10) {
          std::snprintf(buf, sizeof(buf), "\r\x1b[2K%3d%% |%-30s| %u.%u MB/s",
                        p, std::string(p * 3 / 10, '=').c_str(), pick(100),
                        pick(10));
          text += buf;
        }
        text += "\r\n";
    }
  }
  return text;
}

struct CastFile {
  uint64_t file_bytes = 0;
  uint64_t output_bytes = 0;  // The "o" data written, before JSON escaping.
  uint64_t events = 0;
};

// A plain .cast of at least `target` bytes: 4 KiB reads of terminal output
// (cut without regard to lines or UTF-8), 1-30 ms apart.
Result<CastFile> WriteCast(const std::string& path, uint64_t target) {
  std::string text = TerminalText(8 << 20);
  MEZ_ASSIGN_OR_RETURN(auto sink, record::FileSink::Create(path, 0600));
  record::AsciicastHeader header;
  header.width = 120;
  header.height = 32;
  header.timestamp = 1710000000;
  header.term = "xterm-256color";
  MEZ_ASSIGN_OR_RETURN(
      auto writer, record::AsciicastWriter::Create(std::move(sink), header));
  std::mt19937 rng(5);
  CastFile out;
  int64_t t = 0;
  size_t at = 0;
  while (writer->sink()->bytes_written() < target) {
    if (at + kPlayChunk > text.size()) at = 0;
    std::string_view chunk(text.data() + at, kPlayChunk);
    at += kPlayChunk;
    t += 1000 + static_cast<int64_t>(rng() % 29000);
    MEZ_RETURN_IF_ERROR(writer->Write(t, Direction::kOut, chunk));
    out.output_bytes += chunk.size();
  }
  MEZ_RETURN_IF_ERROR(writer->Exit(t + 1000, 0));
  out.events = writer->events();
  MEZ_RETURN_IF_ERROR(writer->Close());
  out.file_bytes = static_cast<uint64_t>(std::filesystem::file_size(path));
  return out;
}

// ---------------------------------------------------------------------------

// Removes the bench's directory on every exit path.
struct TempTree {
  std::string path;
  ~TempTree() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

int Fail(const std::string& what) {
  std::fprintf(stderr, "cli_bench: %s\n", what.c_str());
  return 1;
}

uint64_t TreeBytes(const std::string& dir, const std::string& prefix) {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().filename().string().rfind(prefix, 0) == 0) {
      total += e.file_size(ec);
    }
  }
  return total;
}

// The synthetic history, planned once and loaded into every catalog.
struct History {
  int64_t now_us = 0;
  std::vector<PlannedSession> plan;
  std::vector<PlannedAudit> audit_plan;
  double plan_s = 0;
};

// Fills one catalog ("sqlite": <data_dir>/catalog.db; "postgres": a fresh
// schema on `pg`), starts mezrecd on it and times the queries. Returns the
// process exit code (0 when every step worked).
int BenchCatalog(const Options& opt, const std::string& db,
                 testing::PostgresServer* pg, const History& h,
                 const std::string& data_dir, const std::string& home,
                 const std::string& tmp_path) {
  std::string db_url;  // Empty for SQLite.
  std::map<std::string, std::string> env;
  if (db == "postgres") {
    auto url = pg->CreateSchema();
    if (!url.ok()) return Fail(url.status().ToString());
    db_url = *url;
    env["MEZITE_DB_URL"] = db_url;
  }
  // The schema goes on every exit path, with its gigabytes.
  struct DropSchema {
    testing::PostgresServer* pg;
    std::string url;
    ~DropSchema() {
      if (!url.empty()) (void)pg->DropSchema(url);
    }
  } drop{pg, db_url};

  auto phase = std::chrono::steady_clock::now();
  double sessions_s = 0, audit_s = 0, close_s = 0, analyze_s = 0;
  {
    auto cat = db_url.empty()
                   ? catalog::OpenSqliteCatalog(data_dir + "/catalog.db")
                   : catalog::OpenPostgresCatalog(db_url);
    if (!cat.ok()) return Fail(cat.status().ToString());
    auto batch = static_cast<size_t>(opt.batch);
    phase = std::chrono::steady_clock::now();
    Status s = LoadInBatches(
        "sessions", h.plan.size(), batch,
        [&](size_t b, size_t e) { return MakeSessions(h.plan, b, e); },
        [&](const std::vector<Session>& rows) {
          return (*cat)->BulkInsertSessions(rows);
        });
    if (!s.ok()) return Fail(s.ToString());
    sessions_s = Seconds(phase);
    phase = std::chrono::steady_clock::now();
    s = LoadInBatches(
        "audit events", h.audit_plan.size(), batch,
        [&](size_t b, size_t e) {
          return MakeAudit(h.plan, h.audit_plan, b, e, opt.v7_ids);
        },
        [&](const std::vector<AuditEvent>& rows) {
          return (*cat)->BulkInsertAudit(rows);
        });
    if (!s.ok()) return Fail(s.ToString());
    audit_s = Seconds(phase);
    auto ns = (*cat)->CountSessions();
    auto na = (*cat)->CountAudit();
    if (!ns.ok() || !na.ok()) return Fail("count failed");
    if (*ns != h.plan.size() || *na != h.audit_plan.size()) {
      return Fail("catalog holds " + std::to_string(*ns) + " sessions and " +
                  std::to_string(*na) + " audit events");
    }
    phase = std::chrono::steady_clock::now();
  }
  close_s = Seconds(phase);
  double gib = 0;
  if (db_url.empty()) {
    gib = TreeBytes(data_dir, "catalog.db") / kGiB;
  } else {
    // A live cluster's autovacuum would have analyzed tables this size;
    // right after a bulk load the planner has no statistics yet.
    phase = std::chrono::steady_clock::now();
    auto analyzed = testing::PostgresServer::Query(db_url, "ANALYZE");
    if (!analyzed.ok()) return Fail(analyzed.status().ToString());
    analyze_s = Seconds(phase);
    auto bytes = testing::PostgresServer::Query(
        db_url,
        "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM "
        "pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
        "n.nspname = current_schema() AND c.relkind = 'r'");
    if (!bytes.ok()) return Fail(bytes.status().ToString());
    gib = std::strtod(bytes->c_str(), nullptr) / kGiB;
  }
  std::printf(
      "[%s] load: sessions %zu in %.1f s (%.0f rows/s); audit %zu in %.1f s "
      "(%.0f rows/s); close %.1f s; analyze %.1f s; catalog %.2f GiB\n",
      db.c_str(), h.plan.size(), sessions_s, h.plan.size() / sessions_s,
      h.audit_plan.size(), audit_s,
      h.audit_plan.empty() ? 0.0 : h.audit_plan.size() / audit_s, close_s,
      analyze_s, gib);
  std::fflush(stdout);

  testing::Mezrecd server(data_dir, {}, env);
  phase = std::chrono::steady_clock::now();
  if (!server.Start()) return Fail("mezrecd did not start:\n" + server.log());
  std::printf("[%s] mezrecd start: %.2f s\n", db.c_str(), Seconds(phase));
  std::string identity = data_dir + "/admin.identity";
  std::string err_path = tmp_path + "/stderr.txt";
  auto cli_env = CliEnv(home);
  struct Command {
    std::string label;
    std::vector<std::string> argv;
    bool table;  // Text table: a header line, then one line per row.
    bool goal;
  };
  std::vector<Command> commands = {
      {"msh --help (process start, no RPC)",
       {MSH_PATH, "--help"},
       false,
       false},
      {"msh sessions ls --user=" + opt.user + " --limit=50",
       {MSH_PATH, "--identity", identity, "sessions", "ls",
        "--user=" + opt.user, "--limit=50"},
       true,
       true},
      {"mezctl audit ls --type=session.end --last=24h --limit=100",
       {MEZCTL_PATH, "--identity", identity, "audit", "ls",
        "--type=session.end", "--last=24h", "--limit=100"},
       true,
       true},
  };
  std::printf("%-9s %-58s %7s %7s %7s %7s %7s %5s  %s\n", "catalog",
              "command (wall ms)", "first", "p50", "p99", "min", "max", "rows",
              "goal <50 ms");
  for (const Command& c : commands) {
    RunResult first = RunTimed(c.argv, cli_env, Stdout::kKeep, err_path);
    if (first.exit_code != 0) {
      return Fail(c.label + ": exit " + std::to_string(first.exit_code) + ": " +
                  ReadAll(err_path) + first.out);
    }
    std::vector<double> ms;
    size_t lines = CountLines(first.out);
    for (int i = 0; i < opt.runs; ++i) {
      RunResult r = RunTimed(c.argv, cli_env, Stdout::kKeep, err_path);
      if (r.exit_code != 0) {
        return Fail(c.label + ": exit " + std::to_string(r.exit_code) + ": " +
                    ReadAll(err_path));
      }
      ms.push_back(r.ms);
      lines = CountLines(r.out);
    }
    double p50 = Percentile(ms, 50), p99 = Percentile(ms, 99);
    std::string rows =
        c.table ? std::to_string(lines > 0 ? lines - 1 : 0) : "-";
    std::string goal =
        !c.goal ? "" : (p50 < kGoalMs && p99 < kGoalMs ? "met" : "MISSED");
    std::printf("%-9s %-58s %7.1f %7.1f %7.1f %7.1f %7.1f %5s  %s\n",
                db.c_str(), c.label.c_str(), first.ms, p50, p99,
                Percentile(ms, 0), Percentile(ms, 100), rows.c_str(),
                goal.c_str());
    std::fflush(stdout);
  }
  server.Stop();
  // The catalog is not needed any more; free the disk for what follows.
  std::error_code ec;
  std::filesystem::remove_all(data_dir, ec);
  return 0;
}

int Main(int argc, char** argv) {
  Options opt;
  if (!ParseFlags(argc, argv, &opt)) {
    std::fprintf(stderr,
                 "usage: cli_bench [--sessions=N] [--audit=N] [--runs=N] "
                 "[--play-mib=N] [--batch=N] [--ids=v7|v4] [--user=NAME] "
                 "[--db=sqlite,postgres]\n");
    return 2;
  }
  char tmpl[] = "/tmp/cli_bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return Fail("mkdtemp failed");
  TempTree tmp{tmpl};
  std::string home = tmp.path + "/home";
  if (mkdir(home.c_str(), 0700) != 0) return Fail("cannot create " + home);
  std::string dbs;
  for (const auto& db : opt.dbs) dbs += (dbs.empty() ? "" : ",") + db;
  std::printf(
      "cli_bench (%s): %lld sessions, %lld audit events, %d runs, ids %s, "
      "batch %lld, catalogs %s, in %s\n",
      MEZ_BUILD_TYPE, static_cast<long long>(opt.sessions),
      static_cast<long long>(opt.audit), opt.runs, opt.v7_ids ? "v7" : "v4",
      static_cast<long long>(opt.batch), dbs.c_str(), tmp.path.c_str());
  std::fflush(stdout);

  // PostgreSQL: MEZ_TEST_POSTGRES_URL's server (left running) or a
  // throwaway one, stopped when `own_pg` goes.
  std::unique_ptr<testing::PostgresServer> own_pg;
  testing::PostgresServer* pg = nullptr;
  if (std::find(opt.dbs.begin(), opt.dbs.end(), "postgres") != opt.dbs.end()) {
    auto phase = std::chrono::steady_clock::now();
    const char* url = std::getenv("MEZ_TEST_POSTGRES_URL");
    if (url != nullptr && *url != '\0') {
      auto shared = testing::SharedPostgresServer();
      if (!shared.ok()) return Fail(shared.status().ToString());
      pg = *shared;
    } else {
      auto started = testing::PostgresServer::Start();
      if (!started.ok()) return Fail(started.status().ToString());
      own_pg = std::move(started).value();
      pg = own_pg.get();
    }
    std::printf(
        "postgres: %s, ready in %.1f s\n",
        own_pg ? "throwaway server (fsync off)" : "MEZ_TEST_POSTGRES_URL",
        Seconds(phase));
  }

  History h;
  h.now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  auto phase = std::chrono::steady_clock::now();
  h.plan = PlanSessions(opt.sessions, h.now_us, opt.v7_ids);
  h.audit_plan = PlanAudit(h.plan, opt.audit, h.now_us);
  h.plan_s = Seconds(phase);
  auto user_sessions = std::count_if(
      h.plan.begin(), h.plan.end(),
      [&](const PlannedSession& p) { return UserName(p.user) == opt.user; });
  int64_t day_ends = std::count_if(
      h.audit_plan.begin(), h.audit_plan.end(), [&](const PlannedAudit& a) {
        return a.type == kSessionEnd && a.time_us >= h.now_us - kDayUs;
      });
  std::printf(
      "data: planned in %.1f s; %s has %lld sessions; %lld session.end in "
      "the last 24h\n",
      h.plan_s, opt.user.c_str(), static_cast<long long>(user_sessions),
      static_cast<long long>(day_ends));
  std::fflush(stdout);

  for (const std::string& db : opt.dbs) {
    std::string data_dir = tmp.path + "/data-" + db;
    if (mkdir(data_dir.c_str(), 0700) != 0) {
      return Fail("cannot create " + data_dir);
    }
    int rc = BenchCatalog(opt, db, pg, h, data_dir, home, tmp.path);
    if (rc != 0) return rc;
  }
  h = History();

  // Playback of a local file.
  if (opt.play_mib > 0) {
    std::string cast = tmp.path + "/play.cast";
    phase = std::chrono::steady_clock::now();
    auto made = WriteCast(cast, static_cast<uint64_t>(opt.play_mib) << 20);
    if (!made.ok()) return Fail("write cast: " + made.status().ToString());
    std::printf(
        "play: %s %.1f MiB, %llu events, %.1f MiB of output data, written in "
        "%.1f s\n",
        cast.c_str(), made->file_bytes / kMiB,
        static_cast<unsigned long long>(made->events),
        made->output_bytes / kMiB, Seconds(phase));
    std::string err_path = tmp.path + "/play-stderr.txt";
    std::vector<std::string> args = {MSH_PATH, "play", "--format=text", cast};
    auto env = CliEnv(home);
    // Once into a pipe to count what play writes (also warms the page
    // cache), then best of 3 into /dev/null.
    RunResult counted = RunTimed(args, env, Stdout::kCount, err_path);
    if (counted.exit_code != 0) {
      return Fail("msh play --format=text: exit " +
                  std::to_string(counted.exit_code) + " after " +
                  std::to_string(counted.ms) + " ms, " +
                  std::to_string(counted.out_bytes) +
                  " bytes written: " + ReadAll(err_path));
    }
    double best_ms = 0;
    for (int i = 0; i < 3; ++i) {
      RunResult r = RunTimed(args, env, Stdout::kDevNull, err_path);
      if (r.exit_code != 0) {
        return Fail("msh play --format=text > /dev/null: exit " +
                    std::to_string(r.exit_code) + ": " + ReadAll(err_path));
      }
      if (i == 0 || r.ms < best_ms) best_ms = r.ms;
    }
    double file_mbps = made->file_bytes / 1e6 / (best_ms / 1000);
    double out_mbps = counted.out_bytes / 1e6 / (best_ms / 1000);
    std::printf(
        "play --format=text > /dev/null, best of 3: %.2f s = %.0f MB/s of "
        "file, %.0f MB/s of output (goal >= %.0f MB/s of file: %s)\n",
        best_ms / 1000, file_mbps, out_mbps, kGoalMBps,
        file_mbps >= kGoalMBps ? "met" : "MISSED");
    std::printf(
        "play --format=text | pipe: %.2f s, %llu bytes out (%s the %llu "
        "bytes recorded)\n",
        counted.ms / 1000, static_cast<unsigned long long>(counted.out_bytes),
        counted.out_bytes == made->output_bytes ? "equal to" : "DIFFERENT from",
        static_cast<unsigned long long>(made->output_bytes));
  }
  return 0;
}

}  // namespace
}  // namespace mez::bench

int main(int argc, char** argv) { return mez::bench::Main(argc, argv); }
