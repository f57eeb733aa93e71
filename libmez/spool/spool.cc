#include "libmez/spool/spool.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "libmez/util/encoding.h"
#include "libmez/util/file.h"

namespace mez::spool {
namespace {

std::string FileHeader() {
  std::string h(kSpoolMagic, sizeof(kSpoolMagic));
  h.push_back(1);  // version
  h.append(3, '\0');
  return h;
}

// Appends `v` as a protobuf varint.
void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Protobuf tags (field number << 3 | wire type) of the chunk frame.
constexpr char kFrameChunkTag = (2 << 3) | 2;      // RecordFrame.chunk, LEN
constexpr char kChunkOffsetTag = (1 << 3) | 0;     // RecordChunk.offset_us
constexpr char kChunkDirectionTag = (2 << 3) | 0;  // RecordChunk.direction
constexpr char kChunkDataTag = (3 << 3) | 2;       // RecordChunk.data, LEN

uint32_t GetLe32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
         static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24;
}

}  // namespace

std::string ChunkRecordHead(const mezite::v1::RecordChunk& c) {
  std::string body;  // RecordChunk without its data bytes.
  if (c.offset_us() != 0) {
    body.push_back(kChunkOffsetTag);
    PutVarint(&body, static_cast<uint64_t>(c.offset_us()));
  }
  if (c.direction() != 0) {
    body.push_back(kChunkDirectionTag);
    PutVarint(&body,
              static_cast<uint64_t>(static_cast<int64_t>(c.direction())));
  }
  size_t data = c.data().size();
  if (data > 0) {
    body.push_back(kChunkDataTag);
    PutVarint(&body, data);
  }
  uint64_t chunk_len = body.size() + data;
  uint64_t frame_len = 1 + VarintSize(chunk_len) + chunk_len;
  std::string rec(4, '\0');
  for (int i = 0; i < 4; ++i) rec[i] = static_cast<char>(frame_len >> (8 * i));
  rec.push_back(kFrameChunkTag);
  PutVarint(&rec, chunk_len);
  rec.append(body);
  return rec;
}

Result<std::unique_ptr<SpoolWriter>> SpoolWriter::Create(
    const std::string& path, const mezite::v1::RecordFrame& header) {
  if (!header.has_header()) {
    return InvalidArgument("a spool starts with a header frame");
  }
  int fd = open(path.c_str(),
                O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoStatus("create spool " + path, errno);
  std::unique_ptr<SpoolWriter> w(new SpoolWriter(fd, path));
  std::string h = FileHeader();
  MEZ_RETURN_IF_ERROR(w->WritePieces({h}));
  MEZ_RETURN_IF_ERROR(w->Append(header));
  return w;
}

SpoolWriter::~SpoolWriter() { close(fd_); }

Status SpoolWriter::WritePieces(std::vector<std::string_view> pieces) {
  if (ended_) return FailedPrecondition("spool " + path_ + " already ended");
  uint64_t total = 0;
  std::vector<iovec> iov;
  iov.reserve(pieces.size());
  for (std::string_view p : pieces) {
    if (p.empty()) continue;
    iov.push_back({const_cast<char*>(p.data()), p.size()});
    total += p.size();
  }
  size_t first = 0;
  Status s;
  while (first < iov.size()) {
    int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
    ssize_t n = writev(fd_, iov.data() + first, count);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = ErrnoStatus("write", errno);
      break;
    }
    // Skip what was written; a piece written in part starts further on.
    auto done = static_cast<size_t>(n);
    while (first < iov.size() && done >= iov[first].iov_len) {
      done -= iov[first].iov_len;
      ++first;
    }
    if (done > 0) {
      iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + done;
      iov[first].iov_len -= done;
    }
  }
  if (!s.ok()) {
    // A partial record would be dropped as torn; cut it off now so that
    // later records are not written after garbage.
    if (ftruncate(fd_, static_cast<off_t>(size_)) == 0) {
      lseek(fd_, static_cast<off_t>(size_), SEEK_SET);
    }
    return Status(s.code(), "spool " + path_ + ": " + s.message());
  }
  size_ += total;
  return Status::Ok();
}

Status SpoolWriter::RecordPieces(const mezite::v1::RecordFrame& frame,
                                 std::vector<std::string_view>* pieces,
                                 std::deque<std::string>* keep) {
  size_t n = frame.ByteSizeLong();
  if (n == 0 || n > kMaxSpoolRecord || frame.has_batch()) {
    return InvalidArgument("record frame of " + std::to_string(n) +
                           " bytes cannot be spooled");
  }
  if (frame.has_chunk()) {
    // The bulk of a session: written from the frame's own data, without
    // serializing it into a second buffer. A frame with fields the head
    // does not know (its size differs) takes the general path.
    const std::string& data = frame.chunk().data();
    std::string& head = keep->emplace_back(ChunkRecordHead(frame.chunk()));
    if (head.size() - 4 + data.size() == n) {
      pieces->push_back(head);
      pieces->push_back(data);
      return Status::Ok();
    }
    keep->pop_back();
  }
  std::string& rec = keep->emplace_back(4, '\0');
  for (int i = 0; i < 4; ++i) rec[i] = static_cast<char>(n >> (8 * i));
  if (!frame.AppendToString(&rec) || rec.size() != 4 + n) {
    return Internal("cannot serialize a record frame");
  }
  pieces->push_back(rec);
  return Status::Ok();
}

