#include "libmez/record/pcap_reader.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace mez::record {
namespace {

constexpr size_t kFileHeader = 24;
constexpr size_t kRecordHeader = 16;
constexpr size_t kReadChunk = 64 << 10;

uint16_t Be16(const unsigned char* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
uint32_t Be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | p[3];
}
uint32_t Le32(const unsigned char* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) |
         (uint32_t{p[1]} << 8) | p[0];
}
uint16_t Le16(const unsigned char* p) {
  return static_cast<uint16_t>((p[1] << 8) | p[0]);
}

std::string Hex32(uint32_t v) {
  char buf[16];
  snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::string IpText(const unsigned char* addr, bool ipv6) {
  char buf[INET6_ADDRSTRLEN];
  if (inet_ntop(ipv6 ? AF_INET6 : AF_INET, addr, buf, sizeof buf) == nullptr) {
    return "?";
  }
  return buf;
}

std::string At(uint64_t offset) {
  return "pcap record at byte " + std::to_string(offset) + ": ";
}

}  // namespace

PcapReader::PcapReader(std::unique_ptr<ByteSource> source,
                       PcapReaderOptions options)
    : source_(std::move(source)), options_(std::move(options)) {}

PcapReader::~PcapReader() = default;

Result<std::unique_ptr<PcapReader>> PcapReader::Open(
    std::unique_ptr<ByteSource> source, PcapReaderOptions options) {
  if (!source) return InvalidArgument("pcap reader: no source");
  std::unique_ptr<PcapReader> r(
      new PcapReader(std::move(source), std::move(options)));
  MEZ_RETURN_IF_ERROR(r->ReadHeader());
  MEZ_ASSIGN_OR_RETURN(bool have, r->ReadRecord(&r->pending_));
  if (!have) return r;
  const std::string& d = r->pending_.data;
  const auto* p = reinterpret_cast<const unsigned char*>(d.data());
  if (d.size() >= 20 && Be16(p + 12) == kEtherTypeMezite &&
      d.compare(14, 4, "MEZP") == 0 && d[18] == 1 && d[19] == 'S') {
    MEZ_RETURN_IF_ERROR(
        r->HandleMetadata(r->pending_, std::string_view(d).substr(19), true));
  } else {
    r->have_pending_ = true;
    if (!r->options_.key.empty()) {
      return DataLoss(
          "pcap: a key was given but the file has no encryption start "
          "record (not encrypted, or the record was removed)");
    }
  }
  return r;
}

Result<std::unique_ptr<PcapReader>> PcapReader::OpenFile(
    const std::string& path, PcapReaderOptions options) {
  MEZ_ASSIGN_OR_RETURN(std::unique_ptr<ByteSource> src, OpenRecording(path));
  auto r = Open(std::move(src), std::move(options));
  if (!r.ok()) return r.status().WithContext(path);
  return r;
}

Result<bool> PcapReader::Fill(size_t n) {
  while (buf_.size() - pos_ < n && !eof_) {
    if (pos_ > 0 && pos_ >= buf_.size() / 2) {
      buf_.erase(0, pos_);
      pos_ = 0;
    }
    const size_t want = std::max(kReadChunk, n - (buf_.size() - pos_));
    const size_t old = buf_.size();
    buf_.resize(old + want);
    Result<size_t> got = source_->Read(buf_.data() + old, want);
    if (!got.ok()) {
      buf_.resize(old);
      return got.status().WithContext("pcap reader");
    }
    buf_.resize(old + *got);
    if (*got == 0) eof_ = true;
  }
  return buf_.size() - pos_ >= n;
}

Status PcapReader::ReadHeader() {
  MEZ_ASSIGN_OR_RETURN(bool full, Fill(kFileHeader));
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
  const size_t avail = buf_.size() - pos_;
  if (!full) {
    // A cut header is a truncated file only if what is there could begin
    // one of ours.
    unsigned char magic[4];
    for (int i = 0; i < 4; ++i) magic[i] = (kPcapMagic >> (8 * i)) & 0xff;
    if (memcmp(p, magic, std::min<size_t>(avail, 4)) != 0) {
      return InvalidArgument("pcap: not a pcap file (bad magic)");
    }
    truncated_ = avail > 0;
    done_ = true;
    return Status::Ok();
  }
  const uint32_t magic = Le32(p);
  if (magic != kPcapMagic) {
    std::string what = "not a pcap file (magic " + Hex32(magic) + ")";
    if (magic == 0xd4c3b2a1) what = "big-endian pcap is not supported";
    if (magic == 0xa1b23c4d) what = "nanosecond pcap is not supported";
    if (magic == 0x0a0d0d0a) what = "pcapng is not supported (classic pcap)";
    return InvalidArgument("pcap: " + what);
  }
  if (Le16(p + 4) != 2) {
    return InvalidArgument("pcap: unsupported version " +
                           std::to_string(Le16(p + 4)) + "." +
                           std::to_string(Le16(p + 6)));
  }
  snaplen_ = Le32(p + 16);
  const uint32_t link = Le32(p + 20);
  if (link != kPcapLinkEthernet) {
    return InvalidArgument("pcap: unsupported link type " +
                           std::to_string(link) + " (1, Ethernet, expected)");
  }
  pos_ += kFileHeader;
  offset_ += kFileHeader;
  return Status::Ok();
}

