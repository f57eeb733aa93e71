// The spool format: writer and reader, the chunk record's byte layout, torn
// tails, malformed files and a failing disk.
#include "libmez/spool/spool.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <string>
#include <vector>

#include "libmez/util/file.h"

namespace mez::spool {
namespace {

namespace pb = mezite::v1;

pb::RecordFrame Header(const std::string& id) {
  pb::RecordFrame f;
  auto* h = f.mutable_header();
  h->set_session_id(id);
  h->set_connection_id("conn1");
  h->set_started_at_us(1'700'000'000'000'000);
  h->set_kind(pb::SESSION_KIND_SHELL);
  h->set_width(80);
  h->set_height(24);
  h->set_node("web-01");
  h->set_login("root");
  return f;
}

pb::RecordFrame Chunk(int64_t us, const std::string& data,
                      pb::Direction direction = pb::DIRECTION_OUT) {
  pb::RecordFrame f;
  f.mutable_chunk()->set_offset_us(us);
  f.mutable_chunk()->set_direction(direction);
  f.mutable_chunk()->set_data(data);
  return f;
}

pb::RecordFrame Exit(int64_t us, int status) {
  pb::RecordFrame f;
  f.mutable_exit()->set_offset_us(us);
  f.mutable_exit()->set_exit_status(status);
  return f;
}

// The record a spool holds for `frame`: its length, then its bytes.
std::string Record(const pb::RecordFrame& frame) {
  std::string bytes = frame.SerializeAsString();
  std::string rec(4, '\0');
  for (int i = 0; i < 4; ++i)
    rec[i] = static_cast<char>(bytes.size() >> (8 * i));
  return rec + bytes;
}

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mez_spool_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    ASSERT_EQ(std::system(("rm -rf " + dir_).c_str()), 0);
  }
  // A spool of a short shell session; returns its path.
  std::string MakeSpool(const std::string& id, bool end = true) {
    std::string path = dir_ + "/" + id + ".spool";
    auto w = SpoolWriter::Create(path, Header(id));
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_TRUE((*w)->Append(Chunk(1000, "$ echo hi\r\nhi\r\n")).ok());
    EXPECT_TRUE((*w)->Append(Chunk(2500, "\033[31mred\033[0m\r\n")).ok());
    EXPECT_TRUE((*w)->Append(Exit(3000, 0)).ok());
    if (end) {
      EXPECT_TRUE((*w)->End().ok());
    }
    return path;
  }

  std::string dir_;
};

TEST_F(SpoolTest, WriterAndReaderRoundTrip) {
  std::string path = MakeSpool("s1");
  auto r = SpoolReader::Open(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  pb::RecordFrame f;
  std::vector<pb::RecordFrame::FrameCase> cases;
  while (true) {
    auto more = (*r)->Next(&f);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    cases.push_back(f.frame_case());
  }
  EXPECT_EQ(cases, (std::vector<pb::RecordFrame::FrameCase>{
                       pb::RecordFrame::kHeader, pb::RecordFrame::kChunk,
                       pb::RecordFrame::kChunk, pb::RecordFrame::kExit}));
  EXPECT_TRUE((*r)->clean_end());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ((*r)->good_bytes(), static_cast<uint64_t>(st.st_size));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// Chunk records are written from the frame's data without serializing the
// frame; the file must hold exactly what protobuf would have written,
// whatever the offset (zero, negative, multi-byte), direction (zero is
// left out) and data size (empty, one varint byte, several).
TEST_F(SpoolTest, ChunkRecordsAreTheFramesOwnBytes) {
  std::vector<pb::RecordFrame> frames = {
      Chunk(0, "x"),
      Chunk(1, ""),
      Chunk(-1, "neg", pb::DIRECTION_IN),
      Chunk(127, std::string(127, 'a'), pb::DIRECTION_UNSPECIFIED),
      Chunk(128, std::string(128, 'b'), pb::DIRECTION_ERR),
      Chunk(int64_t{1} << 40, std::string(300000, '\0')),
      Chunk(INT64_MIN, std::string(kMaxChunkBytes, 'z')),
  };
  std::string path = dir_ + "/bytes.spool";
  auto w = SpoolWriter::Create(path, Header("bytes"));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::string want = *ReadFile(path);
  for (const pb::RecordFrame& f : frames) {
    EXPECT_EQ(ChunkRecordHead(f.chunk()) + f.chunk().data(), Record(f));
    ASSERT_TRUE((*w)->Append(f).ok());
    want += Record(f);
    EXPECT_EQ((*w)->size(), want.size());
  }
  ASSERT_TRUE((*w)->End().ok());
  want += std::string(4, '\0');
  EXPECT_EQ(*ReadFile(path), want);

  auto r = SpoolReader::Open(path);
  ASSERT_TRUE(r.ok());
  pb::RecordFrame f;
  ASSERT_TRUE(*(*r)->Next(&f));  // The header.
  for (const pb::RecordFrame& sent : frames) {
    ASSERT_TRUE(*(*r)->Next(&f));
    EXPECT_EQ(f.SerializeAsString(), sent.SerializeAsString());
  }
  EXPECT_FALSE(*(*r)->Next(&f));
  EXPECT_TRUE((*r)->clean_end());
}

TEST_F(SpoolTest, ChunkLargerThanARecordIsRefused) {
  std::string path = dir_ + "/big.spool";
  auto w = SpoolWriter::Create(path, Header("big"));
  ASSERT_TRUE(w.ok());
  uint64_t size = (*w)->size();
  Status s = (*w)->Append(Chunk(1, std::string(kMaxSpoolRecord, 'x')));
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  EXPECT_EQ((*w)->size(), size);
  EXPECT_EQ(ReadFile(path)->size(), size);
}

// A disk that fills up in the middle of a record: the record is cut off,
// the file ends at the last whole record and the writer goes on after it.
TEST_F(SpoolTest, RecordCutShortByTheDiskIsTakenBack) {
  std::string path = dir_ + "/full.spool";
  auto w = SpoolWriter::Create(path, Header("full"));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->Append(Chunk(1, "first")).ok());
  uint64_t good = (*w)->size();
  // RLIMIT_FSIZE stands in for a full disk: writes past it fail (EFBIG)
  // after writing what fits.
  struct sigaction ign = {}, old = {};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ign, &old), 0);
  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct rlimit low = saved;
  low.rlim_cur = good + 100;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &low), 0);
  Status s = (*w)->Append(Chunk(2, std::string(1000, 'y')));
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  ASSERT_EQ(sigaction(SIGXFSZ, &old, nullptr), 0);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find(path), std::string::npos) << s.ToString();
  EXPECT_EQ((*w)->size(), good);
  EXPECT_EQ(ReadFile(path)->size(), good);
  ASSERT_TRUE((*w)->Append(Chunk(3, "after")).ok());
  ASSERT_TRUE((*w)->End().ok());

  auto r = SpoolReader::Open(path);
  ASSERT_TRUE(r.ok());
  pb::RecordFrame f;
  std::vector<std::string> data;
  while (*(*r)->Next(&f)) {
    if (f.has_chunk()) data.push_back(f.chunk().data());
  }
  EXPECT_TRUE((*r)->clean_end());
  EXPECT_EQ(data, (std::vector<std::string>{"first", "after"}));
}

