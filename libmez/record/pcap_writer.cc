#include "libmez/record/pcap_writer.h"

#include <arpa/inet.h>

#include <algorithm>
#include <random>

namespace mez::record {
namespace {

constexpr int64_t kMaxTimestampUs = (int64_t{1} << 32) * 1'000'000 - 1;
constexpr uint16_t kWindow = 65535;
constexpr size_t kEthernetHeader = 14;
constexpr size_t kIpv4Header = 20;
constexpr size_t kIpv6Header = 40;
constexpr size_t kTcpHeader = 20;
constexpr size_t kMssOption = 4;
constexpr size_t kMaxSessionIdSize = 256;
constexpr size_t kMaxKeyIdSize = 64;

// Locally administered unicast MACs: the client and the server side.
constexpr char kClientMac[] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
constexpr char kServerMac[] = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02};

// Synthetic addresses: 198.18.0.0/15 (RFC 2544 benchmarking) for names and
// a client that gave no usable address; 2001:db8::/32 (documentation) for
// an IPv6 client.
constexpr uint32_t kSyntheticNet4 = 0xc6120000;  // 198.18.0.0
constexpr uint32_t kSyntheticSize4 = 1u << 17;   // /15
constexpr uint32_t kSyntheticClient4 = kSyntheticNet4 + 1;
constexpr uint16_t kFirstEphemeralPort = 49152;
constexpr int kEphemeralPorts = 65536 - kFirstEphemeralPort;

void PutU16(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}
void PutU32(std::string* out, uint32_t v) {
  PutU16(out, static_cast<uint16_t>(v >> 16));
  PutU16(out, static_cast<uint16_t>(v));
}
void PutU16Le(std::string* out, uint16_t v) {
  out->push_back(static_cast<char>(v));
  out->push_back(static_cast<char>(v >> 8));
}
void PutU32Le(std::string* out, uint32_t v) {
  PutU16Le(out, static_cast<uint16_t>(v));
  PutU16Le(out, static_cast<uint16_t>(v >> 16));
}
void SetU16(std::string* out, size_t at, uint16_t v) {
  (*out)[at] = static_cast<char>(v >> 8);
  (*out)[at + 1] = static_cast<char>(v);
}

// RFC 1071 ones-complement sum of `data` added to `sum`, unfolded.
uint64_t SumWords(std::string_view data, uint64_t sum) {
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  for (; n >= 2; p += 2, n -= 2) sum += (uint32_t{p[0]} << 8) | p[1];
  if (n) sum += uint32_t{p[0]} << 8;
  return sum;
}
uint16_t FoldChecksum(uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

std::string Addr4(uint32_t a) {
  std::string s;
  PutU32(&s, a);
  return s;
}

// Parses an IP literal ("10.0.0.1", "::1", "[::1]") into raw bytes.
// Returns false for anything else (a name).
bool ParseIp(std::string_view host, bool* ipv6, std::string* bytes) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host.size() > 63) return false;
  std::string text(host);
  unsigned char buf[16];
  if (inet_pton(AF_INET, text.c_str(), buf) == 1) {
    *ipv6 = false;
    bytes->assign(reinterpret_cast<char*>(buf), 4);
    return true;
  }
  if (inet_pton(AF_INET6, text.c_str(), buf) == 1) {
    *ipv6 = true;
    bytes->assign(reinterpret_cast<char*>(buf), 16);
    return true;
  }
  return false;
}

std::string IpText(const std::string& bytes) {
  char buf[INET6_ADDRSTRLEN];
  int family = bytes.size() == 4 ? AF_INET : AF_INET6;
  if (inet_ntop(family, bytes.data(), buf, sizeof buf) == nullptr) return "?";
  return buf;
}

