#include "libmez/play/play.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "libmez/play/event_reader.h"
#include "libmez/play/output.h"
#include "libmez/play/play_test_util.h"
#include "libmez/play/player.h"
#include "libmez/play/screen.h"
#include "libmez/play/source.h"
#include "libmez/play/timing.h"
#include "libmez/record/asciicast_reader.h"
#include "libmez/record/asciicast_writer.h"
#include "libmez/record/gzip.h"
#include "libmez/util/clock.h"

namespace mez::play {
namespace {

class TempFile {
 public:
  TempFile() {
    char tmpl[] = "/tmp/mez_play_test.XXXXXX";
    int fd = mkstemp(tmpl);
    EXPECT_GE(fd, 0);
    close(fd);
    path_ = tmpl;
  }
  ~TempFile() { unlink(path_.c_str()); }
  const std::string& path() const { return path_; }
  void Write(const std::string& data) const {
    FILE* f = std::fopen(path_.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    std::fwrite(data.data(), 1, data.size(), f);
    std::fclose(f);
  }
  std::string Read() const {
    std::string out;
    FILE* f = std::fopen(path_.c_str(), "rb");
    if (f == nullptr) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
    std::fclose(f);
    return out;
  }

 private:
  std::string path_;
};

std::string RunToString(RecordingSource* src, const BatchOptions& options,
                        const std::string& format, Status* status = nullptr) {
  record::StringSink sink;
  std::unique_ptr<Output> out;
  if (format == "text") out = NewTextOutput(&sink);
  if (format == "json") out = NewJsonOutput(&sink);
  if (format == "cast") {
    out = NewCastOutput(&sink,
                        options.speed != 1 || options.idle_cap_us.has_value());
  }
  Status s = RunBatch(src, options, out.get());
  if (status != nullptr) {
    *status = s;
  } else {
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  return sink.data();
}

// ---- The fast event parser ----

TEST(ParseEventFastTest, CommonShape) {
  double t = 0;
  std::string code, data;
  ASSERT_TRUE(internal::ParseEventFast(R"([12.000345, "o", "hi\r\n"])", &t,
                                       &code, &data));
  EXPECT_DOUBLE_EQ(t, 12.000345);
  EXPECT_EQ(code, "o");
  EXPECT_EQ(data, "hi\r\n");
  ASSERT_TRUE(internal::ParseEventFast(" [ 1e0 ,\t\"r\" , \"80x24\" ] \r", &t,
                                       &code, &data));
  EXPECT_DOUBLE_EQ(t, 1.0);
  EXPECT_EQ(code, "r");
  EXPECT_EQ(data, "80x24");
}

TEST(ParseEventFastTest, Escapes) {
  double t = 0;
  std::string code, data;
  ASSERT_TRUE(internal::ParseEventFast(
      R"([0, "o", "\"\\\/\b\f\n\r\t\u001b[0m\u00e9\u20ac\ud83d\ude00"])", &t,
      &code, &data));
  EXPECT_EQ(data, "\"\\/\b\f\n\r\t\x1b[0m\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  // Raw UTF-8 passes through.
  ASSERT_TRUE(
      internal::ParseEventFast("[0, \"o\", \"\xc5\xbc\"]", &t, &code, &data));
  EXPECT_EQ(data, "\xc5\xbc");
}

TEST(ParseEventFastTest, RejectsWhatJsonRejects) {
  double t = 0;
  std::string code, data;
  for (const char* bad : {
           R"([0, "o", "\ud83d"])",        // Lone high surrogate.
           R"([0, "o", "\ude00"])",        // Lone low surrogate.
           R"([0, "o", "\ud83d\u0041"])",  // High + non-low.
           R"([0, "o", "\x"])",            // Unknown escape.
           R"([0, "o", "\u12"])",          // Short \u.
           "[0, \"o\", \"a\x01\"]",        // Raw control character.
           R"([01, "o", "a"])",            // Leading zero.
           R"([.5, "o", "a"])",            // No integer part.
           R"([1., "o", "a"])",            // No fraction digits.
           R"([NaN, "o", "a"])",           //
           R"([1, "o", "a"] x)",           // Trailing garbage.
           R"([1, "o", "a")",              // Unclosed.
           R"([1, "o", "a", "b"])",        // Four elements.
           R"([1, "o", 5])",               // Data not a string.
           R"({"t": 1})",                  //
       }) {
    EXPECT_FALSE(internal::ParseEventFast(bad, &t, &code, &data)) << bad;
  }
}

// ---- EventReader ----

TEST(EventReaderTest, OffsetsAndRestart) {
  std::string cast = MakeCast({{0, "a"}, {1'000'000, "b"}, {2'500'000, "c"}});
  MemorySource src(cast);
  CastHeader header;
  auto reader = OpenEvents(&src, &header, 7);  // Tiny reads.
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ(header.info.width, 80);
  EXPECT_EQ(header.events_offset, cast.find('\n') + 1);
  std::vector<Event> events;
  Event e;
  while (true) {
    auto got = (*reader)->Next(&e);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    if (!*got) break;
    events.push_back(e);
  }
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].time_us, 1'000'000);
  EXPECT_EQ(events[1].data, "b");
  EXPECT_EQ(events[1].line, 3u);
  EXPECT_EQ(cast.substr(events[1].offset, 4), "[1.0");
  // A reader started at an event line goes on from there.
  auto stream = src.Open(events[1].offset);
  ASSERT_TRUE(stream.ok());
  EventReader again(std::move(stream).value(),
                    ReadPosition{events[1].offset, 2, 0});
  ASSERT_TRUE(*again.Next(&e));
  EXPECT_EQ(e.data, "b");
  EXPECT_EQ(e.line, 3u);
}

TEST(EventReaderTest, MalformedLineIsOneLineErrorNamingIt) {
  std::string cast = MakeCast({{0, "a"}, {1'000'000, "b"}});
  cast += "[2.0, \"o\", oops]\n[3.0, \"o\", \"d\"]\n";
  MemorySource src(cast);
  Status s;
  RunToString(&src, BatchOptions{}, "text", &s);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_EQ(s.message(), "line 4: invalid JSON");

  std::string backwards =
      MakeCast({{0, "a"}, {2'000'000, "b"}}) + "[1.0, \"o\", \"c\"]\n";
  MemorySource src2(backwards);
  RunToString(&src2, BatchOptions{}, "text", &s);
  EXPECT_EQ(s.message(), "line 4: event time goes backwards");

  std::string shape = MakeCast({{0, "a"}}) + "[1.0, \"o\"]\n";
  MemorySource src3(shape);
  RunToString(&src3, BatchOptions{}, "text", &s);
  EXPECT_EQ(s.message(), "line 3: not an event (expected [time, code, data])");

  MemorySource src4("{\"version\": 3}\n");
  RunToString(&src4, BatchOptions{}, "text", &s);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_NE(s.message().find("line 1"), std::string::npos);
  EXPECT_EQ(s.message().find('\n'), std::string::npos);
}

TEST(EventReaderTest, LineCutInHalfEndsQuietly) {
  std::string cast = MakeCast({{0, "a"}, {1'000'000, "b"}});
  cast += "[2.0, \"o\", \"unfin";
  MemorySource src(cast);
  EXPECT_EQ(RunToString(&src, BatchOptions{}, "text"), "ab");
}

// ---- Batch outputs ----

const Events kTimed = {{500'000, "a"},
                       {1'000'000, "b"},
                       {4'000'000, "c"},  // 3 s idle before.
                       {4'500'000, "d"}};

TEST(BatchTest, JsonTimesHalvedBySpeed2) {
  MemorySource src(MakeCast(kTimed));
  BatchOptions o;
  o.speed = 2;
  EXPECT_EQ(RunToString(&src, o, "json"),
            "{\"time\": 0.250000, \"code\": \"o\", \"data\": \"a\"}\n"
            "{\"time\": 0.500000, \"code\": \"o\", \"data\": \"b\"}\n"
            "{\"time\": 2.000000, \"code\": \"o\", \"data\": \"c\"}\n"
            "{\"time\": 2.250000, \"code\": \"o\", \"data\": \"d\"}\n");
}

TEST(BatchTest, JsonGapsCappedBySkipIdle) {
  MemorySource src(MakeCast(kTimed));
  BatchOptions o;
  o.idle_cap_us = 1'000'000;
  EXPECT_EQ(RunToString(&src, o, "json"),
            "{\"time\": 0.500000, \"code\": \"o\", \"data\": \"a\"}\n"
            "{\"time\": 1.000000, \"code\": \"o\", \"data\": \"b\"}\n"
            "{\"time\": 2.000000, \"code\": \"o\", \"data\": \"c\"}\n"
            "{\"time\": 2.500000, \"code\": \"o\", \"data\": \"d\"}\n");
  // The cap applies in recording time, before the speed divides.
  o.speed = 2;
  o.idle_cap_us = 250'000;
  EXPECT_EQ(RunToString(&src, o, "json"),
            "{\"time\": 0.125000, \"code\": \"o\", \"data\": \"a\"}\n"
            "{\"time\": 0.250000, \"code\": \"o\", \"data\": \"b\"}\n"
            "{\"time\": 0.375000, \"code\": \"o\", \"data\": \"c\"}\n"
            "{\"time\": 0.500000, \"code\": \"o\", \"data\": \"d\"}\n");
}

TEST(BatchTest, PlayJsonThroughDescriptor) {
  MemorySource src(MakeCast(kTimed));
  TempFile out;
  int fd = open(out.path().c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  PlayOptions o;
  o.format = Format::kJson;
  o.speed = 2;
  o.idle_cap_us = 1'000'000;
  o.out_fd = fd;
  ASSERT_TRUE(Play(&src, o).ok());
  close(fd);
  std::string json = out.Read();
  EXPECT_NE(json.find("{\"time\": 1.000000, \"code\": \"o\", \"data\": \"c\"}"),
            std::string::npos)
      << json;
  EXPECT_NE(json.find("{\"time\": 1.250000, \"code\": \"o\", \"data\": \"d\"}"),
            std::string::npos);
}

TEST(BatchTest, TextOfGzippedRecording) {
  Events events;
  std::string expected;
  for (int i = 0; i < 2000; ++i) {
    std::string line =
        "line " + std::to_string(i) + " \x1b[1mbold\x1b[0m é\r\n";
    events.push_back({i * 1000, line});
    expected += line;
  }
  record::AsciicastOptions opts;
  opts.gzip = true;
  TempFile f;
  f.Write(MakeCast(events, 80, 24, opts));
  auto src = LocalFileSource::Create(f.path());
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  EXPECT_EQ((*src)->kind(), LocalFileSource::Kind::kGzip);
  TempFile out;
  int fd = open(out.path().c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(PlayText(src->get(), fd).ok());
  close(fd);
  EXPECT_EQ(out.Read(), expected);
}

TEST(BatchTest, CastOutputIsValidAndRereadable) {
  MemorySource src(MakeCast(kTimed, 100, 30));
  BatchOptions o;
  o.speed = 2;
  o.idle_cap_us = 1'000'000;
  std::string cast = RunToString(&src, o, "cast");
  ASSERT_EQ(cast.back(), '\n');
  EXPECT_EQ(cast.find("\n\n"), std::string::npos);
  EXPECT_EQ(cast.rfind("{\"version\":2,\"width\":100,\"height\":30,", 0), 0u)
      << cast;
  auto reader = record::AsciicastReader::Open(
      std::make_unique<record::StringSource>(cast));
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_EQ((*reader)->info().width, 100);
  EXPECT_EQ((*reader)->info().env.at("TERM"), "xterm");
  std::vector<int64_t> times;
  std::string text;
  record::AsciicastEvent e;
  while (*(*reader)->Next(&e)) {
    times.push_back(e.time_us);
    text += e.data;
  }
  EXPECT_EQ(times,
            (std::vector<int64_t>{250'000, 500'000, 1'000'000, 1'250'000}));
  EXPECT_EQ(text, "abcd");
}

// ---- Local files ----

TEST(LocalFileSourceTest, ReopenAtOffsetPlainGzipEncrypted) {
  Events events;
  for (int i = 0; i < 300; ++i)
    events.push_back({i * 10'000, "x" + std::to_string(i)});
  std::string key(record::kKeySize, '\x42');
  record::AsciicastOptions gz;
  gz.gzip = true;
  record::AsciicastOptions enc;
  enc.key = key;
  enc.session_id = "s1";
  enc.gzip = true;  // Deflated payloads inside sealed chunks.
  for (auto [name, opts] : {std::pair{"plain", record::AsciicastOptions{}},
                            std::pair{"gzip", gz}, std::pair{"enc", enc}}) {
    SCOPED_TRACE(name);
    TempFile f;
    f.Write(MakeCast(events, 80, 24, opts));
    std::optional<std::string> k;
    if (std::string(name) == "enc") k = key;
    auto src = LocalFileSource::Create(f.path(), k);
    ASSERT_TRUE(src.ok()) << src.status().ToString();
    EXPECT_EQ((*src)->meta().id, f.path().substr(5));
    // The whole plain stream, then the same from an event line.
    std::string whole;
    {
      auto s = (*src)->Open(0);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      char buf[4096];
      for (size_t n; (n = *(*s)->Read(buf, sizeof(buf))) > 0;) {
        whole.append(buf, n);
      }
    }
    EXPECT_EQ(whole.find("mezite"), std::string::npos);
    size_t at = whole.find("[1.000000");
    ASSERT_NE(at, std::string::npos);
    auto s = (*src)->Open(at);
    ASSERT_TRUE(s.ok());
    std::string rest;
    char buf[4096];
    for (size_t n; (n = *(*s)->Read(buf, sizeof(buf))) > 0;)
      rest.append(buf, n);
    EXPECT_EQ(rest, whole.substr(at));
    EXPECT_EQ(RunToString(src->get(), BatchOptions{}, "text").substr(0, 6),
              "x0x1x2");
  }
}

TEST(LocalFileSourceTest, EncryptedWithoutKeyNamesTheSetting) {
  record::AsciicastOptions enc;
  enc.key = std::string(record::kKeySize, '\x01');
  enc.session_id = "s1";
  TempFile f;
  f.Write(MakeCast({{0, "secret"}}, 80, 24, enc));
  auto src = LocalFileSource::Create(f.path());
  ASSERT_FALSE(src.ok());
  EXPECT_EQ(src.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(src.status().message().find("MEZITE_RECORDING_ENC_KEY"),
            std::string::npos);
  auto wrong =
      LocalFileSource::Create(f.path(), std::string(record::kKeySize, '\x02'));
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.status().message().find("key"), std::string::npos);
}

TEST(LocalFileSourceTest, DurationFromTheTail) {
  TempFile f;
  f.Write(MakeCast({{0, "a"}, {83'250'000, "b"}}));
  auto src = LocalFileSource::Create(f.path());
  ASSERT_TRUE(src.ok());
  EXPECT_EQ((*src)->meta().duration_us, 83'250'000);
}

// ---- Screen ----

TEST(ScreenTest, SnapshotRedrawsTheSameScreen) {
  Screen a(5, 20);
  a.Feed("plain\r\n\x1b[1;31mbold red\x1b[0m \x1b[7mrev\x1b[0m\r\n");
  a.Feed("\x1b[38;5;200m256\x1b[48;2;1;2;3mrgb\x1b[0m wide:\xe4\xb8\xad!");
  a.Feed("\x1b[4;3Hat 4,3\x1b[32m");
  std::string snap = a.Snapshot();
  Screen b(1, 1);
  b.Load(snap, 5, 20);
  for (int r = 0; r < 5; ++r) EXPECT_EQ(a.RowText(r), b.RowText(r)) << r;
  EXPECT_EQ(b.RowText(2), "256rgb wide:\xe4\xb8\xad!");
  EXPECT_EQ(b.Snapshot(), snap);
  int row, col;
  b.cursor(&row, &col);
  EXPECT_EQ(row, 3);
  EXPECT_EQ(col, 8);
}

TEST(ScreenTest, AltScreenAndClipping) {
  Screen a(4, 10);
  a.Feed("main\x1b[?1049h\x1b[Halt text here");
  EXPECT_TRUE(a.altscreen());
  std::string snap = a.Snapshot(2, 5);
  EXPECT_NE(snap.find("\x1b[?1049h"), std::string::npos);
  EXPECT_NE(snap.find("alt t"), std::string::npos);
  EXPECT_EQ(snap.find("alt te"), std::string::npos);
}

// ---- Interactive player ----

TEST(PlayerTest, RealTimingWithFakeClock) {
  PlayerRig rig(SecondsCast(), {}, 59'000'000);
  EXPECT_EQ(rig.Tick(), 1'000'000);  // Until e1 is due.
  std::string out = rig.TakeOut();
  EXPECT_EQ(rig.ViewRow(0), "e0");
  EXPECT_EQ(out.find("e1"), std::string::npos);
  EXPECT_NE(out.find("\u25b6 00:00 / 00:59  \u00d71"), std::string::npos);
  EXPECT_EQ(rig.ViewRow(24).find(" \u25b6 00:00 / 00:59  \u00d71"), 0u);
  rig.clock.Advance(999'999);
  rig.Tick();
  EXPECT_EQ(rig.TakeOut().find("e1"), std::string::npos);
  rig.clock.Advance(1);
  rig.Tick();
  rig.TakeOut();
  EXPECT_EQ(rig.ViewRow(0), "e0");
  EXPECT_EQ(rig.ViewRow(1), "e1");
  EXPECT_EQ(rig.ViewRow(2), "");
  EXPECT_EQ(rig.player->position_us(), 1'000'000);
}

TEST(PlayerTest, PauseSpeedAndQuitKeys) {
  PlayerRig rig(SecondsCast(), {}, 59'000'000);
  rig.Tick();
  rig.clock.Advance(2'000'000);
  rig.Tick();
  ASSERT_TRUE(rig.player->HandleInput(" ").ok());
  EXPECT_TRUE(rig.player->paused());
  rig.clock.Advance(10'000'000);
  rig.TakeOut();
  rig.Tick();
  std::string out = rig.TakeOut();
  EXPECT_EQ(out.find("e3"), std::string::npos);
  EXPECT_EQ(rig.player->position_us(), 2'000'000);
  EXPECT_EQ(rig.player->StatusText(), "\u2016 00:02 / 00:59  \u00d71");
  ASSERT_TRUE(rig.player->HandleInput(" +").ok());  // Resume at 2x.
  EXPECT_FALSE(rig.player->paused());
  EXPECT_EQ(rig.player->speed(), 2);
  rig.clock.Advance(1'000'000);
  rig.Tick();
  EXPECT_EQ(rig.player->position_us(), 4'000'000);
  EXPECT_NE(rig.TakeOut().find("e4"), std::string::npos);
  ASSERT_TRUE(rig.player->HandleInput("---").ok());
  EXPECT_EQ(rig.player->speed(), 0.25);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(rig.player->HandleInput("-").ok());
  EXPECT_EQ(rig.player->speed(), kMinSpeed);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(rig.player->HandleInput("+").ok());
  EXPECT_EQ(rig.player->speed(), kMaxSpeed);
  ASSERT_TRUE(rig.player->HandleInput("q").ok());
  EXPECT_TRUE(rig.player->quit());
  EXPECT_EQ(rig.Tick(), -1);
}

TEST(PlayerTest, KeysFirstShowWhatFellDue) {
  PlayerRig rig(SecondsCast());
  rig.Tick();
  rig.TakeOut();
  rig.clock.Advance(2'500'000);  // No Tick: the key comes first.
  ASSERT_TRUE(rig.player->HandleInput(" ").ok());
  std::string out = rig.TakeOut();
  EXPECT_EQ(rig.ViewRow(1), "e1") << out;
  EXPECT_EQ(rig.ViewRow(2), "e2") << out;
  EXPECT_EQ(out.find("e3"), std::string::npos);
  EXPECT_EQ(rig.player->position_us(), 2'500'000);
}

TEST(PlayerTest, ArrowKeysSeekAndRedraw) {
  PlayerRig rig(SecondsCast());
  rig.Tick();
  rig.clock.Advance(3'000'000);
  rig.Tick();
  rig.TakeOut();
  // Right arrow, split across two reads.
  ASSERT_TRUE(rig.player->HandleInput("\x1b[").ok());
  EXPECT_EQ(rig.player->position_us(), 3'000'000);
  ASSERT_TRUE(rig.player->HandleInput("C").ok());
  EXPECT_EQ(rig.player->position_us(), 8'000'000);
  std::string redraw = rig.TakeOut();
  EXPECT_EQ(redraw.rfind("\x1b[0m\x1b[H\x1b[2J", 0), 0u) << redraw;
  EXPECT_NE(redraw.find("e8"), std::string::npos);
  EXPECT_EQ(redraw.find("e9"), std::string::npos);
  EXPECT_EQ(rig.player->screen().RowText(8), "e8");
  // Left twice (application cursor form too): back to 0, screen as then.
  ASSERT_TRUE(rig.player->HandleInput("\x1b[D\x1bOD").ok());
  EXPECT_EQ(rig.player->position_us(), 0);
  EXPECT_EQ(rig.player->screen().RowText(0), "e0");
  EXPECT_EQ(rig.player->screen().RowText(1), "");
  rig.clock.Advance(1'000'000);
  rig.Tick();
  EXPECT_EQ(rig.player->screen().RowText(1), "e1");
}

TEST(PlayerTest, SeekPastTheEndFinishes) {
  PlayerRig rig(SecondsCast(8));
  rig.Tick();
  ASSERT_TRUE(rig.player->HandleInput("\x1b[C\x1b[C").ok());
  EXPECT_EQ(rig.player->position_us(), 7'000'000);
  EXPECT_EQ(rig.player->duration_us(), 7'000'000);
  EXPECT_EQ(rig.Tick(), -1);
  EXPECT_FALSE(rig.player->quit());
}

TEST(PlayerTest, SkipIdleCapsRealTimeGaps) {
  PlayerOptions o;
  o.idle_cap_us = 1'000'000;
  PlayerRig rig(MakeCast({{0, "a"}, {60'000'000, "b"}}), o);
  rig.Tick();
  rig.clock.Advance(1'000'000);
  rig.Tick();
  rig.TakeOut();
  EXPECT_EQ(rig.ViewRow(0), "ab");
}

// A seek back re-reads at most one checkpoint interval, never from 0.
TEST(PlayerTest, SeekBackReadsFromTheNearestCheckpoint) {
  Events events;
  for (int i = 0; i < 600; ++i) {  // 60 s, 100 ms apart, ~1 KiB each.
    events.push_back({i * 100'000, "row " + std::to_string(i) + " " +
                                       std::string(1000, 'x') + "\r\n"});
  }
  std::string cast = MakeCast(events);
  PlayerOptions o;
  o.read_size = 4096;
  PlayerRig rig(cast, o);
  rig.Tick();
  for (int i = 0; i < 500; ++i) {  // Play to 50 s in real time.
    rig.clock.Advance(100'000);
    rig.Tick();
  }
  EXPECT_EQ(rig.player->position_us(), 50'000'000);
  const auto& cps = rig.player->checkpoints();
  ASSERT_GE(cps.size(), 10u);
  for (size_t i = 1; i < cps.size(); ++i) {
    EXPECT_LE(cps[i].time_us - cps[i - 1].time_us, 5'000'000);
  }
  uint64_t interval_bytes = 51 * 1020;  // 5 s of events and one more.
  for (int64_t target : {45'000'000, 32'300'000, 1'000'000, 47'000'000}) {
    SCOPED_TRACE(target);
    rig.src.bytes_read = 0;
    rig.src.opened_at.clear();
    ASSERT_TRUE(rig.player->SeekTo(target).ok());
    EXPECT_EQ(rig.player->position_us(), target);
    ASSERT_EQ(rig.src.opened_at.size(), 1u);
    if (target >= 5'000'000) {
      EXPECT_GT(rig.src.opened_at[0], 0u);
    }
    EXPECT_LE(rig.src.bytes_read, interval_bytes + o.read_size);
    // The screen is what playing straight to the target shows.
    PlayerRig straight(cast);
    straight.Tick();
    straight.clock.Advance(target);
    straight.Tick();
    for (int r = 0; r < 24; ++r) {
      EXPECT_EQ(rig.player->screen().RowText(r),
                straight.player->screen().RowText(r))
          << "row " << r;
    }
  }
}

TEST(PlayerTest, ForwardSeekUsesCheckpointsAheadAfterGoingBack) {
  PlayerRig rig(SecondsCast(60, 100'000));  // 6 s.
  PlayerOptions o;
  rig.Tick();
  ASSERT_TRUE(rig.player->SeekTo(5'900'000).ok());  // Index the whole file.
  ASSERT_TRUE(rig.player->SeekTo(0).ok());
  rig.src.opened_at.clear();
  ASSERT_TRUE(rig.player->SeekTo(5'500'000).ok());
  ASSERT_EQ(rig.src.opened_at.size(), 1u);
  EXPECT_GT(rig.src.opened_at[0], 0u);
  EXPECT_EQ(rig.player->screen().RowText(22), "e55");
}

TEST(PlayerTest, StatusWithoutUtf8AndSizeNote) {
  PlayerOptions o;
  o.utf8 = false;
  PlayerRig rig(MakeCast({{0, "a"}}, 100, 30), o);
  EXPECT_EQ(rig.player->StatusText(),
            "> 00:00 / --:--  x1  [100x30 > 80x24: h/j/k/l pan]");
  rig.Tick();  // The end: now the length is known.
  EXPECT_EQ(rig.player->StatusText(),
            "> 00:00 / 00:00  x1  [100x30 > 80x24: h/j/k/l pan]");
}

// A recording may claim any size up to 65535x65535 (ingest and the header
// rules accept it); the player refuses sizes no terminal has before the
// emulator allocates for them, naming the size, the limit and the line.
TEST(PlayerTest, HostileHeaderSizeIsRefusedBeforeAllocating) {
  for (auto [w, h] : {std::pair{65535, 65535}, std::pair{4096, 4096},
                      std::pair{65535, 1}, std::pair{1, 65535}}) {
    SCOPED_TRACE(std::to_string(w) + "x" + std::to_string(h));
    MemorySource src(MakeCast({{0, "hi\r\n"}}, w, h));
    record::StringSink out;
    FakeClock clock;
    PlayerOptions o;
    o.clock = &clock;
    auto p = Player::Create(&src, o, &out);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(p.status().code(), Code::kDataLoss);
    const std::string& m = p.status().message();
    EXPECT_EQ(m.rfind("line 1: terminal size " + std::to_string(w) + "x" +
                          std::to_string(h),
                      0),
              0u)
        << m;
    EXPECT_NE(m.find("at most 4096 columns, 4096 rows and 1048576 cells"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("--format=text"), std::string::npos) << m;
    EXPECT_EQ(out.data(), "");
  }
  // The largest sizes within the limits play.
  for (auto [w, h] :
       {std::pair{1920, 540}, std::pair{4096, 256}, std::pair{256, 4096}}) {
    PlayerRig rig(MakeCast({{0, "edge"}}, w, h));
    ASSERT_NE(rig.player, nullptr);
    EXPECT_EQ(rig.player->screen().cols(), w);
    EXPECT_EQ(rig.player->screen().rows(), h);
    EXPECT_EQ(rig.Tick(), -1);
    EXPECT_EQ(rig.player->screen().RowText(0), "edge");
  }
}

// The same for a resize event in the middle of a recording: what came
// before is shown, then playback stops at the event's line.
TEST(PlayerTest, HostileResizeEventStopsPlaybackAtItsLine) {
  std::string cast =
      "{\"version\": 2, \"width\": 80, \"height\": 24}\n"
      "[0.5, \"o\", \"before\"]\n"
      "[1.0, \"r\", \"65535x65535\"]\n"
      "[1.5, \"o\", \"after\"]\n";
  PlayerRig rig(cast);
  rig.clock.Advance(2'000'000);
  auto r = rig.player->Tick();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDataLoss);
  EXPECT_EQ(r.status().message().rfind("line 3: terminal size 65535x65535", 0),
            0u)
      << r.status().message();
  std::string out = rig.TakeOut();
  EXPECT_NE(out.find("before"), std::string::npos);
  EXPECT_EQ(out.find("after"), std::string::npos);
  EXPECT_EQ(rig.player->screen().cols(), 80);
  EXPECT_EQ(rig.player->screen().rows(), 24);

  // A seek reads the same event and stops the same way.
  PlayerRig seeker(cast);
  Status s = seeker.player->SeekTo(1'200'000);
  EXPECT_EQ(s.code(), Code::kDataLoss) << s.ToString();

  // Sizes that do not parse are ignored (as asciinema does); a sane
  // resize applies.
  PlayerRig sane(
      "{\"version\": 2, \"width\": 80, \"height\": 24}\n"
      "[0.1, \"r\", \"0x0\"]\n"
      "[0.2, \"r\", \"99999999999x1\"]\n"
      "[0.3, \"r\", \"-5x10\"]\n"
      "[0.4, \"r\", \"132x43\"]\n");
  sane.clock.Advance(1'000'000);
  EXPECT_EQ(sane.Tick(), -1);
  EXPECT_EQ(sane.player->screen().cols(), 132);
  EXPECT_EQ(sane.player->screen().rows(), 43);
}

// A recording can ask for a large snapshot at every checkpoint (a full
// screen of changing colours, an event every interval): the snapshots
// together stay within their budget, and seeks still land on the screen
// that playing straight there shows.
TEST(PlayerTest, CheckpointSnapshotsStayWithinTheirBudget) {
  Events events;
  for (int i = 0; i < 200; ++i) {
    std::string screen = "\033[H";
    for (int r = 0; r < 24; ++r) {
      for (int c = 0; c < 80; ++c) {
        screen += "\033[" + std::to_string(31 + (r + c + i) % 7) + "m" +
                  static_cast<char>('a' + (r * 80 + c + i) % 26);
      }
    }
    events.push_back({int64_t{i} * 1'000'000, screen});
  }
  std::string cast = MakeCast(events);
  PlayerOptions o;
  o.checkpoint_interval_us = 1'000'000;
  o.checkpoint_budget = 64 << 10;
  PlayerRig rig(cast, o);
  size_t one_snapshot = 0;
  size_t most = 0;
  for (int i = 0; i < 199; ++i) {  // Up to the last event, not past it.
    rig.Tick();
    rig.clock.Advance(1'000'000);
    size_t total = 0;
    for (const auto& cp : rig.player->checkpoints()) {
      total += cp.snapshot.size();
      one_snapshot = std::max(one_snapshot, cp.snapshot.size());
    }
    most = std::max(most, total);
  }
  ASSERT_GT(one_snapshot, 10'000u);  // The test makes big snapshots.
  EXPECT_LE(most, o.checkpoint_budget + one_snapshot);
  const auto& cps = rig.player->checkpoints();
  ASSERT_GE(cps.size(), 3u);
  for (size_t i = 1; i < cps.size(); ++i) {
    EXPECT_LE(cps[i - 1].time_us, cps[i].time_us);
    EXPECT_LT(cps[i - 1].at.offset, cps[i].at.offset);
  }
  ASSERT_FALSE(rig.player->finished());
  for (int64_t target : {150'500'000, 3'200'000, 77'000'000, 197'000'000}) {
    SCOPED_TRACE(target);
    ASSERT_TRUE(rig.player->SeekTo(target).ok());
    PlayerRig straight(cast);
    straight.Tick();
    straight.clock.Advance(target);
    while (straight.Tick() == 0) {  // 0: more output is due at once.
    }
    for (int r = 0; r < 24; ++r) {
      EXPECT_EQ(rig.player->screen().RowText(r),
                straight.player->screen().RowText(r))
          << "row " << r;
    }
  }
}

// The emulator itself never allocates beyond the limits, whatever it is
// asked for.
TEST(ScreenTest, SizesAreClampedIntoTheLimits) {
  Screen big(65535, 65535);
  EXPECT_LE(big.cols(), kMaxScreenCols);
  EXPECT_LE(big.rows(), kMaxScreenRows);
  EXPECT_LE(int64_t{big.cols()} * big.rows(), kMaxScreenCells);
  Screen small(24, 80);
  small.Resize(65535, 65535);
  EXPECT_LE(int64_t{small.cols()} * small.rows(), kMaxScreenCells);
  small.Feed("still works");
  EXPECT_EQ(small.RowText(0), "still works");
  Screen tiny(0, -3);
  EXPECT_EQ(tiny.rows(), 1);
  EXPECT_EQ(tiny.cols(), 1);
  EXPECT_TRUE(CheckScreenSize(1920, 540).ok());
  EXPECT_FALSE(CheckScreenSize(2048, 1024).ok());  // 2^21 cells.
}

TEST(PlayerTest, BannerLeavesOutWhatIsUnknown) {
  EXPECT_EQ(Banner({"s1", "alice", "web1", {}}),
            "Playing session s1 (user: alice, host: web1)");
  EXPECT_EQ(Banner({"f.cast", "", "", {}}), "Playing session f.cast");
}

TEST(PlayTest, ParseFormat) {
  EXPECT_EQ(*ParseFormat("json"), Format::kJson);
  EXPECT_EQ(ParseFormat("xml").status().code(), Code::kInvalidArgument);
}

TEST(PlayTest, PtyNeedsATerminal) {
  MemorySource src(MakeCast({{0, "a"}}));
  TempFile out;
  int fd = open(out.path().c_str(), O_WRONLY);
  PlayOptions o;
  o.out_fd = fd;
  Status s = Play(&src, o);
  close(fd);
  EXPECT_EQ(s.code(), Code::kFailedPrecondition);
  EXPECT_NE(s.message().find("--format=text"), std::string::npos);
}

}  // namespace
}  // namespace mez::play
