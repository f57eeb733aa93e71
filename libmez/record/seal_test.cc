#include "libmez/record/seal.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "libmez/util/encoding.h"

namespace mez::record {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKeyHex[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
constexpr char kOtherKeyHex[] =
    "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f";
constexpr char kSession[] = "6f1c2a9e-session";

std::string Key(const char* hex = kKeyHex) { return ParseKeyHex(hex).value(); }

// One record of a recording as a container would store it.
struct Rec {
  bool is_final = false;
  int64_t time_us = 0;
  uint8_t direction = 'o';
  std::string context;
  std::string plain;
  std::string sealed;

  ChunkInfo info() const { return ChunkInfo{time_us, direction, context}; }
};

std::string Payload(size_t size, int salt) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    s[i] = static_cast<char>((i * 131 + salt * 7) & 0xff);
  }
  return s;
}

// `sizes.size()` chunks followed by the final record.
std::vector<Rec> Write(const std::vector<size_t>& sizes,
                       std::string_view session = kSession) {
  auto sealer = ChunkSealer::Create(Key(), session);
  EXPECT_TRUE(sealer.ok()) << sealer.status().ToString();
  std::vector<Rec> recs;
  for (size_t i = 0; i < sizes.size(); ++i) {
    Rec r;
    r.time_us = static_cast<int64_t>(i) * 1500 + 7;
    r.direction = "oie"[i % 3];
    r.context = i % 2 ? "10.0.0.1:22>10.0.0.2:5000" : "";
    r.plain = Payload(sizes[i], static_cast<int>(i));
    EXPECT_TRUE((*sealer)->Seal(r.info(), r.plain, &r.sealed).ok());
    recs.push_back(std::move(r));
  }
  Rec f;
  f.is_final = true;
  f.time_us = static_cast<int64_t>(sizes.size()) * 1500 + 9;
  EXPECT_TRUE((*sealer)->SealFinal(f.time_us, &f.sealed).ok());
  recs.push_back(std::move(f));
  return recs;
}

std::vector<Rec> Write(int n) { return Write(std::vector<size_t>(n, 100)); }

struct Outcome {
  std::vector<Status> each;  // One per record, in order.
  std::vector<std::string> plains;
  Status finish;
  Integrity integrity = Integrity::kOk;
  uint64_t opened = 0;
};

Outcome Read(const std::vector<Rec>& recs, std::string_view session = kSession,
             const std::string& key = Key()) {
  auto opener = ChunkOpener::Create(key, session);
  EXPECT_TRUE(opener.ok()) << opener.status().ToString();
  Outcome o;
  for (const Rec& r : recs) {
    if (r.is_final) {
      o.each.push_back((*opener)->OpenFinal(r.time_us, r.sealed));
      continue;
    }
    auto plain = (*opener)->Open(r.info(), r.sealed);
    o.each.push_back(plain.status());
    if (plain.ok()) o.plains.push_back(*plain);
  }
  o.finish = (*opener)->Finish();
  o.integrity = (*opener)->integrity();
  o.opened = (*opener)->opened();
  return o;
}

// The recording is reported as `want`, Finish says so with a kDataLoss
// message naming the class and containing `text`.
void ExpectFailure(const Outcome& o, Integrity want, const std::string& text) {
  EXPECT_EQ(o.integrity, want) << IntegrityName(o.integrity);
  EXPECT_EQ(o.finish.code(), Code::kDataLoss);
  EXPECT_THAT(o.finish.message(), HasSubstr(std::string(IntegrityName(want))));
  EXPECT_THAT(o.finish.message(), HasSubstr(text));
}

TEST(SealTest, RoundTripsChunksOfVariousSizes) {
  std::vector<size_t> sizes = {0, 1, 15, 16, 17, 1000, 65536, 1 << 20, 0, 3};
  std::vector<Rec> recs = Write(sizes);
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(recs[i].sealed.size(), sizes[i] + kSealOverhead);
  }
  Outcome o = Read(recs);
  for (const Status& s : o.each) EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(o.finish.ok()) << o.finish.ToString();
  EXPECT_EQ(o.integrity, Integrity::kOk);
  EXPECT_EQ(o.opened, sizes.size());
  ASSERT_EQ(o.plains.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i)
    EXPECT_EQ(o.plains[i], recs[i].plain);
}

