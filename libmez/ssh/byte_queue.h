// A queue of bytes between a reader and a writer that may take less than
// it is offered: appends go to the back, and consuming from the front
// does not move what is left each time (std::string::erase did, which
// made a partial write of a megabyte cost a megabyte of copying).
#ifndef MEZ_SSH_BYTE_QUEUE_H_
#define MEZ_SSH_BYTE_QUEUE_H_

#include <cstddef>
#include <string>
#include <string_view>

namespace mez::ssh {

class ByteQueue {
 public:
  bool empty() const { return size() == 0; }
  size_t size() const { return buf_.size() - head_; }
  // The unconsumed bytes, size() of them.
  const char* data() const { return buf_.data() + head_; }
  std::string_view view() const { return std::string_view(data(), size()); }

  void append(std::string_view bytes) { buf_.append(bytes); }
  void append(const char* bytes, size_t n) { buf_.append(bytes, n); }
  // Drops the first `n` bytes (n <= size()). The storage is compacted
  // only once the consumed part is the larger half, so that each byte is
  // moved at most about once.
  void consume(size_t n) {
    head_ += n;
    if (head_ >= buf_.size()) {
      clear();
    } else if (head_ >= kCompactAt && head_ * 2 >= buf_.size()) {
      buf_.erase(0, head_);
      head_ = 0;
    }
  }
  void clear() {
    buf_.clear();
    head_ = 0;
  }

 private:
  static constexpr size_t kCompactAt = 64 * 1024;
  std::string buf_;
  size_t head_ = 0;
};

}  // namespace mez::ssh

#endif  // MEZ_SSH_BYTE_QUEUE_H_
