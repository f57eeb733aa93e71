#include "libmez/play/rep_guard.h"

#include <algorithm>

namespace mez::play {
namespace {

// Longest CSI sequence held; a longer one is garbage and dropped whole.
constexpr size_t kMaxCsi = 256;
// Most repetitions one REP asks for that are honoured.
constexpr long kMaxRep = 65535;

bool IsFinal(unsigned char b) { return b >= 0x40 && b <= 0x7e; }
bool IsStringIntroducer(unsigned char b) {
  return b == ']' || b == 'P' || b == '_' || b == '^' || b == 'X';
}

}  // namespace

void RepGuard::Reset() {
  state_ = State::kGround;
  csi_.clear();
  last_.clear();
}

void RepGuard::Feed(std::string_view in,
                    const std::function<void(std::string_view)>& write,
                    const std::function<int()>& column, int cols) {
  std::string out;
  out.reserve(in.size());
  for (char c : in) {
    unsigned char b = static_cast<unsigned char>(c);
    switch (state_) {
      case State::kGround:
        if (b == 0x1b) {
          state_ = State::kEsc;  // Held: it may start a CSI.
        } else if (b < 0x20 || b == 0x7f) {
          out.push_back(c);
        } else if (b < 0x80 || b >= 0xc0) {
          out.push_back(c);
          last_.assign(1, c);
        } else {
          out.push_back(c);  // A continuation byte.
          if (!last_.empty() && (last_[0] & 0x80) != 0 && last_.size() < 4) {
            last_.push_back(c);
          }
        }
        break;
      case State::kEsc:
        if (b == '[') {
          csi_.assign("\x1b[");
          state_ = State::kCsi;
          break;
        }
        out.push_back('\x1b');
        if (b == 0x1b) break;  // ESC ESC: the second is held in turn.
        out.push_back(c);
        if (b >= 0x20 && b <= 0x2f) {
          state_ = State::kEscInter;
        } else if (IsStringIntroducer(b)) {
          state_ = State::kString;
        } else {
          state_ = State::kGround;
        }
        break;
      case State::kEscInter:
        if (b == 0x1b) {
          state_ = State::kEsc;
        } else {
          out.push_back(c);
          if (!(b >= 0x20 && b <= 0x2f) && b >= 0x20) state_ = State::kGround;
        }
        break;
      case State::kCsi:
        if (b == 0x1b) {
          out += csi_;  // Cut short by a new escape, as libvterm does.
          csi_.clear();
          state_ = State::kEsc;
        } else if (b == 0x18 || b == 0x1a) {
          out += csi_;
          out.push_back(c);
          csi_.clear();
          state_ = State::kGround;
        } else if (IsFinal(b)) {
          csi_.push_back(c);
          if (b == 'b') {
            Rep(&out, write, column, cols);
          } else {
            out += csi_;
          }
          csi_.clear();
          state_ = State::kGround;
        } else {
          csi_.push_back(c);
          if (csi_.size() > kMaxCsi) {
            csi_.clear();
            state_ = State::kCsiSkip;
          }
        }
        break;
      case State::kCsiSkip:
        if (b == 0x1b) {
          state_ = State::kEsc;
        } else if (IsFinal(b) || b == 0x18 || b == 0x1a) {
          state_ = State::kGround;
        }
        break;
      case State::kString:
        if (b == 0x1b) {
          state_ = State::kEsc;  // ST (ESC \), or a new escape.
        } else {
          out.push_back(c);
          if (b == 0x07 || b == 0x18 || b == 0x1a) state_ = State::kGround;
        }
        break;
    }
  }
  if (!out.empty()) write(out);
}

void RepGuard::Rep(std::string* out,
                   const std::function<void(std::string_view)>& write,
                   const std::function<int()>& column, int cols) {
  // csi_ is ESC [ params final. C0 controls inside a CSI are executed as
  // they come; they pass on first.
  std::string params;
  bool plain = true;  // No private marker or intermediate: REP itself.
  for (size_t i = 2; i + 1 < csi_.size(); ++i) {
    unsigned char b = static_cast<unsigned char>(csi_[i]);
    if (b < 0x20) {
      out->push_back(csi_[i]);
    } else if ((b >= '0' && b <= '9') || b == ';' || b == ':') {
      params.push_back(csi_[i]);
    } else {
      plain = false;
    }
  }
  if (!plain) {
    *out += csi_;  // Not REP (e.g. CSI ? Ps b): libvterm ignores it.
    return;
  }
  if (last_.empty()) return;  // Nothing to repeat: dropped.
  long n = 0;
  for (char d : params) {
    if (d < '0' || d > '9') break;
    n = std::min(kMaxRep, n * 10 + (d - '0'));
  }
  if (n == 0) n = 1;
  // REP stops at the end of the row; so do the copies.
  write(*out);
  out->clear();
  long room = std::max(0, cols - column());
  n = std::min(n, std::max(room, 1L));
  std::string copies;
  copies.reserve(static_cast<size_t>(n) * last_.size());
  for (long i = 0; i < n; ++i) copies += last_;
  write(copies);
}

}  // namespace mez::play
