#include "libmez/play/output.h"

#include <nlohmann/json.hpp>

#include "libmez/play/timing.h"
#include "libmez/record/asciicast_writer.h"
#include "libmez/record/utf8.h"
#include "libmez/util/file.h"

namespace mez::play {
namespace {

bool IsOutput(const Event& e) { return e.code.size() == 1 && e.code[0] == 'o'; }

class TextOutput : public Output {
 public:
  explicit TextOutput(record::ByteSink* out) : out_(out) {}
  Status Begin(const CastHeader&) override { return Status::Ok(); }
  Status Emit(int64_t, const Event& e) override {
    if (!IsOutput(e)) return Status::Ok();
    return out_->Append(e.data);
  }
  Status End() override { return out_->Flush(); }

 private:
  record::ByteSink* out_;
};

class PlainOutput : public Output {
 public:
  explicit PlainOutput(record::ByteSink* out) : out_(out) {}
  Status Begin(const CastHeader&) override { return Status::Ok(); }
  Status Emit(int64_t, const Event& e) override {
    if (!IsOutput(e)) return Status::Ok();
    text_.clear();
    for (char ch : e.data) Put(static_cast<unsigned char>(ch));
    return out_->Append(text_);
  }
  Status End() override {
    if (cr_) MEZ_RETURN_IF_ERROR(out_->Append("\n"));
    cr_ = false;
    return out_->Flush();
  }

 private:
  enum class State { kText, kEsc, kEscIntermediate, kCsi, kString, kStringEsc };

  void Put(unsigned char c) {
    switch (state_) {
      case State::kText:
        break;
      case State::kEsc:
        if (c == '[') {
          state_ = State::kCsi;
        } else if (c == ']' || c == 'P' || c == '_' || c == '^' || c == 'X') {
          state_ = State::kString;  // OSC, DCS, APC, PM, SOS: up to ST.
        } else if (c >= 0x20 && c <= 0x2F) {
          state_ = State::kEscIntermediate;  // e.g. ESC ( B.
        } else {
          state_ = State::kText;  // ESC and one final byte.
        }
        return;
      case State::kEscIntermediate:
        if (c < 0x20 || c > 0x2F) state_ = State::kText;
        return;
      case State::kCsi:
        if (c >= 0x40 && c <= 0x7E) state_ = State::kText;
        return;
      case State::kString:
        if (c == 0x07) state_ = State::kText;
        if (c == 0x1B) state_ = State::kStringEsc;
        return;
      case State::kStringEsc:
        state_ = c == '\\' ? State::kText : State::kString;
        return;
    }
    if (cr_) {
      text_.push_back('\n');
      cr_ = false;
      if (c == '\n') return;
    }
    if (c == 0x1B) {
      state_ = State::kEsc;
    } else if (c == '\r') {
      cr_ = true;
    } else if (c >= 0x20 || c == '\n' || c == '\t') {
      if (c != 0x7F) text_.push_back(static_cast<char>(c));
    }
  }

  record::ByteSink* out_;
  std::string text_;
  State state_ = State::kText;
  bool cr_ = false;  // A "\r" whose "\n" may come next.
};

class JsonOutput : public Output {
 public:
  explicit JsonOutput(record::ByteSink* out) : out_(out) {}
  Status Begin(const CastHeader&) override { return Status::Ok(); }
  Status Emit(int64_t presented_us, const Event& e) override {
    line_.assign("{\"time\": ");
    record::AppendSeconds(presented_us, &line_);
    line_.append(", \"code\": \"");
    record::AppendJsonEscaped(e.code, &line_);
    line_.append("\", \"data\": \"");
    record::AppendJsonEscaped(e.data, &line_);
    line_.append("\"}\n");
    return out_->Append(line_);
  }
  Status End() override { return out_->Flush(); }

 private:
  record::ByteSink* out_;
  std::string line_;
};

class CastOutput : public Output {
 public:
  CastOutput(record::ByteSink* out, bool times_changed, bool limit_given)
      : out_(out), times_changed_(times_changed), limit_given_(limit_given) {}
  Status Begin(const CastHeader& header) override {
    nlohmann::ordered_json h;
    try {
      h = nlohmann::ordered_json::parse(header.line);
    } catch (const nlohmann::json::exception&) {
      return Internal("header changed under the reader");
    }
    h.erase("mezite_encryption");  // The events written are plain.
    if (times_changed_ || header.idle_time_limit_us.has_value()) {
      h.erase("duration");
    }
    if (limit_given_) h.erase("idle_time_limit");
    line_ = h.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line_ += '\n';
    return out_->Append(line_);
  }
  Status Emit(int64_t presented_us, const Event& e) override {
    line_.assign("[");
    record::AppendSeconds(presented_us, &line_);
    line_.append(", \"");
    record::AppendJsonEscaped(e.code, &line_);
    line_.append("\", \"");
    record::AppendJsonEscaped(e.data, &line_);
    line_.append("\"]\n");
    return out_->Append(line_);
  }
  Status End() override { return out_->Flush(); }

 private:
  record::ByteSink* out_;
  bool times_changed_;
  bool limit_given_;
  std::string line_;
};

}  // namespace

std::unique_ptr<Output> NewTextOutput(record::ByteSink* out) {
  return std::make_unique<TextOutput>(out);
}
std::unique_ptr<Output> NewPlainOutput(record::ByteSink* out) {
  return std::make_unique<PlainOutput>(out);
}
std::unique_ptr<Output> NewJsonOutput(record::ByteSink* out) {
  return std::make_unique<JsonOutput>(out);
}
std::unique_ptr<Output> NewCastOutput(record::ByteSink* out, bool times_changed,
                                      bool limit_given) {
  return std::make_unique<CastOutput>(out, times_changed, limit_given);
}

Status RunBatch(RecordingSource* source, const BatchOptions& options,
                Output* out) {
  CastHeader header;
  MEZ_ASSIGN_OR_RETURN(auto reader,
                       OpenEvents(source, &header, options.read_size));
  MEZ_RETURN_IF_ERROR(out->Begin(header));
  Timeline timeline(
      EffectiveIdleLimit(options.idle_cap_us, header.idle_time_limit_us));
  Event event;
  for (;;) {
    MEZ_ASSIGN_OR_RETURN(bool got, reader->Next(&event));
    if (!got) break;
    int64_t at = Present(timeline.Place(event.time_us), options.speed);
    MEZ_RETURN_IF_ERROR(out->Emit(at, event));
  }
  return out->End();
}

FdSink::FdSink(int fd, size_t buffer) : fd_(fd), cap_(buffer) {
  buf_.reserve(cap_);
}

FdSink::~FdSink() { (void)Flush(); }

Status FdSink::Append(std::string_view data) {
  if (buf_.size() + data.size() > cap_) {
    MEZ_RETURN_IF_ERROR(Flush());
    if (data.size() >= cap_) {
      MEZ_RETURN_IF_ERROR(WriteAll(fd_, data));
      written_ += data.size();
      return Status::Ok();
    }
  }
  buf_.append(data);
  return Status::Ok();
}

Status FdSink::Flush() {
  if (buf_.empty()) return Status::Ok();
  Status s = WriteAll(fd_, buf_);
  written_ += buf_.size();
  buf_.clear();
  return s;
}

}  // namespace mez::play
