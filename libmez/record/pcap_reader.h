// Reads the pcap files PcapWriter produces (docs/formats/pcap.md): one TCP
// packet at a time, oriented by flow, with sealed payloads opened when a
// key is given; plus the reassembly of each flow's two byte streams.
//
// Input is untrusted: garbage is rejected with an error naming the byte
// offset, never a crash, and a file cut at any byte yields every complete
// packet before the cut.
#ifndef MEZ_RECORD_PCAP_READER_H_
#define MEZ_RECORD_PCAP_READER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "libmez/record/pcap_writer.h"
#include "libmez/record/seal.h"
#include "libmez/record/sink.h"
#include "libmez/util/status.h"

namespace mez::record {

// A record larger than this is rejected whatever the file's snaplen says.
inline constexpr uint32_t kPcapMaxRecord = 16u << 20;

struct PcapPacket {
  int64_t time_us = 0;                   // Microseconds since the Unix epoch.
  FlowKey flow;                          // Oriented by the flow's SYN.
  Direction direction = Direction::kIn;  // kIn: client to server.
  uint8_t tcp_flags = 0;
  uint32_t seq = 0;
  uint32_t ack = 0;
  // TCP payload bytes on the wire: what `seq` advances by. For an
  // encrypted file that is the sealed length.
  uint32_t wire_length = 0;
  // The plaintext; for an encrypted file read without a key, the sealed
  // bytes as stored.
  std::string payload;
};

struct PcapReaderOptions {
  // The 32-byte recording key. Empty: payloads are returned as stored.
  // Given for a file that is not encrypted: Open fails.
  std::string key;
  // When non-empty, an encrypted file's start record must name it.
  std::string expected_session_id;
};

// REQUIRES: external synchronization.
class PcapReader {
 public:
  // Reads the file header and the start record, if any. Fails on a wrong
  // magic or link type (kInvalidArgument), on a wrong key (the opener's
  // kWrongKey error) and on a key for a plaintext file (kDataLoss).
  static Result<std::unique_ptr<PcapReader>> Open(
      std::unique_ptr<ByteSource> source, PcapReaderOptions options = {});
  // The same for a file; gzip is decompressed transparently.
  static Result<std::unique_ptr<PcapReader>> OpenFile(
      const std::string& path, PcapReaderOptions options = {});
  ~PcapReader();

  // Fills `packet` with the next TCP packet and returns true; returns false
  // at the end, after which truncated() says whether the file was cut
  // inside a record (or its header). Metadata frames are consumed, other
  // non-TCP frames skipped. Errors: kDataLoss for a corrupt record; with a
  // key, the ChunkOpener's error for any integrity failure, including, at
  // the end, a missing final record (kTruncated) after every packet before
  // the cut has been returned.
  Result<bool> Next(PcapPacket* packet);

  bool truncated() const { return truncated_; }
  // Whether the file has a start record (known after Open).
  bool encrypted() const { return encrypted_; }
  const std::string& session_id() const { return session_id_; }
  const std::string& key_id() const { return key_id_; }
  // kOk unless an integrity check failed (only with a key).
  Integrity integrity() const;
  uint64_t packets() const { return packets_; }
  uint64_t skipped() const { return skipped_; }

 private:
  struct Record {
    int64_t time_us = 0;
    uint64_t offset = 0;
    std::string data;
  };
  PcapReader(std::unique_ptr<ByteSource> source, PcapReaderOptions options);

  // Makes `n` bytes available from pos_; false if the source ends first.
  Result<bool> Fill(size_t n);
  Status ReadHeader();
  // False at the end of the file (clean or cut).
  Result<bool> ReadRecord(Record* rec);
  Status HandleMetadata(const Record& rec, std::string_view body, bool first);
  // True if `rec` was a TCP packet (filled in `packet`).
  Result<bool> ParseTcp(const Record& rec, PcapPacket* packet);
  Status Finish();
  Status Fail(Integrity what, std::string message);

  std::unique_ptr<ByteSource> source_;
  PcapReaderOptions options_;
  std::unique_ptr<ChunkOpener> opener_;
  std::string buf_;
  size_t pos_ = 0;
  uint64_t offset_ = 0;  // File offset of buf_[pos_].
  bool eof_ = false;
  bool done_ = false;
  bool finished_ = false;
  Status end_status_;
  bool truncated_ = false;
  bool encrypted_ = false;
  bool final_seen_ = false;
  uint32_t snaplen_ = 0;
  std::string session_id_;
  std::string key_id_;
  Integrity own_integrity_ = Integrity::kOk;
  bool have_pending_ = false;
  Record pending_;
  uint64_t packets_ = 0;
  uint64_t skipped_ = 0;
  // Canonical 4-tuple -> the flow as oriented by its SYN.
  std::map<std::string, FlowKey> flows_;
};

// One flow's reassembled byte streams.
struct ReassembledFlow {
  FlowKey key;
  std::string client_to_server;
  std::string server_to_client;
  bool established = false;  // SYN, SYN|ACK and ACK seen.
  bool refused = false;      // The SYN was answered by a RST.
  bool reset = false;        // A RST after the handshake.
  bool client_fin = false;
  bool server_fin = false;
  int64_t first_us = 0;
  int64_t last_us = 0;
};

struct Reassembly {
  std::vector<ReassembledFlow> flows;  // In the order of their first packet.
  bool truncated = false;              // The reader's truncated().
};

// Reads `reader` to the end and reassembles every flow (a new SYN on a
// 4-tuple starts a new flow). A sequence gap or overlap is kDataLoss; so is
// every error of Next.
Result<Reassembly> ReassembleFlows(PcapReader* reader);

}  // namespace mez::record

#endif  // MEZ_RECORD_PCAP_READER_H_