TEST(SealTest, ManyChunksRoundTrip) {
  std::vector<size_t> sizes;
  for (size_t i = 0; i < 500; ++i) sizes.push_back((i * 37) % 4096);
  Outcome o = Read(Write(sizes));
  EXPECT_TRUE(o.finish.ok()) << o.finish.ToString();
  EXPECT_EQ(o.opened, 500u);
}

TEST(SealTest, EmptyRecordingRoundTrips) {
  std::vector<Rec> recs = Write(0);
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0].sealed.size(), kSealOverhead + 40);
  Outcome o = Read(recs);
  EXPECT_TRUE(o.finish.ok()) << o.finish.ToString();
}

TEST(SealTest, SeqIsReadableBigEndianAndSealAppends) {
  auto sealer = ChunkSealer::Create(Key(), kSession).value();
  std::string out = "prefix";
  ASSERT_TRUE(sealer->Seal({}, "a", &out).ok());
  ASSERT_TRUE(sealer->Seal({}, "bc", &out).ok());
  EXPECT_EQ(sealer->count(), 2u);
  ASSERT_EQ(out.size(), 6 + 2 * kSealOverhead + 3);
  EXPECT_EQ(out.substr(0, 6), "prefix");
  EXPECT_EQ(HexEncode(out.substr(6, 8)), "0000000000000000");
  EXPECT_EQ(HexEncode(out.substr(6 + kSealOverhead + 1, 8)),
            "0000000000000001");
  std::string last;
  ASSERT_TRUE(sealer->SealFinal(99, &last).ok());
  EXPECT_EQ(HexEncode(last.substr(0, 8)), "0000000000000002");
}

TEST(SealTest, NoncesDifferBetweenSealsOfTheSamePlaintext) {
  auto a = ChunkSealer::Create(Key(), kSession).value();
  auto b = ChunkSealer::Create(Key(), kSession).value();
  std::string sa, sb;
  ASSERT_TRUE(a->Seal({5, 'o', ""}, "same plaintext", &sa).ok());
  ASSERT_TRUE(b->Seal({5, 'o', ""}, "same plaintext", &sb).ok());
  EXPECT_EQ(sa.substr(0, kSeqSize), sb.substr(0, kSeqSize));
  EXPECT_NE(sa.substr(kSeqSize, kNonceSize), sb.substr(kSeqSize, kNonceSize));
  EXPECT_NE(sa.substr(kSeqSize + kNonceSize), sb.substr(kSeqSize + kNonceSize));

  std::string s1, s2;
  ASSERT_TRUE(a->Seal({6, 'o', ""}, "x", &s1).ok());
  ASSERT_TRUE(a->Seal({6, 'o', ""}, "x", &s2).ok());
  EXPECT_NE(s1.substr(kSeqSize, kNonceSize), s2.substr(kSeqSize, kNonceSize));
}

// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", Appendix B,
// Test Case 16 (AES-256, 96-bit IV, with AAD).
TEST(SealTest, AesGcmMatchesPublishedTestCase16) {
  std::string key = HexDecode(
                        "feffe9928665731c6d6a8f9467308308"
                        "feffe9928665731c6d6a8f9467308308")
                        .value();
  std::string iv = HexDecode("cafebabefacedbaddecaf888").value();
  std::string pt = HexDecode(
                       "d9313225f88406e5a55909c5aff5269a"
                       "86a7a9531534f7da2e4c303d8a318a72"
                       "1c3c0c95956809532fcf0e2449a6b525"
                       "b16aedf5aa0de657ba637b39")
                       .value();
  std::string aad =
      HexDecode("feedfacedeadbeeffeedfacedeadbeefabaddad2").value();
  std::string want_hex =
      "522dc1f099567d07f47f37a32a84427d"
      "643a8cdcbfe5c0c97598a2bd2555d1aa"
      "8cb08e48590dbb3da7b08b1056828838"
      "c5f61e6393ba7a0abcc9f662"
      "76fc6ece0f4e1768cddf8853bb2d551b";  // Tag.
  auto sealed = internal::AesGcmSeal(key, iv, aad, pt);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_EQ(HexEncode(*sealed), want_hex);

  auto opened = internal::AesGcmOpen(key, iv, aad, *sealed);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, pt);

  std::string bad = *sealed;
  bad.back() ^= 1;
  EXPECT_EQ(internal::AesGcmOpen(key, iv, aad, bad).status().code(),
            Code::kDataLoss);
}

