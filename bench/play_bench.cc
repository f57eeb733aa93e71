// play_bench: how soon `msh play ID` shows the first frame of a large
// recording, with the recording in S3 (Swift + s3api, PostgreSQL catalog)
// and on local disk (SQLite catalog). Prints figures; asserts nothing (exits
// non-zero only if a server or msh fails).
//
//   build/bench/play_bench [--mib=1024] [--runs=9] [--gzip=both|on|off]
//       [--backends=s3,local]
//
// For each backend and gzip setting, one mezrecd records one shell session
// of --mib MiB through the Record RPC (1 MiB chunks of incompressible text,
// 10 ms apart; the first chunk is a short marker line). Then `msh play ID`
// runs --runs times on a pseudo-terminal, as a person would run it; a run
// is timed from spawn to the marker appearing on the terminal, and msh is
// then killed. That covers msh's start, the TLS connection, the catalog
// lookup, opening the object (HEAD and the first Range GET) and rendering.
// The first run after recording is shown apart ("first"); p50 and max are
// over all runs.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "libmez/store/s3_client.h"
#include "mezite/v1/cluster.grpc.pb.h"
#include "mezite/v1/recording.grpc.pb.h"
#include "tests/mezrecd_harness.h"
#include "tests/postgres_server.h"
#include "tests/s3_server.h"

#ifndef MEZ_BUILD_TYPE
#define MEZ_BUILD_TYPE "unknown"
#endif

namespace mez::bench {
namespace {

using mezite::v1::RecordFrame;

constexpr size_t kChunk = 1 << 20;  // The largest chunk mezrecd takes.
constexpr char kMarker[] = "mezite-first-frame-marker";
constexpr int kPlayTimeoutMs = 60'000;

struct Options {
  int mib = 1024;
  int runs = 9;
  std::vector<bool> gzip = {false, true};
  std::vector<std::string> backends = {"s3", "local"};
};

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t comma = s.find(',', pos);
    if (comma == std::string::npos) comma = s.size();
    out.push_back(s.substr(pos, comma - pos));
    pos = comma + 1;
  }
  return out;
}

bool ParseFlags(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&](std::string_view name) -> const char* {
      return a.starts_with(name) ? argv[i] + name.size() : nullptr;
    };
    if (const char* mib = value("--mib=")) {
      o->mib = std::atoi(mib);
    } else if (const char* runs = value("--runs=")) {
      o->runs = std::atoi(runs);
    } else if (const char* gz = value("--gzip=")) {
      std::string g = gz;
      if (g == "both") {
        o->gzip = {false, true};
      } else if (g == "on" || g == "off") {
        o->gzip = {g == "on"};
      } else {
        return false;
      }
    } else if (const char* list = value("--backends=")) {
      o->backends = Split(list);
      for (const std::string& b : o->backends) {
        if (b != "s3" && b != "local") return false;
      }
    } else {
      return false;
    }
  }
  return o->mib > 0 && o->runs > 0 && !o->backends.empty();
}

double MsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - start)
      .count();
}

// Incompressible text that needs no JSON escaping.
std::string RandomText(size_t n, uint32_t seed) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = kAlphabet[rng() % 64];
  return s;
}

// Records one shell session of `mib` MiB; returns false (with `why`) if
// mezrecd refused it.
bool RecordLarge(const testing::Mezrecd& server, const std::string& id, int mib,
                 std::string* why) {
  auto stub = server.Stub();
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization",
                  "Bearer " + server.Token(auth::Role::kNode, "web-01"));
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(30));
  mezite::v1::RecordSummary summary;
  auto writer = stub->Record(&ctx, &summary);
  RecordFrame f =
      testing::HeaderFrame(id, server.Grant("alice", "web-01", 3600),
                           mezite::v1::SESSION_KIND_SHELL);
  bool ok = writer->Write(f);
  ok = ok && writer->Write(testing::ChunkFrame(1000, mezite::v1::DIRECTION_OUT,
                                               std::string(kMarker) + "\r\n"));
  std::vector<std::string> pool;
  for (uint32_t i = 0; i < 8; ++i) pool.push_back(RandomText(kChunk, i));
  for (int i = 0; ok && i < mib; ++i) {
    ok = writer->Write(testing::ChunkFrame(int64_t{i + 1} * 10'000 + 1000,
                                           mezite::v1::DIRECTION_OUT,
                                           pool[i % pool.size()]));
  }
  ok = ok && writer->Write(testing::ExitFrame(int64_t{mib + 1} * 10'000, 0));
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!s.ok()) {
    *why = s.error_message();
    return false;
  }
  if (!ok) *why = "a write failed";
  return ok;
}

