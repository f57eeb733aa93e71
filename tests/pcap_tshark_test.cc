// The real tshark (Wireshark 4.0) opens every pcap PcapWriter produces,
// validates its checksums, and "Follow TCP stream" returns exactly the bytes
// each side sent, one TCP stream per channel.
#include <gtest/gtest.h>

#include <cctype>
#include <random>
#include <sstream>

#include "libmez/record/pcap_reader.h"
#include "libmez/record/pcap_writer.h"
#include "libmez/record/seal.h"
#include "libmez/record/sink.h"
#include "libmez/util/encoding.h"
#include "tests/test_util.h"

namespace mez::record {
namespace {

using mez::testing::ShellQuote;
using mez::testing::TempDir;

constexpr int64_t kStart = 1'700'000'000'000'000;
constexpr auto kC2S = Direction::kIn;
constexpr auto kS2C = Direction::kOut;
const char kChecks[] = " -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE";

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::unique_ptr<PcapWriter> NewWriter(const std::string& path,
                                      PcapWriterOptions opts = {}) {
  opts.start_wall_us = kStart;
  auto sink = FileSink::Create(path);
  EXPECT_TRUE(sink.ok()) << sink.status().ToString();
  auto w = PcapWriter::Create(std::move(sink).value(), std::move(opts));
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  return std::move(w).value();
}

std::string Tshark(const std::string& args) {
  return mez::testing::Run("tshark " + args + " 2>/dev/null").out;
}

struct Followed {
  std::string node0;  // "ip:port" as tshark prints it.
  std::string to_node1;
  std::string to_node0;
};

// Runs `tshark -q -z follow,tcp,raw,N` for streams 0..n-1 at once (tshark
// starts slowly) and parses each block: after its "Node 1:" line, one hex
// line per segment, indented with a tab when node 1 sent it.
std::vector<Followed> Follow(const std::string& path, int n) {
  std::string args = "-r " + ShellQuote(path) + " -q";
  for (int i = 0; i < n; ++i) {
    args += " -z follow,tcp,raw," + std::to_string(i);
  }
  std::istringstream in(Tshark(args));
  std::vector<Followed> out(n);
  Followed* f = nullptr;
  std::string line;
  bool data = false;
  const std::string kFilter = "Filter: tcp.stream eq ";
  while (std::getline(in, line)) {
    if (line.rfind(kFilter, 0) == 0) {
      const int i = std::stoi(line.substr(kFilter.size()));
      f = i >= 0 && i < n ? &out[i] : nullptr;
      data = false;
      continue;
    }
    if (f == nullptr) continue;
    if (line.rfind("Node 0: ", 0) == 0) f->node0 = line.substr(8);
    if (line.rfind("Node 1: ", 0) == 0) {
      data = true;
      continue;
    }
    if (!data || line.empty()) continue;
    if (line[0] == '=') {
      f = nullptr;
      continue;
    }
    const bool from1 = line[0] == '\t';
    auto bytes = HexDecode(from1 ? line.substr(1) : line);
    EXPECT_TRUE(bytes.ok()) << line.substr(0, 80);
    if (bytes.ok()) (from1 ? f->to_node0 : f->to_node1) += *bytes;
  }
  return out;
}

// Number of TCP conversations `-z conv,tcp` lists.
int TcpStreams(const std::string& path) {
  std::istringstream in(Tshark("-r " + ShellQuote(path) + " -q -z conv,tcp"));
  std::string line;
  int n = 0;
  while (std::getline(in, line)) n += line.find("<->") != std::string::npos;
  return n;
}

void ExpectFollowEquals(const Followed& f, const FlowKey& key,
                        const std::string& up, const std::string& down) {
  SCOPED_TRACE(key.ToString());
  const std::string flow = key.ToString();  // "[client]:port>..."
  EXPECT_EQ(f.node0, flow.substr(0, flow.find('>')));
  EXPECT_EQ(f.to_node1.size(), up.size());
  EXPECT_EQ(f.to_node0.size(), down.size());
  EXPECT_TRUE(f.to_node1 == up);
  EXPECT_TRUE(f.to_node0 == down);
}

class PcapTshark : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(mez::testing::HaveProgram("tshark"))
        << "tshark is missing: run scripts/deps";
  }
  TempDir dir_;
};

