#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "libmez/record/asciicast_reader.h"
#include "libmez/record/asciicast_writer.h"
#include "libmez/record/gzip.h"
#include "libmez/record/plain_cast.h"
#include "libmez/util/encoding.h"

namespace mez::record {
namespace {

using nlohmann::json;

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    out.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

std::unique_ptr<AsciicastWriter> NewWriter(StringSink** raw,
                                           AsciicastOptions opt = {},
                                           AsciicastHeader h = {}) {
  auto sink = std::make_unique<StringSink>();
  *raw = sink.get();
  auto w = AsciicastWriter::Create(std::move(sink), h, std::move(opt));
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return std::move(w).value();
}

std::vector<AsciicastEvent> ReadAll(const std::string& bytes,
                                    std::optional<std::string> key = {},
                                    Status* end = nullptr) {
  auto r = AsciicastReader::Open(OpenRecordingBytes(bytes), key);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  std::vector<AsciicastEvent> events;
  if (!r.ok()) return events;
  for (;;) {
    AsciicastEvent e;
    auto more = (*r)->Next(&e);
    if (!more.ok()) {
      if (end) *end = more.status();
      break;
    }
    if (!*more) break;
    events.push_back(e);
  }
  return events;
}

TEST(AsciicastTest, HeaderHasTheRequiredFields) {
  AsciicastHeader h;
  h.width = 132;
  h.height = 43;
  h.timestamp = 1700000000;
  h.command = "ls -l";
  h.term = "xterm-256color";
  StringSink* raw;
  auto w = NewWriter(&raw, {}, h);
  ASSERT_TRUE(w->Close().ok());
  json header = json::parse(Lines(raw->data())[0]);
  EXPECT_EQ(header["version"], 2);
  EXPECT_EQ(header["width"], 132);
  EXPECT_EQ(header["height"], 43);
  EXPECT_EQ(header["timestamp"], 1700000000);
  EXPECT_TRUE(header["timestamp"].is_number_integer());
  EXPECT_EQ(header["command"], "ls -l");
  EXPECT_EQ(header["env"]["TERM"], "xterm-256color");
}

TEST(AsciicastTest, RefusesImpossibleTerminalSizes) {
  AsciicastHeader h;
  h.width = 0;
  auto w = AsciicastWriter::Create(std::make_unique<StringSink>(), h);
  ASSERT_FALSE(w.ok());
  EXPECT_NE(w.status().message().find("0x24"), std::string::npos);
  StringSink* raw;
  auto ok = NewWriter(&raw);
  EXPECT_FALSE(ok->Resize(1, 70000, 10).ok());
}

TEST(AsciicastTest, EventsRoundTripWithTimesAndCodes) {
  StringSink* raw;
  AsciicastOptions opt;
  opt.record_input = true;
  auto w = NewWriter(&raw, opt);
  ASSERT_TRUE(w->Write(1'500'000, Direction::kOut, "hello\r\n").ok());
  ASSERT_TRUE(w->Write(1'600'001, Direction::kIn, "ls\r").ok());
  ASSERT_TRUE(w->Write(1'700'000, Direction::kErr, "err\n").ok());
  ASSERT_TRUE(w->Resize(2'000'000, 100, 30).ok());
  ASSERT_TRUE(w->Exit(2'500'000, 3).ok());
  ASSERT_TRUE(w->Close().ok());
  auto lines = Lines(raw->data());
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_EQ(lines[1], "[1.500000, \"o\", \"hello\\r\\n\"]");
  EXPECT_EQ(lines[2], "[1.600001, \"i\", \"ls\\r\"]");
  EXPECT_EQ(lines[4], "[2.000000, \"r\", \"100x30\"]");
  EXPECT_EQ(lines[5], "[2.500000, \"x\", \"3\"]");
  EXPECT_EQ(raw->data().back(), '\n');
  EXPECT_NE(raw->data().substr(raw->data().size() - 2), "\n\n");

  auto events = ReadAll(raw->data());
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].time_us, 1'500'000);
  EXPECT_EQ(events[0].data, "hello\r\n");
  EXPECT_EQ(events[1].code, "i");
  EXPECT_EQ(events[1].time_us, 1'600'001);
  EXPECT_EQ(events[2].code, "o");
  EXPECT_EQ(events[2].data, "err\n");
  EXPECT_EQ(events[3].data, "100x30");
  EXPECT_EQ(events[4].code, "x");
}

