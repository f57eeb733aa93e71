#include "libmez/record/asciicast_writer.h"

#include <zlib.h>

#include <charconv>
#include <nlohmann/json.hpp>

#include "libmez/record/gzip.h"
#include "libmez/util/encoding.h"

namespace mez::record {
namespace {

// Lines are batched and handed to the sink once this much is buffered (or
// on Flush), so small events do not cost a sink call each.
constexpr size_t kSpillBytes = 16 * 1024;

Status ValidateSize(int width, int height, std::string_view what) {
  if (width < 1 || width > 65535 || height < 1 || height > 65535) {
    return InvalidArgument(std::string(what) + " " + std::to_string(width) +
                           "x" + std::to_string(height) +
                           " is out of range (1..65535 each)");
  }
  return Status::Ok();
}

// The per-stream decoder of a direction: stdout, stderr, stdin (the order
// Close flushes them in).
int StreamIndex(Direction d) {
  switch (d) {
    case Direction::kOut:
      return 0;
    case Direction::kErr:
      return 1;
    case Direction::kIn:
      return 2;
  }
  return 0;
}

}  // namespace

struct AsciicastWriter::Deflater {
  z_stream zs{};
  ~Deflater() { deflateEnd(&zs); }
};

const char* CastFileSuffix(const AsciicastOptions& options) {
  return options.gzip && !options.key.has_value() ? ".cast.gz" : ".cast";
}

void AppendSeconds(int64_t micros, std::string* out) {
  if (micros < 0) micros = 0;
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), micros / 1'000'000);
  char* p = r.ptr;
  *p++ = '.';
  int64_t frac = micros % 1'000'000;
  for (int div = 100000; div > 0; div /= 10) {
    *p++ = static_cast<char>('0' + (frac / div) % 10);
  }
  out->append(buf, static_cast<size_t>(p - buf));
}

AsciicastWriter::AsciicastWriter(std::unique_ptr<ByteSink> sink,
                                 AsciicastOptions options)
    : sink_(std::move(sink)), options_(std::move(options)) {
  if (options_.clock == nullptr) options_.clock = RealClock();
  start_mono_us_ = options_.clock->MonotonicMicros();
}

AsciicastWriter::~AsciicastWriter() { (void)Close(); }

Result<std::unique_ptr<AsciicastWriter>> AsciicastWriter::Create(
    std::unique_ptr<ByteSink> sink, const AsciicastHeader& header,
    AsciicastOptions options) {
  MEZ_CHECK(sink != nullptr);
  MEZ_RETURN_IF_ERROR(
      ValidateSize(header.width, header.height, "terminal size"));
  nlohmann::ordered_json h;
  h["version"] = 2;
  h["width"] = header.width;
  h["height"] = header.height;
  if (header.timestamp > 0) h["timestamp"] = header.timestamp;
  // nlohmann refuses invalid UTF-8; user-supplied strings are sanitized.
  if (!header.command.empty()) h["command"] = SanitizeUtf8(header.command);
  if (!header.title.empty()) h["title"] = SanitizeUtf8(header.title);
  nlohmann::ordered_json env = nlohmann::ordered_json::object();
  if (!header.term.empty()) env["TERM"] = SanitizeUtf8(header.term);
  for (const auto& [k, v] : header.env) env[SanitizeUtf8(k)] = SanitizeUtf8(v);
  if (!env.empty()) h["env"] = env;

  if (options.gzip && !options.key.has_value()) {
    GzipOptions gz;
    gz.clock = options.clock;
    MEZ_ASSIGN_OR_RETURN(sink, GzipSink::Create(std::move(sink), gz));
  }
  std::unique_ptr<AsciicastWriter> w(
      new AsciicastWriter(std::move(sink), std::move(options)));
  if (w->options_.key.has_value()) {
    MEZ_ASSIGN_OR_RETURN(
        w->sealer_,
        ChunkSealer::Create(*w->options_.key, w->options_.session_id));
    h[kEncryptionHeaderKey] = {{"scheme", kEncryptionScheme},
                               {"key_id", KeyId(*w->options_.key)},
                               {"session_id", w->options_.session_id}};
    if (w->options_.gzip) {
      w->deflater_ = std::make_unique<Deflater>();
      // Small window, as GzipSink's: one deflate state per live session.
      if (deflateInit2(&w->deflater_->zs, 1, Z_DEFLATED, -13, 6,
                       Z_DEFAULT_STRATEGY) != Z_OK) {
        return Internal("deflateInit2 failed");
      }
      h[kEncryptionHeaderKey]["compression"] = kChunkCompression;
    }
  }
  w->line_buf_ = h.dump();
  w->line_buf_ += '\n';
  MEZ_RETURN_IF_ERROR(w->MaybeSpill());
  return w;
}

int64_t AsciicastWriter::ElapsedMicros() const {
  return options_.clock->MonotonicMicros() - start_mono_us_;
}

int64_t AsciicastWriter::ClampTime(int64_t time_us) {
  if (time_us < last_time_us_) time_us = last_time_us_;
  last_time_us_ = time_us;
  return time_us;
}

Status AsciicastWriter::MaybeSpill() {
  if (line_buf_.size() < kSpillBytes) return Status::Ok();
  Status s = sink_->Append(line_buf_);
  line_buf_.clear();
  return s;
}