TEST_F(PcapTshark, FollowReturnsEachDirectionForIpv4Ipv6AndHostname) {
  const std::string path = dir_.File("flows.pcap");
  auto w = NewWriter(path);
  struct Case {
    std::string dst;
    uint16_t port;
    std::string up, down;
    FlowKey key;
  };
  std::vector<Case> cases = {
      {"10.20.30.40", 7001, "GET / HTTP/1.0\r\n\r\n", RandomBytes(5000, 1), {}},
      {"fd00::42", 7002, RandomBytes(3001, 2), RandomBytes(1441, 3), {}},
      {"db.internal.example",
       7003,
       RandomBytes(1460, 4),
       RandomBytes(2921, 5),
       {}},
  };
  int64_t t = kStart;
  for (auto& c : cases) {
    auto id = w->OpenFlow(t += 1000, "127.0.0.1", 65535, c.dst, c.port);
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    c.key = *w->GetFlowKey(*id);
    // Interleave small writes in both directions.
    for (size_t i = 0; i < std::max(c.up.size(), c.down.size()); i += 700) {
      if (i < c.up.size()) {
        ASSERT_TRUE(w->Data(*id, t += 10, kC2S, c.up.substr(i, 700)).ok());
      }
      if (i < c.down.size()) {
        ASSERT_TRUE(w->Data(*id, t += 10, kS2C, c.down.substr(i, 700)).ok());
      }
    }
    ASSERT_TRUE(w->Shutdown(*id, t += 10, kC2S).ok());
    ASSERT_TRUE(w->Shutdown(*id, t += 10, kS2C).ok());
  }
  ASSERT_TRUE(w->Close().ok());
  EXPECT_TRUE(cases[1].key.ipv6);
  EXPECT_EQ(cases[2].key.server_ip.rfind("198.1", 0), 0u);
  EXPECT_EQ(TcpStreams(path), 3);
  auto followed = Follow(path, 3);
  for (size_t i = 0; i < cases.size(); ++i) {
    ExpectFollowEquals(followed[i], cases[i].key, cases[i].up, cases[i].down);
  }
}

TEST_F(PcapTshark, OneMegabyteTransfer) {
  const std::string path = dir_.File("big.pcap");
  auto w = NewWriter(path);
  auto id = w->OpenFlow(kStart, "", 0, "10.0.0.9", 9000);
  ASSERT_TRUE(id.ok());
  const std::string up = RandomBytes(1000, 6);
  const std::string down = RandomBytes(1 << 20, 7);
  ASSERT_TRUE(w->Data(*id, kStart + 1, kC2S, up).ok());
  for (size_t i = 0; i < down.size(); i += 32768) {
    ASSERT_TRUE(w->Data(*id, kStart + 2 + i, kS2C, down.substr(i, 32768)).ok());
  }
  const FlowKey key = *w->GetFlowKey(*id);
  ASSERT_TRUE(w->Shutdown(*id, kStart + 5'000'000, kS2C).ok());
  ASSERT_TRUE(w->Close().ok());
  EXPECT_EQ(TcpStreams(path), 1);
  ExpectFollowEquals(Follow(path, 1)[0], key, up, down);
}

