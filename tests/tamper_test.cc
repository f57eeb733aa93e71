// Tampered recordings through the real programs: a real mezrecd with a
// recording key (with and without --gzip) records a session over gRPC; the
// stored file is then altered on disk (a flipped bit, two events swapped,
// an event deleted, the end cut off), and played with the real `msh play`,
// both from the local file (with MEZITE_RECORDING_ENC_KEY) and by session
// id (server-side playback over ReadRecording). Each case must stop with
// exit 1 and a message that names the line and the chunk and says the
// recording was altered, and must never show output from past the damage
// (issue #14, item 11 and the tamper deliverable).
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "libmez/util/file.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

namespace pb = mezite::v1;

constexpr char kKeyHex[] =
    "5f3a9c0e1d2b4a6f8e7c0b1a2d3e4f5061728394a5b6c7d8e9f0a1b2c3d4e5f6";
constexpr int kChunks = 6;

// The user token a Record header carries. Kept in one place: the header's
// credential is about to change from a user token to a session grant.
std::string HeaderToken(const Mezrecd& server, const std::string& user,
                        const std::string& node) {
  return server.Grant(user, node);
}

std::string Output(int i) {
  return "output line " + std::to_string(i) + "\r\n";
}

std::vector<std::string> SplitLines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t nl = s.find('\n', start);
    if (nl == std::string::npos) nl = s.size();
    out.push_back(s.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

std::string JoinLines(const std::vector<std::string>& lines) {
  std::string s;
  for (const auto& l : lines) s += l + "\n";
  return s;
}

// Flips one bit in the middle of the base64 data of an event line, staying
// inside the alphabet ('A' <-> 'B' changes 1 bit of the decoded bytes).
std::string FlipData(std::string line) {
  size_t start = line.rfind(", \"") + 3;
  size_t pos = start + (line.size() - start) / 2;
  line[pos] = line[pos] == 'A' ? 'B' : 'A';
  return line;
}

struct Case {
  const char* name;
  // Alters the stored lines (header first, then one event per chunk,
  // then the final record).
  void (*alter)(std::vector<std::string>*);
  // What the message must contain.
  std::vector<std::string> says;
  // Chunks whose output may be shown before playback stops.
  int shown;
};

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      {"flip",
       [](std::vector<std::string>* l) { (*l)[3] = FlipData((*l)[3]); },
       {"line 4: chunk 2 failed authentication", "tampered"},
       2},
      {"reorder",
       [](std::vector<std::string>* l) { std::swap((*l)[3], (*l)[4]); },
       {"line 4: chunk 3", "chunk 2", "altered"},
       2},
      {"drop",
       [](std::vector<std::string>* l) { l->erase(l->begin() + 3); },
       {"line 4: chunk 3", "chunk 2", "altered"},
       2},
      {"truncate",
       [](std::vector<std::string>* l) { l->pop_back(); },
       {"truncated"},
       kChunks},
  };
  return cases;
}

class TamperTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    std::vector<std::string> args;
    if (GetParam()) args.push_back("--gzip");
    server_ =
        std::make_unique<Mezrecd>(dir_.File("data"), args,
                                  std::map<std::string, std::string>{
                                      {"MEZITE_RECORDING_ENC_KEY", kKeyHex}});
    ASSERT_TRUE(server_->Start()) << server_->log();
    std::string err;
    server_->RegisterNode("web-01", "127.0.0.1:22", &err);
    ASSERT_EQ(err, "");
  }

  // Records session `id` for alice with kChunks output chunks; returns the
  // stored file's path.
  std::string Record(const std::string& id) {
    auto stub = server_->Stub();
    RecordCall call(stub.get(), server_->Token(auth::Role::kNode, "web-01"));
    EXPECT_TRUE(call.Send(HeaderFrame(
        id, HeaderToken(*server_, "alice", "web-01"), pb::SESSION_KIND_SHELL)));
    for (int i = 0; i < kChunks; ++i) {
      EXPECT_TRUE(call.Send(
          ChunkFrame((i + 1) * 100'000, pb::DIRECTION_OUT, Output(i))));
    }
    grpc::Status st = call.Close();
    EXPECT_TRUE(st.ok()) << st.error_message();
    return server_->data_dir() + "/recordings/alice/shell/" + id + ".cast";
  }

  // `msh play --format=text TARGET` as the admin; stderr into out.
  CommandResult Play(const std::string& target, bool with_key) {
    std::string home = dir_.File("home");
    ::mez::testing::Run("mkdir -p " + ShellQuote(home));
    std::string env = "HOME=" + ShellQuote(home) + " MEZ_IDENTITY= ";
    if (with_key)
      env += std::string("MEZITE_RECORDING_ENC_KEY=") + kKeyHex + " ";
    return ::mez::testing::Run(
        env + MSH_PATH + " --identity " +
        ShellQuote(server_->data_dir() + "/admin.identity") +
        " play --format=text " + ShellQuote(target) + " 2>&1");
  }

  TempDir dir_;
  std::unique_ptr<Mezrecd> server_;
};

TEST_P(TamperTest, UnalteredRecordingPlaysWholeLocallyAndFromTheServer) {
  std::string path = Record("s-clean");
  std::string want;
  for (int i = 0; i < kChunks; ++i) want += Output(i);
  auto local = Play(path, true);
  EXPECT_EQ(local.exit_code, 0) << local.out;
  EXPECT_EQ(local.out, want);
  auto remote = Play("s-clean", false);
  EXPECT_EQ(remote.exit_code, 0) << remote.out;
  EXPECT_EQ(remote.out, want);
}

TEST_P(TamperTest, EachAlterationStopsPlaybackWithItsName) {
  for (const Case& c : Cases()) {
    SCOPED_TRACE(c.name);
    std::string id = std::string("s-") + c.name;
    std::string path = Record(id);
    auto original = ReadFile(path);
    ASSERT_TRUE(original.ok()) << original.status().ToString();
    auto lines = SplitLines(*original);
    ASSERT_EQ(lines.size(), static_cast<size_t>(kChunks + 2)) << *original;
    c.alter(&lines);
    WriteFileOrDie(path, JoinLines(lines));

    for (bool remote : {false, true}) {
      SCOPED_TRACE(remote ? "msh play ID (ReadRecording)" : "msh play FILE");
      auto r = remote ? Play(id, false) : Play(path, true);
      EXPECT_EQ(r.exit_code, 1) << r.out;
      std::string prefix = "msh play: " + (remote ? id : path) + ": ";
      EXPECT_NE(r.out.find(prefix), std::string::npos) << r.out;
      for (const auto& word : c.says) {
        EXPECT_NE(r.out.find(word), std::string::npos)
            << "missing '" << word << "' in: " << r.out;
      }
      // Nothing from past the damage, no garbage, one line of error.
      for (int i = 0; i < kChunks; ++i) {
        bool present = r.out.find(Output(i)) != std::string::npos;
        EXPECT_EQ(present, i < c.shown) << "chunk " << i << " in: " << r.out;
      }
      EXPECT_EQ(r.out.find("compressed payload is corrupt"), std::string::npos)
          << r.out;
      std::string tail = r.out.substr(r.out.find(prefix));
      EXPECT_EQ(std::count(tail.begin(), tail.end(), '\n'), 1) << r.out;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(KeyAndGzip, TamperTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "gzip" : "plain";
                         });

}  // namespace
}  // namespace mez::testing
