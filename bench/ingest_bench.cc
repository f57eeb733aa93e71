// ingest_bench: end-to-end ingest through a real mezrecd over loopback TLS
// gRPC. N concurrent Record streams of terminal output, all open at once.
// Prints figures; asserts nothing (exits non-zero only if mezrecd fails).
//
//   build/bench/ingest_bench [--streams=1,100,1000] [--mb=256]
//       [--gzip=both|on|off] [--chunk=4096] [--per-channel=50]
//       [--backends=local,s3]
//
// Backends: "local" is mezrecd's default (files under the data dir, SQLite
// catalog); "s3" runs mezrecd with MEZITE_RECORDING_BACKEND=s3 against a
// throwaway Swift + s3api server (scripts/start-s3) and MEZITE_DB_URL on a
// throwaway PostgreSQL (scripts/start-postgres, or MEZ_TEST_POSTGRES_URL),
// both started once for the whole run; each run gets its own schema and key
// prefix. With s3 in the list and no --streams/--mb, the defaults are
// --streams=100 --mb=64 for every backend, so that rows compare.
//
// Each run starts its own mezrecd, so baselines and peaks are that run's.
// A run connects its channels, reads mezrecd's RSS, opens every stream and
// sends its header and two chunks, waits for the files to appear, reads the
// RSS again (the difference over N is "RSS/stream"), then sends the rest of
// the payload on every stream at once as fast as flow control allows. The
// measured phase runs from the first of those writes to the last OK status.
// The bench shares the machine's cores with mezrecd; its own CPU is shown.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <openssl/sha.h>
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "bench/bench_util.h"
#include "libmez/auth/identity.h"
#include "libmez/store/s3_client.h"
#include "libmez/util/encoding.h"
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

constexpr int kWarmupChunks = 2;
constexpr int kMaxProbes = 20;
constexpr int kMaxMarkerEvery = 50;

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

enum class Backend { kLocal, kS3 };

const char* BackendName(Backend b) {
  return b == Backend::kLocal ? "local+sqlite" : "s3+pg";
}

struct Options {
  std::vector<int> streams = {1, 100, 1000};
  double mb = 256;
  std::vector<bool> gzip = {false, true};
  size_t chunk = 4096;
  int per_channel = 50;
  std::vector<Backend> backends = {Backend::kLocal};
  bool streams_set = false, mb_set = false;
};

bool ParseInt(std::string_view s, long* out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && *out > 0;
}

bool ParseFlags(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    size_t eq = arg.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view name = arg.substr(0, eq), value = arg.substr(eq + 1);
    long n = 0;
    if (name == "--streams") {
      o->streams.clear();
      while (!value.empty()) {
        size_t comma = std::min(value.find(','), value.size());
        if (!ParseInt(value.substr(0, comma), &n)) return false;
        o->streams.push_back(static_cast<int>(n));
        value.remove_prefix(std::min(comma + 1, value.size()));
      }
      if (o->streams.empty()) return false;
      o->streams_set = true;
    } else if (name == "--mb") {
      if (!ParseInt(value, &n)) return false;
      o->mb = static_cast<double>(n);
      o->mb_set = true;
    } else if (name == "--backends") {
      o->backends.clear();
      while (!value.empty()) {
        size_t comma = std::min(value.find(','), value.size());
        std::string_view b = value.substr(0, comma);
        if (b == "local") {
          o->backends.push_back(Backend::kLocal);
        } else if (b == "s3") {
          o->backends.push_back(Backend::kS3);
        } else {
          return false;
        }
        value.remove_prefix(std::min(comma + 1, value.size()));
      }
      if (o->backends.empty()) return false;
    } else if (name == "--gzip") {
      if (value == "both") {
        o->gzip = {false, true};
      } else if (value == "on" || value == "off") {
        o->gzip = {value == "on"};
      } else {
        return false;
      }
    } else if (name == "--chunk") {
      if (!ParseInt(value, &n) || n > (1 << 20)) return false;
      o->chunk = static_cast<size_t>(n);
    } else if (name == "--per-channel") {
      if (!ParseInt(value, &n)) return false;
      o->per_channel = static_cast<int>(n);
    } else {
      return false;
    }
  }
  return true;
}