TEST(AsciicastTest, InputIsNotRecordedUnlessAskedFor) {
  StringSink* raw;
  auto w = NewWriter(&raw);
  ASSERT_TRUE(w->Write(1, Direction::kIn, "secret\r").ok());
  ASSERT_TRUE(w->Close().ok());
  EXPECT_EQ(raw->data().find("secret"), std::string::npos);
}

// A channel without a terminal: its output's newlines are stored as a
// terminal would show them; input, and a writer for a pty, are untouched.
TEST(AsciicastTest, OutputNewlinesBecomeCrLfWithoutATerminal) {
  for (bool translate : {false, true}) {
    StringSink* raw;
    AsciicastOptions opt;
    opt.translate_newlines = translate;
    opt.record_input = true;
    auto w = NewWriter(&raw, opt);
    ASSERT_TRUE(w->Write(1, Direction::kOut, "one\ntwo\r\n").ok());
    ASSERT_TRUE(w->Write(2, Direction::kErr, "err\n").ok());
    ASSERT_TRUE(w->Write(3, Direction::kOut, "no newline").ok());
    ASSERT_TRUE(w->Write(4, Direction::kIn, "typed\n").ok());
    ASSERT_TRUE(w->Close().ok());
    auto events = ReadAll(raw->data());
    ASSERT_EQ(events.size(), 4u) << raw->data();
    EXPECT_EQ(events[0].data, translate ? "one\r\ntwo\r\r\n" : "one\ntwo\r\n");
    EXPECT_EQ(events[1].data, translate ? "err\r\n" : "err\n");
    EXPECT_EQ(events[2].data, "no newline");
    EXPECT_EQ(events[3].data, "typed\n");
  }
}

TEST(AsciicastTest, TimesNeverDecrease) {
  StringSink* raw;
  auto w = NewWriter(&raw);
  ASSERT_TRUE(w->Write(5'000'000, Direction::kOut, "a").ok());
  ASSERT_TRUE(w->Write(4'000'000, Direction::kOut, "b").ok());
  ASSERT_TRUE(w->Write(-7, Direction::kOut, "c").ok());
  ASSERT_TRUE(w->Close().ok());
  auto events = ReadAll(raw->data());
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[1].time_us, 5'000'000);
  EXPECT_EQ(events[2].time_us, 5'000'000);
}

