// The real asciinema 2.2 player plays every cast AsciicastWriter produces,
// plain and gzipped, and prints exactly the "o" bytes that were written.
#include <gtest/gtest.h>

#include <random>

#include "libmez/record/asciicast_reader.h"
#include "libmez/record/asciicast_writer.h"
#include "libmez/record/gzip.h"
#include "libmez/record/utf8.h"
#include "libmez/util/file.h"
#include "tests/test_util.h"

namespace mez::record {
namespace {

using mez::testing::Run;
using mez::testing::ShellQuote;
using mez::testing::TempDir;

// A scripted terminal session: chunks of raw bytes, with what the viewer
// should see (the UTF-8-sanitized stream).
struct Script {
  std::string name;
  std::vector<std::pair<Direction, std::string>> chunks;
};

std::string Expected(const Script& s) {
  Utf8Stream out(Utf8Stream::Mode::kRaw), err(Utf8Stream::Mode::kRaw);
  std::string text;
  for (const auto& [stream, bytes] : s.chunks) {
    if (stream == Direction::kOut) out.Append(bytes, &text);
    if (stream == Direction::kErr) err.Append(bytes, &text);
  }
  out.Finish(&text);
  err.Finish(&text);
  return text;
}

std::vector<Script> Scripts() {
  std::vector<Script> v;
  v.push_back({"ansi",
               {{Direction::kOut, "$ ls --color\r\n"},
                {Direction::kOut,
                 "\x1b[0m\x1b[01;34mbin\x1b[0m  \x1b[01;32mrun.sh"
                 "\x1b[0m\r\n\x1b]0;user@host: ~\x07$ "}}});
  // Every multibyte width, split mid-character between chunks.
  v.push_back({"utf8",
               {{Direction::kOut, "za\xC5"},
                {Direction::kOut, "\xBC\xC3"},
                {Direction::kOut, "\xB3\xC5\x82\xC4\x87 \xE2\x82"},
                {Direction::kOut, "\xAC \xF0\x9F"},
                {Direction::kOut, "\x98\x80 \xE4\xB8\xAD\r\n"}}});
  v.push_back({"invalid",
               {{Direction::kOut, "\x83\x23\xF0\x90\x80\xC0\x21"},
                {Direction::kOut, "\xED\xA0\x80 \xFF\xFE\r\n"},
                {Direction::kOut, "tail\xE2\x82"}}});
  std::string controls;
  for (int c = 1; c < 0x20; ++c) {
    if (c != 0x1b) controls += static_cast<char>(c);
  }
  controls += "\"\\\x7f quoted \"x\" back\\slash\r\n";
  v.push_back({"controls", {{Direction::kOut, controls}}});
  v.push_back({"stderr",
               {{Direction::kOut, "out1 "},
                {Direction::kErr, "err \xC5"},
                {Direction::kOut, "out2 \xC4"},
                {Direction::kErr, "\xBC\r\n"},
                {Direction::kOut, "\x87\r\n"}}});
  // A long `cat` of a log, in 4 KiB reads.
  std::mt19937 rng(3);
  std::string log;
  while (log.size() < 300000) {
    log += "2026-11-22T10:00:" + std::to_string(rng() % 60) +
           "Z \x1b[33mWARN\x1b[0m request id=" + std::to_string(rng()) +
           " \xE2\x9C\x93 done\r\n";
  }
  Script cat{"cat", {}};
  for (size_t i = 0; i < log.size(); i += 4096) {
    cat.chunks.push_back({Direction::kOut, log.substr(i, 4096)});
  }
  v.push_back(cat);
  return v;
}

void WriteCast(const Script& s, std::unique_ptr<ByteSink> sink) {
  AsciicastHeader h;
  h.width = 120;
  h.height = 40;
  h.timestamp = 1763800000;
  h.term = "xterm-256color";
  h.command = s.name == "stderr" ? "make 2>&1" : "";
  auto w = AsciicastWriter::Create(std::move(sink), h);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  int64_t t = 0;
  for (const auto& [stream, bytes] : s.chunks) {
    t += 1500;
    ASSERT_TRUE((*w)->Write(t, stream, bytes).ok());
  }
  ASSERT_TRUE((*w)->Resize(t + 10, 100, 30).ok());
  ASSERT_TRUE((*w)->Exit(t + 20, 0).ok());
  ASSERT_TRUE((*w)->Close().ok());
}

std::string Play(const std::string& cmd_prefix, const std::string& arg) {
  auto r = Run(cmd_prefix + "setsid asciinema play -s 1000 -i 0.001 " + arg);
  EXPECT_EQ(r.exit_code, 0) << "asciinema failed on " << arg;
  return r.out;
}

TEST(AsciinemaTest, PlaysEveryPlainCastExactly) {
  ASSERT_TRUE(mez::testing::HaveProgram("asciinema"))
      << "asciinema is missing: run scripts/deps";
  TempDir dir;
  for (const Script& s : Scripts()) {
    std::string path = dir.File(s.name + ".cast");
    auto sink = FileSink::Create(path);
    ASSERT_TRUE(sink.ok());
    WriteCast(s, std::move(sink).value());
    EXPECT_EQ(Play("", ShellQuote(path)), Expected(s)) << s.name;
  }
}

TEST(AsciinemaTest, PlaysEveryGzippedCastExactly) {
  TempDir dir;
  for (const Script& s : Scripts()) {
    std::string path = dir.File(s.name + ".cast.gz");
    auto file = FileSink::Create(path);
    ASSERT_TRUE(file.ok());
    auto gz = GzipSink::Create(std::move(file).value());
    ASSERT_TRUE(gz.ok());
    WriteCast(s, std::move(gz).value());
    EXPECT_EQ(Play("zcat " + ShellQuote(path) + " | ", "-"), Expected(s))
        << s.name;
  }
}

// A .cast.gz cut at arbitrary bytes (as a crash leaves it, after the
// writer's periodic sync flushes) reads up to the cut.
TEST(AsciinemaTest, CutGzippedCastReadsUpToTheCut) {
  TempDir dir;
  std::string path = dir.File("live.cast.gz");
  auto file = FileSink::Create(path);
  ASSERT_TRUE(file.ok());
  auto gz = GzipSink::Create(std::move(file).value());
  ASSERT_TRUE(gz.ok());
  auto w = AsciicastWriter::Create(std::move(gz).value(), AsciicastHeader{});
  ASSERT_TRUE(w.ok());
  for (int i = 0; i < 400; ++i) {
    ASSERT_TRUE((*w)->Write(i * 1000, Direction::kOut,
                            "event " + std::to_string(i) + "\r\n")
                    .ok());
    if (i % 10 == 9) {
      ASSERT_TRUE((*w)->Flush().ok());  // As the owner's timer would.
    }
  }
  ASSERT_TRUE((*w)->Close().ok());
  std::string full = *ReadFile(path);
  std::mt19937 rng(11);
  for (int trial = 0; trial < 40; ++trial) {
    size_t cut = rng() % full.size();
    auto r = AsciicastReader::Open(OpenRecordingBytes(full.substr(0, cut)));
    if (!r.ok()) {  // Cut inside the header's deflate block: nothing yet.
      EXPECT_EQ(r.status().code(), Code::kDataLoss);
      continue;
    }
    AsciicastEvent e;
    int n = 0;
    for (;;) {
      auto more = (*r)->Next(&e);
      ASSERT_TRUE(more.ok())
          << "cut " << cut << ": " << more.status().ToString();
      if (!*more) break;
      ASSERT_EQ(e.data, "event " + std::to_string(n) + "\r\n");
      ++n;
    }
    // Everything up to the last flush before the cut is there.
    EXPECT_GE(n, static_cast<int>(cut * 400 / full.size()) - 30)
        << "cut " << cut;
  }
}

}  // namespace
}  // namespace mez::record
