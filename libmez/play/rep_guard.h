// Keeps REP (CSI Ps b, "repeat the last graphic character") away from
// libvterm. libvterm 0.1.4 loops forever on a REP that follows no
// character of non-zero width (`printf '\e[b'` as a session's first output,
// or after a lone combining mark): a recording could hang `msh play` and
// mezrecd's seek indexer. The guard follows the escape syntax of what goes
// by, remembers the last graphic character, and replaces each REP with that
// character repeated up to the end of the row (what REP does), or drops it
// when there is none. Everything else passes unchanged, in order.
#ifndef MEZ_PLAY_REP_GUARD_H_
#define MEZ_PLAY_REP_GUARD_H_

#include <functional>
#include <string>
#include <string_view>

namespace mez::play {

// REQUIRES: external synchronization.
class RepGuard {
 public:
  // `write` takes the bytes to pass on; `column` returns the cursor column
  // (0-based) once everything written is applied, and `cols` is the row
  // width.
  void Feed(std::string_view in,
            const std::function<void(std::string_view)>& write,
            const std::function<int()>& column, int cols);
  // The terminal was reset: no last character, no sequence under way.
  void Reset();

 private:
  enum class State { kGround, kEsc, kEscInter, kCsi, kCsiSkip, kString };
  void Rep(std::string* out, const std::function<void(std::string_view)>& write,
           const std::function<int()>& column, int cols);

  State state_ = State::kGround;
  std::string csi_;   // A CSI sequence held until its final byte.
  std::string last_;  // UTF-8 of the last graphic character.
};

}  // namespace mez::play

#endif  // MEZ_PLAY_REP_GUARD_H_