TEST(SealTest, FlippedCiphertextByteIsTampered) {
  std::vector<Rec> recs = Write(5);
  recs[2].sealed[kSeqSize + kNonceSize + 10] ^= 0x01;
  Outcome o = Read(recs);
  EXPECT_EQ(o.each[2].code(), Code::kDataLoss);
  ExpectFailure(o, Integrity::kTampered, "chunk 2 failed authentication");
}

TEST(SealTest, FlippedTagByteIsTampered) {
  std::vector<Rec> recs = Write(5);
  recs[3].sealed.back() ^= 0x80;
  ExpectFailure(Read(recs), Integrity::kTampered,
                "chunk 3 failed authentication");
}

TEST(SealTest, FlippedNonceByteIsTampered) {
  std::vector<Rec> recs = Write(5);
  recs[1].sealed[kSeqSize] ^= 0x01;
  ExpectFailure(Read(recs), Integrity::kTampered,
                "chunk 1 failed authentication");
}

TEST(SealTest, FlippedSeqByteIsTampered) {
  std::vector<Rec> recs = Write(5);
  recs[2].sealed[7] ^= 0x04;  // Claims to be chunk 6.
  ExpectFailure(Read(recs), Integrity::kTampered,
                "chunk 6 failed authentication");
}

TEST(SealTest, ChangedTimeIsTampered) {
  std::vector<Rec> recs = Write(5);
  recs[2].time_us += 1;
  ExpectFailure(Read(recs), Integrity::kTampered, "chunk 2");
}

TEST(SealTest, ChangedDirectionIsTampered) {
  std::vector<Rec> recs = Write(5);
  ASSERT_EQ(recs[2].direction, 'e');
  recs[2].direction = 'o';
  ExpectFailure(Read(recs), Integrity::kTampered, "chunk 2");
}

TEST(SealTest, ChangedContextIsTampered) {
  std::vector<Rec> recs = Write(5);
  recs[1].context = "10.0.0.1:22>10.0.0.3:5000";
  ExpectFailure(Read(recs), Integrity::kTampered, "chunk 1");
}

TEST(SealTest, ChangedFinalRecordIsTampered) {
  std::vector<Rec> recs = Write(3);
  recs.back().sealed[kSeqSize + kNonceSize] ^= 0x01;
  ExpectFailure(Read(recs), Integrity::kTampered, "final record");

  recs = Write(3);
  recs.back().time_us += 1;
  ExpectFailure(Read(recs), Integrity::kTampered, "final record");
}

TEST(SealTest, WrongSessionIdIsTampered) {
  Outcome o = Read(Write(3), "another-session");
  ExpectFailure(o, Integrity::kTampered, "session id does not match");
  EXPECT_EQ(o.opened, 0u);
}

TEST(SealTest, SwappedChunksAreReordered) {
  std::vector<Rec> recs = Write(5);
  std::swap(recs[2], recs[3]);
  Outcome o = Read(recs);
  EXPECT_TRUE(o.each[2].ok());  // Chunk 3 is authentic; 2 is only missing.
  EXPECT_EQ(o.each[3].code(), Code::kDataLoss);
  ExpectFailure(o, Integrity::kReordered, "chunk 2 appears after chunk 3");
}

