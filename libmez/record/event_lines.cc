#include "libmez/record/event_lines.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

namespace mez::record {
namespace {

class EventLinesSource : public ByteSource {
 public:
  explicit EventLinesSource(std::unique_ptr<ByteSource> src)
      : src_(std::move(src)), lines_(src_.get()) {}

  Result<size_t> Read(char* buf, size_t n) override {
    if (!error_.ok()) return error_;
    while (pos_ == out_.size()) {
      out_.clear();
      pos_ = 0;
      Status s = Fill();
      if (!s.ok()) {
        error_ = s;
        return s;
      }
      if (done_ && out_.empty()) return size_t{0};
    }
    size_t k = std::min(n, out_.size() - pos_);
    std::memcpy(buf, out_.data() + pos_, k);
    pos_ += k;
    return k;
  }

 private:
  // The next 'e' event's data into out_, or done_.
  Status Fill() {
    std::string line;
    bool complete = false;
    for (;;) {
      MEZ_ASSIGN_OR_RETURN(bool more, lines_.Next(&line, &complete));
      if (!more) {
        done_ = true;
        return Status::Ok();
      }
      if (lines_.line_number() == 1) continue;  // The header.
      if (line.empty()) continue;
      auto e = nlohmann::json::parse(line, nullptr, false);
      if (!e.is_array() || e.size() != 3 || !e[1].is_string() ||
          !e[2].is_string()) {
        return DataLoss("events file line " +
                        std::to_string(lines_.line_number()) +
                        " is not an event");
      }
      if (e[1].get<std::string>() != "e") continue;
      out_ = e[2].get<std::string>();
      auto obj = nlohmann::json::parse(out_, nullptr, false);
      if (!obj.is_object()) {
        return DataLoss("events file line " +
                        std::to_string(lines_.line_number()) +
                        " holds no JSON object");
      }
      out_ += '\n';
      return Status::Ok();
    }
  }

  std::unique_ptr<ByteSource> src_;
  LineReader lines_;
  std::string out_;
  size_t pos_ = 0;
  bool done_ = false;
  Status error_;
};

}  // namespace

std::unique_ptr<ByteSource> NewEventLinesSource(
    std::unique_ptr<ByteSource> plain_cast) {
  return std::make_unique<EventLinesSource>(std::move(plain_cast));
}

}  // namespace mez::record
