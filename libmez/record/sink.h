// Byte sinks and sources: the layer under every recording writer and reader.
// A writer appends to a ByteSink; gzip is another ByteSink stacked on top of
// the file one. Readers pull from a ByteSource.
#ifndef MEZ_RECORD_SINK_H_
#define MEZ_RECORD_SINK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "libmez/util/status.h"

namespace mez::record {

// REQUIRES: external synchronization (one writer at a time).
class ByteSink {
 public:
  virtual ~ByteSink() = default;
  virtual Status Append(std::string_view data) = 0;
  // Pushes buffered bytes down to the OS (not necessarily to stable storage).
  virtual Status Flush() = 0;
  // Makes every byte appended so far durable (fsync for files).
  virtual Status Sync() { return Flush(); }
  // Flushes and releases the sink. Append after Close is an error.
  virtual Status Close() = 0;
  // Bytes handed to the layer below so far (after compression, if any).
  virtual uint64_t bytes_written() const = 0;
};

// Appends to a file. Owns the descriptor. Buffers up to 16 KiB.
//
// Write-behind: a recording is written once and read rarely, so a large
// one should neither pile up as dirty pages nor push the rest of the
// machine out of the page cache. Every kWriteBehind bytes the sink starts
// writing the window it just filled to disk, waits for the window before
// it (started a window earlier, so normally already written) and drops
// that from the page cache. The file's content is the same; a write error
// (EIO, ENOSPC) seen on the way fails the Append.
class FileSink : public ByteSink {
 public:
  static constexpr uint64_t kWriteBehind = 8 << 20;

  // Creates `path` exclusively (O_EXCL|O_NOFOLLOW): an existing file or a
  // symlink at `path` is an error, never overwritten.
  static Result<std::unique_ptr<FileSink>> Create(const std::string& path,
                                                  mode_t mode = 0640);
  // Opens `path` for appending (used to resume a spool).
  static Result<std::unique_ptr<FileSink>> OpenAppend(const std::string& path);
  ~FileSink() override;

  Status Append(std::string_view data) override;
  Status Flush() override;
  Status Sync() override;
  Status Close() override;
  uint64_t bytes_written() const override { return written_; }

 private:
  FileSink(int fd, std::string path, uint64_t size);
  Status WriteBehind();

  int fd_;
  std::string path_;
  std::string buf_;
  uint64_t written_;
  // [older_, newest_) was last handed to writeback; [newest_, written_) is
  // the window being filled.
  uint64_t older_;
  uint64_t newest_;
};

// Collects bytes in memory (tests, benchmarks).
class StringSink : public ByteSink {
 public:
  Status Append(std::string_view data) override;
  Status Flush() override { return Status::Ok(); }
  Status Close() override;
  uint64_t bytes_written() const override { return data_.size(); }
  const std::string& data() const { return data_; }
  std::string& mutable_data() { return data_; }
  bool closed() const { return closed_; }

 private:
  std::string data_;
  bool closed_ = false;
};

class ByteSource {
 public:
  virtual ~ByteSource() = default;
  // Reads up to `n` bytes into `buf`; returns 0 at the end.
  virtual Result<size_t> Read(char* buf, size_t n) = 0;
};

class FileSource : public ByteSource {
 public:
  static Result<std::unique_ptr<FileSource>> Open(const std::string& path);
  ~FileSource() override;
  Result<size_t> Read(char* buf, size_t n) override;

 private:
  FileSource(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

class StringSource : public ByteSource {
 public:
  explicit StringSource(std::string data) : data_(std::move(data)) {}
  Result<size_t> Read(char* buf, size_t n) override;

 private:
  std::string data_;
  size_t pos_ = 0;
};

// Opens a recording file for reading; a gzip stream (by its magic bytes,
// whatever the file name) is decompressed transparently, and a gzip file
// cut short yields everything up to the cut.
Result<std::unique_ptr<ByteSource>> OpenRecording(const std::string& path);
// The same for bytes already in memory.
std::unique_ptr<ByteSource> OpenRecordingBytes(std::string data);

// Reads a ByteSource line by line ('\n'), without the terminator. The last
// line may lack its '\n' (a file cut short); `complete` says which.
class LineReader {
 public:
  explicit LineReader(ByteSource* src) : src_(src) {}
  // Returns false at the end. A line over `max_line` bytes is an error.
  Result<bool> Next(std::string* line, bool* complete,
                    size_t max_line = 64 << 20);
  uint64_t line_number() const { return line_no_; }

 private:
  ByteSource* src_;
  std::string buf_;
  size_t pos_ = 0;
  bool eof_ = false;
  uint64_t line_no_ = 0;
};

}  // namespace mez::record

#endif  // MEZ_RECORD_SINK_H_
