#include "libmez/record/sink.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>

#include "libmez/util/file.h"

namespace mez::record {
namespace {

TEST(SinkTest, FileSinkCreatesExclusivelyAndRefusesSymlinks) {
  char tmpl[] = "/tmp/mez_sink_test.XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  auto sink = FileSink::Create(dir + "/a.cast");
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  std::string big(200000, 'x');
  ASSERT_TRUE((*sink)->Append("hello ").ok());
  ASSERT_TRUE((*sink)->Append(big).ok());
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_EQ((*sink)->bytes_written(), 6 + big.size());
  EXPECT_EQ(*ReadFile(dir + "/a.cast"), "hello " + big);
  EXPECT_FALSE((*sink)->Append("late").ok());

  auto again = FileSink::Create(dir + "/a.cast");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kAlreadyExists);

  ASSERT_EQ(symlink("/tmp/elsewhere", (dir + "/l.cast").c_str()), 0);
  EXPECT_FALSE(FileSink::Create(dir + "/l.cast").ok());
  EXPECT_FALSE(FileSink::OpenAppend(dir + "/l.cast").ok());

  auto app = FileSink::OpenAppend(dir + "/a.cast");
  ASSERT_TRUE(app.ok());
  EXPECT_EQ((*app)->bytes_written(), 6 + big.size());
  ASSERT_TRUE((*app)->Append("!").ok());
  ASSERT_TRUE((*app)->Close().ok());
  EXPECT_EQ(ReadFile(dir + "/a.cast")->back(), '!');
  ASSERT_EQ(std::system(("rm -rf " + dir).c_str()), 0);
}

TEST(SinkTest, LineReaderReportsCutLastLine) {
  StringSource src("one\ntwo\nthr");
  LineReader lines(&src);
  std::string line;
  bool complete = false;
  ASSERT_TRUE(*lines.Next(&line, &complete));
  EXPECT_EQ(line, "one");
  EXPECT_TRUE(complete);
  ASSERT_TRUE(*lines.Next(&line, &complete));
  EXPECT_EQ(line, "two");
  ASSERT_TRUE(*lines.Next(&line, &complete));
  EXPECT_EQ(line, "thr");
  EXPECT_FALSE(complete);
  EXPECT_EQ(lines.line_number(), 3u);
  EXPECT_FALSE(*lines.Next(&line, &complete));
}

TEST(SinkTest, LineReaderRefusesEndlessLines) {
  StringSource src(std::string(5000, 'a'));
  LineReader lines(&src);
  std::string line;
  bool complete;
  auto r = lines.Next(&line, &complete, 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line 1"), std::string::npos);
}

}  // namespace
}  // namespace mez::record
