#include "libmez/bpf/collapse.h"

namespace mez::bpf {

bool ExtendsRun(const Event& run, const Event& next, uint64_t window_ns) {
  return window_ns != 0 && next.kind == EventKind::kFile &&
         run.kind == EventKind::kFile && next.file_op == "open" &&
         run.file_op == "open" && next.cookie == run.cookie &&
         next.seq == run.seq + run.count && next.count == 1 &&
         next.monotonic_ns >= run.monotonic_ns &&
         next.monotonic_ns - run.monotonic_ns < window_ns &&
         next.pid == run.pid && next.ppid == run.ppid && next.uid == run.uid &&
         next.euid == run.euid && next.path == run.path &&
         next.path_cut == run.path_cut && next.flags == run.flags &&
         next.mode == run.mode && next.error == run.error;
}

void OpenCollapser::Add(const Event& event, const Emit& emit) {
  if (window_ns_ == 0) {
    emit(event);
    return;
  }
  auto it = held_.find(event.cookie);
  if (it != held_.end()) {
    Event& run = it->second;
    if (ExtendsRun(run, event, window_ns_)) {
      ++run.count;
      run.last_time_unix_ns = event.time_unix_ns;
      run.last_monotonic_ns = event.monotonic_ns;
      return;
    }
    emit(run);
    held_.erase(it);
  }
  if (event.kind == EventKind::kFile && event.file_op == "open" &&
      event.count == 1) {
    Event& run = held_[event.cookie];
    run = event;
    run.last_time_unix_ns = event.time_unix_ns;
    run.last_monotonic_ns = event.monotonic_ns;
    return;
  }
  emit(event);
}

void OpenCollapser::Flush(uint64_t cookie, const Emit& emit) {
  auto it = held_.find(cookie);
  if (it == held_.end()) return;
  emit(it->second);
  held_.erase(it);
}

void OpenCollapser::FlushIf(const std::function<bool(uint64_t)>& pred,
                            const Emit& emit) {
  for (auto it = held_.begin(); it != held_.end();) {
    if (pred(it->first)) {
      emit(it->second);
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
}

void OpenCollapser::FlushExpired(uint64_t now_ns, const Emit& emit) {
  FlushIf(
      [&](uint64_t cookie) {
        const Event& run = held_.at(cookie);
        return now_ns >= run.monotonic_ns &&
               now_ns - run.monotonic_ns >= window_ns_;
      },
      emit);
}

std::optional<uint64_t> OpenCollapser::NextDeadline() const {
  std::optional<uint64_t> first;
  for (const auto& [cookie, run] : held_) {
    const uint64_t due = run.monotonic_ns + window_ns_;
    if (!first || due < *first) first = due;
  }
  return first;
}

}  // namespace mez::bpf