// Runs msh with `args` on a new pseudo-terminal and returns the
// milliseconds from spawn to `marker` on the terminal (to msh's exit when
// `marker` is empty), or a negative number (with `why`) if it never showed.
double TimeOnPty(const std::vector<std::string>& args,
                 const std::string& marker, const std::string& home,
                 std::string* why) {
  struct winsize ws {};
  ws.ws_row = 40;
  ws.ws_col = 120;
  int master = -1;
  auto start = std::chrono::steady_clock::now();
  pid_t pid = forkpty(&master, nullptr, nullptr, &ws);
  if (pid < 0) {
    *why = std::string("forkpty: ") + std::strerror(errno);
    return -1;
  }
  if (pid == 0) {
    setenv("HOME", home.c_str(), 1);
    setenv("TERM", "xterm-256color", 1);
    unsetenv("MEZ_IDENTITY");
    unsetenv("MEZITE_RECORDING_ENC_KEY");
    std::vector<char*> argv = {const_cast<char*>(MSH_PATH)};
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(MSH_PATH, argv.data());
    _exit(127);
  }
  std::string seen;
  double ms = -1;
  char buf[1 << 16];
  while (ms < 0 && MsSince(start) < kPlayTimeoutMs) {
    struct pollfd p {};
    p.fd = master;
    p.events = POLLIN;
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = read(master, buf, sizeof(buf));
    if (n <= 0) {  // EIO: msh exited.
      if (marker.empty()) ms = MsSince(start);
      break;
    }
    seen.append(buf, static_cast<size_t>(n));
    if (!marker.empty() && seen.find(marker) != std::string::npos) {
      ms = MsSince(start);
    }
    if (seen.size() > (1 << 20)) seen.erase(0, seen.size() - 4096);
  }
  kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  close(master);
  if (ms < 0) {
    seen.erase(0, seen.size() - std::min<size_t>(seen.size(), 2000));
    *why = "no " + (marker.empty() ? "exit" : marker) + " within " +
           std::to_string(kPlayTimeoutMs / 1000) + " s; terminal tail:\n" +
           seen;
  }
  return ms;
}

// The server's part alone: milliseconds from a ReadRecording call on a
// warm channel to its first message (negative on failure).
double TimeFirstMessage(const testing::Mezrecd& server,
                        const std::shared_ptr<grpc::Channel>& channel,
                        const std::string& id, std::string* why) {
  auto stub = mezite::v1::Cluster::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization",
                  "Bearer " + server.Token(auth::Role::kAdmin, "admin"));
  mezite::v1::ReadRecordingRequest req;
  req.set_id(id);
  auto start = std::chrono::steady_clock::now();
  auto reader = stub->ReadRecording(&ctx, req);
  mezite::v1::RecordingBytes m;
  bool got = reader->Read(&m);
  double ms = MsSince(start);
  ctx.TryCancel();
  grpc::Status s = reader->Finish();
  if (!got) {
    *why = s.error_message();
    return -1;
  }
  return ms;
}