Result<bool> PcapReader::ReadRecord(Record* rec) {
  if (done_) return false;
  MEZ_ASSIGN_OR_RETURN(bool full, Fill(kRecordHeader));
  if (!full) {
    truncated_ = buf_.size() > pos_;
    done_ = true;
    return false;
  }
  const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
  const uint32_t sec = Le32(p);
  const uint32_t usec = Le32(p + 4);
  const uint32_t incl = Le32(p + 8);
  const uint32_t orig = Le32(p + 12);
  if (usec >= 1'000'000) {
    return DataLoss(At(offset_) + "microseconds field " + std::to_string(usec) +
                    " is not below 1000000");
  }
  const uint32_t limit = snaplen_ == 0 ? kPcapMaxRecord : snaplen_;
  if (incl > limit || incl > kPcapMaxRecord) {
    return DataLoss(At(offset_) + "length " + std::to_string(incl) +
                    " exceeds the snaplen " + std::to_string(limit) +
                    " (or 16 MiB): not a record boundary");
  }
  if (orig < incl) {
    return DataLoss(At(offset_) + "captured length " + std::to_string(incl) +
                    " exceeds the original length " + std::to_string(orig));
  }
  MEZ_ASSIGN_OR_RETURN(full, Fill(kRecordHeader + incl));
  if (!full) {
    truncated_ = true;
    done_ = true;
    return false;
  }
  rec->time_us = int64_t{sec} * 1'000'000 + usec;
  rec->offset = offset_;
  rec->data.assign(buf_, pos_ + kRecordHeader, incl);
  pos_ += kRecordHeader + incl;
  offset_ += kRecordHeader + incl;
  return true;
}

Status PcapReader::Fail(Integrity what, std::string message) {
  own_integrity_ = what;
  return DataLoss("pcap " + std::string(IntegrityName(what)) + ": " + message);
}

Integrity PcapReader::integrity() const {
  if (own_integrity_ != Integrity::kOk) return own_integrity_;
  return opener_ ? opener_->integrity() : Integrity::kOk;
}

Status PcapReader::HandleMetadata(const Record& rec, std::string_view body,
                                  bool first) {
  // body[0] is the record type; see docs/formats/pcap.md.
  const char type = body.empty() ? 0 : body[0];
  body.remove_prefix(body.empty() ? 0 : 1);
  if (type == 'S') {
    if (!first) {
      return DataLoss(At(rec.offset) + "start record is not the first record");
    }
    std::string scheme;
    while (!body.empty()) {
      const size_t nl = body.find('\n');
      if (nl == body.npos) {
        return DataLoss(At(rec.offset) + "start record line lacks newline");
      }
      std::string_view line = body.substr(0, nl);
      body.remove_prefix(nl + 1);
      const size_t eq = line.find('=');
      if (eq == line.npos) continue;
      std::string_view k = line.substr(0, eq);
      std::string v(line.substr(eq + 1));
      if (k == "scheme") scheme = std::move(v);
      if (k == "session_id") session_id_ = std::move(v);
      if (k == "key_id") key_id_ = std::move(v);
    }
    if (scheme != kPcapEncryptionScheme) {
      return InvalidArgument("pcap: unsupported encryption scheme '" +
                             scheme.substr(0, 64) + "'");
    }
    if (session_id_.empty() || key_id_.empty()) {
      return DataLoss(At(rec.offset) +
                      "start record lacks session_id or key_id");
    }
    encrypted_ = true;
    if (options_.key.empty()) return Status::Ok();
    if (!options_.expected_session_id.empty() &&
        options_.expected_session_id != session_id_) {
      return Fail(Integrity::kWrongKey, "file belongs to session '" +
                                            session_id_ + "', expected '" +
                                            options_.expected_session_id + "'");
    }
    MEZ_ASSIGN_OR_RETURN(opener_,
                         ChunkOpener::Create(options_.key, session_id_));
    return opener_->CheckKeyId(key_id_);
  }
  if (type == 'F') {
    if (!encrypted_) {
      return DataLoss(At(rec.offset) +
                      "final record in a file without a start record");
    }
    final_seen_ = true;
    if (opener_) return opener_->OpenFinal(rec.time_us, body);
    return Status::Ok();
  }
  return DataLoss(At(rec.offset) + "unknown metadata record type " +
                  std::to_string(static_cast<unsigned char>(type)));
}

