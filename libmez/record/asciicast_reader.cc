#include "libmez/record/asciicast_reader.h"

#include <zlib.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "libmez/record/asciicast_writer.h"
#include "libmez/util/encoding.h"

namespace mez::record {
namespace {

using nlohmann::json;

// Parses a line as JSON without throwing.
bool ParseJson(const std::string& line, json* out, std::string* error) {
  try {
    *out = json::parse(line);
    return true;
  } catch (const json::exception& e) {
    *error = e.what();
    return false;
  }
}

Result<int> SizeField(const json& h, const char* key) {
  auto it = h.find(key);
  if (it == h.end()) {
    return DataLoss(std::string("header has no '") + key + "'");
  }
  if (!it->is_number_integer() || it->get<int64_t>() < 1 ||
      it->get<int64_t>() > 65535) {
    return DataLoss(std::string("header '") + key +
                    "' must be an integer in 1..65535");
  }
  return static_cast<int>(it->get<int64_t>());
}

std::string OptString(const json& h, const char* key) {
  auto it = h.find(key);
  if (it == h.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

// A decompressed event larger than this is refused (a deflate bomb).
constexpr size_t kMaxEventBytes = 64 << 20;

}  // namespace

struct AsciicastReader::Inflater {
  z_stream zs{};
  ~Inflater() { inflateEnd(&zs); }
};

AsciicastReader::AsciicastReader(std::unique_ptr<ByteSource> src)
    : src_(std::move(src)), lines_(src_.get()) {}

AsciicastReader::~AsciicastReader() = default;

Result<std::string> AsciicastReader::Inflate(std::string_view compressed) {
  std::string in(compressed);
  in.append("\0\0\xff\xff", 4);  // The sync marker the writer left out.
  z_stream& zs = inflater_->zs;
  zs.next_in = reinterpret_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  std::string out;
  char buf[65536];
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    int rc = inflate(&zs, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      return LineError("compressed payload is corrupt");
    }
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (out.size() > kMaxEventBytes) return LineError("event is too large");
    if (zs.avail_out != 0) break;  // All output for this input is out.
  }
  if (zs.avail_in != 0) return LineError("compressed payload is corrupt");
  return out;
}

Result<std::unique_ptr<AsciicastReader>> AsciicastReader::OpenFile(
    const std::string& path, std::optional<std::string> key) {
  MEZ_ASSIGN_OR_RETURN(auto src, OpenRecording(path));
  auto r = Open(std::move(src), std::move(key));
  if (!r.ok()) return r.status().WithContext(path);
  return r;
}

Result<std::unique_ptr<AsciicastReader>> AsciicastReader::Open(
    std::unique_ptr<ByteSource> src, std::optional<std::string> key) {
  std::unique_ptr<AsciicastReader> r(new AsciicastReader(std::move(src)));
  std::string line;
  bool complete = false;
  MEZ_ASSIGN_OR_RETURN(bool got, r->lines_.Next(&line, &complete, 1 << 20));
  if (!got) return DataLoss("empty file: no asciicast header");
  json h;
  std::string error;
  if (!ParseJson(line, &h, &error) || !h.is_object()) {
    return DataLoss("line 1: not an asciicast header (expected a JSON object)");
  }
  auto version = h.find("version");
  if (version == h.end() || !version->is_number_integer() || *version != 2) {
    return DataLoss("line 1: unsupported asciicast version (only v2 is read)");
  }
  auto width = SizeField(h, "width");
  if (!width.ok()) return width.status().WithContext("line 1");
  auto height = SizeField(h, "height");
  if (!height.ok()) return height.status().WithContext("line 1");
  AsciicastInfo& info = r->info_;
  info.width = *width;
  info.height = *height;
  // An optional Unix time; a float or an out-of-range value (untrusted
  // input) is ignored rather than converted (that would be undefined).
  if (auto ts = h.find("timestamp");
      ts != h.end() && ts->is_number_integer() && !ts->is_number_unsigned()) {
    info.timestamp = ts->get<int64_t>();
  } else if (ts != h.end() && ts->is_number_unsigned() &&
             ts->get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX)) {
    info.timestamp = static_cast<int64_t>(ts->get<uint64_t>());
  }
  info.command = OptString(h, "command");
  info.title = OptString(h, "title");
  if (auto env = h.find("env"); env != h.end() && env->is_object()) {
    for (const auto& [k, v] : env->items()) {
      if (v.is_string()) info.env[k] = v.get<std::string>();
    }
  }
  if (auto enc = h.find(kEncryptionHeaderKey); enc != h.end()) {
    if (!enc->is_object() || OptString(*enc, "scheme") != kEncryptionScheme) {
      return DataLoss("line 1: unknown encryption scheme");
    }
    info.encrypted = true;
    info.key_id = OptString(*enc, "key_id");
    info.session_id = OptString(*enc, "session_id");
    std::string compression = OptString(*enc, "compression");
    if (!compression.empty() && compression != kChunkCompression) {
      return DataLoss("line 1: unknown compression '" + compression + "'");
    }
    info.chunk_compression = !compression.empty();
    if (key.has_value()) {
      MEZ_ASSIGN_OR_RETURN(r->opener_,
                           ChunkOpener::Create(*key, info.session_id));
      MEZ_RETURN_IF_ERROR(r->opener_->CheckKeyId(info.key_id));
      // The writer seals events in file order, one seq after the other.
      r->opener_->RequireContiguous();
      if (info.chunk_compression) {
        r->inflater_ = std::make_unique<Inflater>();
        if (inflateInit2(&r->inflater_->zs, -15) != Z_OK) {
          return Internal("inflateInit2 failed");
        }
      }
    }
  }
  if (!complete) r->truncated_ = true;
  return r;
}

Status AsciicastReader::LineError(const std::string& what) const {
  return DataLoss("line " + std::to_string(lines_.line_number()) + ": " + what);
}

Result<bool> AsciicastReader::Next(AsciicastEvent* event) {
  if (!failed_.ok()) return failed_;
  auto r = NextUnchecked(event);
  if (!r.ok()) failed_ = r.status();
  return r;
}

Result<bool> AsciicastReader::NextUnchecked(AsciicastEvent* event) {
  while (!done_) {
    std::string line;
    bool complete = false;
    MEZ_ASSIGN_OR_RETURN(bool got, lines_.Next(&line, &complete));
    if (!got) break;
    if (line.empty()) continue;
    auto parsed = ParseEvent(line, event);
    if (!parsed.ok()) {
      if (!complete) {  // A line cut in half by a crash: end quietly.
        truncated_ = true;
        break;
      }
      return parsed.status();
    }
    // A last line that parses although it lacks '\n' ends in ']', so it
    // is whole: only the newline was lost.
    if (*parsed) return true;
  }
  done_ = true;
  if (opener_) MEZ_RETURN_IF_ERROR(opener_->Finish());
  return false;
}

// Returns true for an event to yield, false for a record consumed here.
Result<bool> AsciicastReader::ParseEvent(const std::string& line,
                                         AsciicastEvent* event) {
  json e;
  std::string error;
  if (!ParseJson(line, &e, &error)) return LineError("invalid JSON");
  if (!e.is_array() || e.size() != 3 || !e[0].is_number() ||
      !e[1].is_string() || !e[2].is_string()) {
    return LineError("not an event (expected [time, code, data])");
  }
  double t = e[0].get<double>();
  if (!std::isfinite(t) || t < 0 || t > 9.2e12) {
    return LineError("event time out of range");
  }
  int64_t time_us = std::llround(t * 1e6);
  // With a key, the opener judges order first: it names reordering and
  // appending more precisely than a time check can.
  if (time_us < last_time_us_ && !opener_) {
    return LineError("event time goes backwards");
  }
  event->time_us = time_us;
  event->code = e[1].get<std::string>();
  event->data = e[2].get<std::string>();
  if (!opener_) {
    last_time_us_ = time_us;
    return true;
  }
  auto sealed = Base64Decode(event->data);
  if (!sealed.ok()) return LineError("sealed data is not base64");
  if (event->code == kFinalEventCode) {
    final_seen_ = true;
    Status s = opener_->OpenFinal(time_us, *sealed);
    if (!s.ok())
      return s.WithContext("line " + std::to_string(lines_.line_number()));
    return false;
  }
  if (event->code.size() != 1) return LineError("unknown event code");
  ChunkInfo info{time_us, static_cast<uint8_t>(event->code[0]), {}};
  auto plain = opener_->Open(info, *sealed);
  if (!plain.ok()) {
    return plain.status().WithContext("line " +
                                      std::to_string(lines_.line_number()));
  }
  if (inflater_) {
    MEZ_ASSIGN_OR_RETURN(event->data, Inflate(*plain));
  } else {
    event->data = std::move(plain).value();
  }
  if (time_us < last_time_us_) return LineError("event time goes backwards");
  last_time_us_ = time_us;
  return true;
}

}  // namespace mez::record