Status SpoolWriter::Append(const mezite::v1::RecordFrame& frame) {
  return AppendAll({&frame});
}

Status SpoolWriter::AppendAll(
    const std::vector<const mezite::v1::RecordFrame*>& frames) {
  std::vector<std::string_view> pieces;
  pieces.reserve(2 * frames.size());
  std::deque<std::string> keep;  // deque: the views stay valid as it grows
  for (const mezite::v1::RecordFrame* f : frames) {
    MEZ_RETURN_IF_ERROR(RecordPieces(*f, &pieces, &keep));
  }
  return WritePieces(std::move(pieces));
}

Status SpoolWriter::End() {
  MEZ_RETURN_IF_ERROR(WritePieces({std::string_view("\0\0\0\0", 4)}));
  ended_ = true;
  if (fsync(fd_) != 0) return ErrnoStatus("fsync spool " + path_, errno);
  return Status::Ok();
}

Result<std::unique_ptr<SpoolReader>> SpoolReader::Open(
    const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rbe");
  if (f == nullptr) return ErrnoStatus("open spool " + path, errno);
  std::unique_ptr<SpoolReader> r(new SpoolReader(f));
  unsigned char h[kSpoolHeaderBytes];
  size_t n = std::fread(h, 1, sizeof(h), f);
  std::string want = FileHeader();
  if (n != sizeof(h) || std::memcmp(h, want.data(), sizeof(h)) != 0) {
    return DataLoss(path + " is not a Mezite spool file (bad header)");
  }
  return r;
}

SpoolReader::~SpoolReader() { std::fclose(file_); }

Result<bool> SpoolReader::Next(mezite::v1::RecordFrame* frame) {
  if (done_) return false;
  unsigned char len_bytes[4];
  size_t n = std::fread(len_bytes, 1, 4, file_);
  if (n < 4) {
    done_ = true;  // End of file, or a torn length.
    return false;
  }
  uint32_t len = GetLe32(len_bytes);
  if (len == 0) {
    done_ = true;
    clean_end_ = true;
    good_bytes_ += 4;
    if (std::fgetc(file_) != EOF) {
      return DataLoss("spool has data after its end marker at offset " +
                      std::to_string(good_bytes_));
    }
    return false;
  }
  if (len > kMaxSpoolRecord) {
    return DataLoss("spool record at offset " + std::to_string(good_bytes_) +
                    " claims " + std::to_string(len) + " bytes (limit " +
                    std::to_string(kMaxSpoolRecord) + ")");
  }
  buf_.resize(len);
  if (std::fread(buf_.data(), 1, len, file_) != len) {
    done_ = true;  // A torn last record.
    return false;
  }
  if (!frame->ParseFromString(buf_)) {
    return DataLoss("spool record at offset " + std::to_string(good_bytes_) +
                    " is not a record frame");
  }
  if (records_ == 0 && !frame->has_header()) {
    return DataLoss("spool does not start with a header frame");
  }
  if (records_ > 0 && frame->has_header()) {
    return DataLoss("spool has a second header frame at offset " +
                    std::to_string(good_bytes_));
  }
  ++records_;
  good_bytes_ += 4 + len;
  return true;
}

Result<uint64_t> TrimSpool(const std::string& path) {
  uint64_t good;
  {
    MEZ_ASSIGN_OR_RETURN(auto reader, SpoolReader::Open(path));
    mezite::v1::RecordFrame frame;
    while (true) {
      MEZ_ASSIGN_OR_RETURN(bool more, reader->Next(&frame));
      if (!more) break;
    }
    good = reader->good_bytes();
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return ErrnoStatus("stat " + path, errno);
  if (static_cast<uint64_t>(st.st_size) != good &&
      truncate(path.c_str(), static_cast<off_t>(good)) != 0) {
    return ErrnoStatus("truncate " + path, errno);
  }
  return good;
}

Result<std::string> FileSha256(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(md, EVP_sha256(), nullptr);
  std::string buf(1 << 16, '\0');
  Status status;
  while (true) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      status = ErrnoStatus("read " + path, errno);
      break;
    }
    if (n == 0) break;
    EVP_DigestUpdate(md, buf.data(), static_cast<size_t>(n));
  }
  unsigned char out[32];
  unsigned int out_len = 0;
  EVP_DigestFinal_ex(md, out, &out_len);
  EVP_MD_CTX_free(md);
  close(fd);
  if (!status.ok()) return status;
  return HexEncode(std::string_view(reinterpret_cast<char*>(out), out_len));
}

}  // namespace mez::spool
