// The stored seek index end to end: a real mezrecd with a low threshold
// builds the index of a recorded session in its store, ReadRecording serves
// it with the recording's access rules, and the player (msh play's remote
// source, in process) adopts it at once instead of indexing the recording
// itself; an encrypted recording's index is sealed, and a tampered one is
// refused and played without.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <functional>
#include <thread>

#include "libmez/cli/remote_source.h"
#include "libmez/play/player.h"
#include "libmez/util/clock.h"
#include "libmez/util/file.h"
#include "mezite/v1/cluster.grpc.pb.h"
#include "tests/mezrecd_harness.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

namespace pb = mezite::v1;

constexpr char kKeyHex[] =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
constexpr int kLines = 1200;  // One every 50 ms: 60 s.

bool WaitFor(const std::function<bool()>& done, int seconds = 30) {
  auto deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

class SeekIndexE2eTest : public ::testing::Test {
 protected:
  void Start(std::map<std::string, std::string> env = {}) {
    env["MEZITE_SEEK_INDEX_MIN_BYTES"] = "64K";
    server_ = std::make_unique<Mezrecd>(dir_.File("data"),
                                        std::vector<std::string>{}, env);
    ASSERT_TRUE(server_->Start()) << server_->log();
    std::string err;
    server_->RegisterNode("web-01", "127.0.0.1:22", &err);
    ASSERT_EQ(err, "");
    cluster_ = pb::Cluster::NewStub(server_->Channel());
  }
  // Records `lines` coloured lines of 1 KiB for alice on web-01, 50 ms
  // apart.
  void Record(const std::string& id, int lines) {
    auto stub = server_->Stub();
    RecordCall call(stub.get(), server_->Token(auth::Role::kNode, "web-01"));
    ASSERT_TRUE(call.Send(HeaderFrame(id, server_->Grant("alice", "web-01"),
                                      pb::SESSION_KIND_SHELL)));
    for (int i = 0; i < lines; ++i) {
      std::string text = "\033[3" + std::to_string(i % 8) + "mline " +
                         std::to_string(i) + " " + std::string(1000, '.') +
                         "\033[m\r\n";
      ASSERT_TRUE(call.Send(ChunkFrame(i * 50'000, pb::DIRECTION_OUT, text)));
    }
    grpc::Status s = call.Close();
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  std::string IndexPath(const std::string& id) const {
    return server_->data_dir() + "/recordings/alice/shell/" + id + ".cast.seek";
  }
  bool IndexStored(const std::string& id) const {
    struct stat st;
    return stat(IndexPath(id).c_str(), &st) == 0 && st.st_size > 0;
  }
  // ReadRecording(seek_index) as `token`: the status, and the body.
  grpc::Status ReadIndex(const std::string& token, const std::string& id,
                         std::string* body = nullptr) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    pb::ReadRecordingRequest req;
    req.set_id(id);
    req.set_seek_index(true);
    auto reader = cluster_->ReadRecording(&ctx, req);
    pb::RecordingBytes msg;
    std::string got;
    while (reader->Read(&msg)) got += msg.data();
    if (body != nullptr) *body = got;
    return reader->Finish();
  }

  // msh play's remote source and player, in process, as the admin.
  struct Play {
    FakeClock clock;
    record::StringSink out;
    std::unique_ptr<play::RecordingSource> source;
    std::unique_ptr<play::Player> player;
  };
  std::unique_ptr<Play> Open(const std::string& id) {
    auto p = std::make_unique<Play>();
    auto src =
        cli::OpenRemoteRecording(server_->data_dir() + "/admin.identity", id);
    EXPECT_TRUE(src.ok()) << src.status().ToString();
    if (!src.ok()) return nullptr;
    p->source = std::move(src).value();
    play::PlayerOptions o;
    o.clock = &p->clock;
    o.term_rows = 25;
    o.term_cols = 200;
    o.index_in_background = true;
    auto player = play::Player::Create(p->source.get(), o, &p->out);
    EXPECT_TRUE(player.ok()) << player.status().ToString();
    if (!player.ok()) return nullptr;
    p->player = std::move(player).value();
    EXPECT_TRUE(p->player->Tick().ok());
    return p;
  }
  // Seeks to 55 s and checks the screen shows line 1100 last.
  void SeekFarAndCheck(Play* p) {
    ASSERT_TRUE(p->player->SeekTo(55'000'000).ok());
    const play::Screen& screen = p->player->screen();
    bool found = false;
    for (int r = 0; r < screen.rows(); ++r) {
      std::string row = screen.RowText(r);
      found |= row.rfind("line 1100 ", 0) == 0;
      EXPECT_EQ(row.find("line 1101 "), std::string::npos) << r;
    }
    EXPECT_TRUE(found);
  }

  TempDir dir_;
  std::unique_ptr<Mezrecd> server_;
  std::unique_ptr<pb::Cluster::Stub> cluster_;
};

TEST_F(SeekIndexE2eTest, StoredIndexIsServedAndAdoptedFromTheFirstFrame) {
  Start();
  Record("big", kLines);
  ASSERT_TRUE(WaitFor([&] { return IndexStored("big"); })) << server_->log();
  EXPECT_EQ(ReadFile(IndexPath("big"))->substr(0, 9), "MEZSEEK1p");

  auto p = Open("big");
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(WaitFor([&] { return p->player->index_complete(); }));
  // The player's own reader never ran: the whole index came from the
  // store, and with it the length.
  EXPECT_TRUE(p->player->index_from_store());
  EXPECT_EQ(p->player->duration_us(), (kLines - 1) * 50'000);
  // One every 256 KiB of the ~1.2 MiB, and the first.
  EXPECT_GE(p->player->checkpoints().size(), 5u);
  SeekFarAndCheck(p.get());

  // The index is read like the recording: the owner and admins may, other
  // users not; every read is audited.
  std::string body;
  ASSERT_TRUE(
      ReadIndex(server_->Token(auth::Role::kUser, "alice"), "big", &body).ok());
  EXPECT_EQ(body.substr(0, 15), "mezite-seek-v1\n");
  grpc::Status bob = ReadIndex(server_->Token(auth::Role::kUser, "bob"), "big");
  EXPECT_FALSE(bob.ok());
  EXPECT_TRUE(bob.error_code() == grpc::StatusCode::NOT_FOUND ||
              bob.error_code() == grpc::StatusCode::PERMISSION_DENIED)
      << bob.error_message();
  grpc::Status node =
      ReadIndex(server_->Token(auth::Role::kNode, "web-01"), "big");
  EXPECT_EQ(node.error_code(), grpc::StatusCode::PERMISSION_DENIED);

  // Below the threshold: no index, and the player indexes it itself.
  Record("small", 20);
  EXPECT_EQ(ReadIndex(server_->AdminToken(), "small").error_code(),
            grpc::StatusCode::NOT_FOUND);
  auto q = Open("small");
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(WaitFor([&] { return q->player->index_complete(); }));
  EXPECT_FALSE(q->player->index_from_store());
  EXPECT_EQ(q->player->duration_us(), 19 * 50'000);
  EXPECT_FALSE(IndexStored("small"));
  // None is no fault: nothing is said about it.
  ASSERT_TRUE(q->player->Tick().ok());
  EXPECT_EQ(q->out.data().find("seek index"), std::string::npos);
}

TEST_F(SeekIndexE2eTest, EncryptedRecordingsIndexIsSealedAndTamperingIgnored) {
  Start({{"MEZITE_RECORDING_ENC_KEY", kKeyHex}});
  Record("enc", kLines);
  ASSERT_TRUE(WaitFor([&] { return IndexStored("enc"); })) << server_->log();
  std::string file = *ReadFile(IndexPath("enc"));
  EXPECT_EQ(file.substr(0, 9), "MEZSEEK1e");
  EXPECT_EQ(file.find("line 1"), std::string::npos);
  EXPECT_EQ(file.find("mezite-seek-v1"), std::string::npos);

  auto p = Open("enc");
  ASSERT_NE(p, nullptr);
  ASSERT_TRUE(WaitFor([&] { return p->player->index_complete(); }));
  EXPECT_TRUE(p->player->index_from_store());
  SeekFarAndCheck(p.get());

  // One byte changed in storage: refused by mezrecd, and the player plays
  // on with an index of its own and one warning.
  file[file.size() / 2] ^= 0x01;
  ASSERT_TRUE(AtomicWriteFile(IndexPath("enc"), file).ok());
  EXPECT_EQ(ReadIndex(server_->AdminToken(), "enc").error_code(),
            grpc::StatusCode::DATA_LOSS);
  auto q = Open("enc");
  ASSERT_NE(q, nullptr);
  ASSERT_TRUE(WaitFor([&] { return q->player->index_complete(); }));
  EXPECT_FALSE(q->player->index_from_store());
  EXPECT_EQ(q->player->duration_us(), (kLines - 1) * 50'000);
  ASSERT_TRUE(q->player->Tick().ok());
  EXPECT_NE(q->out.data().find("stored seek index ignored"), std::string::npos);
  SeekFarAndCheck(q.get());
}

}  // namespace
}  // namespace mez::testing