TEST(AsciicastTest, MonotonicClockTimesIgnoreWallSteps) {
  FakeClock clock;
  AsciicastOptions opt;
  opt.clock = &clock;
  StringSink* raw;
  auto w = NewWriter(&raw, opt);
  clock.Advance(250'000);
  ASSERT_TRUE(w->WriteNow(Direction::kOut, "a").ok());
  clock.StepWall(-3'600'000'000);  // NTP steps the wall clock back an hour.
  clock.Advance(250'000);
  ASSERT_TRUE(w->WriteNow(Direction::kOut, "b").ok());
  ASSERT_TRUE(w->Close().ok());
  auto events = ReadAll(raw->data());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].time_us, 250'000);
  EXPECT_EQ(events[1].time_us, 500'000);
}

TEST(AsciicastTest, SplitCharactersStayWholePerStream) {
  StringSink* raw;
  auto w = NewWriter(&raw);
  // stdout and stderr each split a character; they must not mix.
  ASSERT_TRUE(w->Write(1, Direction::kOut, "\xC5").ok());
  ASSERT_TRUE(w->Write(2, Direction::kErr, "\xE2\x82").ok());
  ASSERT_TRUE(w->Write(3, Direction::kOut, "\xBC").ok());
  ASSERT_TRUE(w->Write(4, Direction::kErr, "\xAC").ok());
  ASSERT_TRUE(w->Write(5, Direction::kOut, "\xC3").ok());  // Never ends.
  ASSERT_TRUE(w->Close().ok());
  auto events = ReadAll(raw->data());
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].data, "\xC5\xBC");
  EXPECT_EQ(events[1].data, "\xE2\x82\xAC");
  EXPECT_EQ(events[2].data, "\xEF\xBF\xBD");  // Flushed at close.
}

TEST(AsciicastTest, ReaderIgnoresATimestampOutOfRange) {
  // Found by the fuzzer: converting 1e300 to an integer is undefined.
  for (const char* ts : {"1e300", "-1e300", "1.5", "18446744073709551615"}) {
    std::string bytes = std::string("{\"version\": 2, \"width\": 80, ") +
                        "\"height\": 24, \"timestamp\": " + ts + "}\n";
    auto r = AsciicastReader::Open(OpenRecordingBytes(bytes));
    ASSERT_TRUE(r.ok()) << ts << ": " << r.status().ToString();
    EXPECT_EQ((*r)->info().timestamp, 0) << ts;
  }
  auto r = AsciicastReader::Open(
      OpenRecordingBytes("{\"version\": 2, \"width\": 80, \"height\": 24, "
                         "\"timestamp\": 1700000000}\n"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->info().timestamp, 1700000000);
}

TEST(AsciicastTest, ReaderToleratesACutLastLine) {
  StringSink* raw;
  auto w = NewWriter(&raw);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(w->Write(i * 1000, Direction::kOut,
                         "line " + std::to_string(i) + "\r\n")
                    .ok());
  }
  ASSERT_TRUE(w->Close().ok());
  const std::string& full = raw->data();
  size_t header_end = full.find('\n') + 1;
  for (size_t cut = header_end; cut <= full.size(); ++cut) {
    Status end;
    auto events = ReadAll(full.substr(0, cut), {}, &end);
    ASSERT_TRUE(end.ok()) << "cut " << cut << ": " << end.ToString();
    size_t whole_lines = 0;
    for (size_t i = header_end; i < cut; ++i) whole_lines += full[i] == '\n';
    // Every whole line is read; a cut line ending in ']' may be read too.
    ASSERT_GE(events.size(), whole_lines) << "cut " << cut;
    ASSERT_LE(events.size(), whole_lines + 1) << "cut " << cut;
    for (size_t i = 0; i < events.size(); ++i) {
      ASSERT_EQ(events[i].data, "line " + std::to_string(i) + "\r\n");
    }
  }
}

TEST(AsciicastTest, ReaderRejectsGarbageNamingTheLine) {
  const std::string header =
      "{\"version\": 2, \"width\": 80, \"height\": 24}\n";
  struct Case {
    std::string body;
    std::string expect;
  } cases[] = {
      {"[0.1, \"o\", \"a\"]\nnot json\n[0.2, \"o\", \"b\"]\n", "line 3"},
      {"[0.1, \"o\"]\n", "line 2"},
      {"[0.5, \"o\", \"a\"]\n[0.2, \"o\", \"b\"]\n", "backwards"},
      {"[-1, \"o\", \"a\"]\n", "out of range"},
      {"{\"a\": 1}\n", "line 2"},
  };
  for (const Case& c : cases) {
    Status end;
    ReadAll(header + c.body, {}, &end);
    EXPECT_EQ(end.code(), Code::kDataLoss) << c.body;
    EXPECT_NE(end.message().find(c.expect), std::string::npos) << end.message();
  }
  auto bad_header = AsciicastReader::Open(OpenRecordingBytes("garbage\n"));
  ASSERT_FALSE(bad_header.ok());
  EXPECT_NE(bad_header.status().message().find("line 1"), std::string::npos);
  auto v1 = AsciicastReader::Open(
      OpenRecordingBytes("{\"version\": 1, \"width\": 80, \"height\": 24}\n"));
  ASSERT_FALSE(v1.ok());
  EXPECT_NE(v1.status().message().find("version"), std::string::npos);
  auto no_width =
      AsciicastReader::Open(OpenRecordingBytes("{\"version\": 2}\n"));
  ASSERT_FALSE(no_width.ok());
  EXPECT_NE(no_width.status().message().find("width"), std::string::npos);
}

TEST(AsciicastTest, GzipLayerIsTransparentToTheReader) {
  auto file = std::make_unique<StringSink>();
  StringSink* raw = file.get();
  auto gz = GzipSink::Create(std::move(file));
  ASSERT_TRUE(gz.ok());
  auto w = AsciicastWriter::Create(std::move(gz).value(), AsciicastHeader{});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Write(10, Direction::kOut, "zipped\n").ok());
  ASSERT_TRUE((*w)->Close().ok());
  EXPECT_EQ(static_cast<unsigned char>(raw->data()[0]), 0x1f);
  auto events = ReadAll(raw->data());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "zipped\n");
}