// The same authorization and catalog lookup without storage: a GetSession
// call on the warm channel (negative on failure).
double TimeGetSession(const testing::Mezrecd& server,
                      const std::shared_ptr<grpc::Channel>& channel,
                      const std::string& id, std::string* why) {
  auto stub = mezite::v1::Cluster::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization",
                  "Bearer " + server.Token(auth::Role::kAdmin, "admin"));
  mezite::v1::GetSessionRequest req;
  req.set_id(id);
  mezite::v1::SessionInfo info;
  auto start = std::chrono::steady_clock::now();
  grpc::Status s = stub->GetSession(&ctx, req, &info);
  double ms = MsSince(start);
  if (!s.ok()) {
    *why = s.error_message();
    return -1;
  }
  return ms;
}

double Percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(q * static_cast<double>(v.size()));
  return v[std::min(rank, v.size() - 1)];
}

void PrintRow(const char* label, const std::vector<double>& ms) {
  std::printf("  %-48s first %6.1f  p50 %6.1f  max %6.1f ms  (%zu runs)\n",
              label, ms[0], Percentile(ms, 0.5),
              *std::max_element(ms.begin(), ms.end()), ms.size());
}

struct Cloud {
  std::unique_ptr<testing::PostgresServer> own_pg;  // Null if not ours.
  testing::PostgresServer* pg = nullptr;
  std::unique_ptr<testing::S3Server> s3;
  std::string bucket = "mez-play-bench";
};

// PostgreSQL (MEZ_TEST_POSTGRES_URL's server when set), the S3 server and
// its bucket.
Status StartCloud(Cloud* c) {
  const char* url = std::getenv("MEZ_TEST_POSTGRES_URL");
  if (url != nullptr && *url != '\0') {
    auto shared = testing::SharedPostgresServer();
    if (!shared.ok()) return shared.status();
    c->pg = *shared;
  } else {
    auto started = testing::PostgresServer::Start();
    if (!started.ok()) return started.status();
    c->own_pg = std::move(started).value();
    c->pg = c->own_pg.get();
  }
  c->s3 = std::make_unique<testing::S3Server>(MEZ_START_S3);
  if (!c->s3->ok()) return Internal("S3 server: " + c->s3->error());
  store::S3Options o;
  o.endpoint = c->s3->endpoint();
  o.bucket = c->bucket;
  o.region = c->s3->region();
  o.access_key = c->s3->access_key();
  o.secret_key = c->s3->secret_key();
  o.force_path_style = true;
  auto client = store::S3Client::New(o);
  if (!client.ok()) return client.status();
  return (*client)->CreateBucket();
}