TEST(SealTest, ChunkRemovedFromTheMiddleIsDropped) {
  std::vector<Rec> recs = Write(5);
  recs.erase(recs.begin() + 2);
  Outcome o = Read(recs);
  for (size_t i = 0; i + 1 < o.each.size(); ++i) EXPECT_TRUE(o.each[i].ok());
  EXPECT_EQ(o.opened, 4u);
  ExpectFailure(o, Integrity::kDropped, "chunk 2 is missing");
}

TEST(SealTest, ChunkRemovedFromTheEndIsDropped) {
  std::vector<Rec> recs = Write(5);
  recs.erase(recs.begin() + 4);
  ExpectFailure(Read(recs), Integrity::kDropped, "chunk 4 is missing");
}

TEST(SealTest, RepeatedChunkIsDuplicated) {
  std::vector<Rec> recs = Write(5);
  recs.insert(recs.begin() + 3, recs[1]);
  Outcome o = Read(recs);
  EXPECT_EQ(o.each[3].code(), Code::kDataLoss);
  EXPECT_TRUE(o.each.back().ok()) << o.each.back().ToString();
  EXPECT_EQ(o.opened, 5u);
  ExpectFailure(o, Integrity::kDuplicated, "chunk 1 appears twice");
}

TEST(SealTest, ChunkAfterTheFinalRecordIsAppended) {
  std::vector<Rec> recs = Write(3);
  recs.push_back(recs[1]);
  ExpectFailure(Read(recs), Integrity::kAppended,
                "chunk 1 follows the final record");

  // Even a chunk from a longer recording of the same session.
  std::vector<Rec> longer = Write(5);
  recs = Write(3);
  recs.push_back(longer[3]);
  ExpectFailure(Read(recs), Integrity::kAppended, "follows the final record");
}

TEST(SealTest, FinalRecordAfterTheFinalRecordIsAppended) {
  std::vector<Rec> recs = Write(3);
  recs.push_back(recs.back());
  ExpectFailure(Read(recs), Integrity::kAppended,
                "second final record follows the final record");
}

TEST(SealTest, MissingFinalRecordIsTruncated) {
  std::vector<Rec> recs = Write(5);
  recs.pop_back();
  Outcome o = Read(recs);
  EXPECT_EQ(o.opened, 5u);
  ExpectFailure(o, Integrity::kTruncated,
                "ends after chunk 4 without its final record: truncated");

  o = Read({});
  ExpectFailure(o, Integrity::kTruncated, "ends before its first chunk");
}

TEST(SealTest, FirstFailureStays) {
  std::vector<Rec> recs = Write(5);
  recs[1].sealed.back() ^= 1;
  recs.insert(recs.begin() + 3, recs[2]);
  recs.pop_back();
  Outcome o = Read(recs);
  ExpectFailure(o, Integrity::kTampered, "chunk 1 failed authentication");
  EXPECT_EQ(o.each[3].code(), Code::kDataLoss);  // The duplicate.
}

TEST(SealTest, TooShortChunkIsMalformed) {
  std::vector<Rec> recs = Write(3);
  recs[1].sealed.resize(kSealOverhead - 1);
  ExpectFailure(Read(recs), Integrity::kMalformed, "position 1");
}

TEST(SealTest, WrongKeyIsReportedByCheckKeyId) {
  const std::string right = Key();
  const std::string wrong = Key(kOtherKeyHex);
  auto opener = ChunkOpener::Create(wrong, kSession).value();
  Status s = opener->CheckKeyId(KeyId(right));
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_EQ(opener->integrity(), Integrity::kWrongKey);
  EXPECT_THAT(s.message(), HasSubstr("wrong key"));
  EXPECT_THAT(s.message(), HasSubstr("does not match the key the recording"));
  EXPECT_THAT(s.message(), HasSubstr(KeyId(right)));
  EXPECT_THAT(s.message(), HasSubstr(KeyId(wrong)));
  EXPECT_THAT(s.message(), Not(HasSubstr(kOtherKeyHex)));
  EXPECT_THAT(s.message(), Not(HasSubstr(kKeyHex)));
  EXPECT_EQ(opener->Finish().message(), s.message());

  auto good = ChunkOpener::Create(right, kSession).value();
  EXPECT_TRUE(good->CheckKeyId(KeyId(right)).ok());
  EXPECT_EQ(good->integrity(), Integrity::kOk);
}