TEST_F(PcapTshark, ThreeChannelsToOneDestinationAreThreeStreams) {
  const std::string path = dir_.File("three.pcap");
  auto w = NewWriter(path);
  std::vector<FlowId> ids;
  std::vector<FlowKey> keys;
  std::vector<std::string> up(3), down(3);
  for (int i = 0; i < 3; ++i) {
    // `ssh -W` reports the same originator for every channel.
    auto id = w->OpenFlow(kStart + i, "127.0.0.1", 65535, "app.example", 8443);
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
    keys.push_back(*w->GetFlowKey(*id));
  }
  // Channels interleave in the one file.
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 3; ++i) {
      std::string a = RandomBytes(100 + 900 * i + round, 10 * i + round);
      std::string b = RandomBytes(3000 - 700 * i, 100 + 10 * i + round);
      up[i] += a;
      down[i] += b;
      ASSERT_TRUE(w->Data(ids[i], kStart + 100 + round, kC2S, a).ok());
      ASSERT_TRUE(w->Data(ids[i], kStart + 100 + round, kS2C, b).ok());
    }
  }
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(w->Shutdown(ids[i], kStart + 200, kC2S).ok());
    ASSERT_TRUE(w->Shutdown(ids[i], kStart + 200, kS2C).ok());
  }
  ASSERT_TRUE(w->Close().ok());
  EXPECT_EQ(TcpStreams(path), 3);
  auto followed = Follow(path, 3);
  for (int i = 0; i < 3; ++i) {
    ExpectFollowEquals(followed[i], keys[i], up[i], down[i]);
  }
}

// Every packet's IP and TCP checksums validate; the only expert warning
// is the RST of the refused open, and nothing is malformed.
TEST_F(PcapTshark, ChecksumsValidateAndNothingIsMalformed) {
  const std::string path = dir_.File("check.pcap");
  auto w = NewWriter(path);
  for (const char* dst : {"192.0.2.7", "2001:db8:5::7", "files.example"}) {
    auto id = w->OpenFlow(kStart, "", 0, dst, 7777);
    ASSERT_TRUE(id.ok());
    ASSERT_TRUE(w->Data(*id, kStart + 1, kC2S, RandomBytes(3333, 8)).ok());
    ASSERT_TRUE(w->Data(*id, kStart + 2, kS2C, RandomBytes(777, 9)).ok());
    ASSERT_TRUE(w->Shutdown(*id, kStart + 3, kS2C).ok());
    ASSERT_TRUE(w->Shutdown(*id, kStart + 3, kC2S).ok());
  }
  ASSERT_TRUE(w->FailedOpen(kStart + 4, "", 0, "192.0.2.8", 7777).ok());
  ASSERT_TRUE(w->Close().ok());

  auto r =
      mez::testing::Run("tshark -r " + ShellQuote(path) + kChecks + " -V 2>&1");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out.find("Checksum Status: Bad"), std::string::npos);
  EXPECT_EQ(r.out.find("Malformed"), std::string::npos);
  EXPECT_NE(r.out.find("[Checksum Status: Good]"), std::string::npos);

  std::istringstream expert(
      Tshark("-r " + ShellQuote(path) + kChecks + " -q -z expert,warn"));
  std::string line;
  int warnings = 0;
  while (std::getline(expert, line)) {
    // Table rows start with a frequency; headers and titles do not.
    const size_t first = line.find_first_not_of(' ');
    if (first == line.npos ||
        !isdigit(static_cast<unsigned char>(line[first]))) {
      continue;
    }
    ++warnings;
    EXPECT_NE(line.find("Connection reset (RST)"), std::string::npos) << line;
  }
  EXPECT_EQ(warnings, 1);
}

