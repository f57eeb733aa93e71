#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "libmez/record/pcap_reader.h"
#include "libmez/record/pcap_writer.h"
#include "libmez/record/seal.h"
#include "libmez/record/sink.h"

namespace mez::record {
namespace {

constexpr int64_t kStart = 1'700'000'000'000'000;
constexpr auto kC2S = Direction::kIn;
constexpr auto kS2C = Direction::kOut;

// An independent, deliberately naive parse of the bytes on disk, so that
// the tests do not trust PcapReader to check PcapWriter.
struct Raw {
  size_t offset = 0;  // Of the frame (after the record header).
  uint32_t sec = 0, usec = 0;
  std::string frame;
  bool v6 = false;
  size_t ip = 14, tcp = 0, payload = 0, end = 0;
  uint16_t ether = 0;

  const unsigned char* u() const {
    return reinterpret_cast<const unsigned char*>(frame.data());
  }
  uint16_t U16(size_t at) const { return (u()[at] << 8) | u()[at + 1]; }
  uint32_t U32(size_t at) const {
    return (uint32_t{U16(at)} << 16) | U16(at + 2);
  }
  uint8_t flags() const { return u()[tcp + 13]; }
  uint32_t seq() const { return U32(tcp + 4); }
  uint32_t ack() const { return U32(tcp + 8); }
  uint16_t sport() const { return U16(tcp); }
  uint16_t dport() const { return U16(tcp + 2); }
  size_t payload_len() const { return end - payload; }
  int64_t time_us() const { return int64_t{sec} * 1000000 + usec; }
};

uint32_t Le32(const std::string& s, size_t at) {
  uint32_t v;
  memcpy(&v, s.data() + at, 4);  // The test host is little-endian.
  return v;
}

std::vector<Raw> ParseRaw(const std::string& file) {
  std::vector<Raw> out;
  for (size_t at = 24; at + 16 <= file.size();) {
    Raw r;
    r.sec = Le32(file, at);
    r.usec = Le32(file, at + 4);
    const uint32_t len = Le32(file, at + 8);
    EXPECT_EQ(len, Le32(file, at + 12));
    EXPECT_LE(len, kPcapSnaplen);
    r.offset = at + 16;
    r.frame = file.substr(r.offset, len);
    at = r.offset + len;
    r.ether = r.U16(12);
    if (r.ether == 0x0800) {
      r.tcp = 14 + (r.u()[14] & 15) * 4;
      r.end = 14 + r.U16(16);
    } else if (r.ether == 0x86dd) {
      r.v6 = true;
      r.tcp = 54;
      r.end = 54 + r.U16(18);
    }
    if (r.tcp) r.payload = r.tcp + (r.u()[r.tcp + 12] >> 4) * 4;
    out.push_back(std::move(r));
  }
  return out;
}

// Plain ones-complement sum, folded, without the final inversion.
uint16_t OnesSum(std::string_view d, uint32_t sum = 0) {
  for (size_t i = 0; i < d.size(); ++i) {
    sum += static_cast<unsigned char>(d[i]) << ((i % 2) ? 0 : 8);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

void ExpectChecksumsValid(const Raw& r) {
  std::string_view f(r.frame);
  std::string pseudo;
  const size_t tcp_len = r.end - r.tcp;
  if (!r.v6) {
    EXPECT_EQ(OnesSum(f.substr(14, r.tcp - 14)), 0xffff) << "IPv4 header";
    pseudo.append(f.substr(26, 8));
    pseudo += std::string("\0\x06", 2);
    pseudo.push_back(static_cast<char>(tcp_len >> 8));
    pseudo.push_back(static_cast<char>(tcp_len));
  } else {
    pseudo.append(f.substr(22, 32));
    pseudo += std::string("\0\0", 2);
    pseudo.push_back(static_cast<char>(tcp_len >> 8));
    pseudo.push_back(static_cast<char>(tcp_len));
    pseudo += std::string("\0\0\0\x06", 4);
  }
  EXPECT_EQ(OnesSum(f.substr(r.tcp, tcp_len), OnesSum(pseudo)), 0xffff)
      << "TCP checksum";
}

struct Fixture {
  StringSink* sink = nullptr;
  std::unique_ptr<PcapWriter> writer;

  explicit Fixture(PcapWriterOptions opts = {}) {
    if (opts.start_wall_us == 0) opts.start_wall_us = kStart;
    auto s = std::make_unique<StringSink>();
    sink = s.get();
    auto w = PcapWriter::Create(std::move(s), std::move(opts));
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    writer = std::move(w).value();
  }
  FlowId Open(std::string_view dst, uint16_t port = 80,
              std::string_view src = "", uint16_t sport = 0,
              int64_t t = kStart) {
    auto id = writer->OpenFlow(t, src, sport, dst, port);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? *id : 0;
  }
  const std::string& bytes() const { return sink->data(); }
};

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

Result<Reassembly> Reassemble(const std::string& file,
                              PcapReaderOptions opts = {}) {
  MEZ_ASSIGN_OR_RETURN(
      auto reader,
      PcapReader::Open(std::make_unique<StringSource>(file), std::move(opts)));
  return ReassembleFlows(reader.get());
}

TEST(PcapWriter, FileHeaderIsClassicLittleEndianEthernet) {
  Fixture fx;
  ASSERT_TRUE(fx.writer->Close().ok());
  const std::string& b = fx.bytes();
  ASSERT_EQ(b.size(), 24u);
  EXPECT_EQ(b.substr(0, 4), "\xd4\xc3\xb2\xa1");
  EXPECT_EQ(Le32(b, 4), 0x00040002u);  // Version 2.4.
  EXPECT_EQ(Le32(b, 16), kPcapSnaplen);
  EXPECT_EQ(Le32(b, 20), 1u);
  EXPECT_TRUE(fx.sink->closed());
}

TEST(PcapWriter, ChecksumsMatchAnIndependentComputation) {
  Fixture fx;
  FlowId a = fx.Open("10.1.2.3", 443, "10.9.9.9", 40000);
  FlowId b = fx.Open("2001:db8:1::7", 22);
  FlowId c = fx.Open("db.internal", 5432);
  for (FlowId id : {a, b, c}) {
    ASSERT_TRUE(fx.writer->Data(id, kStart + 5, kC2S, "odd").ok());
    ASSERT_TRUE(
        fx.writer->Data(id, kStart + 6, kS2C, RandomBytes(4001, id)).ok());
    ASSERT_TRUE(fx.writer->Shutdown(id, kStart + 7, kC2S).ok());
  }
  ASSERT_TRUE(fx.writer->FailedOpen(kStart + 8, "", 0, "10.0.0.1", 1).ok());
  ASSERT_TRUE(fx.writer->Close().ok());
  auto raw = ParseRaw(fx.bytes());
  ASSERT_GT(raw.size(), 20u);
  int v6 = 0;
  for (const Raw& r : raw) {
    ASSERT_NE(r.tcp, 0u);
    ExpectChecksumsValid(r);
    v6 += r.v6;
  }
  EXPECT_GT(v6, 0);
}

TEST(PcapWriter, HandshakeThenDataThenFinPerDirection) {
  std::vector<uint32_t> isns = {1000, 5000};
  size_t next = 0;
  PcapWriterOptions opts;
  opts.isn_generator = [&] { return isns[next++]; };
  Fixture fx(std::move(opts));
  FlowId id = fx.Open("10.0.0.2", 8080, "10.0.0.1", 33333);
  ASSERT_TRUE(fx.writer->Data(id, kStart + 1, kC2S, "GET /").ok());
  ASSERT_TRUE(fx.writer->Shutdown(id, kStart + 2, kC2S).ok());
  ASSERT_TRUE(fx.writer->Data(id, kStart + 3, kS2C, "200 OK").ok());
  ASSERT_TRUE(fx.writer->Shutdown(id, kStart + 4, kS2C).ok());
  EXPECT_FALSE(fx.writer->Data(id, kStart + 5, kS2C, "x").ok());
  ASSERT_TRUE(fx.writer->Close().ok());

  auto raw = ParseRaw(fx.bytes());
  struct Want {
    uint16_t sport;
    uint8_t flags;
    uint32_t seq, ack;
    size_t len;
  };
  const uint8_t pa = kTcpPsh | kTcpAck, fa = kTcpFin | kTcpAck;
  std::vector<Want> want = {
      {33333, kTcpSyn, 1000, 0, 0},    {8080, kTcpSyn | kTcpAck, 5000, 1001, 0},
      {33333, kTcpAck, 1001, 5001, 0}, {33333, pa, 1001, 5001, 5},
      {8080, kTcpAck, 5001, 1006, 0},  {33333, fa, 1006, 5001, 0},
      {8080, kTcpAck, 5001, 1007, 0},  {8080, pa, 5001, 1007, 6},
      {33333, kTcpAck, 1007, 5007, 0}, {8080, fa, 5007, 1007, 0},
      {33333, kTcpAck, 1007, 5008, 0},
  };
  ASSERT_EQ(raw.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(raw[i].sport(), want[i].sport);
    EXPECT_EQ(raw[i].flags(), want[i].flags);
    EXPECT_EQ(raw[i].seq(), want[i].seq);
    EXPECT_EQ(raw[i].ack(), want[i].ack);
    EXPECT_EQ(raw[i].payload_len(), want[i].len);
  }
  // The SYNs announce the MSS.
  EXPECT_EQ(raw[0].frame.substr(raw[0].tcp + 20, 4), "\x02\x04\x05\xb4");
  EXPECT_EQ(raw[1].frame.substr(raw[1].tcp + 20, 4), "\x02\x04\x05\xb4");
}

TEST(PcapWriter, SegmentsNeverExceedTheMss) {
  Fixture fx;
  FlowId v4 = fx.Open("10.0.0.2");
  FlowId v6 = fx.Open("[fd00::2]");
  const std::string data = RandomBytes(100000, 1);
  ASSERT_TRUE(fx.writer->Data(v4, kStart, kC2S, data).ok());
  ASSERT_TRUE(fx.writer->Data(v6, kStart, kS2C, data).ok());
  ASSERT_TRUE(fx.writer->Close().ok());
  size_t max4 = 0, max6 = 0;
  for (const Raw& r : ParseRaw(fx.bytes())) {
    (r.v6 ? max6 : max4) = std::max(r.v6 ? max6 : max4, r.payload_len());
  }
  EXPECT_EQ(max4, kMssIpv4);
  EXPECT_EQ(max6, kMssIpv6);
  auto re = Reassemble(fx.bytes());
  ASSERT_TRUE(re.ok()) << re.status().ToString();
  ASSERT_EQ(re->flows.size(), 2u);
  EXPECT_TRUE(re->flows[0].client_to_server == data);
  EXPECT_TRUE(re->flows[1].server_to_client == data);
  EXPECT_TRUE(re->flows[1].key.ipv6);
}

TEST(PcapWriter, SequenceNumbersWrapModulo2To32) {
  PcapWriterOptions opts;
  opts.isn_generator = [] { return 0xffffff00u; };
  Fixture fx(std::move(opts));
  FlowId id = fx.Open("10.0.0.2");
  const std::string up = RandomBytes(5000, 2), down = RandomBytes(3000, 3);
  ASSERT_TRUE(fx.writer->Data(id, kStart, kC2S, up).ok());
  ASSERT_TRUE(fx.writer->Data(id, kStart, kS2C, down).ok());
  ASSERT_TRUE(fx.writer->Shutdown(id, kStart, kC2S).ok());
  ASSERT_TRUE(fx.writer->Close().ok());
  bool wrapped = false;
  for (const Raw& r : ParseRaw(fx.bytes())) {
    wrapped |= r.seq() < 0x1000 && r.payload_len() > 0;
  }
  EXPECT_TRUE(wrapped);
  auto raw = ParseRaw(fx.bytes());
  // The client's FIN is at ISN + 1 + 5000, modulo 2^32.
  bool fin_seen = false;
  for (const Raw& r : raw) {
    if (r.flags() & kTcpFin) {
      EXPECT_EQ(r.seq(), static_cast<uint32_t>(0xffffff00u + 1 + 5000));
      fin_seen = true;
    }
  }
  EXPECT_TRUE(fin_seen);
  auto re = Reassemble(fx.bytes());
  ASSERT_TRUE(re.ok()) << re.status().ToString();
  EXPECT_TRUE(re->flows[0].client_to_server == up);
  EXPECT_TRUE(re->flows[0].server_to_client == down);
  EXPECT_TRUE(re->flows[0].client_fin);
}

TEST(PcapWriter, EachChannelGetsAUniqueSourcePort) {
  Fixture fx;
  std::set<uint16_t> ports;
  for (int i = 0; i < 20; ++i) {
    // `ssh -W` reports the same originator for every channel.
    FlowId id = fx.Open("10.0.0.2", 22, "127.0.0.1", 65535);
    auto key = fx.writer->GetFlowKey(id);
    ASSERT_TRUE(key.ok());
    EXPECT_EQ(key->server_port, 22);
    ports.insert(key->client_port);
    if (i == 0) {
      EXPECT_EQ(key->client_port, 65535);
    } else {
      EXPECT_GE(key->client_port, 49152);
    }
  }
  EXPECT_EQ(ports.size(), 20u);
  // A free real port is kept; 0 gets an ephemeral one.
  auto k1 = fx.writer->GetFlowKey(fx.Open("10.0.0.2", 22, "127.0.0.1", 5555));
  EXPECT_EQ(k1->client_port, 5555);
  EXPECT_EQ(k1->client_ip, "127.0.0.1");
  auto k2 = fx.writer->GetFlowKey(fx.Open("10.0.0.2", 22));
  EXPECT_GE(k2->client_port, 49152);
  EXPECT_EQ(ports.count(k2->client_port), 0u);
  EXPECT_EQ(k2->client_ip, "198.18.0.1");
}

TEST(PcapWriter, HostnamesMapToStableSyntheticAddresses) {
  Fixture fx;
  auto a1 = *fx.writer->GetFlowKey(fx.Open("db.example.com", 5432));
  auto a2 = *fx.writer->GetFlowKey(fx.Open("DB.Example.COM", 5432));
  auto b = *fx.writer->GetFlowKey(fx.Open("web.example.com", 80));
  auto v6 = *fx.writer->GetFlowKey(fx.Open("::1", 80, "127.0.0.1", 1));
  EXPECT_EQ(a1.server_ip, a2.server_ip);
  EXPECT_NE(a1.server_ip, b.server_ip);
  for (const auto& k : {a1, b}) {
    EXPECT_FALSE(k.ipv6);
    EXPECT_TRUE(k.server_ip.rfind("198.18.", 0) == 0 ||
                k.server_ip.rfind("198.19.", 0) == 0)
        << k.server_ip;
    EXPECT_NE(k.server_ip, k.client_ip);
  }
  // An IPv4 source cannot talk to an IPv6 destination: synthetic client.
  EXPECT_TRUE(v6.ipv6);
  EXPECT_EQ(v6.server_ip, "::1");
  EXPECT_EQ(v6.client_ip, "2001:db8::1");
  EXPECT_EQ(v6.ToString(), "[2001:db8::1]:1>[::1]:80");
  // The same name maps the same way in another file.
  Fixture other;
  EXPECT_EQ(other.writer->GetFlowKey(other.Open("db.example.com"))->server_ip,
            a1.server_ip);
}

TEST(PcapWriter, TimestampsNeverDecrease) {
  Fixture fx;
  FlowId id = fx.Open("10.0.0.2", 80, "", 0, kStart + 5'000'000);
  ASSERT_TRUE(fx.writer->Data(id, kStart + 1'000'000, kC2S, "late").ok());
  ASSERT_TRUE(fx.writer->Data(id, kStart + 7'250'001, kS2C, "x").ok());
  ASSERT_TRUE(fx.writer->Data(id, kStart - 9, kC2S, "y").ok());
  ASSERT_TRUE(fx.writer->Data(id, -1, kC2S, "z").ok());
  ASSERT_TRUE(fx.writer->Close().ok());
  auto raw = ParseRaw(fx.bytes());
  int64_t last = 0;
  for (const Raw& r : raw) {
    EXPECT_LT(r.usec, 1000000u);
    EXPECT_GE(r.time_us(), last);
    last = r.time_us();
  }
  EXPECT_EQ(raw.front().time_us(), kStart + 5'000'000);
  EXPECT_EQ(raw.back().time_us(), kStart + 7'250'001);
  // Times beyond the 32-bit seconds field are refused.
  Fixture fy;
  FlowId f2 = fy.Open("10.0.0.2");
  EXPECT_EQ(fy.writer->Data(f2, int64_t{1} << 53, kC2S, "x").code(),
            Code::kInvalidArgument);
}

TEST(PcapWriter, FailedOpenIsSynAnsweredByRst) {
  PcapWriterOptions opts;
  opts.isn_generator = [] { return 77u; };
  Fixture fx(std::move(opts));
  ASSERT_TRUE(fx.writer->FailedOpen(kStart, "", 0, "10.0.0.9", 25).ok());
  ASSERT_TRUE(fx.writer->Close().ok());
  auto raw = ParseRaw(fx.bytes());
  ASSERT_EQ(raw.size(), 2u);
  EXPECT_EQ(raw[0].flags(), kTcpSyn);
  EXPECT_EQ(raw[1].flags(), kTcpRst | kTcpAck);
  EXPECT_EQ(raw[1].seq(), 0u);
  EXPECT_EQ(raw[1].ack(), 78u);
  auto re = Reassemble(fx.bytes());
  ASSERT_TRUE(re.ok());
  ASSERT_EQ(re->flows.size(), 1u);
  EXPECT_TRUE(re->flows[0].refused);
  EXPECT_FALSE(re->flows[0].established);
}

TEST(PcapWriter, ResetEndsTheFlowAndCloseEndsTheWriter) {
  Fixture fx;
  FlowId id = fx.Open("10.0.0.2");
  ASSERT_TRUE(fx.writer->Data(id, kStart, kS2C, "partial").ok());
  ASSERT_TRUE(fx.writer->Reset(id, kStart, kS2C).ok());
  EXPECT_EQ(fx.writer->Data(id, kStart, kS2C, "more").code(),
            Code::kFailedPrecondition);
  FlowId open = fx.Open("10.0.0.3");
  ASSERT_TRUE(fx.writer->Close().ok());
  EXPECT_TRUE(fx.writer->Close().ok());
  EXPECT_FALSE(fx.writer->Data(open, kStart, kS2C, "x").ok());
  EXPECT_FALSE(fx.writer->OpenFlow(kStart, "", 0, "10.0.0.4", 1).ok());
  auto re = Reassemble(fx.bytes());
  ASSERT_TRUE(re.ok());
  ASSERT_EQ(re->flows.size(), 2u);
  EXPECT_TRUE(re->flows[0].reset);
  EXPECT_EQ(re->flows[0].server_to_client, "partial");
  // No FIN is invented for a flow still open at Close.
  EXPECT_TRUE(re->flows[1].established);
  EXPECT_FALSE(re->flows[1].client_fin || re->flows[1].server_fin);
}

// A flow has two directions; the stderr of the shared vocabulary is refused
// before anything is written.
TEST(PcapWriter, StderrDirectionIsRefused) {
  Fixture fx;
  FlowId id = fx.Open("10.0.0.2");
  size_t before = fx.bytes().size();
  EXPECT_EQ(fx.writer->Data(id, kStart, Direction::kErr, "x").code(),
            Code::kInvalidArgument);
  EXPECT_EQ(fx.writer->Shutdown(id, kStart, Direction::kErr).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(fx.writer->Reset(id, kStart, Direction::kErr).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(fx.bytes().size(), before);
  ASSERT_TRUE(fx.writer->Data(id, kStart, kS2C, "still open").ok());
}

// A sink that fails after some bytes, to check that errors are sticky.
class FailingSink : public ByteSink {
 public:
  Status Append(std::string_view d) override {
    if (written_ + d.size() > 400) return IoError("disk full");
    written_ += d.size();
    return Status::Ok();
  }
  Status Flush() override { return Status::Ok(); }
  Status Close() override { return Status::Ok(); }
  uint64_t bytes_written() const override { return written_; }

 private:
  uint64_t written_ = 0;
};

TEST(PcapWriter, SinkErrorsAreSticky) {
  auto w = PcapWriter::Create(std::make_unique<FailingSink>(), {});
  ASSERT_TRUE(w.ok());
  auto id = (*w)->OpenFlow(kStart, "", 0, "10.0.0.2", 80);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ((*w)->Data(*id, kStart, kC2S, std::string(500, 'x')).code(),
            Code::kIoError);
  EXPECT_EQ((*w)->Data(*id, kStart, kC2S, "y").code(), Code::kIoError);
  EXPECT_EQ((*w)->Close().code(), Code::kIoError);
}

TEST(PcapWriter, ConcurrentChannelsReassembleExactly) {
  Fixture fx;
  constexpr int kThreads = 8, kFlowsPerThread = 4;
  std::vector<std::string> up(kThreads * kFlowsPerThread);
  std::vector<std::string> down(up.size());
  std::vector<FlowKey> keys(up.size());
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int f = 0; f < kFlowsPerThread; ++f) {
        const int n = t * kFlowsPerThread + f;
        // Each thread's clock runs behind the others'; the writer clamps.
        int64_t now = kStart + t * 1000;
        auto id = fx.writer->OpenFlow(now, "127.0.0.1", 65535,
                                      t % 2 ? "10.0.0.2" : "fd00::2", 22);
        ASSERT_TRUE(id.ok());
        keys[n] = *fx.writer->GetFlowKey(*id);
        for (int i = 0; i < 30; ++i) {
          std::string chunk = RandomBytes(rng() % 3000, rng());
          const auto dir = rng() % 2 ? kC2S : kS2C;
          (dir == kC2S ? up : down)[n] += chunk;
          ASSERT_TRUE(fx.writer->Data(*id, now + i, dir, chunk).ok());
        }
        ASSERT_TRUE(fx.writer->Shutdown(*id, now + 99, kS2C).ok());
        ASSERT_TRUE(fx.writer->Shutdown(*id, now + 99, kC2S).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(fx.writer->Close().ok());
  auto re = Reassemble(fx.bytes());
  ASSERT_TRUE(re.ok()) << re.status().ToString();
  ASSERT_EQ(re->flows.size(), up.size());
  for (size_t n = 0; n < up.size(); ++n) {
    int matches = 0;
    for (const auto& f : re->flows) {
      if (!(f.key == keys[n])) continue;
      ++matches;
      EXPECT_TRUE(f.client_to_server == up[n]) << keys[n].ToString();
      EXPECT_TRUE(f.server_to_client == down[n]) << keys[n].ToString();
      EXPECT_TRUE(f.client_fin && f.server_fin);
    }
    EXPECT_EQ(matches, 1) << keys[n].ToString();
  }
  int64_t last = 0;
  for (const Raw& r : ParseRaw(fx.bytes())) {
    EXPECT_GE(r.time_us(), last);
    last = r.time_us();
  }
}

TEST(PcapReader, RoundTripsPacketsAndDirections) {
  Fixture fx;
  FlowId id = fx.Open("example.org", 443, "192.0.2.1", 50000);
  ASSERT_TRUE(fx.writer->Data(id, kStart + 10, kC2S, "hello").ok());
  ASSERT_TRUE(fx.writer->Data(id, kStart + 20, kS2C, "world").ok());
  ASSERT_TRUE(fx.writer->Close().ok());
  auto reader =
      PcapReader::Open(std::make_unique<StringSource>(fx.bytes()), {});
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  EXPECT_FALSE((*reader)->encrypted());
  std::vector<PcapPacket> pkts;
  PcapPacket p;
  while (true) {
    auto more = (*reader)->Next(&p);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    pkts.push_back(p);
  }
  EXPECT_FALSE((*reader)->truncated());
  ASSERT_EQ(pkts.size(), 7u);  // Handshake, 2 x (data, ack).
  EXPECT_EQ(pkts[0].tcp_flags, kTcpSyn);
  EXPECT_EQ(pkts[1].direction, kS2C);
  EXPECT_EQ(pkts[3].payload, "hello");
  EXPECT_EQ(pkts[3].direction, kC2S);
  EXPECT_EQ(pkts[3].time_us, kStart + 10);
  EXPECT_EQ(pkts[5].payload, "world");
  EXPECT_EQ(pkts[5].direction, kS2C);
  EXPECT_EQ(pkts[5].flow.client_ip, "192.0.2.1");
  EXPECT_EQ(pkts[5].flow.client_port, 50000);
  EXPECT_EQ(pkts[5].flow.server_port, 443);
}

std::string SmallFile() {
  Fixture fx;
  FlowId a = fx.Open("10.0.0.2", 80);
  FlowId b = fx.Open("fd00::2", 80);
  EXPECT_TRUE(fx.writer->Data(a, kStart, kC2S, "abcdef").ok());
  EXPECT_TRUE(fx.writer->Data(b, kStart, kS2C, "0123456789").ok());
  EXPECT_TRUE(fx.writer->Shutdown(a, kStart, kC2S).ok());
  EXPECT_TRUE(fx.writer->Close().ok());
  return fx.bytes();
}

TEST(PcapReader, CutAtEveryByteYieldsACompletePrefix) {
  const std::string file = SmallFile();
  const auto raw = ParseRaw(file);
  for (size_t cut = 0; cut <= file.size(); ++cut) {
    SCOPED_TRACE(cut);
    auto reader = PcapReader::Open(
        std::make_unique<StringSource>(file.substr(0, cut)), {});
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    size_t n = 0;
    PcapPacket p;
    while (true) {
      auto more = (*reader)->Next(&p);
      ASSERT_TRUE(more.ok()) << more.status().ToString();
      if (!*more) break;
      ++n;
    }
    size_t complete = 0;
    bool at_boundary = cut == 0 || cut == 24;
    for (const Raw& r : raw) {
      if (r.offset + r.frame.size() <= cut) ++complete;
      at_boundary |= r.offset + r.frame.size() == cut;
    }
    EXPECT_EQ(n, complete);
    EXPECT_EQ((*reader)->truncated(), !at_boundary);
  }
}

TEST(PcapReader, RejectsGarbageWithAClearMessage) {
  auto open = [](std::string bytes) {
    return PcapReader::Open(std::make_unique<StringSource>(std::move(bytes)),
                            {})
        .status();
  };
  Status s = open("GIF89a this is not a capture at all");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("not a pcap"), std::string::npos) << s.message();
  EXPECT_FALSE(open("xy").ok());
  s = open(std::string("\x0a\x0d\x0d\x0a", 4) + std::string(40, '\0'));
  EXPECT_NE(s.message().find("pcapng"), std::string::npos);

  std::string file = SmallFile();
  std::string link = file;
  link[20] = 101;
  EXPECT_NE(open(link).message().find("link type"), std::string::npos);

  std::string huge = file;
  huge[24 + 8] = huge[24 + 9] = huge[24 + 10] = '\x7f';  // ~2 GB record.
  s = open(huge);
  EXPECT_EQ(s.code(), Code::kDataLoss);
  EXPECT_NE(s.message().find("snaplen"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("byte 24"), std::string::npos) << s.message();

  // A bad length in the middle: packets before it, then the error.
  auto raw = ParseRaw(file);
  std::string mid = file;
  mid[raw[3].offset - 16 + 10] = '\x01';  // +64 KiB > snaplen.
  auto reader = PcapReader::Open(std::make_unique<StringSource>(mid), {});
  ASSERT_TRUE(reader.ok());
  PcapPacket p;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(*(*reader)->Next(&p));
  EXPECT_EQ((*reader)->Next(&p).status().code(), Code::kDataLoss);
}

// Not a fuzzer (see fuzz/), but a cheap guard: random damage to a valid
// file yields packets or errors, never a crash or a hang.
TEST(PcapReader, RandomDamageNeverCrashes) {
  const std::string file = SmallFile();
  std::mt19937 rng(99);
  for (int round = 0; round < 2000; ++round) {
    std::string bad = file;
    for (int i = 0, n = 1 + rng() % 4; i < n; ++i) {
      bad[rng() % bad.size()] = static_cast<char>(rng());
    }
    if (round % 3 == 0) bad.resize(rng() % bad.size());
    auto reader = PcapReader::Open(std::make_unique<StringSource>(bad), {});
    if (!reader.ok()) continue;
    auto re = ReassembleFlows(reader->get());
    (void)re;
  }
}

struct Encrypted {
  std::string key = std::string(32, '\x42');
  std::string file;
  std::string up = RandomBytes(5000, 7);
  std::string down = "ok";

  Encrypted() {
    PcapWriterOptions opts;
    auto sealer = ChunkSealer::Create(key, "sess-1");
    EXPECT_TRUE(sealer.ok());
    opts.sealer = std::move(sealer).value();
    opts.session_id = "sess-1";
    opts.key_id = KeyId(key);
    Fixture fx(std::move(opts));
    FlowId a = fx.Open("10.0.0.2", 80);
    FlowId b = fx.Open("fd00::5", 22);
    EXPECT_TRUE(fx.writer->Data(a, kStart + 1, kC2S, up).ok());
    EXPECT_TRUE(fx.writer->Data(b, kStart + 2, kS2C, down).ok());
    EXPECT_TRUE(fx.writer->Shutdown(a, kStart + 3, kC2S).ok());
    EXPECT_TRUE(fx.writer->Close().ok());
    file = fx.bytes();
  }
  PcapReaderOptions Opts() const {
    PcapReaderOptions o;
    o.key = key;
    return o;
  }
};

TEST(PcapEncrypted, RoundTripsAndKeepsSegmentsWithinTheMss) {
  Encrypted e;
  auto raw = ParseRaw(e.file);
  EXPECT_EQ(raw.front().ether, kEtherTypeMezite);
  EXPECT_EQ(raw.back().ether, kEtherTypeMezite);
  size_t data_segments = 0;
  for (const Raw& r : raw) {
    if (r.ether == kEtherTypeMezite) continue;
    ExpectChecksumsValid(r);
    EXPECT_LE(r.payload_len(), r.v6 ? kMssIpv6 : kMssIpv4);
    data_segments += r.payload_len() > 0;
    // Plaintext never shows through.
    if (r.payload_len() >= 40) {
      EXPECT_EQ(r.frame.find(e.up.substr(0, 16)), std::string::npos);
    }
  }
  EXPECT_EQ(data_segments, 5000 / (kMssIpv4 - kSealOverhead) + 1 + 1);

  auto re = Reassemble(e.file, e.Opts());
  ASSERT_TRUE(re.ok()) << re.status().ToString();
  ASSERT_EQ(re->flows.size(), 2u);
  EXPECT_TRUE(re->flows[0].client_to_server == e.up);
  EXPECT_EQ(re->flows[1].server_to_client, e.down);

  // Without the key: structure readable, payloads sealed.
  auto reader = PcapReader::Open(std::make_unique<StringSource>(e.file), {});
  ASSERT_TRUE(reader.ok());
  EXPECT_TRUE((*reader)->encrypted());
  EXPECT_EQ((*reader)->session_id(), "sess-1");
  EXPECT_EQ((*reader)->key_id(), KeyId(e.key));
  auto sealed = ReassembleFlows(reader->get());
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->flows[1].server_to_client.size(), 2 + kSealOverhead);
}

TEST(PcapEncrypted, FlippedPayloadByteIsTampered) {
  Encrypted e;
  for (const Raw& r : ParseRaw(e.file)) {
    if (r.tcp && r.payload_len() > 0) {
      e.file[r.offset + r.payload + 30] ^= 1;
      break;
    }
  }
  auto re = Reassemble(e.file, e.Opts());
  ASSERT_FALSE(re.ok());
  EXPECT_EQ(re.status().code(), Code::kDataLoss);
  auto reader =
      PcapReader::Open(std::make_unique<StringSource>(e.file), e.Opts());
  ASSERT_TRUE(reader.ok());
  PcapPacket p;
  Result<bool> more = true;
  while (more.ok() && *more) more = (*reader)->Next(&p);
  EXPECT_FALSE(more.ok());
  EXPECT_EQ((*reader)->integrity(), Integrity::kTampered);
}

TEST(PcapEncrypted, CutFileReportsTruncationAfterThePrefix) {
  Encrypted e;
  auto raw = ParseRaw(e.file);
  const std::string cut = e.file.substr(0, raw.back().offset - 16);
  auto reader = PcapReader::Open(std::make_unique<StringSource>(cut), e.Opts());
  ASSERT_TRUE(reader.ok());
  PcapPacket p;
  size_t n = 0;
  Result<bool> more = true;
  while (true) {
    more = (*reader)->Next(&p);
    if (!more.ok() || !*more) break;
    ++n;
  }
  EXPECT_EQ(n, raw.size() - 2);  // All but the two metadata frames.
  ASSERT_FALSE(more.ok());
  EXPECT_EQ((*reader)->integrity(), Integrity::kTruncated);
}

TEST(PcapEncrypted, WrongKeyAndMissingEncryptionAreNamed) {
  Encrypted e;
  PcapReaderOptions wrong;
  wrong.key = std::string(32, '\x43');
  auto r = PcapReader::Open(std::make_unique<StringSource>(e.file), wrong);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("key"), std::string::npos);

  PcapReaderOptions other_session = e.Opts();
  other_session.expected_session_id = "sess-2";
  EXPECT_FALSE(
      PcapReader::Open(std::make_unique<StringSource>(e.file), other_session)
          .ok());

  auto plain =
      PcapReader::Open(std::make_unique<StringSource>(SmallFile()), e.Opts());
  ASSERT_FALSE(plain.ok());
  EXPECT_EQ(plain.status().code(), Code::kDataLoss);
}

}  // namespace
}  // namespace mez::record
