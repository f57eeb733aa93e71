// seek_bench: how long a seek takes in `msh play` on a large recording, and
// what the seek index (keyframes) costs. Prints figures; asserts nothing
// (exits non-zero only when a step fails).
//
//   build/bench/seek_bench [--mib=1024] [--seeks=100] [--file=PATH]
//       [--no-play] [--no-own-index]
//
// Writes a plain asciicast file of --mib MiB to $TMPDIR (or reuses --file
// when it exists): log lines in colour, 10 ms apart, with a full-screen
// redraw (as top draws) every 200 events. Then drives the player in process
// (mez::play::Player, output discarded, a fake clock) as `msh play` does:
//
//   - first frame: Create and the first Tick;
//   - index: the background indexer reading the whole file into keyframes
//     (time until it is complete; playback goes on meanwhile, at one
//     second of recording per millisecond, unless --no-play);
//   - seeks: --seeks jumps to random times (fixed seed), forward and back,
//     each timed from the call to the redrawn frame: p50, p90, p99, max;
//   - memory: keyframes kept and their snapshot bytes (bounded by
//     PlayerOptions::checkpoint_budget).
//
// First, the stored index as mezrecd keeps it (docs/formats/seek-index.md):
// its build (what mezrecd's worker spends once per recording), its file
// size, then a player whose source serves it (read from disk and decoded,
// as mezrecd does before sending it): a far seek issued right after the
// first frame (it waits for the index), the time until the index is
// adopted, and random seeks. With --file the index is kept beside it
// (FILE.seek) and reused by the next run. --no-own-index skips the
// player's own indexing that follows.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "libmez/play/player.h"
#include "libmez/play/seek_index_file.h"
#include "libmez/play/source.h"
#include "libmez/util/clock.h"
#include "libmez/util/file.h"

namespace mez::bench {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

class NullSink : public record::ByteSink {
 public:
  Status Append(std::string_view data) override {
    n_ += data.size();
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  Status Close() override { return Status::Ok(); }
  uint64_t bytes_written() const override { return n_; }

 private:
  uint64_t n_ = 0;
};

// Appends `s` as a JSON string body (the generator writes only ASCII and
// ESC).
void AppendEscaped(std::string_view s, std::string* out) {
  for (char c : s) {
    if (c == '\033') {
      *out += "\\u001b";
    } else if (c == '\r') {
      *out += "\\r";
    } else if (c == '\n') {
      *out += "\\n";
    } else {
      out->push_back(c);
    }
  }
}

bool WriteRecording(const std::string& path, uint64_t bytes) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return false;
  std::fputs("{\"version\": 2, \"width\": 120, \"height\": 40}\n", f);
  std::mt19937 rng(7);
  uint64_t written = 0;
  std::string line;
  std::string data;
  for (uint64_t i = 0; written < bytes; ++i) {
    data.clear();
    if (i % 200 == 199) {  // A full screen, as top redraws it.
      data += "\033[H";
      for (int r = 0; r < 40; ++r) {
        data += "\033[" + std::to_string(31 + (r + i) % 7) + "m";
        for (int c = 0; c < 12; ++c) {
          data += std::to_string(rng() % 100000000) + " ";
        }
        data += "\033[K\r\n";
      }
      data += "\033[m";
    } else {
      static const char* kLevels[] = {
          "\033[32mINFO\033[m", "\033[33mWARN\033[m", "\033[31mERROR\033[m"};
      data += kLevels[rng() % 3];
      data += " request " + std::to_string(i) + " took " +
              std::to_string(rng() % 1000) + "ms path=/api/v1/items/" +
              std::to_string(rng()) + " user=u" + std::to_string(rng() % 97) +
              "\r\n";
    }
    line = "[" + std::to_string(i / 100) + "." +
           std::to_string(100 + i % 100).substr(1) + ", \"o\", \"";
    AppendEscaped(data, &line);
    line += "\"]\n";
    if (std::fwrite(line.data(), 1, line.size(), f) != line.size()) {
      std::fclose(f);
      return false;
    }
    written += line.size();
  }
  return std::fclose(f) == 0;
}

// A local file whose stored seek index is the file beside it, read and
// decoded on each ask as mezrecd does before serving it.
class StoredIndexSource : public play::RecordingSource {
 public:
  StoredIndexSource(std::unique_ptr<play::LocalFileSource> file,
                    std::string index_path)
      : file_(std::move(file)), index_path_(std::move(index_path)) {}
  Result<std::unique_ptr<record::ByteSource>> Open(uint64_t offset) override {
    return file_->Open(offset);
  }
  std::optional<uint64_t> size() override { return file_->size(); }
  play::SessionMeta meta() override { return file_->meta(); }
  Result<std::optional<std::string>> StoredSeekIndex() override {
    auto t0 = Clock::now();
    MEZ_ASSIGN_OR_RETURN(auto f, record::FileSource::Open(index_path_));
    MEZ_ASSIGN_OR_RETURN(std::string body,
                         play::DecodeSeekIndexFile(f.get(), std::nullopt, "b"));
    fetch_ms = Ms(Clock::now() - t0);
    return std::optional<std::string>(std::move(body));
  }
  // How long the last StoredSeekIndex took (read and decode).
  double fetch_ms = 0;

