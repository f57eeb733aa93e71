#include "libmez/record/plain_cast.h"

#include <cstring>
#include <nlohmann/json.hpp>

#include "libmez/record/asciicast_reader.h"
#include "libmez/record/asciicast_writer.h"
#include "libmez/record/utf8.h"

namespace mez::record {
namespace {

// Re-encodes the events of an opened encrypted cast as plain lines.
class DecryptingSource : public ByteSource {
 public:
  explicit DecryptingSource(std::unique_ptr<AsciicastReader> reader)
      : reader_(std::move(reader)) {
    const AsciicastInfo& info = reader_->info();
    nlohmann::ordered_json h;
    h["version"] = 2;
    h["width"] = info.width;
    h["height"] = info.height;
    if (info.timestamp > 0) h["timestamp"] = info.timestamp;
    if (!info.command.empty()) h["command"] = info.command;
    if (!info.title.empty()) h["title"] = info.title;
    if (!info.env.empty()) h["env"] = info.env;
    buf_ = h.dump();
    buf_ += '\n';
  }

  Result<size_t> Read(char* out, size_t n) override {
    while (pos_ == buf_.size() && !done_) {
      buf_.clear();
      pos_ = 0;
      AsciicastEvent e;
      // The reader's errors are final: the stream ends at the first event
      // that fails its check, and every later Read returns that error.
      MEZ_ASSIGN_OR_RETURN(bool more, reader_->Next(&e));
      if (!more) {
        done_ = true;
        break;
      }
      buf_ += '[';
      AppendSeconds(e.time_us, &buf_);
      buf_ += ", \"";
      AppendJsonEscaped(e.code, &buf_);
      buf_ += "\", \"";
      AppendJsonEscaped(e.data, &buf_);
      buf_ += "\"]\n";
    }
    size_t k = std::min(n, buf_.size() - pos_);
    std::memcpy(out, buf_.data() + pos_, k);
    pos_ += k;
    return k;
  }

 private:
  std::unique_ptr<AsciicastReader> reader_;
  std::string buf_;
  size_t pos_ = 0;
  bool done_ = false;
};

// Hands back bytes already read while peeking, then the rest.
class ReplaySource : public ByteSource {
 public:
  ReplaySource(std::string head, std::unique_ptr<ByteSource> rest)
      : head_(std::move(head)), rest_(std::move(rest)) {}
  Result<size_t> Read(char* out, size_t n) override {
    if (pos_ < head_.size()) {
      size_t k = std::min(n, head_.size() - pos_);
      std::memcpy(out, head_.data() + pos_, k);
      pos_ += k;
      return k;
    }
    return rest_->Read(out, n);
  }

 private:
  std::string head_;
  size_t pos_ = 0;
  std::unique_ptr<ByteSource> rest_;
};

}  // namespace

Result<std::unique_ptr<ByteSource>> OpenPlainCast(
    std::unique_ptr<ByteSource> src, const std::optional<std::string>& key) {
  // Read the header line to learn whether the cast is encrypted.
  std::string head;
  char c;
  while (head.size() < (1 << 20)) {
    MEZ_ASSIGN_OR_RETURN(size_t n, src->Read(&c, 1));
    if (n == 0) break;
    head += c;
    if (c == '\n') break;
  }
  // Judged on the parsed header, not on its text: a command or title may
  // contain the key's name (an exec of `echo mezite_encryption` must stay
  // playable). A header that does not parse passes through, for the
  // reader downstream to report.
  bool encrypted = false;
  try {
    auto h = nlohmann::json::parse(head);
    encrypted = h.is_object() && h.contains(kEncryptionHeaderKey);
  } catch (const nlohmann::json::exception&) {
    encrypted = false;
  }
  auto replay = std::make_unique<ReplaySource>(head, std::move(src));
  if (!encrypted) return std::unique_ptr<ByteSource>(std::move(replay));
  if (!key.has_value()) {
    return FailedPrecondition(
        "the recording is encrypted: the recording key "
        "(MEZITE_RECORDING_ENC_KEY) is needed to read it");
  }
  MEZ_ASSIGN_OR_RETURN(auto reader,
                       AsciicastReader::Open(std::move(replay), key));
  return std::unique_ptr<ByteSource>(
      std::make_unique<DecryptingSource>(std::move(reader)));
}

}  // namespace mez::record
