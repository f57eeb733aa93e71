// PCAP synthesis for port-forwarded TCP (direct-tcpip channels). The SSH
// side only sees the byte streams of a forwarded connection, so the writer
// invents the packets a capture of that connection would have held: a
// three-way handshake, PSH|ACK data segments no larger than the MSS with
// their ACKs, a FIN per direction, an RST for a refused open. The result
// opens in Wireshark/tshark, whose "Follow TCP stream" shows each
// direction's exact bytes. One file holds many flows (every channel of one
// connection to one destination). Format: docs/formats/pcap.md.
//
// With a ChunkSealer every data segment's payload is a sealed chunk; the
// handshake, addresses, ports and timestamps stay readable.
#ifndef MEZ_RECORD_PCAP_WRITER_H_
#define MEZ_RECORD_PCAP_WRITER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "libmez/record/seal.h"
#include "libmez/record/sink.h"
#include "libmez/util/status.h"
#include "libmez/util/stream.h"

namespace mez::record {

// File format constants shared by the writer and the reader.
inline constexpr uint32_t kPcapMagic = 0xa1b2c3d4;  // Microseconds.
inline constexpr uint32_t kPcapLinkEthernet = 1;
inline constexpr uint32_t kPcapSnaplen = 65535;
inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
// IEEE 802 "local experimental" EtherType: carries Mezite metadata frames.
inline constexpr uint16_t kEtherTypeMezite = 0x88b5;
inline constexpr size_t kMssIpv4 = 1460;
inline constexpr size_t kMssIpv6 = 1440;
// Names the encryption of the metadata start record (docs/formats/pcap.md).
inline constexpr std::string_view kPcapEncryptionScheme =
    "mezite-chunk-aes-256-gcm-v1";

// TCP flag bits.
inline constexpr uint8_t kTcpFin = 0x01;
inline constexpr uint8_t kTcpSyn = 0x02;
inline constexpr uint8_t kTcpRst = 0x04;
inline constexpr uint8_t kTcpPsh = 0x08;
inline constexpr uint8_t kTcpAck = 0x10;

// A flow as written: textual addresses ("198.18.0.1", "2001:db8::1") and
// ports, oriented client (the SYN sender) to server.
struct FlowKey {
  bool ipv6 = false;
  std::string client_ip;
  uint16_t client_port = 0;
  std::string server_ip;
  uint16_t server_port = 0;

  // "198.18.0.1:49152>198.18.7.9:80" or "[2001:db8::1]:49152>[::1]:22";
  // the ChunkInfo context of every sealed segment of the flow.
  std::string ToString() const;
  auto Tie() const {
    return std::tie(ipv6, client_ip, client_port, server_ip, server_port);
  }
  bool operator==(const FlowKey& o) const { return Tie() == o.Tie(); }
  bool operator<(const FlowKey& o) const { return Tie() < o.Tie(); }
};

using FlowId = uint64_t;

struct PcapWriterOptions {
  // Wall-clock start of the recording, microseconds since the Unix epoch;
  // no packet is stamped earlier. Must be in [0, 2^32 s).
  int64_t start_wall_us = 0;
  // Optional. When set, every data payload is sealed and the file carries
  // metadata frames (start record, final record). The writer owns it.
  std::unique_ptr<ChunkSealer> sealer;
  // Written into the start record of an encrypted file; the session id
  // must be the one `sealer` was created with. key_id is KeyId(key).
  std::string session_id;
  std::string key_id;
  // Tests only: returns each new initial sequence number. Default: random.
  std::function<uint32_t()> isn_generator;
};

// Writes one pcap file. Thread-safe: every method takes an internal mutex,
// so the channels sharing a file may call it concurrently. Packets are
// written in call order; a timestamp smaller than the last one written is
// raised to it, so times never decrease in the file.
//
// Errors are sticky: after a sink or sealing failure every later call
// returns that error (the file may end in a partial record).
class PcapWriter {
 public:
  // Writes the pcap file header (and the start record when encrypted).
  static Result<std::unique_ptr<PcapWriter>> Create(
      std::unique_ptr<ByteSink> sink, PcapWriterOptions options);
  // Closes the sink if Close() was not called, WITHOUT the final record,
  // so that an abandoned encrypted file reads as truncated.
  ~PcapWriter();
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;

