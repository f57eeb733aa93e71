// record_bench: throughput of the recording writers on one core, and how
// many output bytes each input byte costs. Prints figures; asserts nothing.
//
//   build/bench/record_bench [MiB] [CASE]
//     MiB: input per case (default 128); CASE: run only the cases whose
//     name contains it (e.g. "gzip+encrypted"), for profiling.
//
// The writers append to a sink that only counts bytes, so the figures are
// the writers' own CPU cost (the disk is measured by the ingest benchmark).
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "libmez/record/asciicast_writer.h"
#include "libmez/record/gzip.h"
#include "libmez/record/pcap_writer.h"
#include "libmez/record/seal.h"

namespace mez::record {
namespace {

class CountingSink : public ByteSink {
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

double CpuSeconds() {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

// Realistic terminal output: coloured `ls`, a compiler log, UTF-8 text and
// a long `cat` of an access log, in the 4 KiB reads a PTY delivers.
std::vector<std::string> TerminalChunks(size_t total) {
  std::mt19937 rng(42);
  std::string text;
  const char* words[] = {"build",  "zażółć", "gęślą",        "jaźń",
                         "résumé", "ok",     "\xE2\x9C\x93", "\xF0\x9F\x9A\x80",
                         "error:", "warn"};
  while (text.size() < total) {
    switch (rng() % 4) {
      case 0:
        text += "\x1b[0m\x1b[01;34mdir" + std::to_string(rng() % 100) +
                "\x1b[0m  \x1b[01;32mrun.sh\x1b[0m  notes.txt\r\n";
        break;
      case 1:
        text += "src/foo.cc:" + std::to_string(rng() % 900) +
                ":12: \x1b[1;35mwarning:\x1b[0m unused variable "
                "\xE2\x80\x98x\xE2\x80\x99 [-Wunused]\r\n";
        break;
      case 2:
        for (int i = 0; i < 12; ++i) {
          text += words[rng() % 10];
          text += ' ';
        }
        text += "\r\n";
        break;
      default:
        text += "10.0.0." + std::to_string(rng() % 255) +
                " - - [22/Nov/2026:10:00:00 +0000] \"GET /api/v1/items/" +
                std::to_string(rng()) + " HTTP/1.1\" 200 " +
                std::to_string(rng() % 5000) + " \"-\" \"curl/7.88\"\r\n";
    }
  }
  std::vector<std::string> chunks;
  for (size_t i = 0; i < total; i += 4096)
    chunks.push_back(text.substr(i, 4096));
  return chunks;
}

struct Figures {
  double mb_per_s;
  double ratio;
};

Figures RunAsciicast(const std::vector<std::string>& chunks, size_t total,
                     bool gzip, bool encrypt) {
  auto counter = std::make_unique<CountingSink>();
  CountingSink* count = counter.get();
  std::unique_ptr<ByteSink> sink = std::move(counter);
  AsciicastOptions opt;
  opt.gzip = gzip;
  if (encrypt) {
    opt.key = std::string(32, '\x11');
    opt.session_id = "bench";
  }
  AsciicastHeader h;
  double start = CpuSeconds();
  auto w = std::move(AsciicastWriter::Create(std::move(sink), h, opt).value());
  int64_t t = 0;
  for (const auto& c : chunks) {
    t += 1000;
    if (!w->Write(t, Direction::kOut, c).ok()) std::abort();
  }
  if (!w->Close().ok()) std::abort();
  double secs = CpuSeconds() - start;
  return {total / 1e6 / secs,
          static_cast<double>(count->bytes_written()) / total};
}

Figures RunPcap(size_t total, bool encrypt) {
  std::mt19937 rng(5);
  std::string block(64 * 1024, '\0');
  for (auto& c : block) c = static_cast<char>(rng());
  auto counter = std::make_unique<CountingSink>();
  CountingSink* count = counter.get();
  PcapWriterOptions opt;
  opt.start_wall_us = 1'763'800'000'000'000;
  if (encrypt) {
    std::string key(32, '\x11');
    opt.sealer = std::move(ChunkSealer::Create(key, "bench").value());
    opt.session_id = "bench";
    opt.key_id = KeyId(key);
  }
  double start = CpuSeconds();
  auto w =
      std::move(PcapWriter::Create(std::move(counter), std::move(opt)).value());
  int64_t t = opt.start_wall_us;
  auto flow = w->OpenFlow(t, "", 0, "db.internal", 5432).value();
  size_t done = 0;
  while (done < total) {
    t += 100;
    auto dir =
        (done / block.size()) % 4 == 0 ? Direction::kIn : Direction::kOut;
    if (!w->Data(flow, t, dir, block).ok()) std::abort();
    done += block.size();
  }
  if (!w->Close().ok()) std::abort();
  double secs = CpuSeconds() - start;
  return {done / 1e6 / secs,
          static_cast<double>(count->bytes_written()) / done};
}

}  // namespace
}  // namespace mez::record

int main(int argc, char** argv) {
  using namespace mez::record;
  size_t mib = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 128;
  if (mib == 0) {
    std::fprintf(stderr, "usage: record_bench [MiB of input per case]\n");
    return 2;
  }
  const char* only = argc > 2 ? argv[2] : "";
  auto selected = [&](const char* name) {
    return std::string(name).find(only) != std::string::npos;
  };
  size_t total = mib << 20;
  auto chunks = TerminalChunks(total);
  std::printf(
      "record_bench: %zu MiB of terminal output per case, 4 KiB "
      "chunks, one core (CPU time)\n",
      mib);
  std::printf("%-28s %10s %14s\n", "case", "MB/s", "out/in bytes");
  struct Case {
    const char* name;
    bool gzip, encrypt;
  } cases[] = {{"asciicast plain", false, false},
               {"asciicast gzip", true, false},
               {"asciicast encrypted", false, true},
               {"asciicast gzip+encrypted", true, true}};
  double plain = 0, gz = 0;
  for (const Case& c : cases) {
    if (!selected(c.name)) continue;
    Figures best{0, 0};
    for (int rep = 0; rep < 3; ++rep) {
      Figures f = RunAsciicast(chunks, total, c.gzip, c.encrypt);
      if (f.mb_per_s > best.mb_per_s) best = f;
    }
    std::printf("%-28s %10.1f %14.3f\n", c.name, best.mb_per_s, best.ratio);
    if (!c.gzip && !c.encrypt) plain = best.mb_per_s;
    if (c.gzip && !c.encrypt) gz = best.mb_per_s;
    if (c.encrypt) {
      double base = c.gzip ? gz : plain;
      std::printf("%-28s %9.1f%%\n", "  encryption overhead",
                  (base / best.mb_per_s - 1) * 100);
    }
  }
  for (bool enc : {false, true}) {
    if (!selected(enc ? "pcap encrypted" : "pcap plain")) continue;
    Figures best{0, 0};
    for (int rep = 0; rep < 3; ++rep) {
      Figures f = RunPcap(total, enc);
      if (f.mb_per_s > best.mb_per_s) best = f;
    }
    std::printf("%-28s %10.1f %14.3f\n", enc ? "pcap encrypted" : "pcap plain",
                best.mb_per_s, best.ratio);
  }
  return 0;
}
