// Player's markers: placing them on the timeline as the reader goes past
// them, and the keys that jump between them.
#include <algorithm>
#include <optional>
#include <string>

#include "libmez/play/player.h"

namespace mez::play {

void Player::PlaceMarkers(int64_t from_time, int64_t from_pos, int64_t to_time,
                          int64_t to_pos) {
  const std::vector<Marker>& m = options_.markers;
  // The first marker after from_time (at it, too, at the very start).
  auto first = std::upper_bound(
      m.begin(), m.end(), from_time,
      [](int64_t t, const Marker& marker) { return t < marker.time_us; });
  if (from_time == 0 && from_pos == 0) {
    first = std::lower_bound(
        m.begin(), m.end(), from_time,
        [](const Marker& marker, int64_t t) { return marker.time_us < t; });
  }
  // Within the gap the timeline runs with recording time up to the idle
  // limit, then stands: a marker in a long pause sits where it was cut.
  for (auto it = first; it != m.end() && it->time_us <= to_time; ++it) {
    size_t i = static_cast<size_t>(it - m.begin());
    if (marker_pos_[i].has_value()) continue;
    int64_t into = it->time_us - from_time;
    marker_pos_[i] = from_pos + std::min(into, to_pos - from_pos);
  }
}

Status Player::ReadUntilPlaced(size_t i) {
  if (marker_pos_[i].has_value()) return Status::Ok();
  // Behind the reader but never placed (a seek jumped over it): from the
  // start again.
  if (options_.markers[i].time_us < timeline_.last_time_us()) {
    MEZ_RETURN_IF_ERROR(MoveTo(0));
  }
  size_t bytes = 0;
  for (;;) {
    MEZ_ASSIGN_OR_RETURN(bool have, Peek());
    if (!have || marker_pos_[i].has_value()) break;
    MEZ_RETURN_IF_ERROR(Apply(&bytes));
  }
  return Status::Ok();
}

int Player::CurrentMarker() const {
  int64_t here = position_us();
  for (size_t i = marker_pos_.size(); i-- > 0;) {
    if (marker_pos_[i].has_value() && *marker_pos_[i] <= here) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

Status Player::NextMarker() {
  if (finished_ || options_.markers.empty()) return Status::Ok();
  int64_t here = position_us();
  for (size_t i = 0; i < options_.markers.size(); ++i) {
    // One not placed yet is after the reader, or was jumped over.
    MEZ_RETURN_IF_ERROR(ReadUntilPlaced(i));
    if (!marker_pos_[i].has_value()) break;
    if (*marker_pos_[i] > here) return SeekTo(*marker_pos_[i]);
  }
  // ReadUntilPlaced may have moved the emulator: back to where we were.
  MEZ_RETURN_IF_ERROR(SeekTo(here));
  notice_ = "no command after this point";
  status_dirty_ = true;
  return Status::Ok();
}

Status Player::PreviousMarker() {
  if (finished_ || options_.markers.empty()) return Status::Ok();
  int64_t here = position_us();
  // The position of the command being played, once passed over because
  // it started less than kMarkerBackUs ago.
  std::optional<int64_t> current;
  for (size_t i = options_.markers.size(); i-- > 0;) {
    // Ahead of the reader and not placed: after here, skip it.
    if (!marker_pos_[i].has_value() &&
        options_.markers[i].time_us >= timeline_.last_time_us()) {
      continue;
    }
    MEZ_RETURN_IF_ERROR(ReadUntilPlaced(i));
    if (!marker_pos_[i].has_value() || *marker_pos_[i] > here) continue;
    int64_t pos = *marker_pos_[i];
    if (current.has_value()) {
      if (pos < *current) return SeekTo(pos);
      continue;  // At the same time as the current one.
    }
    if (here - pos > kMarkerBackUs) return SeekTo(pos);
    current = pos;
  }
  return SeekTo(0);
}

}  // namespace mez::play