// Terminal output as a busy shell produces it: coloured prompts, `ls
// --color`, compiler diagnostics, journal lines, UTF-8 prose with emoji and
// progress bars redrawn with CR and erase-line; cut into `chunk`-byte reads
// without regard for line or UTF-8 boundaries, as a PTY delivers them.
std::vector<std::string> TerminalChunks(size_t total, size_t chunk) {
  std::mt19937 rng(7);
  auto pick = [&rng](unsigned n) { return static_cast<unsigned>(rng() % n); };
  static const char* const kWords[] = {
      "Zażółć", "gęślą", "jaźń",   "naïve",  "café",
      "Привет", "мир",   "日本語", "テスト", "\xF0\x9F\x9A\x80",
      "✔",      "→",     "straße", "deploy", "ok",
      "done",   "κόσμε", "résumé"};
  static const char* const kCommands[] = {"ls --color",    "make -j2",
                                          "journalctl -f", "git status",
                                          "cat README.md", "./deploy.sh"};
  std::string text;
  text.reserve(total + 4096);
  char buf[256];
  while (text.size() < total) {
    switch (pick(6)) {
      case 0:
        text +=
            "\x1b[01;32malice@web-01\x1b[00m:\x1b[01;34m~/src/app\x1b[00m$ ";
        text += kCommands[pick(6)];
        text += "\r\n";
        break;
      case 1:
        for (int i = 0; i < 6; ++i) {
          std::snprintf(buf, sizeof(buf),
                        "\x1b[0m\x1b[01;34mpkg%u\x1b[0m  \x1b[01;32mrun%u.sh"
                        "\x1b[0m  notes-%u.txt  ",
                        pick(100), pick(10), pick(1000));
          text += buf;
        }
        text += "\r\n";
        break;
      case 2:
        std::snprintf(buf, sizeof(buf),
                      "src/net/conn.cc:%u:%u: \x1b[01;35mwarning:\x1b[0m "
                      "comparison of integers of different signs "
                      "[\x1b[01;35m-Wsign-compare\x1b[0m]\r\n %5u |   if (n < "
                      "buf.size()) {\r\n",
                      pick(900), pick(80), pick(900));
        text += buf;
        break;
      case 3:
        std::snprintf(buf, sizeof(buf),
                      "Nov 22 10:%02u:%02u web-01 app[%u]: \x1b[32mINFO\x1b[0m "
                      "request id=%08x path=/api/v1/items/%u status=200 "
                      "dur=%ums\r\n",
                      pick(60), pick(60), 1000 + pick(9000),
                      static_cast<unsigned>(rng()), pick(100000), pick(900));
        text += buf;
        break;
      case 4:
        for (int i = 0; i < 12; ++i) {
          text += kWords[pick(std::size(kWords))];
          text += ' ';
        }
        text += "\r\n";
        break;
      default:
        for (int p = 0; p <= 100; p += 20) {
          std::snprintf(buf, sizeof(buf), "\r\x1b[K[%-20s] %3d%%",
                        std::string(p / 5, '#').c_str(), p);
          text += buf;
        }
        text += "\r\n";
    }
  }
  std::vector<std::string> chunks;
  for (size_t at = 0; at + chunk <= text.size(); at += chunk) {
    chunks.push_back(text.substr(at, chunk));
  }
  return chunks;
}

// mezrecd's /proc figures. The pid is found by the data dir in its argv,
// which is unique to the run (the harness does not expose the pid).
pid_t FindPid(const std::string& data_dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline", std::ios::binary);
    std::string argv0, arg;
    bool first = true, match = false;
    while (std::getline(in, arg, '\0')) {
      if (first) argv0 = arg;
      first = false;
      match |= arg == data_dir;
    }
    if (match && argv0.ends_with("mezrecd")) return std::stoi(name);
  }
  return -1;
}

// A "VmXXX:" field of /proc/<pid>/status, in KiB; -1 if absent.
int64_t StatusKiB(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with(field + ":")) {
      return std::strtoll(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return -1;
}

double SelfCpuSeconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const struct timeval& tv) {
    return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6;
  };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