class EncryptedAsciicastTest : public ::testing::Test {
 protected:
  std::string Record() {
    StringSink* raw;
    AsciicastOptions opt;
    opt.key = key_;
    opt.session_id = "sess-1";
    auto w = NewWriter(&raw, opt);
    for (int i = 0; i < 5; ++i) {
      EXPECT_TRUE(w->Write(i * 100'000, Direction::kOut,
                           "secret output " + std::to_string(i) + "\r\n")
                      .ok());
    }
    EXPECT_TRUE(w->Resize(600'000, 90, 30).ok());
    EXPECT_TRUE(w->Exit(700'000, 0).ok());
    EXPECT_TRUE(w->Close().ok());
    return raw->data();
  }
  std::string key_ = std::string(32, '\x42');
};

TEST_F(EncryptedAsciicastTest, StructureIsReadableButPayloadIsNot) {
  std::string file = Record();
  EXPECT_EQ(file.find("secret output"), std::string::npos);
  auto lines = Lines(file);
  json header = json::parse(lines[0]);
  EXPECT_EQ(header[kEncryptionHeaderKey]["scheme"], kEncryptionScheme);
  EXPECT_EQ(header[kEncryptionHeaderKey]["key_id"], KeyId(key_));
  json e = json::parse(lines[2]);
  EXPECT_EQ(e[0], 0.1);
  EXPECT_EQ(e[1], "o");
  // Without the key the events come back sealed, with their times.
  auto sealed = ReadAll(file);
  ASSERT_EQ(sealed.size(), 8u);
  EXPECT_EQ(sealed[1].time_us, 100'000);
  EXPECT_EQ(sealed[7].code, kFinalEventCode);
}

TEST_F(EncryptedAsciicastTest, RoundTripWithTheKey) {
  Status end;
  auto events = ReadAll(Record(), key_, &end);
  ASSERT_TRUE(end.ok()) << end.ToString();
  ASSERT_EQ(events.size(), 7u);
  EXPECT_EQ(events[3].data, "secret output 3\r\n");
  EXPECT_EQ(events[5].data, "90x30");
  EXPECT_EQ(events[6].data, "0");
}

TEST_F(EncryptedAsciicastTest, EachTamperCaseIsNamed) {
  std::string file = Record();
  auto lines = Lines(file);
  auto join = [](const std::vector<std::string>& ls) {
    std::string s;
    for (const auto& l : ls) s += l + "\n";
    return s;
  };
  auto expect = [&](const std::string& bytes, Integrity want,
                    const char* word) {
    auto r = AsciicastReader::Open(OpenRecordingBytes(bytes), key_);
    ASSERT_TRUE(r.ok());
    Status st;
    for (;;) {
      AsciicastEvent e;
      auto more = (*r)->Next(&e);
      if (!more.ok()) {
        st = more.status();
        break;
      }
      if (!*more) break;
    }
    EXPECT_EQ((*r)->integrity(), want) << st.ToString();
    EXPECT_EQ(st.code(), Code::kDataLoss);
    EXPECT_NE(st.message().find(word), std::string::npos) << st.message();
  };
  // A flipped byte inside a sealed payload.
  auto flipped = lines;
  json e = json::parse(flipped[2]);
  std::string sealed = *Base64Decode(e[2].get<std::string>());
  sealed[sealed.size() - 20] ^= 1;
  e[2] = Base64Encode(sealed);
  flipped[2] = e.dump();
  expect(join(flipped), Integrity::kTampered, "tamper");
  // A changed readable time.
  auto retimed = lines;
  retimed[3].replace(1, 8, "0.150000");
  expect(join(retimed), Integrity::kTampered, "tamper");
  // Dropped: a line removed.
  auto dropped = lines;
  dropped.erase(dropped.begin() + 3);
  expect(join(dropped), Integrity::kDropped, "drop");
  // Appended: a copy of an event after the final record.
  auto appended = lines;
  appended.push_back(lines[2]);
  expect(join(appended), Integrity::kAppended, "append");
  // Truncated: the final record is missing.
  auto truncated = lines;
  truncated.pop_back();
  expect(join(truncated), Integrity::kTruncated, "truncat");
  // Wrong key.
  auto r =
      AsciicastReader::Open(OpenRecordingBytes(file), std::string(32, '\x43'));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("key"), std::string::npos);
}

// Server-side playback reads OpenPlainCast and, having sent what it got,
// reads again. Past a chunk that fails authentication nothing more may
// come out: not the later (authentic) chunks, and with compressed payloads
// not the garbage they inflate to; every later Read repeats the tamper
// error (issue #14, item 11).
TEST_F(EncryptedAsciicastTest, PlainCastStopsForGoodAtAFailedChunk) {
  for (bool gzip : {false, true}) {
    SCOPED_TRACE(gzip ? "compressed" : "uncompressed");
    StringSink* raw;
    AsciicastOptions opt;
    opt.key = key_;
    opt.session_id = "sess-1";
    opt.gzip = gzip;
    auto w = NewWriter(&raw, opt);
    for (int i = 0; i < 6; ++i) {
      ASSERT_TRUE(w->Write(i * 100'000, Direction::kOut,
                           "line " + std::to_string(i) + " of output\r\n")
                      .ok());
    }
    ASSERT_TRUE(w->Close().ok());
    auto lines = Lines(raw->data());
    // Line 4 holds chunk 2: flip one ciphertext bit.
    json e = json::parse(lines[3]);
    std::string sealed = *Base64Decode(e[2].get<std::string>());
    sealed[25] ^= 0x10;
    e[2] = Base64Encode(sealed);
    lines[3] = e.dump();
    std::string file;
    for (const auto& l : lines) file += l + "\n";

    auto src = OpenPlainCast(OpenRecordingBytes(file), key_);
    ASSERT_TRUE(src.ok()) << src.status().ToString();
    std::string out;
    Status err;
    char buf[7];  // Small reads: the error must not depend on their size.
    for (int i = 0; i < 10000; ++i) {
      auto n = (*src)->Read(buf, sizeof(buf));
      if (!n.ok()) {
        err = n.status();
        break;
      }
      if (*n == 0) break;
      out.append(buf, *n);
    }
    EXPECT_EQ(err.code(), Code::kDataLoss) << out;
    EXPECT_EQ(err.message(),
              "line 4: chunk 2 failed authentication: the recording was "
              "tampered with (or the session id does not match)");
    EXPECT_NE(out.find("line 1 of output"), std::string::npos) << out;
    EXPECT_EQ(out.find("line 2 of output"), std::string::npos) << out;
    EXPECT_EQ(out.find("line 3 of output"), std::string::npos) << out;
    // Reading on (as the RPC does after sending the bytes before the
    // error) yields nothing new: the same error, every time.
    for (int i = 0; i < 3; ++i) {
      auto again = (*src)->Read(buf, sizeof(buf));
      ASSERT_FALSE(again.ok());
      EXPECT_EQ(again.status().message(), err.message());
    }
  }
}

// Whether a cast is encrypted comes from its parsed header: a plain
// recording whose command names the encryption key's field plays without a
// key (it used to be refused as "encrypted", so a user could make their
// own exec recording unplayable by the server).
TEST(PlainCastTest, CommandMentioningEncryptionIsStillPlain) {
  StringSink* raw;
  AsciicastHeader h;
  h.command = "echo mezite_encryption";
  auto w = NewWriter(&raw, {}, h);
  ASSERT_TRUE(w->Write(1000, Direction::kOut, "mezite_encryption\r\n").ok());
  ASSERT_TRUE(w->Close().ok());
  auto src = OpenPlainCast(OpenRecordingBytes(raw->data()), std::nullopt);
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  std::string out;
  char buf[4096];
  for (;;) {
    auto n = (*src)->Read(buf, sizeof(buf));
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (*n == 0) break;
    out.append(buf, *n);
  }
  EXPECT_EQ(out, raw->data());
}

}  // namespace
}  // namespace mez::record