Result<bool> PcapReader::ParseTcp(const Record& rec, PcapPacket* packet) {
  const std::string& d = rec.data;
  const auto* p = reinterpret_cast<const unsigned char*>(d.data());
  if (d.size() < 14) return false;
  const uint16_t ether = Be16(p + 12);
  bool v6;
  size_t tcp, end, addr_len;
  const unsigned char *src, *dst;
  if (ether == kEtherTypeIpv4) {
    v6 = false;
    addr_len = 4;
    if (d.size() < 34 || (p[14] >> 4) != 4) {
      return DataLoss(At(rec.offset) + "malformed IPv4 header");
    }
    const size_t ihl = (p[14] & 0x0f) * 4u;
    const size_t total = Be16(p + 16);
    if (ihl < 20 || total < ihl || 14 + total > d.size()) {
      return DataLoss(At(rec.offset) + "malformed IPv4 lengths");
    }
    if (p[23] != 6) return false;
    if ((Be16(p + 20) & 0x3fff) != 0) return false;  // A fragment.
    src = p + 26;
    dst = p + 30;
    tcp = 14 + ihl;
    end = 14 + total;
  } else if (ether == kEtherTypeIpv6) {
    v6 = true;
    addr_len = 16;
    if (d.size() < 54 || (p[14] >> 4) != 6) {
      return DataLoss(At(rec.offset) + "malformed IPv6 header");
    }
    if (p[20] != 6) return false;  // Extension headers are never written.
    const size_t plen = Be16(p + 18);
    if (54 + plen > d.size()) {
      return DataLoss(At(rec.offset) + "malformed IPv6 payload length");
    }
    src = p + 22;
    dst = p + 38;
    tcp = 54;
    end = 54 + plen;
  } else {
    return false;
  }
  if (end - tcp < 20) return DataLoss(At(rec.offset) + "short TCP header");
  const size_t doff = (p[tcp + 12] >> 4) * 4u;
  if (doff < 20 || doff > end - tcp) {
    return DataLoss(At(rec.offset) + "bad TCP data offset");
  }
  const uint16_t sport = Be16(p + tcp);
  const uint16_t dport = Be16(p + tcp + 2);
  const uint8_t flags = p[tcp + 13];

  std::string a(reinterpret_cast<const char*>(src), addr_len);
  a += std::string_view(d).substr(tcp, 2);
  std::string b(reinterpret_cast<const char*>(dst), addr_len);
  b += std::string_view(d).substr(tcp + 2, 2);
  std::string canon =
      std::string(1, v6 ? '6' : '4') + std::min(a, b) + std::max(a, b);
  auto it = flows_.find(canon);
  if (it == flows_.end() || ((flags & kTcpSyn) && !(flags & kTcpAck))) {
    // The SYN sender is the client; without a SYN, assume the sender is.
    FlowKey k;
    k.ipv6 = v6;
    k.client_ip = IpText(src, v6);
    k.client_port = sport;
    k.server_ip = IpText(dst, v6);
    k.server_port = dport;
    it = flows_.insert_or_assign(std::move(canon), std::move(k)).first;
  }
  packet->flow = it->second;
  packet->direction = (packet->flow.client_port == sport &&
                       packet->flow.client_ip == IpText(src, v6))
                          ? Direction::kIn
                          : Direction::kOut;
  packet->time_us = rec.time_us;
  packet->tcp_flags = flags;
  packet->seq = Be32(p + tcp + 4);
  packet->ack = Be32(p + tcp + 8);
  std::string_view payload =
      std::string_view(d).substr(tcp + doff, end - tcp - doff);
  packet->wire_length = static_cast<uint32_t>(payload.size());
  if (opener_ && !payload.empty()) {
    const std::string context = packet->flow.ToString();
    const ChunkInfo info{
        rec.time_us,
        static_cast<uint8_t>(packet->direction == Direction::kIn ? 'i' : 'o'),
        context};
    MEZ_ASSIGN_OR_RETURN(packet->payload, opener_->Open(info, payload));
  } else {
    packet->payload.assign(payload);
  }
  return true;
}