// Watches one stream's file for the markers its sampled chunks carry and
// notes when each becomes readable. Sent() is called by the stream's
// reactor; everything else by the sampler thread only.
class Probe {
 public:
  Probe(std::string path, bool gzip, std::vector<std::string> markers)
      : path_(std::move(path)),
        gzip_(gzip),
        markers_(std::move(markers)),
        sent_us_(new std::atomic<int64_t>[markers_.size()]),
        seen_us_(markers_.size(), 0),
        in_(256 * 1024),
        out_(256 * 1024) {
    for (size_t i = 0; i < markers_.size(); ++i) sent_us_[i] = 0;
  }
  ~Probe() {
    if (fd_ >= 0) close(fd_);
    if (z_ready_) inflateEnd(&zs_);
  }
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  const std::string& marker(size_t i) const { return markers_[i]; }
  size_t markers() const { return markers_.size(); }
  void Sent(size_t i) { sent_us_[i].store(NowUs(), std::memory_order_release); }
  bool done() const { return next_ == markers_.size() || broken_; }

  // Reads what was appended since the last call.
  void Poll() {
    if (done()) return;
    if (fd_ < 0) fd_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return;
    while (!done()) {
      int64_t at = NowUs();
      ssize_t n = read(fd_, in_.data(), in_.size());
      if (n <= 0) return;
      std::string_view got(in_.data(), static_cast<size_t>(n));
      gzip_ ? Inflate(got, at) : Scan(got, at);
    }
  }

  // Appends the delays (ms) of the markers seen; returns how many were not.
  size_t Latencies(std::vector<double>* ms) const {
    for (size_t i = 0; i < next_; ++i) {
      int64_t sent = sent_us_[i].load(std::memory_order_acquire);
      if (sent > 0) ms->push_back((seen_us_[i] - sent) / 1000.0);
    }
    return markers_.size() - next_;
  }

 private:
  // A truncated gzip stream is normal here: inflate keeps its state and
  // continues when the next bytes arrive; a finished member is followed by
  // the next one.
  void Inflate(std::string_view in, int64_t at) {
    if (!z_ready_) {
      if (inflateInit2(&zs_, 15 + 32) != Z_OK) {
        broken_ = true;
        return;
      }
      z_ready_ = true;
    }
    zs_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs_.avail_in = static_cast<uInt>(in.size());
    for (;;) {
      zs_.next_out = reinterpret_cast<Bytef*>(out_.data());
      zs_.avail_out = static_cast<uInt>(out_.size());
      int rc = inflate(&zs_, Z_NO_FLUSH);
      Scan(std::string_view(out_.data(), out_.size() - zs_.avail_out), at);
      if (rc == Z_STREAM_END) {
        // mezrecd writes one gzip member per flush: the next one follows.
        if (zs_.avail_in == 0) {
          inflateReset(&zs_);
          return;
        }
        inflateReset(&zs_);
        continue;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        std::fprintf(stderr, "ingest_bench: %s: inflate error %d\n",
                     path_.c_str(), rc);
        broken_ = true;
        return;
      }
      if (zs_.avail_in == 0 && zs_.avail_out != 0) return;
    }
  }

  // Markers appear in the order they were sent; the tail of each piece is
  // kept so a marker split across reads is still found.
  void Scan(std::string_view data, int64_t at) {
    text_.assign(carry_);
    text_.append(data);
    size_t from = 0;
    while (next_ < markers_.size()) {
      size_t p = text_.find(markers_[next_], from);
      if (p == std::string::npos) break;
      seen_us_[next_++] = at;
      from = p + markers_[0].size();
    }
    size_t keep = markers_.empty() ? 0 : markers_[0].size() - 1;
    keep = std::min(keep, text_.size() - std::min(from, text_.size()));
    carry_.assign(text_, text_.size() - keep, keep);
  }

  std::string path_;
  bool gzip_;
  std::vector<std::string> markers_;
  std::unique_ptr<std::atomic<int64_t>[]> sent_us_;
  std::vector<int64_t> seen_us_;
  size_t next_ = 0;
  bool broken_ = false;
  int fd_ = -1;
  z_stream zs_{};
  bool z_ready_ = false;
  std::vector<char> in_, out_;
  std::string text_, carry_;
};

// Polls the probes every millisecond on its own thread.
class Sampler {
 public:
  explicit Sampler(std::vector<Probe*> probes)
      : probes_(std::move(probes)), thread_([this] { Loop(); }) {}
  // Keeps polling for up to `grace_us` until every marker was seen.
  void Stop(int64_t grace_us) {
    deadline_us_.store(NowUs() + grace_us);
    thread_.join();
  }

