// Incremental UTF-8 sanitizing for terminal byte streams, with optional JSON
// string escaping in the same pass.
//
// Terminal output arrives in chunks that split multibyte sequences anywhere.
// Utf8Stream keeps an incomplete trailing sequence until the next chunk, and
// replaces invalid bytes with U+FFFD, one per maximal invalid subpart (the
// Unicode "substitution of maximal subparts" practice used by browsers and
// Python). Its output is always valid UTF-8, never holding a surrogate.
#ifndef MEZ_RECORD_UTF8_H_
#define MEZ_RECORD_UTF8_H_

#include <string>
#include <string_view>

namespace mez::record {

class Utf8Stream {
 public:
  enum class Mode {
    kRaw,   // Output valid UTF-8 as is.
    kJson,  // Output the body of a JSON string: every byte 0x00-0x1F, DEL,
            // '"' and '\' escaped.
  };
  explicit Utf8Stream(Mode mode) : mode_(mode) {}

  // Appends the sanitized (and maybe escaped) form of `bytes` to `out`,
  // holding back an incomplete sequence at the end.
  void Append(std::string_view bytes, std::string* out);
  // Emits U+FFFD for a held-back incomplete sequence, if any.
  void Finish(std::string* out);
  bool has_pending() const { return carry_len_ > 0; }

 private:
  // Processes p[0, n); returns how many bytes were consumed (the rest is an
  // incomplete sequence, when !final).
  size_t Process(const unsigned char* p, size_t n, bool final,
                 std::string* out);

  Mode mode_;
  unsigned char carry_[4];
  size_t carry_len_ = 0;
};

// Convenience: sanitizes a whole buffer (no carry between calls).
std::string SanitizeUtf8(std::string_view bytes);
// Appends `utf8` as a JSON string body (no quotes). Invalid UTF-8 is
// replaced as by Utf8Stream.
void AppendJsonEscaped(std::string_view bytes, std::string* out);

}  // namespace mez::record

#endif  // MEZ_RECORD_UTF8_H_