Status PcapReader::Finish() {
  if (!opener_) {
    if (!options_.key.empty()) {
      return Fail(Integrity::kTruncated,
                  "file ends before its encryption start record");
    }
    return Status::Ok();
  }
  if (truncated_ && final_seen_) {
    return Fail(Integrity::kAppended, "a partial record follows the final one");
  }
  return opener_->Finish();
}

Result<bool> PcapReader::Next(PcapPacket* packet) {
  while (true) {
    Record rec;
    if (have_pending_) {
      rec = std::move(pending_);
      have_pending_ = false;
    } else {
      MEZ_ASSIGN_OR_RETURN(bool have, ReadRecord(&rec));
      if (!have) {
        if (!finished_) {
          finished_ = true;
          end_status_ = Finish();
        }
        if (!end_status_.ok()) return end_status_;
        return false;
      }
    }
    if (final_seen_ && opener_) {
      return Fail(Integrity::kAppended,
                  At(rec.offset) + "follows the final record");
    }
    const auto* p = reinterpret_cast<const unsigned char*>(rec.data.data());
    if (rec.data.size() >= 14 && Be16(p + 12) == kEtherTypeMezite) {
      if (rec.data.size() < 20 || rec.data.compare(14, 4, "MEZP") != 0) {
        return DataLoss(At(rec.offset) + "malformed metadata frame");
      }
      if (rec.data[18] != 1) {
        return DataLoss(At(rec.offset) + "unsupported metadata version " +
                        std::to_string(static_cast<uint8_t>(rec.data[18])));
      }
      MEZ_RETURN_IF_ERROR(
          HandleMetadata(rec, std::string_view(rec.data).substr(19), false));
      continue;
    }
    MEZ_ASSIGN_OR_RETURN(bool tcp, ParseTcp(rec, packet));
    if (!tcp) {
      ++skipped_;
      continue;
    }
    ++packets_;
    return true;
  }
}

Result<Reassembly> ReassembleFlows(PcapReader* reader) {
  struct State {
    size_t index;
    bool known[2] = {false, false};
    uint32_t next[2] = {0, 0};
    bool syn = false;
    bool synack = false;
  };
  Reassembly out;
  std::map<FlowKey, State> active;
  PcapPacket p;
  while (true) {
    MEZ_ASSIGN_OR_RETURN(bool have, reader->Next(&p));
    if (!have) break;
    const bool syn = (p.tcp_flags & kTcpSyn) != 0;
    const bool ack = (p.tcp_flags & kTcpAck) != 0;
    auto it = active.find(p.flow);
    if (it == active.end() || (syn && !ack)) {
      out.flows.emplace_back();
      out.flows.back().key = p.flow;
      out.flows.back().first_us = p.time_us;
      it = active.insert_or_assign(p.flow, State{out.flows.size() - 1}).first;
    }
    State& st = it->second;
    ReassembledFlow& f = out.flows[st.index];
    f.last_us = p.time_us;
    const int d = static_cast<int>(p.direction);
    if (syn) {
      st.next[d] = p.seq + 1;
      st.known[d] = true;
      (ack ? st.synack : st.syn) = true;
      continue;
    }
    if (p.tcp_flags & kTcpRst) {
      (f.established ? f.reset : f.refused) = true;
      continue;
    }
    if (ack && st.syn && st.synack && !f.established &&
        p.direction == Direction::kIn) {
      f.established = true;
    }
    const bool fin = (p.tcp_flags & kTcpFin) != 0;
    if (p.wire_length == 0 && !fin) continue;
    if (st.known[d] && p.seq != st.next[d]) {
      return DataLoss("pcap flow " + f.key.ToString() + " " +
                      (d == 0 ? "client->server" : "server->client") +
                      ": expected seq " + std::to_string(st.next[d]) +
                      ", got " + std::to_string(p.seq));
    }
    st.known[d] = true;
    st.next[d] = p.seq + p.wire_length + (fin ? 1 : 0);
    (d == 0 ? f.client_to_server : f.server_to_client) += p.payload;
    if (fin) (d == 0 ? f.client_fin : f.server_fin) = true;
  }
  out.truncated = reader->truncated();
  return out;
}

}  // namespace mez::record
