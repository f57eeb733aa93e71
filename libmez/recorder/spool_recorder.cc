#include "libmez/recorder/spool_recorder.h"

#include <stdio.h>
#include <unistd.h>

#include "libmez/util/log.h"

namespace mez::recorder {

bool SpoolBudget::Reserve(uint64_t bytes) {
  uint64_t used = used_.load();
  do {
    if (used + bytes > limit_) return false;
  } while (!used_.compare_exchange_weak(used, used + bytes));
  return true;
}

void SpoolBudget::Release(uint64_t bytes) {
  uint64_t used = used_.load();
  while (!used_.compare_exchange_weak(used, used >= bytes ? used - bytes : 0)) {
  }
}

std::unique_ptr<SpoolRecorder> SpoolRecorder::Start(
    const SpoolRecorderOptions& options, const ssh::ChannelInfo& info) {
  std::unique_ptr<SpoolRecorder> r(new SpoolRecorder(options, info));
  if (r->options_.clock == nullptr) r->options_.clock = RealClock();
  r->session_id_ = NewRandomId();
  r->part_path_ = options.spool_dir + "/" + r->session_id_ + ".part";
  auto header = HeaderFrame(info, r->session_id_, options.node,
                            r->options_.clock->WallMicros(), options.enhanced);
  if (options.events != nullptr && info.kind != ChannelKind::kTcpip) {
    r->feed_ = options.events->NewFeed();
  }
  // The header, the file header and the end marker.
  uint64_t need = header.ByteSizeLong() + 4 + spool::kSpoolHeaderBytes + 4;
  if (!options.budget->Reserve(need)) {
    r->Break("the recording spool is full");
    return r;
  }
  auto w = spool::SpoolWriter::Create(r->part_path_, header);
  if (!w.ok()) {
    options.budget->Release(need);
    r->Break("cannot write the spool: " + w.status().message());
    return r;
  }
  r->writer_ = std::move(w).value();
  return r;
}

SpoolRecorder::~SpoolRecorder() { Close(); }

void SpoolRecorder::Break(const std::string& why) {
  if (!broken_message_.empty()) return;
  bool full = why.find("spool is full") != std::string::npos;
  std::string detail =
      full ? why + " (" + std::to_string(options_.budget->used() >> 20) +
                 " of " + std::to_string(options_.budget->limit() >> 20) +
                 " MiB waiting for upload; raise --spool-budget or make "
                 "mezrecd reachable)"
           : why;
  broken_message_ =
      "mezd: cannot record this session (" + detail + "); ending the session";
  MEZ_LOG(kError) << "agent: session " << session_id_ << " of " << info_.key_id
                  << ": " << detail;
  if (full && options_.on_full) options_.on_full(info_, detail);
  Close();
}

void SpoolRecorder::Append(const mezite::v1::RecordFrame& frame) {
  if (!writer_ || !broken_message_.empty()) return;
  uint64_t need = frame.ByteSizeLong() + 4;
  if (!options_.budget->Reserve(need)) {
    Break("the recording spool is full");
    return;
  }
  Status s = writer_->Append(frame);
  if (!s.ok()) {
    options_.budget->Release(need);
    Break(s.message());
  }
}

void SpoolRecorder::AppendEvents(std::vector<std::string> lines) {
  if (lines.empty()) return;
  int64_t offset = options_.clock->MonotonicMicros() - info_.start_micros;
  for (const auto& frame : EventsFrames(std::move(lines), offset)) {
    Append(frame);
  }
}

Status SpoolRecorder::TrackProcess(pid_t pid) {
  return feed_ ? feed_->Track(pid) : Status::Ok();
}

std::string SpoolRecorder::EndReason() {
  if (feed_) AppendEvents(feed_->Take());
  return broken_message_;
}

void SpoolRecorder::OnData(Direction direction, std::string_view bytes,
                           int64_t micros) {
  if (feed_) AppendEvents(feed_->Take());
  Append(ChunkFrame(direction, bytes, micros - info_.start_micros));
}

void SpoolRecorder::OnResize(int width, int height, int64_t micros) {
  if (width <= 0 || height <= 0) return;
  Append(ResizeFrame(width, height, micros - info_.start_micros));
}

void SpoolRecorder::OnExit(int exit_status, int64_t micros) {
  // The events of the channel's last processes before its exit frame.
  if (feed_) AppendEvents(feed_->Finish());
  Append(ExitFrame(exit_status, micros - info_.start_micros));
  Close();
}

void SpoolRecorder::Close() {
  if (!writer_) return;
  Status s = writer_->End();
  if (!s.ok()) {
    // Left as .part: the Uploader trims and sends what is there.
    MEZ_LOG(kError) << "agent: " << s.ToString();
    writer_.reset();
    return;
  }
  writer_.reset();
  std::string done = options_.spool_dir + "/" + session_id_ + ".spool";
  if (rename(part_path_.c_str(), done.c_str()) != 0) {
    MEZ_LOG(kError) << "agent: cannot rename " << part_path_ << " to " << done;
    return;
  }
  if (options_.on_closed) options_.on_closed(done);
}

}  // namespace mez::recorder