TEST(SealTest, WrongKeyWithoutKeyIdMentionsBothPossibilities) {
  Outcome o = Read(Write(3), kSession, Key(kOtherKeyHex));
  ExpectFailure(o, Integrity::kTampered, "tampered or wrong key");
}

TEST(SealTest, KeyIdIsShortPublicAndDistinct) {
  std::string id = KeyId(Key());
  EXPECT_EQ(id.size(), 16u);
  EXPECT_EQ(id, KeyId(Key()));
  EXPECT_NE(id, KeyId(Key(kOtherKeyHex)));
  EXPECT_EQ(std::string(kKeyHex).find(id), std::string::npos);
}

TEST(SealTest, SealAfterFinalFails) {
  auto sealer = ChunkSealer::Create(Key(), kSession).value();
  std::string out;
  ASSERT_TRUE(sealer->Seal({}, "x", &out).ok());
  ASSERT_TRUE(sealer->SealFinal(1, &out).ok());
  size_t size = out.size();
  EXPECT_EQ(sealer->Seal({}, "y", &out).code(), Code::kFailedPrecondition);
  EXPECT_EQ(sealer->SealFinal(2, &out).code(), Code::kFailedPrecondition);
  EXPECT_EQ(out.size(), size);
}

TEST(SealTest, CreateRejectsKeysOfTheWrongSize) {
  EXPECT_EQ(ChunkSealer::Create(std::string(31, 'k'), kSession).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ChunkOpener::Create(std::string(33, 'k'), kSession).status().code(),
            Code::kInvalidArgument);
}

TEST(SealTest, ParseKeyHexAcceptsBothCases) {
  auto lower = ParseKeyHex(kKeyHex);
  ASSERT_TRUE(lower.ok());
  EXPECT_EQ(lower->size(), kKeySize);
  std::string upper = kKeyHex;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  EXPECT_EQ(ParseKeyHex(upper).value(), *lower);
}

TEST(SealTest, ParseKeyHexNamesTheProblemWithoutEchoingTheKey) {
  std::string key = kOtherKeyHex;
  auto short_key = ParseKeyHex(key.substr(0, 63));
  EXPECT_EQ(short_key.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(short_key.status().message(), HasSubstr("64"));
  EXPECT_THAT(short_key.status().message(), HasSubstr("found 63"));

  auto long_key = ParseKeyHex(key + "\n");
  EXPECT_EQ(long_key.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(long_key.status().message(), HasSubstr("found 65"));
  EXPECT_THAT(long_key.status().message(), HasSubstr("newline"));

  std::string bad = key;
  bad[10] = 'g';
  auto bad_char = ParseKeyHex(bad);
  EXPECT_EQ(bad_char.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(bad_char.status().message(), HasSubstr("offset 10"));

  for (const Status& s :
       {short_key.status(), long_key.status(), bad_char.status()}) {
    // No run of 8 characters of the key appears in the message.
    for (size_t i = 0; i + 8 <= key.size(); ++i) {
      EXPECT_THAT(s.message(), Not(HasSubstr(key.substr(i, 8))));
    }
  }
}

TEST(SealTest, IntegrityNamesAreDistinct) {
  std::vector<std::string_view> names;
  for (Integrity i :
       {Integrity::kOk, Integrity::kWrongKey, Integrity::kTampered,
        Integrity::kReordered, Integrity::kDuplicated, Integrity::kDropped,
        Integrity::kAppended, Integrity::kTruncated, Integrity::kMalformed}) {
    names.push_back(IntegrityName(i));
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(std::unique(names.begin(), names.end()), names.end());
}

}  // namespace
}  // namespace mez::record
