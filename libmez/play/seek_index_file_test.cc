// The stored seek index: body and file round trips, every refusal of a
// damaged or forged one, sealing (bound to the session and to its purpose),
// and the player adopting a stored index instead of reading the recording.
#include "libmez/play/seek_index_file.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <thread>

#include "libmez/play/play_test_util.h"
#include "libmez/record/seal.h"

namespace mez::play {
namespace {

const std::string kKey(32, '\x11');

// 60 s of coloured rows, 100 ms apart, ~1 KiB each.
std::string LongCast() {
  Events events;
  for (int i = 0; i < 600; ++i) {
    std::string colour = "\033[3" + std::to_string(i % 8) + "m";
    events.push_back({i * 100'000, colour + "row " + std::to_string(i) + " " +
                                       std::string(1000, 'x') + "\033[m\r\n"});
  }
  return MakeCast(events);
}

StoredSeekIndex Build(const std::string& cast) {
  MemorySource src(cast);
  SeekIndexOptions o;
  o.interval_us = 1'000'000;
  auto index = BuildSeekIndex(&src, o, std::nullopt);
  EXPECT_TRUE(index.ok()) << index.status().ToString();
  return std::move(index).value();
}

Result<std::string> Decode(const std::string& file,
                           const std::optional<std::string>& key,
                           const std::string& id = "s1") {
  record::StringSource src(file);
  return DecodeSeekIndexFile(&src, key, id);
}

bool WaitFor(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

TEST(SeekIndexFileTest, BuildSerializeParseRoundTrip) {
  std::string cast = LongCast();
  StoredSeekIndex index = Build(cast);
  EXPECT_EQ(index.stream_size, cast.size());
  EXPECT_EQ(index.end_us, 59'900'000);
  EXPECT_FALSE(index.idle_cap_us.has_value());
  ASSERT_GE(index.checkpoints.size(), 50u);
  EXPECT_EQ(index.checkpoints[0].time_us, 0);
  auto parsed = ParseSeekIndex(SerializeSeekIndex(index));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->stream_size, index.stream_size);
  EXPECT_EQ(parsed->end_us, index.end_us);
  ASSERT_EQ(parsed->checkpoints.size(), index.checkpoints.size());
  for (size_t i = 0; i < index.checkpoints.size(); ++i) {
    const Checkpoint& a = index.checkpoints[i];
    const Checkpoint& b = parsed->checkpoints[i];
    EXPECT_EQ(a.time_us, b.time_us);
    EXPECT_EQ(a.at.offset, b.at.offset);
    EXPECT_EQ(a.at.lines_before, b.at.lines_before);
    EXPECT_EQ(a.at.last_time_us, b.at.last_time_us);
    EXPECT_EQ(a.rows, b.rows);
    EXPECT_EQ(a.cols, b.cols);
    EXPECT_TRUE(b.packed);
    EXPECT_EQ(b.text_size, a.snapshot.size());
    EXPECT_EQ(UnpackSnapshot(b).value(), a.snapshot);
  }
  index.idle_cap_us = 500'000;
  parsed = ParseSeekIndex(SerializeSeekIndex(index));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->idle_cap_us, 500'000);
}

TEST(SeekIndexFileTest, HeaderIdleLimitIsTheBuildersCap) {
  std::string cast = MakeCast({{0, "a"}, {10'000'000, "b"}});
  cast.insert(cast.find('\n') - 1, ", \"idle_time_limit\": 0.5");
  StoredSeekIndex index = Build(cast);
  EXPECT_EQ(index.idle_cap_us, 500'000);
  EXPECT_EQ(index.end_us, 500'000);
}

TEST(SeekIndexFileTest, FileRoundTripPlainAndSealed) {
  std::string body = SerializeSeekIndex(Build(LongCast()));
  StoredSeekIndex built = Build(LongCast());
  uint64_t texts = 0;
  for (const Checkpoint& cp : built.checkpoints) texts += cp.snapshot.size();
  EXPECT_LT(body.size(), texts / 4);  // Snapshots are packed.
  auto plain = EncodeSeekIndexFile(body, std::nullopt, "s1");
  ASSERT_TRUE(plain.ok());
  auto back = Decode(*plain, std::nullopt);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, body);

  auto sealed = EncodeSeekIndexFile(body, kKey, "s1");
  ASSERT_TRUE(sealed.ok());
  back = Decode(*sealed, kKey);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, body);
  // No plaintext in the sealed file, nor the compressed form of it.
  EXPECT_EQ(sealed->find("row 1"), std::string::npos);
  EXPECT_EQ(sealed->find(plain->substr(9, 64)), std::string::npos);
}

TEST(SeekIndexFileTest, SealedFileRefusesTamperingAndMisuse) {
  std::string body = SerializeSeekIndex(Build(LongCast()));
  std::string sealed = EncodeSeekIndexFile(body, kKey, "s1").value();
  // Another session's index, another key, no key.
  EXPECT_EQ(Decode(sealed, kKey, "s2").status().code(), Code::kDataLoss);
  EXPECT_EQ(Decode(sealed, std::string(32, '\x22')).status().code(),
            Code::kDataLoss);
  EXPECT_EQ(Decode(sealed, std::nullopt).status().code(),
            Code::kFailedPrecondition);
  // A plain index where recordings are sealed.
  std::string plain = EncodeSeekIndexFile(body, std::nullopt, "s1").value();
  EXPECT_EQ(Decode(plain, kKey).status().code(), Code::kFailedPrecondition);
  // One bit flipped anywhere in the sealed part.
  for (size_t at : {size_t{30}, sealed.size() / 2, sealed.size() - 3}) {
    std::string bad = sealed;
    bad[at] = static_cast<char>(bad[at] ^ 1);
    EXPECT_FALSE(Decode(bad, kKey).ok()) << at;
  }
  // Cut before the final record.
  size_t final_at = sealed.rfind('f', sealed.size() - record::kSealOverhead);
  ASSERT_NE(final_at, std::string::npos);
  EXPECT_FALSE(Decode(sealed.substr(0, sealed.size() - 60), kKey).ok());
  // A chunk of the session's recording (sealed for the session, no
  // purpose) passed off as the index.
  auto sealer = record::ChunkSealer::Create(kKey, "s1").value();
  std::string chunk;
  record::ChunkInfo info;
  info.direction = 's';
  info.context = "mezite-seek-index-v1";
  ASSERT_TRUE(sealer->Seal(info, "x", &chunk).ok());
  std::string forged = sealed.substr(0, 8 + 1 + 16);
  forged.push_back('c');
  for (int i = 3; i >= 0; --i) {
    forged.push_back(static_cast<char>(chunk.size() >> (8 * i)));
  }
  forged += chunk;
  EXPECT_EQ(Decode(forged, kKey).status().code(), Code::kDataLoss);
}

TEST(SeekIndexFileTest, FileBoundsAndGarbage) {
  EXPECT_EQ(Decode("", std::nullopt).status().code(), Code::kDataLoss);
  EXPECT_EQ(Decode("MEZSEEK1", std::nullopt).status().code(), Code::kDataLoss);
  EXPECT_EQ(Decode("MEZSEEK1x", std::nullopt).status().code(), Code::kDataLoss);
  EXPECT_EQ(Decode("MEZSEEK1zgarbage", std::nullopt).status().code(),
            Code::kDataLoss);
  // A frame claiming more than a sealed piece can be.
  std::string big = "MEZSEEK1e" + record::KeyId(kKey) + "c";
  big += std::string("\x7f\xff\xff\xff", 4);
  EXPECT_EQ(Decode(big, kKey).status().code(), Code::kDataLoss);
  // Beyond the body's bound, and beyond the file's: refused before (or
  // instead of) reading on.
  std::string big_body(kMaxSeekIndexBytes + 1, '\0');
  auto got = Decode(EncodeSeekIndexFile(big_body, std::nullopt, "s1").value(),
                    std::nullopt);
  EXPECT_EQ(got.status().code(), Code::kDataLoss);
  std::string huge_file(kMaxSeekIndexFileBytes + 1, '\0');
  got = Decode(huge_file, std::nullopt);
  EXPECT_EQ(got.status().code(), Code::kDataLoss);
  EXPECT_NE(got.status().message().find("larger than"), std::string::npos);
}

// One mutation of a valid index and the refusal it must meet.
struct Mutation {
  const char* name;
  std::function<void(StoredSeekIndex*)> apply;
};

TEST(SeekIndexFileTest, ParseRefusesEachInconsistency) {
  const StoredSeekIndex good = Build(LongCast());
  ASSERT_TRUE(ParseSeekIndex(SerializeSeekIndex(good)).ok());
  std::vector<Mutation> mutations = {
      {"no checkpoints", [](StoredSeekIndex* i) { i->checkpoints.clear(); }},
      {"negative length", [](StoredSeekIndex* i) { i->end_us = -1; }},
      {"zero idle cap", [](StoredSeekIndex* i) { i->idle_cap_us = 0; }},
      {"rows 0", [](StoredSeekIndex* i) { i->checkpoints[3].rows = 0; }},
      {"cols beyond the player",
       [](StoredSeekIndex* i) { i->checkpoints[3].cols = 5000; }},
      {"cells beyond the player",
       [](StoredSeekIndex* i) {
         i->checkpoints[3].cols = 4000;
         i->checkpoints[3].rows = 4000;
       }},
      {"offset not increasing",
       [](StoredSeekIndex* i) {
         i->checkpoints[4].at.offset = i->checkpoints[3].at.offset;
       }},
      {"offset beyond the stream",
       [](StoredSeekIndex* i) {
         i->checkpoints.back().at.offset = i->stream_size;
       }},
      {"offset zero",
       [](StoredSeekIndex* i) { i->checkpoints[0].at.offset = 0; }},
      {"lines not increasing",
       [](StoredSeekIndex* i) {
         i->checkpoints[4].at.lines_before = i->checkpoints[3].at.lines_before;
       }},
      {"time backwards",
       [](StoredSeekIndex* i) {
         i->checkpoints[4].time_us = i->checkpoints[3].time_us - 1;
       }},
      {"time beyond the end",
       [](StoredSeekIndex* i) { i->end_us = i->checkpoints[5].time_us - 1; }},
      {"negative time",
       [](StoredSeekIndex* i) { i->checkpoints[0].time_us = -1; }},
      {"first not at 0",
       [](StoredSeekIndex* i) { i->checkpoints[0].time_us = 1; }},
      {"snapshots beyond the budget",
       [](StoredSeekIndex* i) {
         i->checkpoints[1].snapshot.assign(kMaxStoredSnapshotBytes, 'x');
       }},
  };
  for (const Mutation& m : mutations) {
    StoredSeekIndex bad = good;
    m.apply(&bad);
    auto got = ParseSeekIndex(SerializeSeekIndex(bad));
    EXPECT_EQ(got.status().code(), Code::kDataLoss) << m.name;
  }
  std::string body = SerializeSeekIndex(good);
  EXPECT_FALSE(ParseSeekIndex(body + "x").ok()) << "trailing bytes";
  EXPECT_FALSE(ParseSeekIndex(body.substr(0, body.size() - 1)).ok());
  EXPECT_FALSE(ParseSeekIndex("mezite-seek-v2\n").ok()) << "magic";
  // A count far beyond what the body holds is refused before reserving.
  std::string huge = body.substr(0, 15 + 8 + 1 + 8 + 8);
  huge += std::string("\x00\x10\x00\x00", 4);  // 1 << 20 checkpoints.
  auto got = ParseSeekIndex(huge);
  EXPECT_EQ(got.status().code(), Code::kDataLoss);
  huge = body.substr(0, 15 + 8 + 1 + 8 + 8) + std::string("\xff\xff\xff\xff");
  EXPECT_FALSE(ParseSeekIndex(huge).ok()) << "count beyond the bound";
}

TEST(SeekIndexFileTest, PlayerAdoptsStoredIndexWithoutReadingTheRecording) {
  std::string cast = LongCast();
  std::string body = SerializeSeekIndex(Build(cast));
  PlayerOptions o;
  o.read_size = 4096;
  o.index_in_background = true;
  // The player's own intervals are larger: what it uses is the stored one.
  o.checkpoint_interval_us = 30'000'000;
  PlayerRig rig(cast, o);
  rig.src.stored_index = body;
  // Made anew so the source serves the index from the start.
  auto p = Player::Create(
      &rig.src,
      [&] {
        PlayerOptions x = o;
        x.clock = &rig.clock;
        return x;
      }(),
      &rig.out);
  ASSERT_TRUE(p.ok());
  rig.player = std::move(p).value();
  rig.src.bytes_read = 0;
  rig.Tick();
  ASSERT_TRUE(WaitFor([&] { return rig.player->index_complete(); }));
  EXPECT_TRUE(rig.player->index_from_store());
  EXPECT_EQ(rig.player->duration_us(), 59'900'000);
  EXPECT_GE(rig.player->checkpoints().size(), 50u);
  // Nothing beyond the first read of each stream was needed for that.
  EXPECT_LE(rig.src.bytes_read, 2u * o.read_size);
  rig.src.opened_at.clear();
  rig.src.bytes_read = 0;
  ASSERT_TRUE(rig.player->SeekTo(45'000'000).ok());
  ASSERT_EQ(rig.src.opened_at.size(), 1u);
  EXPECT_LE(rig.src.bytes_read, 11u * 1030 + o.read_size);
  rig.TakeOut();
  PlayerRig straight(cast);
  straight.Tick();
  straight.clock.Advance(45'000'000);
  straight.Tick();
  for (int r = 0; r < 24; ++r) {
    EXPECT_EQ(rig.player->screen().RowText(r),
              straight.player->screen().RowText(r))
        << r;
  }
}

TEST(SeekIndexFileTest, PackedSnapshotBoundsAndDamage) {
  StoredSeekIndex index = Build(LongCast());
  // A packed size that promises more than the budget unpacked.
  std::string body = SerializeSeekIndex(index);
  auto parsed = ParseSeekIndex(body).value();
  Checkpoint bad = parsed.checkpoints[2];
  bad.text_size += 1;  // Inflates to fewer bytes than it says.
  EXPECT_EQ(UnpackSnapshot(bad).status().code(), Code::kDataLoss);
  bad = parsed.checkpoints[2];
  bad.snapshot[bad.snapshot.size() / 2] ^= 0x55;
  EXPECT_FALSE(UnpackSnapshot(bad).ok() &&
               *UnpackSnapshot(bad) == *UnpackSnapshot(parsed.checkpoints[2]));
  parsed.checkpoints[2].text_size = kMaxStoredSnapshotBytes;
  EXPECT_EQ(ParseSeekIndex(SerializeSeekIndex(parsed)).status().code(),
            Code::kDataLoss);
}

// A player whose source serves `index` as its stored one.
struct StoredRig {
  StoredRig(const std::string& cast, std::optional<std::string> index,
            std::optional<int64_t> idle = std::nullopt)
      : src(cast, SessionMeta{"s1", "alice", "web1", std::nullopt}) {
    src.stored_index = std::move(index);
    PlayerOptions o;
    o.clock = &clock;
    o.term_rows = 25;
    o.index_in_background = true;
    o.idle_cap_us = idle;
    player = Player::Create(&src, o, &out).value();
  }
  FakeClock clock;
  MemorySource src;
  record::StringSink out;
  std::unique_ptr<Player> player;
};

TEST(SeekIndexFileTest, BadStoredIndexIsIgnoredWithOneWarning) {
  std::string cast = LongCast();
  StoredSeekIndex index = Build(cast);
  index.checkpoints[2].at.offset = index.checkpoints[1].at.offset;
  StoredRig rig(cast, SerializeSeekIndex(index));
  ASSERT_TRUE(WaitFor([&] { return rig.player->index_complete(); }));
  EXPECT_FALSE(rig.player->index_from_store());
  EXPECT_EQ(rig.player->duration_us(), 59'900'000);  // Indexed here.
  ASSERT_TRUE(rig.player->Tick().ok());
  EXPECT_NE(rig.out.data().find("stored seek index ignored"),
            std::string::npos);
  // Garbage, and an index of another recording (another first line).
  StoredRig garbage(cast, std::string("junk"));
  ASSERT_TRUE(WaitFor([&] { return garbage.player->index_complete(); }));
  EXPECT_FALSE(garbage.player->index_from_store());
  StoredRig other(cast, SerializeSeekIndex(Build(MakeCast({{0, "x"}}, 100))));
  ASSERT_TRUE(WaitFor([&] { return other.player->index_complete(); }));
  EXPECT_FALSE(other.player->index_from_store());
}

TEST(SeekIndexFileTest, DamagedStoredSnapshotReadsFromTheStartInstead) {
  std::string cast = LongCast();
  StoredSeekIndex index = Build(cast);
  StoredSeekIndex parsed = ParseSeekIndex(SerializeSeekIndex(index)).value();
  for (Checkpoint& cp : parsed.checkpoints) cp.text_size += 1;  // All bad.
  StoredRig rig(cast, SerializeSeekIndex(parsed));
  ASSERT_TRUE(WaitFor([&] { return rig.player->index_complete(); }));
  ASSERT_TRUE(rig.player->index_from_store());  // Nothing showed it yet.
  ASSERT_TRUE(rig.player->SeekTo(45'000'000).ok());
  PlayerRig straight(cast);
  straight.Tick();
  straight.clock.Advance(45'000'000);
  straight.Tick();
  for (int r = 0; r < 24; ++r) {
    EXPECT_EQ(rig.player->screen().RowText(r),
              straight.player->screen().RowText(r))
        << r;
  }
  rig.out.mutable_data().clear();
  ASSERT_TRUE(rig.player->Tick().ok());
  EXPECT_NE(rig.out.data().find("stored seek index damaged"),
            std::string::npos);
}

TEST(SeekIndexFileTest, AnotherIdleLimitIndexesHereSilently) {
  std::string cast = LongCast();
  StoredRig rig(cast, SerializeSeekIndex(Build(cast)), 50'000);
  ASSERT_TRUE(WaitFor([&] { return rig.player->index_complete(); }));
  EXPECT_FALSE(rig.player->index_from_store());
  ASSERT_TRUE(rig.player->Tick().ok());
  EXPECT_EQ(rig.out.data().find("stored seek index"), std::string::npos);
  // None stored: asked once, indexed here.
  StoredRig none(cast, std::nullopt);
  ASSERT_TRUE(WaitFor([&] { return none.player->index_complete(); }));
  EXPECT_EQ(none.src.stored_asks.load(), 1);
  EXPECT_FALSE(none.player->index_from_store());
}

}  // namespace
}  // namespace mez::play