// A flow's two directions: kIn is client to server, kOut server to client.
int Index(Direction d) { return d == Direction::kIn ? 0 : 1; }
Direction Other(Direction d) {
  return d == Direction::kIn ? Direction::kOut : Direction::kIn;
}
Status CheckFlowDirection(Direction d) {
  if (d == Direction::kErr) {
    return InvalidArgument("a TCP flow has no stderr direction");
  }
  return Status::Ok();
}

}  // namespace

std::string FlowKey::ToString() const {
  std::string out;
  auto endpoint = [&](const std::string& ip, uint16_t port) {
    if (ipv6) {
      out += '[';
      out += ip;
      out += ']';
    } else {
      out += ip;
    }
    out += ':';
    out += std::to_string(port);
  };
  endpoint(client_ip, client_port);
  out += '>';
  endpoint(server_ip, server_port);
  return out;
}

PcapWriter::PcapWriter(std::unique_ptr<ByteSink> sink,
                       PcapWriterOptions options)
    : sink_(std::move(sink)), options_(std::move(options)) {
  last_ts_us_ = options_.start_wall_us;
  taken_addrs_.insert(Addr4(kSyntheticNet4));
  taken_addrs_.insert(Addr4(kSyntheticClient4));
  taken_addrs_.insert(Addr4(kSyntheticNet4 + kSyntheticSize4 - 1));
  if (!options_.isn_generator) {
    auto rng = std::make_shared<std::mt19937>(std::random_device{}());
    options_.isn_generator = [rng] { return static_cast<uint32_t>((*rng)()); };
  }
}

PcapWriter::~PcapWriter() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!closed_ && sink_) (void)sink_->Close();
}

Result<std::unique_ptr<PcapWriter>> PcapWriter::Create(
    std::unique_ptr<ByteSink> sink, PcapWriterOptions options) {
  if (!sink) return InvalidArgument("pcap writer: no sink");
  if (options.start_wall_us < 0 || options.start_wall_us > kMaxTimestampUs) {
    return InvalidArgument("pcap writer: start time out of range: " +
                           std::to_string(options.start_wall_us) + " us");
  }
  if (options.sealer) {
    auto bad = [](std::string_view v, size_t max) {
      return v.empty() || v.size() > max ||
             v.find_first_of(std::string_view("\n\0", 2)) != v.npos;
    };
    if (bad(options.session_id, kMaxSessionIdSize)) {
      return InvalidArgument(
          "pcap writer: encryption needs a session id of 1-256 bytes "
          "without newline or NUL");
    }
    if (bad(options.key_id, kMaxKeyIdSize)) {
      return InvalidArgument(
          "pcap writer: encryption needs a key id of 1-64 bytes");
    }
  }
  std::unique_ptr<PcapWriter> w(
      new PcapWriter(std::move(sink), std::move(options)));
  std::string out;
  PutU32Le(&out, kPcapMagic);
  PutU16Le(&out, 2);  // Version 2.4.
  PutU16Le(&out, 4);
  PutU32Le(&out, 0);  // thiszone: timestamps are UTC.
  PutU32Le(&out, 0);  // sigfigs.
  PutU32Le(&out, kPcapSnaplen);
  PutU32Le(&out, kPcapLinkEthernet);
  if (w->options_.sealer) {
    std::string body = "scheme=" + std::string(kPcapEncryptionScheme) +
                       "\nsession_id=" + w->options_.session_id +
                       "\nkey_id=" + w->options_.key_id + "\n";
    w->AppendMetadata(&out, w->last_ts_us_, 'S', body);
  }
  std::lock_guard<std::mutex> lock(w->mu_);
  MEZ_RETURN_IF_ERROR(w->Emit(out));
  return w;
}

Status PcapWriter::CheckUsable() const {
  if (!error_.ok()) return error_;
  if (closed_) return FailedPrecondition("pcap writer: already closed");
  return Status::Ok();
}

Result<int64_t> PcapWriter::Stamp(int64_t wall_us) {
  if (wall_us > kMaxTimestampUs) {
    return InvalidArgument(
        "pcap writer: time beyond 2106: " + std::to_string(wall_us) + " us");
  }
  last_ts_us_ = std::max(last_ts_us_, wall_us);
  return last_ts_us_;
}