  // Starts a flow and writes its handshake. dst_host is an IPv4 or IPv6
  // literal (brackets allowed) or a name; a name maps to an address in
  // 198.18.0.0/15, the same one for the same name within this file. The
  // flow is IPv6 (MSS 1440) iff the destination is an IPv6 literal, else
  // IPv4 (MSS 1460). src_host is used when it is a literal of the same
  // family; otherwise (empty, a name, the other family) a synthetic client
  // address stands in (198.18.0.1 or 2001:db8::1). src_port is kept when
  // non-zero and not yet used from that client address in this file;
  // otherwise a fresh port from 49152-65535 is chosen, so that every
  // channel is its own TCP stream (OpenSSH's `ssh -W` reports
  // 127.0.0.1:65535 for all of them).
  Result<FlowId> OpenFlow(int64_t wall_us, std::string_view src_host,
                          uint16_t src_port, std::string_view dst_host,
                          uint16_t dst_port);
  // A refused open: SYN from the client, RST|ACK from the server.
  Status FailedOpen(int64_t wall_us, std::string_view src_host,
                    uint16_t src_port, std::string_view dst_host,
                    uint16_t dst_port);
  // Appends `data` sent in direction `dir` as PSH|ACK segments of at most
  // the MSS (MSS - kSealOverhead of plaintext when encrypted), acknowledged
  // by the peer. Empty data writes nothing. Fails after that direction's
  // Shutdown or after Reset.
  Status Data(FlowId flow, int64_t wall_us, Direction dir,
              std::string_view data);
  // EOF of direction `dir` (half close): FIN|ACK, acknowledged. Once both
  // directions are shut down the flow is finished and its id is invalid.
  Status Shutdown(FlowId flow, int64_t wall_us, Direction dir);
  // Aborts the flow: RST|ACK from the side `from`. The id becomes invalid.
  Status Reset(FlowId flow, int64_t wall_us, Direction from);

  // The addresses and ports a flow was given.
  Result<FlowKey> GetFlowKey(FlowId flow) const;

  Status Flush();
  // Writes the final record when encrypted, then closes the sink. Flows
  // still open get no invented FINs. A second Close returns Ok; every
  // other call after Close fails.
  Status Close();

 private:
  struct Flow {
    FlowKey key;
    std::string context;      // key.ToString(), the ChunkInfo context.
    std::string client_addr;  // 4 or 16 raw bytes.
    std::string server_addr;
    uint32_t next_seq[2] = {0, 0};  // [0] client to server, [1] back.
    bool fin[2] = {false, false};
  };

  explicit PcapWriter(std::unique_ptr<ByteSink> sink,
                      PcapWriterOptions options);

  Status CheckUsable() const;
  Result<int64_t> Stamp(int64_t wall_us);
  Result<Flow> NewFlow(std::string_view src_host, uint16_t src_port,
                       std::string_view dst_host, uint16_t dst_port);
  Result<Flow*> FindFlow(FlowId id);
  uint32_t NextIsn();
  std::string MapHostname(std::string_view name);
  void AppendTcp(std::string* out, int64_t ts_us, const Flow& flow,
                 Direction from, uint8_t flags, uint32_t seq, uint32_t ack,
                 std::string_view payload);
  void AppendFrame(std::string* out, int64_t ts_us, std::string_view frame);
  void AppendMetadata(std::string* out, int64_t ts_us, char type,
                      std::string_view body);
  // Appends `bytes` to the sink; on failure poisons the writer.
  Status Emit(const std::string& bytes);

  mutable std::mutex mu_;
  std::unique_ptr<ByteSink> sink_;
  PcapWriterOptions options_;
  Status error_;
  bool closed_ = false;
  int64_t last_ts_us_ = 0;
  uint16_t ip_id_ = 0;
  FlowId next_flow_id_ = 1;
  uint16_t next_port_ = 49152;
  std::map<FlowId, Flow> flows_;
  // (client address bytes, port) pairs handed out in this file.
  std::set<std::pair<std::string, uint16_t>> used_ports_;
  // Hostname -> 4 address bytes, and the addresses taken.
  std::map<std::string, std::string, std::less<>> host_addrs_;
  std::set<std::string> taken_addrs_;
};

}  // namespace mez::record

#endif  // MEZ_RECORD_PCAP_WRITER_H_