 private:
  void Loop() {
    for (;;) {
      bool all = true;
      for (Probe* p : probes_) {
        p->Poll();
        all &= p->done();
      }
      int64_t deadline = deadline_us_.load();
      if (deadline != 0 && (all || NowUs() > deadline)) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  std::vector<Probe*> probes_;
  std::atomic<int64_t> deadline_us_{0};
  std::thread thread_;
};

// What the reactors of one run share.
struct RunState {
  const std::vector<std::string>* chunks = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;  // Streams that finished warm-up (or failed).
  int done = 0;
  int64_t last_done_us = 0;
};

// One Record stream on the callback API. Writes its header and warm-up
// chunks, waits for Go(), writes the rest back to back, half-closes. A
// hold keeps the call alive while Go() may still be called from outside.
class StreamReactor : public grpc::ClientWriteReactor<RecordFrame> {
 public:
  StreamReactor(RunState* run, int index, int64_t chunks, Probe* probe,
                int64_t marker_every)
      : run_(run),
        index_(index),
        chunks_(chunks),
        warmup_(std::min<int64_t>(kWarmupChunks, chunks)),
        probe_(probe),
        marker_every_(marker_every) {}

  void Begin(mezite::v1::Recording::Stub* stub, const std::string& node_token,
             RecordFrame header) {
    ctx_.AddMetadata("authorization", "Bearer " + node_token);
    stub->async()->Record(&ctx_, &summary_, this);
    frame_ = std::move(header);
    start_us_ = NowUs();
    AddHold();
    StartWrite(&frame_);
    StartCall();
  }

  // REQUIRES: every reactor has arrived (see RunState).
  void Go() {
    if (failed_) return;
    going_ = true;
    Continue();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      failed_ = true;  // OnDone reports why.
      Arrive();
      RemoveHold();
      return;
    }
    if (next_ < warmup_) {
      WriteChunk();
    } else if (!going_) {
      Arrive();
    } else {
      Continue();
    }
  }

  void OnDone(const grpc::Status& status) override {
    status_ = status;
    done_us_ = NowUs();
    Arrive();
    std::lock_guard<std::mutex> lock(run_->mu);
    ++run_->done;
    run_->last_done_us = NowUs();
    run_->cv.notify_all();
  }

  const grpc::Status& status() const { return status_; }
  uint64_t measured_bytes() const { return measured_bytes_; }
  int64_t measured_frames() const { return chunks_ - warmup_; }
  // From the half-close to the call's status (ms); -1 if it never closed.
  double finish_ms() const {
    int64_t closed = closed_us_.load();
    return closed > 0 ? (done_us_ - closed) / 1000.0 : -1;
  }

 private:
  void Continue() {
    if (next_ < chunks_) {
      WriteChunk();
    } else {
      closed_us_.store(NowUs());
      StartWritesDone();
      RemoveHold();
    }
  }

  void WriteChunk() {
    int64_t k = next_++;
    const auto& pool = *run_->chunks;
    const std::string& base = pool[(index_ * 7919 + k) % pool.size()];
    auto* chunk = frame_.mutable_chunk();
    chunk->set_offset_us(NowUs() - start_us_);
    chunk->set_direction(mezite::v1::DIRECTION_OUT);
    int64_t slot = MarkerSlot(k);
    if (slot >= 0) {
      std::string data = probe_->marker(slot);
      data.append(base, 0, base.size() - std::min(base.size(), data.size()));
      chunk->set_data(std::move(data));
      probe_->Sent(slot);
    } else {
      chunk->set_data(base);
    }
    if (k >= warmup_) measured_bytes_ += chunk->data().size();
    StartWrite(&frame_);
  }

  // The marker carried by measured chunk `k`, or -1.
  int64_t MarkerSlot(int64_t k) const {
    if (probe_ == nullptr || k < warmup_) return -1;
    int64_t m = k - warmup_;
    if (m % marker_every_ != marker_every_ / 2) return -1;
    int64_t slot = m / marker_every_;
    return slot < static_cast<int64_t>(probe_->markers()) ? slot : -1;
  }

  void Arrive() {
    if (arrived_.exchange(true)) return;
    std::lock_guard<std::mutex> lock(run_->mu);
    ++run_->arrived;
    run_->cv.notify_all();
  }

  RunState* run_;
  int index_;
  int64_t chunks_;
  int64_t warmup_;
  Probe* probe_;
  int64_t marker_every_;
  grpc::ClientContext ctx_;
  mezite::v1::RecordSummary summary_;
  RecordFrame frame_;
  int64_t start_us_ = 0;
  int64_t next_ = 0;
  uint64_t measured_bytes_ = 0;
  std::atomic<int64_t> closed_us_{0};
  int64_t done_us_ = 0;  // Read only after OnDone (under RunState::mu).
  std::atomic<bool> going_{false};
  std::atomic<bool> failed_{false};
  std::atomic<bool> arrived_{false};
  grpc::Status status_;
};

std::shared_ptr<grpc::Channel> MakeChannel(const testing::Mezrecd& server,
                                           int id) {
  auto identity = auth::ReadIdentityFile(server.data_dir() + "/admin.identity");
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (identity.ok() && !identity->tls_ca_pem.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = identity->tls_ca_pem;
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(8 << 20);
  // Channels with equal arguments would share one connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("mez.ingest_bench.channel", id);
  return grpc::CreateCustomChannel(server.addr(), creds, args);
}

struct Figures {
  double mb = 0, secs = 0, frames = 0, cpu_s = 0, bench_cpu_s = 0;
  double open_secs = 0;
  double other_cpus = 0;  // Busy CPUs other than mezrecd and the bench.
  double rss_kib = 0, peak_kib = 0, p50_ms = 0, p99_ms = 0;
  double fin_p50_ms = 0, fin_p99_ms = 0;
  size_t samples = 0, missing = 0;
};

// The servers behind the s3 backend, started once for every run.
struct Cloud {
  std::unique_ptr<testing::PostgresServer> own_pg;  // Null if not ours.
  testing::PostgresServer* pg = nullptr;
  std::unique_ptr<testing::S3Server> s3;
  std::string bucket = "mez-ingest-bench";
};

// Stopped and removed by Fail, which leaves without running destructors.
Cloud* g_cloud = nullptr;
std::string g_root;

[[noreturn]] void Fail(testing::Mezrecd* server, const std::string& why) {
  std::string log = server != nullptr ? server->log() : "";
  log.erase(0, log.size() - std::min<size_t>(log.size(), 4000));
  std::fprintf(stderr, "ingest_bench: %s\n", why.c_str());
  if (server != nullptr) {
    std::fprintf(stderr, "--- mezrecd log (tail) ---\n%s\n", log.c_str());
    server->Kill9();
  }
  if (g_cloud != nullptr) {
    g_cloud->s3.reset();
    g_cloud->own_pg.reset();
  }
  if (!g_root.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(g_root, ec);
  }
  // Calls may still be in flight: leave without running destructors.
  std::fflush(nullptr);
  std::_Exit(1);
}

// PostgreSQL (MEZ_TEST_POSTGRES_URL's server when set, left running), the
// S3 server and its bucket.
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

// mezrecd's environment for one s3 run: a fresh schema, a key prefix of
// its own (session ids repeat across runs, and S3Store refuses to
// overwrite an object).
std::map<std::string, std::string> CloudEnv(const Cloud& c,
                                            const std::string& db_url,
                                            const std::string& prefix) {
  return {{"MEZITE_DB_URL", db_url},
          {"MEZITE_RECORDING_BACKEND", "s3"},
          {"MEZITE_S3_BUCKET", c.bucket},
          {"MEZITE_S3_REGION", c.s3->region()},
          {"MEZITE_S3_ACCESS_KEY", c.s3->access_key()},
          {"MEZITE_S3_SECRET_KEY", c.s3->secret_key()},
          {"MEZITE_S3_ENDPOINT", c.s3->endpoint()},
          {"MEZITE_S3_FORCE_PATH_STYLE", "true"},
          {"MEZITE_S3_PREFIX", prefix}};
}

// The spool file S3Store names for an object (libmez/store/s3_store.cc:
// hex of the first 16 bytes of SHA-256 of the object key).
std::string SpoolName(const std::string& object_key) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(object_key.data()),
         object_key.size(), md);
  return HexEncode(std::string_view(reinterpret_cast<char*>(md), 16)) +
         ".spool";
}

