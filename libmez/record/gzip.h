// gzip as a stream layer: GzipSink compresses into any ByteSink; the gunzip
// source decompresses any ByteSource.
//
// GzipSink writes a sequence of complete gzip members (RFC 1952 allows
// any number; gunzip, zcat and our reader decode them in turn), one per
// 64 KiB of input or per flush, compressed by libdeflate. It flushes at
// least once a second while data is pending (checked on every Append and
// on Tick) and on every Flush and Close, so a process killed at any moment
// leaves a .gz file that decompresses up to the last flush.
#ifndef MEZ_RECORD_GZIP_H_
#define MEZ_RECORD_GZIP_H_

#include <memory>

#include "libmez/record/sink.h"
#include "libmez/util/clock.h"

namespace mez::record {

struct GzipOptions {
  int level = 1;  // 1..12 (libdeflate); 1 keeps up with fast terminal output.
  int64_t flush_interval_us = 1'000'000;
  Clock* clock = nullptr;  // Defaults to RealClock().
};

// REQUIRES: external synchronization.
class GzipSink : public ByteSink {
 public:
  static Result<std::unique_ptr<GzipSink>> Create(
      std::unique_ptr<ByteSink> below, GzipOptions options = {});
  ~GzipSink() override;

  Status Append(std::string_view data) override;
  // Writes pending input as a gzip member, then flushes the sink below.
  Status Flush() override;
  Status Sync() override;
  // Writes pending input (or an empty member if nothing was ever written,
  // so the file is valid gzip), then closes the sink below.
  Status Close() override;
  uint64_t bytes_written() const override { return below_->bytes_written(); }

  // Flushes if data has been pending for flush_interval_us or longer.
  // Owners call this from a timer so that idle streams get flushed too.
  Status Tick();
  uint64_t bytes_in() const { return bytes_in_; }

 private:
  GzipSink(std::unique_ptr<ByteSink> below, GzipOptions options);
  // Compresses buf_ as one member and hands it to the sink below.
  Status EmitMember();

  std::unique_ptr<ByteSink> below_;
  std::string buf_;  // Input not yet compressed; at most kMemberBytes.
  uint64_t members_ = 0;
  GzipOptions options_;
  int64_t pending_since_us_ = -1;  // -1: nothing pending since last flush.
  uint64_t bytes_in_ = 0;
  bool closed_ = false;
};

// Decompresses one or more concatenated gzip members. A stream cut short
// yields everything decodable before the cut, then ends; truncated() then
// tells. Corrupt data is a kDataLoss error.
class GunzipSource : public ByteSource {
 public:
  explicit GunzipSource(std::unique_ptr<ByteSource> below);
  ~GunzipSource() override;
  Result<size_t> Read(char* buf, size_t n) override;
  bool truncated() const { return truncated_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<ByteSource> below_;
  bool truncated_ = false;
  bool done_ = false;
};

std::unique_ptr<ByteSource> NewGunzipSource(std::unique_ptr<ByteSource> below);

// One-shot helpers (tests, small files).
Result<std::string> GzipBytes(std::string_view data, int level = 6);
Result<std::string> GunzipBytes(std::string_view data);

}  // namespace mez::record

#endif  // MEZ_RECORD_GZIP_H_