// Several frames in one call: the same bytes as one Append each; when the
// disk fails part way, none of them is kept.
TEST_F(SpoolTest, AppendAllIsAllOrNothing) {
  std::vector<pb::RecordFrame> frames;
  for (int i = 0; i < 3000; ++i) {  // More pieces than one writev takes.
    frames.push_back(i % 100 == 7 ? Exit(i, 0) : Chunk(i, std::to_string(i)));
  }
  std::vector<const pb::RecordFrame*> all;
  for (const pb::RecordFrame& f : frames) all.push_back(&f);
  std::string one = dir_ + "/one.spool", many = dir_ + "/many.spool";
  auto a = SpoolWriter::Create(one, Header("x"));
  auto b = SpoolWriter::Create(many, Header("x"));
  ASSERT_TRUE(a.ok() && b.ok());
  for (const pb::RecordFrame& f : frames) ASSERT_TRUE((*a)->Append(f).ok());
  ASSERT_TRUE((*b)->AppendAll(all).ok());
  EXPECT_EQ(*ReadFile(many), *ReadFile(one));
  EXPECT_EQ((*b)->size(), ReadFile(one)->size());

  pb::RecordFrame batch;
  batch.mutable_batch()->add_frames()->CopyFrom(Chunk(1, "in a batch"));
  EXPECT_EQ((*b)->Append(batch).code(), Code::kInvalidArgument);

  uint64_t good = (*b)->size();
  struct sigaction ign = {}, old = {};
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ign, &old), 0);
  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  struct rlimit low = saved;
  low.rlim_cur = good + 5000;  // Room for some of the frames, not all.
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &low), 0);
  Status s = (*b)->AppendAll(all);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &saved), 0);
  ASSERT_EQ(sigaction(SIGXFSZ, &old, nullptr), 0);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ((*b)->size(), good);
  EXPECT_EQ(ReadFile(many)->size(), good);
}

TEST_F(SpoolTest, TornTailIsDroppedAndTrimmed) {
  std::string path = MakeSpool("s2", /*end=*/false);
  std::string whole = *ReadFile(path);
  // A crash in the middle of the last record.
  ASSERT_EQ(truncate(path.c_str(), static_cast<off_t>(whole.size() - 3)), 0);
  auto r = SpoolReader::Open(path);
  ASSERT_TRUE(r.ok());
  pb::RecordFrame f;
  int frames = 0;
  while (*(*r)->Next(&f)) ++frames;
  EXPECT_EQ(frames, 3);  // The exit frame was torn.
  EXPECT_FALSE((*r)->clean_end());
  auto size = TrimSpool(path);
  ASSERT_TRUE(size.ok()) << size.status().ToString();
  EXPECT_EQ(*size, (*r)->good_bytes());
  EXPECT_EQ(ReadFile(path)->size(), *size);
}

TEST_F(SpoolTest, MalformedSpoolsAreDataLoss) {
  std::string path = dir_ + "/bad.spool";
  ASSERT_TRUE(AtomicWriteFile(path, "NOTSPOOL....").ok());
  EXPECT_EQ(SpoolReader::Open(path).status().code(), Code::kDataLoss);

  // A huge length, a record that does not parse, data after the end.
  std::string good = *ReadFile(MakeSpool("s3"));
  std::string head = good.substr(0, kSpoolHeaderBytes);
  for (const std::string& body : {std::string("\xff\xff\xff\x7f", 4) + "x",
                                  std::string("\x03\0\0\0", 4) + "\xff\xff\xff",
                                  good.substr(kSpoolHeaderBytes) + "junk"}) {
    ASSERT_TRUE(AtomicWriteFile(path, head + body).ok());
    auto r = SpoolReader::Open(path);
    ASSERT_TRUE(r.ok());
    pb::RecordFrame f;
    Status failure;
    while (true) {
      auto more = (*r)->Next(&f);
      if (!more.ok()) {
        failure = more.status();
        break;
      }
      if (!*more) break;
    }
    EXPECT_EQ(failure.code(), Code::kDataLoss) << failure.ToString();
  }
}

}  // namespace
}  // namespace mez::spool
