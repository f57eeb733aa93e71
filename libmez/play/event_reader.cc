#include "libmez/play/event_reader.h"

#include <charconv>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

namespace mez::play {
namespace {

// Longest line accepted, as AsciicastReader's LineReader.
constexpr size_t kMaxLine = 64 << 20;
constexpr size_t kMaxHeaderLine = 1 << 20;

// Bytes that end a run of literal string bytes: '"', '\\' and controls
// (which JSON forbids unescaped).
struct SpecialTable {
  bool v[256] = {};
  constexpr SpecialTable() {
    for (int i = 0; i < 0x20; ++i) v[i] = true;
    v[static_cast<unsigned char>('"')] = true;
    v[static_cast<unsigned char>('\\')] = true;
  }
};
constexpr SpecialTable kSpecial;

inline bool IsWs(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

inline const char* SkipWs(const char* p, const char* end) {
  while (p < end && IsWs(*p)) ++p;
  return p;
}

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Checks the JSON number grammar; returns the end of the number or nullptr.
const char* ScanNumber(const char* p, const char* end) {
  if (p < end && *p == '-') ++p;
  if (p >= end) return nullptr;
  if (*p == '0') {
    ++p;
  } else if (IsDigit(*p)) {
    while (p < end && IsDigit(*p)) ++p;
  } else {
    return nullptr;
  }
  if (p < end && *p == '.') {
    ++p;
    if (p >= end || !IsDigit(*p)) return nullptr;
    while (p < end && IsDigit(*p)) ++p;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    ++p;
    if (p < end && (*p == '+' || *p == '-')) ++p;
    if (p >= end || !IsDigit(*p)) return nullptr;
    while (p < end && IsDigit(*p)) ++p;
  }
  return p;
}

inline int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Reads 4 hex digits at p; -1 when they are not.
inline int Hex4(const char* p, const char* end) {
  if (end - p < 4) return -1;
  int v = 0;
  for (int i = 0; i < 4; ++i) {
    int h = HexValue(p[i]);
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  char b[4];
  size_t n;
  if (cp < 0x80) {
    b[0] = static_cast<char>(cp);
    n = 1;
  } else if (cp < 0x800) {
    b[0] = static_cast<char>(0xC0 | (cp >> 6));
    b[1] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    b[0] = static_cast<char>(0xE0 | (cp >> 12));
    b[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    b[2] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    b[0] = static_cast<char>(0xF0 | (cp >> 18));
    b[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    b[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    b[3] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 4;
  }
  out->append(b, n);
}

}  // namespace

bool ParseSizeEvent(std::string_view data, int* rows, int* cols) {
  size_t x = data.find('x');
  if (x == std::string_view::npos) return false;
  auto number = [](std::string_view digits, int* out) {
    if (digits.empty() || digits.size() > 5) return false;
    int v = 0;
    for (char d : digits) {
      if (d < '0' || d > '9') return false;
      v = v * 10 + (d - '0');
    }
    if (v < 1 || v > 65535) return false;
    *out = v;
    return true;
  };
  return number(data.substr(0, x), cols) && number(data.substr(x + 1), rows);
}

namespace internal {

const char* UnescapeJsonString(const char* p, const char* end,
                               std::string* out) {
  for (;;) {
    const char* run = p;
    while (p < end && !kSpecial.v[static_cast<unsigned char>(*p)]) ++p;
    if (p > run) out->append(run, static_cast<size_t>(p - run));
    if (p >= end) return nullptr;
    char c = *p++;
    if (c == '"') return p;
    if (c != '\\' || p >= end) return nullptr;  // A raw control character.
    switch (*p++) {
      case '"':
        out->push_back('"');
        break;
      case '\\':
        out->push_back('\\');
        break;
      case '/':
        out->push_back('/');
        break;
      case 'b':
        out->push_back('\b');
        break;
      case 'f':
        out->push_back('\f');
        break;
      case 'n':
        out->push_back('\n');
        break;
      case 'r':
        out->push_back('\r');
        break;
      case 't':
        out->push_back('\t');
        break;
      case 'u': {
        int cp = Hex4(p, end);
        if (cp < 0) return nullptr;
        p += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return nullptr;  // Lone low half.
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (end - p < 6 || p[0] != '\\' || p[1] != 'u') return nullptr;
          int lo = Hex4(p + 2, end);
          if (lo < 0xDC00 || lo > 0xDFFF) return nullptr;
          p += 6;
          uint32_t full = 0x10000 +
                          ((static_cast<uint32_t>(cp) - 0xD800) << 10) +
                          (static_cast<uint32_t>(lo) - 0xDC00);
          AppendUtf8(full, out);
        } else {
          AppendUtf8(static_cast<uint32_t>(cp), out);
        }
        break;
      }
      default:
        return nullptr;
    }
  }
}

bool ParseEventFast(std::string_view line, double* time, std::string* code,
                    std::string* data) {
  const char* p = line.data();
  const char* end = p + line.size();
  p = SkipWs(p, end);
  if (p >= end || *p != '[') return false;
  p = SkipWs(p + 1, end);
  const char* num_end = ScanNumber(p, end);
  if (num_end == nullptr) return false;
  auto [ptr, ec] = std::from_chars(p, num_end, *time);
  if (ec != std::errc() || ptr != num_end) return false;
  p = SkipWs(num_end, end);
  if (p >= end || *p != ',') return false;
  p = SkipWs(p + 1, end);
  if (p >= end || *p != '"') return false;
  code->clear();
  p = UnescapeJsonString(p + 1, end, code);
  if (p == nullptr) return false;
  p = SkipWs(p, end);
  if (p >= end || *p != ',') return false;
  p = SkipWs(p + 1, end);
  if (p >= end || *p != '"') return false;
  data->clear();
  p = UnescapeJsonString(p + 1, end, data);
  if (p == nullptr) return false;
  p = SkipWs(p, end);
  if (p >= end || *p != ']') return false;
  p = SkipWs(p + 1, end);
  return p == end;
}

}  // namespace internal

EventReader::EventReader(std::unique_ptr<record::ByteSource> src,
                         ReadPosition at, size_t read_size)
    : src_(std::move(src)),
      read_size_(read_size == 0 ? 1 : read_size),
      offset_(at.offset),
      line_no_(at.lines_before),
      last_time_us_(at.last_time_us) {}

EventReader::~EventReader() = default;

Status EventReader::LineError(const std::string& what) const {
  return DataLoss("line " + std::to_string(line_no_) + ": " + what);
}

Result<bool> EventReader::NextLine(std::string_view* line, bool* complete) {
  size_t scanned = pos_;  // Bytes before this were searched for '\n'.
  for (;;) {
    if (scanned < end_) {
      const void* nl = std::memchr(buf_.get() + scanned, '\n', end_ - scanned);
      if (nl != nullptr) {
        size_t at =
            static_cast<size_t>(static_cast<const char*>(nl) - buf_.get());
        *line = std::string_view(buf_.get() + pos_, at - pos_);
        pos_ = at + 1;
        *complete = true;
        ++line_no_;
        return true;
      }
      scanned = end_;
    }
    if (end_ - pos_ > kMaxLine) {
      return DataLoss("line " + std::to_string(line_no_ + 1) + " is over " +
                      std::to_string(kMaxLine) + " bytes long");
    }
    if (eof_) {
      if (pos_ == end_) return false;
      *line = std::string_view(buf_.get() + pos_, end_ - pos_);
      pos_ = end_;
      *complete = false;
      ++line_no_;
      return true;
    }
    if (pos_ > 0) {  // Keep the partial line, drop what was consumed.
      std::memmove(buf_.get(), buf_.get() + pos_, end_ - pos_);
      offset_ += pos_;
      end_ -= pos_;
      scanned -= pos_;
      pos_ = 0;
    }
    if (cap_ - end_ < read_size_) {
      size_t cap = std::max(cap_ * 2, end_ + read_size_);
      std::unique_ptr<char[]> bigger(new char[cap]);
      if (end_ > 0) std::memcpy(bigger.get(), buf_.get(), end_);
      buf_ = std::move(bigger);
      cap_ = cap;
    }
    MEZ_ASSIGN_OR_RETURN(size_t n, src_->Read(buf_.get() + end_, read_size_));
    end_ += n;
    bytes_read_ += n;
    if (n == 0) eof_ = true;
  }
}

Result<CastHeader> EventReader::ReadHeader() {
  std::string_view line;
  bool complete = false;
  MEZ_ASSIGN_OR_RETURN(bool got, NextLine(&line, &complete));
  if (!got) return DataLoss("empty file: no asciicast header");
  if (line.size() > kMaxHeaderLine) {
    return DataLoss("line 1: header is over 1 MiB long");
  }
  CastHeader header;
  header.line.assign(line);
  // The record reader owns the header rules; let it judge this line.
  auto checked = record::AsciicastReader::Open(
      std::make_unique<record::StringSource>(header.line + "\n"));
  if (!checked.ok()) return checked.status();
  header.info = (*checked)->info();
  if (header.info.encrypted) {
    return FailedPrecondition(
        "recording is encrypted and its source did not decrypt it");
  }
  try {
    auto h = nlohmann::json::parse(header.line);
    auto limit = h.find("idle_time_limit");
    if (limit != h.end() && limit->is_number()) {
      double v = limit->get<double>();
      // Beyond a year is no limit at all.
      if (std::isfinite(v) && v > 0 && v < 3.2e7) {
        header.idle_time_limit_us = std::llround(v * 1e6);
      }
    }
  } catch (const nlohmann::json::exception&) {
    // Judged valid above; a value of another type is no limit.
  }
  header.events_offset = offset_ + pos_;
  if (!complete) done_ = true;
  return header;
}

Result<bool> EventReader::ParseSlow(std::string_view line, Event* event) {
  nlohmann::json e;
  try {
    e = nlohmann::json::parse(line.begin(), line.end());
  } catch (const nlohmann::json::exception&) {
    return LineError("invalid JSON");
  }
  if (!e.is_array() || e.size() != 3 || !e[0].is_number() ||
      !e[1].is_string() || !e[2].is_string()) {
    return LineError("not an event (expected [time, code, data])");
  }
  double t = e[0].get<double>();
  if (!std::isfinite(t) || t < 0 || t > 9.2e12) {
    return LineError("event time out of range");
  }
  event->time_us = std::llround(t * 1e6);
  event->code = e[1].get<std::string>();
  event->data = e[2].get<std::string>();
  return true;
}

Result<bool> EventReader::Next(Event* event) {
  while (!done_) {
    std::string_view line;
    bool complete = false;
    MEZ_ASSIGN_OR_RETURN(bool got, NextLine(&line, &complete));
    if (!got) break;
    if (line.empty()) continue;
    uint64_t line_offset = offset_ + pos_ - line.size() - (complete ? 1 : 0);
    Status bad;
    double t = 0;
    if (internal::ParseEventFast(line, &t, &event->code, &event->data)) {
      if (!std::isfinite(t) || t < 0 || t > 9.2e12) {
        bad = LineError("event time out of range");
      } else {
        event->time_us = std::llround(t * 1e6);
      }
    } else {
      auto slow = ParseSlow(line, event);
      if (!slow.ok()) bad = slow.status();
    }
    if (bad.ok() && event->time_us < last_time_us_) {
      bad = LineError("event time goes backwards");
    }
    if (!bad.ok()) {
      if (!complete) {  // A line cut in half by a crash: end quietly.
        truncated_ = true;
        partial_at_ = line_offset;
        break;
      }
      return bad;
    }
    event->offset = line_offset;
    event->line = line_no_;
    last_time_us_ = event->time_us;
    return true;
  }
  done_ = true;
  return false;
}

Result<std::unique_ptr<EventReader>> OpenEvents(RecordingSource* source,
                                                CastHeader* header,
                                                size_t read_size) {
  MEZ_ASSIGN_OR_RETURN(auto stream, source->Open(0));
  auto reader = std::make_unique<EventReader>(std::move(stream), ReadPosition{},
                                              read_size);
  MEZ_ASSIGN_OR_RETURN(*header, reader->ReadHeader());
  return reader;
}

}  // namespace mez::play
