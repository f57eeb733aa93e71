// Player's keyboard: the keys of HandleInput and the go-to prompt.
#include <algorithm>
#include <string>

#include "libmez/play/flags.h"
#include "libmez/play/player.h"

namespace mez::play {
namespace {

// "1:30" and "1:02:03" (as the status line shows times), or what
// ParseStartAt takes ("90", "2m", "50%").
Result<StartAt> ParseGoTo(const std::string& text) {
  if (text.find(':') == std::string::npos) return ParseStartAt(text);
  int64_t seconds = 0;
  size_t parts = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t colon = text.find(':', pos);
    if (colon == std::string::npos) colon = text.size();
    std::string part = text.substr(pos, colon - pos);
    if (part.empty() || part.size() > 6 ||
        part.find_first_not_of("0123456789") != std::string::npos ||
        ++parts > 3) {
      return InvalidArgument("not a time: " + text + " (e.g. 1:30 or 90)");
    }
    seconds = seconds * 60 + std::stoll(part);
    pos = colon + 1;
  }
  StartAt at;
  at.time_us = seconds * 1'000'000;
  return at;
}

}  // namespace

void Player::StartPrompt() {
  prompting_ = true;
  prompt_.clear();
  status_for_prompt_ = !status_on_;
  if (status_for_prompt_) {
    status_on_ = true;  // The prompt needs the status line.
    Redraw();
  }
  status_dirty_ = true;
  last_status_.clear();
}

void Player::EndPrompt() {
  prompting_ = false;
  if (status_for_prompt_) {
    status_on_ = false;
    Redraw();
  }
  status_for_prompt_ = false;
  status_dirty_ = true;
  last_status_.clear();
}

Status Player::PromptKey(const std::string& keys, size_t* i) {
  unsigned char c = static_cast<unsigned char>(keys[*i]);
  ++*i;
  status_dirty_ = true;
  last_status_.clear();
  if (c == '\r' || c == '\n') {
    std::string text = prompt_;
    EndPrompt();
    if (text.empty()) return Status::Ok();
    auto at = ParseGoTo(text);
    if (!at.ok()) {
      notice_ = at.status().message();
      return Status::Ok();
    }
    if (at->percent.has_value()) return SeekToPercent(*at->percent);
    return SeekTo(*at->time_us);
  }
  if (c == 0x1B) {
    // Escape cancels; the rest of a key's sequence (an arrow) goes with it.
    if (*i < keys.size() && (keys[*i] == '[' || keys[*i] == 'O')) {
      size_t j = *i + 1;
      while (j < keys.size() && (keys[j] < 0x40 || keys[j] > 0x7E)) ++j;
      *i = std::min(j + 1, keys.size());
    }
    EndPrompt();
  } else if (c == 0x03 || c == 0x07) {  // Ctrl-C, Ctrl-G.
    EndPrompt();
  } else if (c == 0x7F || c == 0x08) {
    if (!prompt_.empty()) prompt_.pop_back();
  } else if (c > 0x20 && c < 0x7F && prompt_.size() < 32) {
    prompt_.push_back(static_cast<char>(c));
  }
  return Status::Ok();
}

Status Player::HandleInput(std::string_view bytes) {
  // Keys act on what is on screen now: show what fell due first.
  bool busy = false;
  Status emitted = EmitDue(position_us(), &busy);
  MEZ_RETURN_IF_ERROR(DrawFrame());
  MEZ_RETURN_IF_ERROR(emitted);
  pending_keys_.append(bytes);
  size_t i = 0;
  const std::string& k = pending_keys_;
  if (!notice_.empty()) {
    notice_.clear();  // Shown until the next key.
    status_dirty_ = true;
    last_status_.clear();
  }
  while (i < k.size() && !finished_) {
    char c = k[i];
    if (prompting_) {
      MEZ_RETURN_IF_ERROR(PromptKey(k, &i));
      continue;
    }
    if (c == '\033') {
      if (i + 1 >= k.size()) break;  // Wait for the rest.
      if (k[i + 1] != '[' && k[i + 1] != 'O') {
        ++i;  // A lone Escape.
        continue;
      }
      // CSI or SS3: parameters, then a final byte in 0x40..0x7E.
      size_t j = i + 2;
      while (j < k.size() && (k[j] < 0x40 || k[j] > 0x7E)) ++j;
      if (j >= k.size()) break;
      std::string_view params(k.data() + i + 2, j - i - 2);
      if (k[j] == 'C') MEZ_RETURN_IF_ERROR(SeekBy(kSeekStepUs));
      if (k[j] == 'D') MEZ_RETURN_IF_ERROR(SeekBy(-kSeekStepUs));
      bool home =
          k[j] == 'H' || (k[j] == '~' && (params == "1" || params == "7"));
      bool end =
          k[j] == 'F' || (k[j] == '~' && (params == "4" || params == "8"));
      if (home) MEZ_RETURN_IF_ERROR(SeekTo(0));
      if (end) MEZ_RETURN_IF_ERROR(SeekToPercent(100));
      i = j + 1;
      continue;
    }
    int half_rows = std::max(1, ViewRows() / 2);
    int half_cols = std::max(1, options_.term_cols / 2);
    if (c >= '0' && c <= '9') {
      MEZ_RETURN_IF_ERROR(SeekToPercent((c - '0') * 10.0));
      ++i;
      continue;
    }
    switch (c) {
      case 's':
      case 'S':
        ToggleStatusLine();
        break;
      case 'h':
        Pan(0, -half_cols);
        break;
      case 'l':
        Pan(0, half_cols);
        break;
      case 'k':
        Pan(-half_rows, 0);
        break;
      case 'j':
        Pan(half_rows, 0);
        break;
      case 'f':
        Follow();
        break;
      case ']':
      case 'n':
        MEZ_RETURN_IF_ERROR(NextMarker());
        break;
      case '[':
      case 'p':
        MEZ_RETURN_IF_ERROR(PreviousMarker());
        break;
      case 'g':
      case 't':
        StartPrompt();
        break;
      case ' ':
        TogglePause();
        break;
      case '+':
      case '=':
        ChangeSpeed(true);
        break;
      case '-':
      case '_':
        ChangeSpeed(false);
        break;
      case 'q':
      case 'Q':
      case 0x03:  // Ctrl-C: raw mode delivers it as a byte.
        Quit();
        break;
      default:
        break;
    }
    ++i;
  }
  pending_keys_.erase(0, finished_ ? pending_keys_.size() : i);
  return DrawFrame();
}

}  // namespace mez::play