 private:
  std::unique_ptr<play::LocalFileSource> file_;
  std::string index_path_;
};

void Percentiles(const char* what, std::vector<double> v) {
  if (v.empty()) return;
  std::sort(v.begin(), v.end());
  auto at = [&](double p) {
    return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
  };
  std::printf("%-28s p50 %8.2f ms  p90 %8.2f ms  p99 %8.2f ms  max %8.2f ms\n",
              what, at(0.5), at(0.9), at(0.99), v.back());
}

// Builds the stored index of `file` as mezrecd would, then plays with it.
int RunStored(const std::string& file, int seeks, bool keep_index) {
  // An index left beside --file (FILE.seek) is reused; one built here is
  // kept beside --file too, and removed with a temporary recording.
  std::string index_path = file + ".seek";
  struct Cleanup {
    std::string path;
    bool on = false;
    ~Cleanup() {
      if (on) unlink(path.c_str());
    }
  } cleanup{index_path};
  int64_t end = 0;
  if (access(index_path.c_str(), R_OK) != 0) {
    auto src = play::LocalFileSource::Create(file);
    if (!src.ok()) return 1;
    auto t0 = Clock::now();
    auto index = play::BuildSeekIndex(
        src->get(), play::StoredSeekIndexOptions(), std::nullopt);
    if (!index.ok()) {
      std::fprintf(stderr, "seek_bench: %s\n",
                   index.status().ToString().c_str());
      return 1;
    }
    double build_s = Ms(Clock::now() - t0) / 1000;
    std::string body = play::SerializeSeekIndex(*index);
    auto t1 = Clock::now();
    auto stored = play::EncodeSeekIndexFile(body, std::nullopt, "b");
    if (!stored.ok()) return 1;
    double encode_ms = Ms(Clock::now() - t1);
    if (!AtomicWriteFile(index_path, *stored).ok()) return 1;
    cleanup.on = !keep_index;
    std::printf(
        "stored index build (mezrecd) %8.2f s  (%.0f MiB/s); %zu keyframes, "
        "body %.1f MiB, file %.1f MiB (encoded in %.0f ms)\n",
        build_s, static_cast<double>(index->stream_size) / 1048576 / build_s,
        index->checkpoints.size(), body.size() / 1048576.0,
        stored->size() / 1048576.0, encode_ms);
  } else {
    std::printf("reusing %s\n", index_path.c_str());
  }

  auto fresh = play::LocalFileSource::Create(file);
  if (!fresh.ok()) return 1;
  StoredIndexSource with_index(std::move(fresh).value(), index_path);
  NullSink sink;
  FakeClock clock;
  play::PlayerOptions o;
  o.clock = &clock;
  o.term_rows = 41;
  o.term_cols = 120;
  o.index_in_background = true;
  auto t0 = Clock::now();
  auto player = play::Player::Create(&with_index, o, &sink);
  if (!player.ok()) return 1;
  play::Player& p = **player;
  if (!p.Tick().ok()) return 1;
  std::printf("first frame (stored index)   %8.2f ms\n", Ms(Clock::now() - t0));
  auto s0 = Clock::now();
  if (!p.SeekToPercent(90).ok()) return 1;
  std::printf("seek to 90%% right after it   %8.2f ms  (waits for the index)\n",
              Ms(Clock::now() - s0));
  while (!p.index_complete()) usleep(1000);
  std::printf(
      "stored index adopted         %8.2f ms after Create (%s; %.1f ms of it "
      "reading and decoding the file)\n",
      Ms(Clock::now() - t0),
      p.index_from_store() ? "from the store" : "NOT adopted",
      with_index.fetch_ms);
  if (!p.index_from_store()) return 1;
  end = p.duration_us().value_or(0);
  std::mt19937_64 rng(42);
  std::vector<double> times;
  for (int i = 0; i < seeks; ++i) {
    int64_t target = static_cast<int64_t>(rng() % static_cast<uint64_t>(end));
    auto t = Clock::now();
    if (!p.SeekTo(target).ok()) return 1;
    times.push_back(Ms(Clock::now() - t));
  }
  Percentiles("random seek (stored index)", times);
  double total_from_create = Ms(Clock::now() - t0);
  times.clear();
  for (int pct : {100, 0, 50, 90, 10}) {
    auto t = Clock::now();
    if (!p.SeekToPercent(pct).ok()) return 1;
    times.push_back(Ms(Clock::now() - t));
  }
  Percentiles("End/Home/5/9/1 (stored)", times);
  std::printf("all of the above             %8.2f ms from Create\n",
              total_from_create);
  return 0;
}

int Run(int mib, int seeks, std::string file, bool play_while_indexing,
        bool own_index) {
  bool remove_after = false;
  if (file.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    file = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/seek_bench_" +
           std::to_string(getpid()) + ".cast";
    remove_after = true;
  }
  if (access(file.c_str(), R_OK) != 0) {
    auto t0 = Clock::now();
    if (!WriteRecording(file, static_cast<uint64_t>(mib) << 20)) {
      std::fprintf(stderr, "seek_bench: cannot write %s\n", file.c_str());
      return 1;
    }
    std::printf("wrote %s (%d MiB) in %.1f s\n", file.c_str(), mib,
                Ms(Clock::now() - t0) / 1000);
  }
  struct Cleanup {
    std::string path;
    bool on;
    ~Cleanup() {
      if (on) unlink(path.c_str());
    }
  } cleanup{file, remove_after};

  if (int rc = RunStored(file, seeks, !remove_after); rc != 0) return rc;
  if (!own_index) return 0;

  auto src = play::LocalFileSource::Create(file);
  if (!src.ok()) {
    std::fprintf(stderr, "seek_bench: %s\n", src.status().ToString().c_str());
    return 1;
  }
  NullSink sink;
  FakeClock clock;
  play::PlayerOptions o;
  o.clock = &clock;
  o.term_rows = 41;
  o.term_cols = 120;
  o.index_in_background = true;
  auto t0 = Clock::now();
  auto player = play::Player::Create(src->get(), o, &sink);
  if (!player.ok()) {
    std::fprintf(stderr, "seek_bench: %s\n",
                 player.status().ToString().c_str());
    return 1;
  }
  play::Player& p = **player;
  if (!p.Tick().ok()) return 1;
  std::printf("first frame                  %8.2f ms\n", Ms(Clock::now() - t0));
  // Playback goes on (1 s of recording per poll) while the index builds.
  while (!p.index_complete()) {
    if (play_while_indexing) {
      clock.Advance(1'000'000);
      if (!p.Tick().ok()) return 1;
    }
    usleep(1000);
  }
  double index_s = Ms(Clock::now() - t0) / 1000;
  int64_t end = p.duration_us().value_or(0);
  std::printf(
      "index complete               %8.2f s  (%.0f MiB/s; %lld s of "
      "recording)\n",
      index_s, mib / index_s, static_cast<long long>(end / 1'000'000));
  std::mt19937_64 rng(42);
  std::vector<double> times;
  for (int i = 0; i < seeks; ++i) {
    int64_t target = static_cast<int64_t>(rng() % static_cast<uint64_t>(end));
    auto s0 = Clock::now();
    Status s = p.SeekTo(target);
    if (!s.ok()) {
      std::fprintf(stderr, "seek_bench: %s\n", s.ToString().c_str());
      return 1;
    }
    times.push_back(Ms(Clock::now() - s0));
  }
  Percentiles("random seek (index built)", times);
  times.clear();
  for (int pct : {100, 0, 50, 90, 10}) {
    auto s0 = Clock::now();
    if (!p.SeekToPercent(pct).ok()) return 1;
    times.push_back(Ms(Clock::now() - s0));
  }
  Percentiles("End/Home/5/9/1 keys", times);
  uint64_t snap = 0;
  size_t n = 0;
  p.IndexStats(&n, &snap);
  std::printf(
      "keyframes                    %zu, %.1f MiB of snapshots "
      "(budget %.0f MiB)\n",
      n, snap / 1048576.0, o.checkpoint_budget / 1048576.0);
  return 0;
}

}  // namespace
}  // namespace mez::bench

int main(int argc, char** argv) {
  int mib = 1024;
  int seeks = 100;
  std::string file;
  bool play = true;
  bool own_index = true;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a.rfind("--mib=", 0) == 0) {
      mib = std::atoi(argv[i] + 6);
    } else if (a.rfind("--seeks=", 0) == 0) {
      seeks = std::atoi(argv[i] + 8);
    } else if (a == "--no-play") {
      play = false;
    } else if (a == "--no-own-index") {
      own_index = false;
    } else if (a.rfind("--file=", 0) == 0) {
      file = std::string(a.substr(7));
    } else {
      std::fprintf(stderr,
                   "usage: seek_bench [--mib=1024] [--seeks=100] "
                   "[--file=PATH] [--no-play] [--no-own-index]\n");
      return 2;
    }
  }
  if (mib < 1 || seeks < 1) return 2;
  return mez::bench::Run(mib, seeks, file, play, own_index);
}