TEST_F(PcapTshark, FileCutMidRecordIsReadableUpToTheCut) {
  const std::string path = dir_.File("whole.pcap");
  auto w = NewWriter(path);
  auto id = w->OpenFlow(kStart, "", 0, "10.0.0.3", 40123);
  ASSERT_TRUE(id.ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(
        w->Data(*id, kStart + i, i % 2 ? kS2C : kC2S, RandomBytes(2000, 20 + i))
            .ok());
  }
  ASSERT_TRUE(w->Close().ok());
  auto whole = mez::testing::Run("cat " + ShellQuote(path)).out;
  const size_t cut = whole.size() * 3 / 5 + 7;
  const std::string cut_path = dir_.File("cut.pcap");
  mez::testing::WriteFileOrDie(cut_path, whole.substr(0, cut));

  // Our reader: the complete packets before the cut, then truncated().
  auto reader = PcapReader::OpenFile(cut_path);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  PcapPacket p;
  int ours = 0;
  while (true) {
    auto more = (*reader)->Next(&p);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    ++ours;
  }
  EXPECT_TRUE((*reader)->truncated());
  EXPECT_GT(ours, 10);

  // tshark may exit non-zero naming the cut, but prints the same packets.
  auto r = mez::testing::Run("tshark -r " + ShellQuote(cut_path) + " 2>&1");
  std::istringstream in(r.out);
  std::string line;
  int listed = 0;
  while (std::getline(in, line)) {
    // Packet lines start with the frame number.
    const size_t first = line.find_first_not_of(' ');
    listed += first != line.npos && first > 0 &&
              isdigit(static_cast<unsigned char>(line[first]));
  }
  EXPECT_EQ(listed, ours) << r.out.substr(r.out.size() - 300);
  EXPECT_NE(r.out.find("cut short"), std::string::npos);
}

TEST_F(PcapTshark, EncryptedFileOpensWithHandshakesAndStreams) {
  const std::string path = dir_.File("enc.pcap");
  const std::string key(32, '\x5a');
  PcapWriterOptions opts;
  opts.sealer = std::move(ChunkSealer::Create(key, "sess-9")).value();
  opts.session_id = "sess-9";
  opts.key_id = KeyId(key);
  auto w = NewWriter(path, std::move(opts));
  const std::string up = RandomBytes(10000, 30), down = RandomBytes(500, 31);
  std::vector<FlowKey> keys;
  for (const char* dst : {"10.0.0.4", "fd00::4"}) {
    auto id = w->OpenFlow(kStart, "", 0, dst, 5555);
    ASSERT_TRUE(id.ok());
    keys.push_back(*w->GetFlowKey(*id));
    ASSERT_TRUE(w->Data(*id, kStart + 1, kC2S, up).ok());
    ASSERT_TRUE(w->Data(*id, kStart + 2, kS2C, down).ok());
    ASSERT_TRUE(w->Shutdown(*id, kStart + 3, kC2S).ok());
  }
  ASSERT_TRUE(w->Close().ok());

  auto r =
      mez::testing::Run("tshark -r " + ShellQuote(path) + kChecks + " 2>&1");
  EXPECT_EQ(r.exit_code, 0);
  size_t syns = 0;
  for (size_t at = 0; (at = r.out.find("[SYN]", at)) != r.out.npos; ++at) {
    ++syns;
  }
  EXPECT_EQ(syns, 2u);
  EXPECT_NE(r.out.find("0x88b5"), std::string::npos);  // Metadata frames.
  EXPECT_EQ(r.out.find("Malformed"), std::string::npos);
  EXPECT_EQ(TcpStreams(path), 2);

  // Streams carry the sealed bytes: the stored stream is our reader's
  // key-less view, and with the key the plaintext comes back.
  auto raw = PcapReader::OpenFile(path);
  ASSERT_TRUE(raw.ok());
  auto sealed = ReassembleFlows(raw->get());
  ASSERT_TRUE(sealed.ok());
  PcapReaderOptions ro;
  ro.key = key;
  auto opened_reader = PcapReader::OpenFile(path, ro);
  ASSERT_TRUE(opened_reader.ok()) << opened_reader.status().ToString();
  auto opened = ReassembleFlows(opened_reader->get());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto followed = Follow(path, 2);
  for (int i = 0; i < 2; ++i) {
    ExpectFollowEquals(followed[i], keys[i], sealed->flows[i].client_to_server,
                       sealed->flows[i].server_to_client);
    EXPECT_TRUE(opened->flows[i].client_to_server == up);
    EXPECT_TRUE(opened->flows[i].server_to_client == down);
  }
}

}  // namespace
}  // namespace mez::record