// Records and plays one configuration; prints its line. False on failure.
bool RunOne(const Options& opt, Cloud* cloud, const std::string& root,
            const std::string& backend, bool gzip) {
  std::string name = backend + (gzip ? "-gzip" : "-plain");
  std::map<std::string, std::string> env = {
      {"MEZITE_RECORDING_GZIP", gzip ? "true" : "false"}};
  if (backend == "s3") {
    auto db = cloud->pg->CreateSchema();
    if (!db.ok()) {
      std::fprintf(stderr, "play_bench: %s\n", db.status().ToString().c_str());
      return false;
    }
    env.insert({{"MEZITE_DB_URL", *db},
                {"MEZITE_RECORDING_BACKEND", "s3"},
                {"MEZITE_S3_BUCKET", cloud->bucket},
                {"MEZITE_S3_REGION", cloud->s3->region()},
                {"MEZITE_S3_ACCESS_KEY", cloud->s3->access_key()},
                {"MEZITE_S3_SECRET_KEY", cloud->s3->secret_key()},
                {"MEZITE_S3_ENDPOINT", cloud->s3->endpoint()},
                {"MEZITE_S3_FORCE_PATH_STYLE", "true"},
                {"MEZITE_S3_PREFIX", name + "/"}});
  }
  std::string dir = root + "/" + name;
  testing::Mezrecd server(dir, {}, env);
  if (!server.Start()) {
    std::fprintf(stderr, "play_bench: mezrecd did not start:\n%s\n",
                 server.log().c_str());
    return false;
  }
  std::string why;
  server.RegisterNode("web-01", "127.0.0.1:22", &why);
  if (!why.empty()) {
    std::fprintf(stderr, "play_bench: register web-01: %s\n", why.c_str());
    return false;
  }
  const std::string id = "play-bench-" + name;
  auto start = std::chrono::steady_clock::now();
  if (!RecordLarge(server, id, opt.mib, &why)) {
    std::fprintf(stderr, "play_bench: recording %s: %s\n%s\n", id.c_str(),
                 why.c_str(), server.log().c_str());
    return false;
  }
  double record_s = MsSince(start) / 1000;

  std::vector<double> ms;
  for (int i = 0; i < opt.runs; ++i) {
    double t = TimeOnPty({"--identity", dir + "/admin.identity", "play", id},
                         kMarker, dir, &why);
    if (t < 0) {
      std::fprintf(stderr, "play_bench: msh play %s: %s\n", id.c_str(),
                   why.c_str());
      return false;
    }
    ms.push_back(t);
  }
  std::vector<double> help_ms;
  for (int i = 0; i < opt.runs; ++i) {
    double t = TimeOnPty({"--help"}, "", dir, &why);
    if (t < 0) {
      std::fprintf(stderr, "play_bench: msh --help: %s\n", why.c_str());
      return false;
    }
    help_ms.push_back(t);
  }
  std::vector<double> rpc_ms;
  auto channel = server.Channel();
  for (int i = 0; i < opt.runs; ++i) {
    double t = TimeFirstMessage(server, channel, id, &why);
    if (t < 0) {
      std::fprintf(stderr, "play_bench: ReadRecording %s: %s\n", id.c_str(),
                   why.c_str());
      return false;
    }
    rpc_ms.push_back(t);
  }
  std::vector<double> get_ms;
  for (int i = 0; i < opt.runs; ++i) {
    double t = TimeGetSession(server, channel, id, &why);
    if (t < 0) {
      std::fprintf(stderr, "play_bench: GetSession %s: %s\n", id.c_str(),
                   why.c_str());
      return false;
    }
    get_ms.push_back(t);
  }
  std::printf("%s: %d MiB recorded in %.1f s (%.0f MiB/s)\n", name.c_str(),
              opt.mib, record_s, opt.mib / record_s);
  PrintRow("msh play: first frame on the terminal", ms);
  PrintRow("msh --help: spawn to exit (process start alone)", help_ms);
  PrintRow("ReadRecording: first message", rpc_ms);
  PrintRow("GetSession (same auth and catalog, no storage)", get_ms);
  std::fflush(stdout);
  server.Stop();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // A GiB per configuration.
  return true;
}

int Main(int argc, char** argv) {
  Options opt;
  if (!ParseFlags(argc, argv, &opt)) {
    std::fprintf(stderr,
                 "usage: play_bench [--mib=1024] [--runs=9] "
                 "[--gzip=both|on|off] [--backends=s3,local]\n");
    return 2;
  }
  char tmpl[] = "/tmp/mez_play_bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return 1;
  std::string root = tmpl;
  std::printf("play_bench (%s build): msh play time to first frame\n",
              MEZ_BUILD_TYPE);
  Cloud cloud;
  if (std::find(opt.backends.begin(), opt.backends.end(), "s3") !=
      opt.backends.end()) {
    Status s = StartCloud(&cloud);
    if (!s.ok()) {
      std::fprintf(stderr, "play_bench: %s\n", s.ToString().c_str());
      return 1;
    }
    std::printf(
        "s3: Swift + s3api at %s, catalog PostgreSQL; local: files "
        "and SQLite\n",
        cloud.s3->endpoint().c_str());
  }
  bool ok = true;
  for (const std::string& backend : opt.backends) {
    for (bool gzip : opt.gzip) {
      ok = ok && RunOne(opt, &cloud, root, backend, gzip);
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace mez::bench

int main(int argc, char** argv) { return mez::bench::Main(argc, argv); }