// Writes one event. For plain files `text_or_bytes` is already the JSON
// string body when is_text; otherwise (encrypted) it is the raw UTF-8 text
// to seal.
Status AsciicastWriter::Emit(int64_t time_us, char code,
                             std::string_view text_or_bytes, bool is_text) {
  line_buf_ += '[';
  AppendSeconds(time_us, &line_buf_);
  line_buf_ += ", \"";
  line_buf_ += code;
  line_buf_ += "\", \"";
  if (sealer_) {
    sealed_.clear();
    ChunkInfo info{time_us, static_cast<uint8_t>(code), {}};
    if (deflater_) {
      MEZ_RETURN_IF_ERROR(Compress(text_or_bytes, &compressed_));
      text_or_bytes = compressed_;
    }
    MEZ_RETURN_IF_ERROR(sealer_->Seal(info, text_or_bytes, &sealed_));
    Base64EncodeTo(sealed_, &line_buf_);
  } else if (is_text) {
    line_buf_ += text_or_bytes;
  } else {
    AppendJsonEscaped(text_or_bytes, &line_buf_);
  }
  line_buf_ += "\"]\n";
  ++events_;
  return MaybeSpill();
}

// Deflates `plaintext` as the next piece of the continuing raw deflate
// stream and syncs, so the reader can inflate event by event. The sync
// marker 00 00 FF FF that ends every piece is left out; the reader puts it
// back.
Status AsciicastWriter::Compress(std::string_view plaintext, std::string* out) {
  z_stream& zs = deflater_->zs;
  out->resize(deflateBound(&zs, plaintext.size()) + 16);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(plaintext.data()));
  zs.avail_in = static_cast<uInt>(plaintext.size());
  zs.next_out = reinterpret_cast<Bytef*>(out->data());
  zs.avail_out = static_cast<uInt>(out->size());
  int rc = deflate(&zs, Z_SYNC_FLUSH);
  if (rc != Z_OK || zs.avail_in != 0 || zs.avail_out == 0) {
    return Internal("deflate of an event failed");
  }
  out->resize(out->size() - zs.avail_out);
  if (out->size() < 4 ||
      out->compare(out->size() - 4, 4, "\0\0\xff\xff", 4) != 0) {
    return Internal("deflate sync marker missing");
  }
  out->resize(out->size() - 4);
  return Status::Ok();
}

Status AsciicastWriter::Write(int64_t time_us, Direction stream,
                              std::string_view bytes) {
  if (closed_) return FailedPrecondition("write to closed recording");
  if (stream == Direction::kIn && !options_.record_input) {
    return Status::Ok();
  }
  if (options_.translate_newlines && stream != Direction::kIn &&
      bytes.find('\n') != std::string_view::npos) {
    translated_.clear();
    translated_.reserve(bytes.size() + bytes.size() / 8);
    for (char c : bytes) {
      if (c == '\n') translated_.push_back('\r');
      translated_.push_back(c);
    }
    bytes = translated_;
  }
  int idx = StreamIndex(stream);
  char code = stream == Direction::kIn ? 'i' : 'o';
  time_us = ClampTime(time_us);
  scratch_.clear();
  if (sealer_) {
    streams_raw_[idx].Append(bytes, &scratch_);
  } else {
    streams_json_[idx].Append(bytes, &scratch_);
  }
  if (scratch_.empty()) return Status::Ok();  // Only a partial character.
  return Emit(time_us, code, scratch_, /*is_text=*/!sealer_);
}

Status AsciicastWriter::WriteNow(Direction stream, std::string_view bytes) {
  return Write(ElapsedMicros(), stream, bytes);
}

Status AsciicastWriter::Resize(int64_t time_us, int width, int height) {
  if (closed_) return FailedPrecondition("resize of closed recording");
  MEZ_RETURN_IF_ERROR(ValidateSize(width, height, "resize"));
  std::string size = std::to_string(width) + "x" + std::to_string(height);
  return Emit(ClampTime(time_us), 'r', size, /*is_text=*/!sealer_);
}

Status AsciicastWriter::Exit(int64_t time_us, int exit_status) {
  if (closed_) return FailedPrecondition("exit event on closed recording");
  return Emit(ClampTime(time_us), 'x', std::to_string(exit_status),
              /*is_text=*/!sealer_);
}

Status AsciicastWriter::WriteText(int64_t time_us, char code,
                                  std::string_view text) {
  if (closed_) return FailedPrecondition("event on closed recording");
  return Emit(ClampTime(time_us), code, text, /*is_text=*/false);
}

Status AsciicastWriter::Flush() {
  if (closed_) return Status::Ok();
  if (!line_buf_.empty()) {
    MEZ_RETURN_IF_ERROR(sink_->Append(line_buf_));
    line_buf_.clear();
  }
  return sink_->Flush();
}

Status AsciicastWriter::Close() {
  if (closed_) return Status::Ok();
  Status s;
  for (int idx = 0; idx < 3 && s.ok(); ++idx) {
    scratch_.clear();
    if (sealer_) {
      streams_raw_[idx].Finish(&scratch_);
    } else {
      streams_json_[idx].Finish(&scratch_);
    }
    if (scratch_.empty()) continue;
    char code = idx == StreamIndex(Direction::kIn) ? 'i' : 'o';
    s = Emit(last_time_us_, code, scratch_, /*is_text=*/!sealer_);
  }
  if (s.ok() && sealer_) {
    sealed_.clear();
    s = sealer_->SealFinal(last_time_us_, &sealed_);
    if (s.ok()) {
      line_buf_ += '[';
      AppendSeconds(last_time_us_, &line_buf_);
      line_buf_ += ", \"";
      line_buf_ += kFinalEventCode;
      line_buf_ += "\", \"";
      Base64EncodeTo(sealed_, &line_buf_);
      line_buf_ += "\"]\n";
    }
  }
  if (s.ok() && !line_buf_.empty()) s = sink_->Append(line_buf_);
  line_buf_.clear();
  closed_ = true;
  Status c = sink_->Close();
  return s.ok() ? c : s;
}

}  // namespace mez::record