uint32_t PcapWriter::NextIsn() { return options_.isn_generator(); }

std::string PcapWriter::MapHostname(std::string_view name) {
  std::string lower(name);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  });
  auto it = host_addrs_.find(lower);
  if (it != host_addrs_.end()) return it->second;
  // FNV-1a, so that a name usually gets the same address in every file.
  uint32_t h = 2166136261u;
  for (unsigned char c : lower) h = (h ^ c) * 16777619u;
  std::string addr;
  for (uint32_t i = 0; i < kSyntheticSize4; ++i) {
    const uint32_t a = kSyntheticNet4 + (h + i) % kSyntheticSize4;
    addr = Addr4(a);
    // x.y.z.0 and x.y.z.255 look like network and broadcast addresses.
    const uint32_t last = a & 0xff;
    if (last != 0 && last != 255 && !taken_addrs_.count(addr)) break;
  }
  taken_addrs_.insert(addr);
  host_addrs_.emplace(std::move(lower), addr);
  return addr;
}

Result<PcapWriter::Flow> PcapWriter::NewFlow(std::string_view src_host,
                                             uint16_t src_port,
                                             std::string_view dst_host,
                                             uint16_t dst_port) {
  if (dst_host.empty()) return InvalidArgument("pcap writer: empty dst host");
  if (dst_port == 0) return InvalidArgument("pcap writer: dst port 0");
  Flow f;
  bool v6 = false;
  if (ParseIp(dst_host, &v6, &f.server_addr)) {
    if (!v6) taken_addrs_.insert(f.server_addr);
  } else {
    f.server_addr = MapHostname(dst_host);
  }
  bool src_v6 = false;
  if (!ParseIp(src_host, &src_v6, &f.client_addr) || src_v6 != v6) {
    f.client_addr =
        v6 ? std::string("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16)
           : Addr4(kSyntheticClient4);
  }
  uint16_t port = src_port;
  if (port == 0 || used_ports_.count({f.client_addr, port})) {
    port = next_port_;
    for (int i = 0; i < kEphemeralPorts; ++i) {
      port = static_cast<uint16_t>(kFirstEphemeralPort +
                                   (next_port_ - kFirstEphemeralPort + i) %
                                       kEphemeralPorts);
      if (!used_ports_.count({f.client_addr, port})) break;
    }
    next_port_ = static_cast<uint16_t>(kFirstEphemeralPort +
                                       (port - kFirstEphemeralPort + 1) %
                                           kEphemeralPorts);
  }
  used_ports_.insert({f.client_addr, port});
  f.key.ipv6 = v6;
  f.key.client_ip = IpText(f.client_addr);
  f.key.client_port = port;
  f.key.server_ip = IpText(f.server_addr);
  f.key.server_port = dst_port;
  f.context = f.key.ToString();
  return f;
}

Result<PcapWriter::Flow*> PcapWriter::FindFlow(FlowId id) {
  auto it = flows_.find(id);
  if (it == flows_.end()) {
    return FailedPrecondition("pcap writer: flow " + std::to_string(id) +
                              " is not open");
  }
  return &it->second;
}

void PcapWriter::AppendFrame(std::string* out, int64_t ts_us,
                             std::string_view frame) {
  PutU32Le(out, static_cast<uint32_t>(ts_us / 1'000'000));
  PutU32Le(out, static_cast<uint32_t>(ts_us % 1'000'000));
  PutU32Le(out, static_cast<uint32_t>(frame.size()));
  PutU32Le(out, static_cast<uint32_t>(frame.size()));
  out->append(frame);
}

void PcapWriter::AppendMetadata(std::string* out, int64_t ts_us, char type,
                                std::string_view body) {
  std::string frame(kServerMac, 6);
  frame.append(kClientMac, 6);
  PutU16(&frame, kEtherTypeMezite);
  frame += "MEZP";
  frame.push_back(1);  // Version.
  frame.push_back(type);
  frame.append(body);
  AppendFrame(out, ts_us, frame);
}

void PcapWriter::AppendTcp(std::string* out, int64_t ts_us, const Flow& flow,
                           Direction from, uint8_t flags, uint32_t seq,
                           uint32_t ack, std::string_view payload) {
  const bool c2s = from == Direction::kIn;
  const bool v6 = flow.key.ipv6;
  const std::string& src = c2s ? flow.client_addr : flow.server_addr;
  const std::string& dst = c2s ? flow.server_addr : flow.client_addr;
  const uint16_t sport = c2s ? flow.key.client_port : flow.key.server_port;
  const uint16_t dport = c2s ? flow.key.server_port : flow.key.client_port;
  const size_t opt_len = (flags & kTcpSyn) ? kMssOption : 0;
  const size_t tcp_len = kTcpHeader + opt_len + payload.size();
  const size_t frame_len =
      kEthernetHeader + (v6 ? kIpv6Header : kIpv4Header) + tcp_len;

  PutU32Le(out, static_cast<uint32_t>(ts_us / 1'000'000));
  PutU32Le(out, static_cast<uint32_t>(ts_us % 1'000'000));
  PutU32Le(out, static_cast<uint32_t>(frame_len));
  PutU32Le(out, static_cast<uint32_t>(frame_len));

  out->append(c2s ? kServerMac : kClientMac, 6);
  out->append(c2s ? kClientMac : kServerMac, 6);
  PutU16(out, v6 ? kEtherTypeIpv6 : kEtherTypeIpv4);

  // Pseudo-header sum for the TCP checksum (RFC 793 / RFC 8200 8.1).
  uint64_t sum = SumWords(src, SumWords(dst, 0)) + 6 + tcp_len;
  if (v6) {
    PutU32(out, 0x60000000);  // Version 6, no traffic class, no flow label.
    PutU16(out, static_cast<uint16_t>(tcp_len));
    out->push_back(6);   // Next header: TCP.
    out->push_back(64);  // Hop limit.
    out->append(src);
    out->append(dst);
  } else {
    const size_t ip = out->size();
    out->push_back(0x45);  // Version 4, 5 words.
    out->push_back(0);
    PutU16(out, static_cast<uint16_t>(kIpv4Header + tcp_len));
    PutU16(out, ip_id_++);
    PutU16(out, 0x4000);  // Don't fragment.
    out->push_back(64);   // TTL.
    out->push_back(6);    // TCP.
    PutU16(out, 0);       // Checksum, set below.
    out->append(src);
    out->append(dst);
    SetU16(out, ip + 10,
           FoldChecksum(
               SumWords(std::string_view(out->data() + ip, kIpv4Header), 0)));
  }

  const size_t tcp = out->size();
  PutU16(out, sport);
  PutU16(out, dport);
  PutU32(out, seq);
  PutU32(out, ack);
  out->push_back(static_cast<char>(((kTcpHeader + opt_len) / 4) << 4));
  out->push_back(static_cast<char>(flags));
  PutU16(out, kWindow);
  PutU16(out, 0);  // Checksum, set below.
  PutU16(out, 0);  // Urgent pointer.
  if (opt_len) {
    out->push_back(2);  // MSS option.
    out->push_back(4);
    PutU16(out, static_cast<uint16_t>(v6 ? kMssIpv6 : kMssIpv4));
  }
  out->append(payload);
  sum = SumWords(std::string_view(out->data() + tcp, tcp_len), sum);
  SetU16(out, tcp + 16, FoldChecksum(sum));
}

Status PcapWriter::Emit(const std::string& bytes) {
  Status s = sink_->Append(bytes);
  if (!s.ok()) error_ = s.WithContext("pcap writer");
  return error_;
}

Result<FlowId> PcapWriter::OpenFlow(int64_t wall_us, std::string_view src_host,
                                    uint16_t src_port,
                                    std::string_view dst_host,
                                    uint16_t dst_port) {
  std::lock_guard<std::mutex> lock(mu_);
  MEZ_RETURN_IF_ERROR(CheckUsable());
  MEZ_ASSIGN_OR_RETURN(Flow f, NewFlow(src_host, src_port, dst_host, dst_port));
  MEZ_ASSIGN_OR_RETURN(int64_t ts, Stamp(wall_us));
  const uint32_t cisn = NextIsn();
  const uint32_t sisn = NextIsn();
  constexpr auto kC = Direction::kIn;
  constexpr auto kS = Direction::kOut;
  std::string out;
  AppendTcp(&out, ts, f, kC, kTcpSyn, cisn, 0, {});
  AppendTcp(&out, ts, f, kS, kTcpSyn | kTcpAck, sisn, cisn + 1, {});
  AppendTcp(&out, ts, f, kC, kTcpAck, cisn + 1, sisn + 1, {});
  f.next_seq[Index(kC)] = cisn + 1;
  f.next_seq[Index(kS)] = sisn + 1;
  MEZ_RETURN_IF_ERROR(Emit(out));
  const FlowId id = next_flow_id_++;
  flows_.emplace(id, std::move(f));
  return id;
}

Status PcapWriter::FailedOpen(int64_t wall_us, std::string_view src_host,
                              uint16_t src_port, std::string_view dst_host,
                              uint16_t dst_port) {
  std::lock_guard<std::mutex> lock(mu_);
  MEZ_RETURN_IF_ERROR(CheckUsable());
  MEZ_ASSIGN_OR_RETURN(Flow f, NewFlow(src_host, src_port, dst_host, dst_port));
  MEZ_ASSIGN_OR_RETURN(int64_t ts, Stamp(wall_us));
  const uint32_t cisn = NextIsn();
  std::string out;
  AppendTcp(&out, ts, f, Direction::kIn, kTcpSyn, cisn, 0, {});
  // RFC 9293 3.10.7.1: a RST answering a SYN has seq 0 and acks the SYN.
  AppendTcp(&out, ts, f, Direction::kOut, kTcpRst | kTcpAck, 0, cisn + 1, {});
  return Emit(out);
}

Status PcapWriter::Data(FlowId id, int64_t wall_us, Direction dir,
                        std::string_view data) {
  MEZ_RETURN_IF_ERROR(CheckFlowDirection(dir));
  std::lock_guard<std::mutex> lock(mu_);
  MEZ_RETURN_IF_ERROR(CheckUsable());
  MEZ_ASSIGN_OR_RETURN(Flow * f, FindFlow(id));
  const int d = Index(dir);
  const int o = Index(Other(dir));
  if (f->fin[d]) {
    return FailedPrecondition("pcap writer: data after FIN on flow " +
                              f->context);
  }
  if (data.empty()) return Status::Ok();
  MEZ_ASSIGN_OR_RETURN(int64_t ts, Stamp(wall_us));
  ChunkSealer* sealer = options_.sealer.get();
  const size_t mss = f->key.ipv6 ? kMssIpv6 : kMssIpv4;
  const size_t piece_max = sealer ? mss - kSealOverhead : mss;
  const size_t segments = (data.size() + piece_max - 1) / piece_max;
  std::string out;
  out.reserve(data.size() + segments * (kSealOverhead + 80) + 80);
  std::string sealed;
  size_t unacked = 0;
  const ChunkInfo info{ts, static_cast<uint8_t>(d == 0 ? 'i' : 'o'),
                       f->context};
  for (size_t pos = 0; pos < data.size(); pos += piece_max) {
    std::string_view payload = data.substr(pos, piece_max);
    if (sealer) {
      sealed.clear();
      Status s = sealer->Seal(info, payload, &sealed);
      if (!s.ok()) {
        // The sealer's sequence has moved on; the file can no longer be
        // made consistent.
        error_ = s.WithContext("pcap writer: sealing");
        return error_;
      }
      payload = sealed;
    }
    AppendTcp(&out, ts, *f, dir, kTcpPsh | kTcpAck, f->next_seq[d],
              f->next_seq[o], payload);
    f->next_seq[d] += static_cast<uint32_t>(payload.size());
    unacked += payload.size();
    // The peer acknowledges every second segment, and the last one, so
    // no more than 2 * MSS is ever in flight against the 64 KiB window.
    if (unacked >= 2 * mss || pos + piece_max >= data.size()) {
      AppendTcp(&out, ts, *f, Other(dir), kTcpAck, f->next_seq[o],
                f->next_seq[d], {});
      unacked = 0;
    }
  }
  return Emit(out);
}

Status PcapWriter::Shutdown(FlowId id, int64_t wall_us, Direction dir) {
  MEZ_RETURN_IF_ERROR(CheckFlowDirection(dir));
  std::lock_guard<std::mutex> lock(mu_);
  MEZ_RETURN_IF_ERROR(CheckUsable());
  MEZ_ASSIGN_OR_RETURN(Flow * f, FindFlow(id));
  const int d = Index(dir);
  const int o = Index(Other(dir));
  if (f->fin[d]) {
    return FailedPrecondition("pcap writer: second FIN on flow " + f->context);
  }
  MEZ_ASSIGN_OR_RETURN(int64_t ts, Stamp(wall_us));
  std::string out;
  AppendTcp(&out, ts, *f, dir, kTcpFin | kTcpAck, f->next_seq[d],
            f->next_seq[o], {});
  f->next_seq[d] += 1;  // FIN occupies one sequence number.
  f->fin[d] = true;
  AppendTcp(&out, ts, *f, Other(dir), kTcpAck, f->next_seq[o], f->next_seq[d],
            {});
  if (f->fin[o]) flows_.erase(id);
  return Emit(out);
}

Status PcapWriter::Reset(FlowId id, int64_t wall_us, Direction from) {
  MEZ_RETURN_IF_ERROR(CheckFlowDirection(from));
  std::lock_guard<std::mutex> lock(mu_);
  MEZ_RETURN_IF_ERROR(CheckUsable());
  MEZ_ASSIGN_OR_RETURN(Flow * f, FindFlow(id));
  MEZ_ASSIGN_OR_RETURN(int64_t ts, Stamp(wall_us));
  std::string out;
  AppendTcp(&out, ts, *f, from, kTcpRst | kTcpAck, f->next_seq[Index(from)],
            f->next_seq[Index(Other(from))], {});
  flows_.erase(id);
  return Emit(out);
}

Result<FlowKey> PcapWriter::GetFlowKey(FlowId id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = flows_.find(id);
  if (it == flows_.end()) {
    return NotFound("pcap writer: flow " + std::to_string(id) + " is not open");
  }
  return it->second.key;
}

Status PcapWriter::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  MEZ_RETURN_IF_ERROR(CheckUsable());
  Status s = sink_->Flush();
  if (!s.ok()) error_ = s.WithContext("pcap writer");
  return s;
}

Status PcapWriter::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return error_;
  closed_ = true;
  if (error_.ok() && options_.sealer) {
    std::string sealed;
    Status s = options_.sealer->SealFinal(last_ts_us_, &sealed);
    if (!s.ok()) {
      error_ = s.WithContext("pcap writer: sealing the final record");
    } else {
      std::string out;
      AppendMetadata(&out, last_ts_us_, 'F', sealed);
      (void)Emit(out);
    }
  }
  Status s = sink_->Close();
  if (error_.ok() && !s.ok()) error_ = s.WithContext("pcap writer");
  return error_;
}

}  // namespace mez::record