bool WaitFor(RunState* run, int64_t timeout_s,
             const std::function<bool()>& pred) {
  std::unique_lock<std::mutex> lock(run->mu);
  return run->cv.wait_for(lock, std::chrono::seconds(timeout_s), pred);
}

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  size_t rank = static_cast<size_t>(q * static_cast<double>(sorted.size()));
  return sorted[std::min(rank, sorted.size() - 1)];
}

Figures Run(const Options& opt, const std::vector<std::string>& pool,
            const std::string& dir, int n, bool gzip, Backend backend,
            Cloud* cloud, int run_no) {
  std::vector<std::string> args;
  if (gzip) args.push_back("--gzip");
  std::map<std::string, std::string> env;
  std::string db_url, prefix = "run" + std::to_string(run_no) + "/";
  if (backend == Backend::kS3) {
    auto schema = cloud->pg->CreateSchema();
    if (!schema.ok()) Fail(nullptr, schema.status().ToString());
    db_url = *schema;
    env = CloudEnv(*cloud, db_url, prefix);
  }
  testing::Mezrecd server(dir, args, env);
  if (!server.Start()) Fail(&server, "mezrecd did not start");
  server.RegisterNode("web-01");
  pid_t pid = FindPid(dir);
  if (pid < 0) Fail(&server, "cannot find mezrecd's pid in /proc");
  std::string node_token = server.Token(auth::Role::kNode, "web-01");
  std::string user_token = server.Grant("alice", "web-01", 24 * 3600);

  int n_channels = (n + opt.per_channel - 1) / opt.per_channel;
  std::vector<std::unique_ptr<mezite::v1::Recording::Stub>> stubs;
  for (int i = 0; i < n_channels; ++i) {
    auto channel = MakeChannel(server, i);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                   std::chrono::seconds(10))) {
      Fail(&server, "channel " + std::to_string(i) + " did not connect");
    }
    stubs.push_back(mezite::v1::Recording::NewStub(channel));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  int64_t rss_base = StatusKiB(pid, "VmRSS");

  // Every stream sends the same number of chunks. On the probed streams one
  // measured chunk in `every` carries a marker (1 in 50, or more often when
  // streams are short, so that each probe yields about eight samples).
  int64_t total = static_cast<int64_t>(opt.mb * 1e6);
  int64_t per_stream = std::max<int64_t>(
      kWarmupChunks + 1, (total / n + static_cast<int64_t>(opt.chunk) - 1) /
                             static_cast<int64_t>(opt.chunk));
  int64_t measured = per_stream - std::min<int64_t>(kWarmupChunks, per_stream);
  int64_t every = std::clamp<int64_t>(measured / 8, 1, kMaxMarkerEvery);
  int64_t n_markers = (measured - every / 2 + every - 1) / every;
  int n_probes = std::min(n, kMaxProbes);
  std::string suffix = gzip ? ".cast.gz" : ".cast";
  auto session_id = [&](int i) { return "bench-" + std::to_string(i); };
  // Where stream i's bytes become readable: its .cast file, or with s3 its
  // spool file (the object itself appears only at close).
  auto file_of = [&](int i) {
    std::string key = "alice/shell/" + session_id(i) + suffix;
    return backend == Backend::kLocal
               ? dir + "/recordings/" + key
               : dir + "/s3-spool/" + SpoolName(prefix + key);
  };

  std::vector<std::unique_ptr<Probe>> probes;
  std::vector<Probe*> probe_of(n, nullptr);
  for (int p = 0; p < n_probes; ++p) {
    int i = static_cast<int>(static_cast<int64_t>(p) * n / n_probes);
    std::vector<std::string> markers;
    char buf[64];
    for (int64_t m = 0; m < n_markers; ++m) {
      std::snprintf(buf, sizeof(buf), "MZMARK_%06d_%06lld_", i,
                    static_cast<long long>(m));
      markers.push_back(buf);
    }
    probes.push_back(
        std::make_unique<Probe>(file_of(i), gzip, std::move(markers)));
    probe_of[i] = probes.back().get();
  }

  RunState run;
  run.chunks = &pool;
  int64_t open_start = NowUs();
  std::vector<std::unique_ptr<StreamReactor>> streams;
  for (int i = 0; i < n; ++i) {
    streams.push_back(std::make_unique<StreamReactor>(&run, i, per_stream,
                                                      probe_of[i], every));
    streams.back()->Begin(stubs[i / opt.per_channel].get(), node_token,
                          testing::HeaderFrame(session_id(i), user_token,
                                               mezite::v1::SESSION_KIND_SHELL));
  }
  if (!WaitFor(&run, 300, [&] { return run.arrived == n; })) {
    Fail(&server, "stalled opening streams: " + std::to_string(run.arrived) +
                      " of " + std::to_string(n) + " sent header and warm-up");
  }
  // Opening is done when every file exists; the pause lets the warm-up
  // chunks reach them (and a gzip flush tick pass).
  int64_t wait_until = NowUs() + 60'000'000;
  for (int i = 0; i < n; ++i) {
    while (!std::filesystem::exists(file_of(i))) {
      if (NowUs() > wait_until) Fail(&server, "a stream's file never appeared");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  int64_t open_end = NowUs();
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  int64_t rss_open = StatusKiB(pid, "VmRSS");

  std::vector<Probe*> probe_ptrs;
  for (auto& p : probes) probe_ptrs.push_back(p.get());
  Sampler sampler(probe_ptrs);
  double cpu0 = ProcessCpuSeconds(pid), bench_cpu0 = SelfCpuSeconds();
  double machine0 = MachineCpuSeconds();
  int64_t t0 = NowUs();
  for (auto& s : streams) s->Go();
  if (!WaitFor(&run, 900, [&] { return run.done == n; })) {
    Fail(&server, "stalled: " + std::to_string(run.done) + " of " +
                      std::to_string(n) + " streams finished in 900 s");
  }
  double cpu1 = ProcessCpuSeconds(pid), bench_cpu1 = SelfCpuSeconds();
  double machine1 = MachineCpuSeconds();
  int64_t peak = StatusKiB(pid, "VmHWM");
  sampler.Stop(5'000'000);

  Figures f;
  uint64_t bytes = 0;
  for (auto& s : streams) {
    if (!s->status().ok()) {
      Fail(&server, "stream failed: " + s->status().error_message());
    }
    bytes += s->measured_bytes();
    f.frames += static_cast<double>(s->measured_frames());
  }
  f.secs = (run.last_done_us - t0) / 1e6;
  f.open_secs = (open_end - open_start) / 1e6;
  f.mb = static_cast<double>(bytes) / 1e6;
  f.cpu_s = cpu1 - cpu0;
  f.bench_cpu_s = bench_cpu1 - bench_cpu0;
  f.other_cpus =
      std::max(0.0, machine1 - machine0 - f.cpu_s - f.bench_cpu_s) / f.secs;
  f.rss_kib = static_cast<double>(rss_open - rss_base) / n;
  f.peak_kib = static_cast<double>(peak - rss_base) / n;
  std::vector<double> ms;
  for (auto& p : probes) f.missing += p->Latencies(&ms);
  std::sort(ms.begin(), ms.end());
  f.samples = ms.size();
  f.p50_ms = Percentile(ms, 0.50);
  f.p99_ms = Percentile(ms, 0.99);
  std::vector<double> fin;
  for (auto& s : streams) fin.push_back(s->finish_ms());
  std::sort(fin.begin(), fin.end());
  f.fin_p50_ms = Percentile(fin, 0.50);
  f.fin_p99_ms = Percentile(fin, 0.99);

  streams.clear();
  int rc = server.Stop();
  if (rc != 0) Fail(&server, "mezrecd exited with " + std::to_string(rc));
  if (backend == Backend::kS3) {
    Status dropped = cloud->pg->DropSchema(db_url);
    if (!dropped.ok()) Fail(nullptr, dropped.ToString());
  }
  return f;
}

int Main(int argc, char** argv) {
  Options opt;
  if (!ParseFlags(argc, argv, &opt)) {
    std::fprintf(stderr,
                 "usage: ingest_bench [--streams=1,100,1000] [--mb=256] "
                 "[--gzip=both|on|off] [--chunk=4096] [--per-channel=50] "
                 "[--backends=local,s3]\n");
    return 2;
  }
  bool with_s3 = std::find(opt.backends.begin(), opt.backends.end(),
                           Backend::kS3) != opt.backends.end();
  if (with_s3 && !opt.streams_set) opt.streams = {100};
  if (with_s3 && !opt.mb_set) opt.mb = 64;
  Cloud cloud;
  if (with_s3) {
    g_cloud = &cloud;
    auto t = NowUs();
    Status s = StartCloud(&cloud);
    if (!s.ok()) Fail(nullptr, "s3 backend: " + s.ToString());
    std::printf(
        "# s3 backend: PostgreSQL %s and S3 %s (Swift s3api) "
        "started in %.1f s\n",
        cloud.own_pg != nullptr ? "(throwaway)" : "(MEZ_TEST_POSTGRES_URL)",
        cloud.s3->endpoint().c_str(), (NowUs() - t) / 1e6);
  }
  char tmpl[] = "/tmp/ingest_bench.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    std::perror("ingest_bench: mkdtemp");
    return 1;
  }
  std::string root = tmpl;
  g_root = root;
  std::vector<std::string> pool = TerminalChunks(8 << 20, opt.chunk);

  std::printf(
      "# ingest_bench: mezrecd on 127.0.0.1 over TLS gRPC; %ld CPUs (%s); "
      "build %s; gRPC %s\n",
      sysconf(_SC_NPROCESSORS_ONLN), CpuModel().c_str(), MEZ_BUILD_TYPE,
      grpc::Version().c_str());
  std::printf(
      "# %zu-byte chunks of coloured UTF-8 terminal output, %.0f MB per run "
      "split across the streams, %d streams per connection. MB = 1e6 bytes.\n"
      "# backends: local+sqlite = files in the data dir, SQLite catalog; "
      "s3+pg = MEZITE_RECORDING_BACKEND=s3 (local spool, 5 MiB multipart "
      "parts) with MEZITE_DB_URL=PostgreSQL, all on this machine.\n"
      "# p50/p99 ms: chunk Write() until its marker is readable in the .cast "
      "file (local) or in mezrecd's spool file (s3); written to the OS, not "
      "fsynced; polled every 1 ms.\n"
      "# fin p50/p99: per stream, client half-close until the Record call's "
      "OK status: the recording closed and its catalog row final; for s3 also "
      "the last part uploaded, the multipart upload completed and a HEAD "
      "showing every byte (the object is durable in S3). All streams close "
      "together, so this includes queueing behind each other.\n"
      "# srv s/GB is mezrecd alone: Swift, memcached and PostgreSQL are in "
      "'other'.\n"
      "# open s: until all streams sent header + %d chunks and their files "
      "exist. srv/cli s/GB: CPU "
      "of mezrecd / this client over the measured phase; other: CPUs busy "
      "with anything else.\n# RSS/str, peak/st: mezrecd KiB per stream over "
      "its RSS with connections up (VmRSS with all streams open; VmHWM).\n",
      opt.chunk, opt.mb, opt.per_channel, kWarmupChunks);
  std::printf(
      "%-12s %7s %4s %6s %6s %6s %6s %8s %7s %7s %5s %7s %7s %7s %7s %5s %7s "
      "%7s\n",
      "backend", "streams", "gzip", "MB", "open s", "secs", "MB/s", "frames/s",
      "srv s/GB", "cli s/GB", "other", "RSS/str", "peak/st", "p50 ms", "p99 ms",
      "n", "fin p50", "fin p99");
  std::fflush(stdout);
  int run_no = 0;
  for (bool gzip : opt.gzip) {
    for (int n : opt.streams) {
      for (Backend backend : opt.backends) {
        std::string dir = root + "/run" + std::to_string(run_no);
        Figures f = Run(opt, pool, dir, n, gzip, backend, &cloud, run_no++);
        double gb = f.mb / 1e3;
        std::printf(
            "%-12s %7d %4s %6.1f %6.2f %6.2f %6.1f %8.0f %8.2f %8.2f %5.2f "
            "%7.1f %7.1f %7.1f %7.1f %5zu %7.1f %7.1f",
            BackendName(backend), n, gzip ? "on" : "off", f.mb, f.open_secs,
            f.secs, f.mb / f.secs, f.frames / f.secs, f.cpu_s / gb,
            f.bench_cpu_s / gb, f.other_cpus, f.rss_kib, f.peak_kib, f.p50_ms,
            f.p99_ms, f.samples, f.fin_p50_ms, f.fin_p99_ms);
        if (f.missing > 0) {
          std::printf("  (%zu markers never seen)", f.missing);
        }
        std::printf("\n");
        std::fflush(stdout);
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
        std::filesystem::remove(dir + ".log", ec);
      }
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(root, ec);
  g_cloud = nullptr;
  return 0;
}

}  // namespace
}  // namespace mez::bench

int main(int argc, char** argv) { return mez::bench::Main(argc, argv); }
