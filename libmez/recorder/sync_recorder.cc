#include "libmez/recorder/sync_recorder.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <map>
#include <thread>
#include <utility>

#include "libmez/spool/limits.h"
#include "libmez/util/log.h"
#include "libmez/util/thread_name.h"

namespace mez::recorder {

SyncRecorder::SyncRecorder(const SyncRecorderOptions& options,
                           const ssh::ChannelInfo& info, std::string session_id)
    : options_(options),
      info_(info),
      session_id_(std::move(session_id)),
      start_micros_(info.start_micros) {
  if (options_.clock == nullptr) options_.clock = RealClock();
}

std::unique_ptr<SyncRecorder> SyncRecorder::Start(
    const SyncRecorderOptions& options, const ssh::ChannelInfo& info) {
  std::unique_ptr<SyncRecorder> r(
      new SyncRecorder(options, info, NewRandomId()));
  // One header for the stream and the copy (same session and connection).
  mezite::v1::RecordFrame header =
      HeaderFrame(info, r->session_id_, options.node,
                  r->options_.clock->WallMicros(), options.enhanced);
  if (options.events != nullptr && info.kind != ChannelKind::kTcpip) {
    r->feed_ = options.events->NewFeed();
  }
  if (!options.spool_dir.empty() && !r->OpenCopy(header)) return r;
  r->client_ =
      std::make_unique<rpc::ClusterClient>(options.channel, options.node_token);
  r->writer_ = r->client_->Record(&r->summary_);
  // The header goes out from here: nothing runs before it is accepted.
  if (!r->writer_->Write(header)) {
    r->closed_ = true;
    Status s = r->writer_->Finish();
    r->MarkBroken(s.ok() ? std::string("stream closed")
                         : "recording service: " + s.message());
    return r;
  }
  r->AwaitAccepted();
  if (!r->broken()) {
    r->accepted_ = true;
    SyncRecorder* self = r.get();
    r->writer_thread_ = std::thread([self] {
      NameThisThread("mez-rec-send");
      self->WriterLoop();
    });
  }
  return r;
}

bool SyncRecorder::OpenCopy(const mezite::v1::RecordFrame& header) {
  copy_path_ = options_.spool_dir + "/" + session_id_ + ".sync";
  // The header, the file header and the end marker.
  uint64_t need = header.ByteSizeLong() + 4 + spool::kSpoolHeaderBytes + 4;
  std::string why;
  if (options_.budget == nullptr || !options_.budget->Reserve(need)) {
    why = "the recording spool is full";
  } else {
    auto w = spool::SpoolWriter::Create(copy_path_, header);
    if (w.ok()) {
      copy_ = std::move(w).value();
      copy_reserved_ = need;
      return true;
    }
    options_.budget->Release(need);
    unlink(copy_path_.c_str());
    why = "cannot write the local copy: " + w.status().message();
  }
  CopyFailed(why);
  return false;
}

std::string SyncRecorder::WriteCopy(
    const std::vector<const mezite::v1::RecordFrame*>& frames) {
  if (!copy_ || copy_stopped_.load()) return "";
  uint64_t need = 0;
  for (const mezite::v1::RecordFrame* f : frames) {
    need += spool::SpoolWriter::RecordBytes(*f);
  }
  std::string why;
  if (!options_.budget->Reserve(need)) {
    why = "the recording spool is full";
  } else if (Status s = copy_->AppendAll(frames); !s.ok()) {
    options_.budget->Release(need);
    why = "cannot write the local copy: " + s.message();
  } else {
    copy_reserved_ += need;
    return "";
  }
  copy_stopped_.store(true);
  return why;
}

std::string SyncRecorder::WriteCopy(const mezite::v1::RecordFrame& frame) {
  if (frame.has_batch()) {
    std::vector<const mezite::v1::RecordFrame*> frames;
    frames.reserve(frame.batch().frames_size());
    for (const auto& f : frame.batch().frames()) frames.push_back(&f);
    return WriteCopy(frames);
  }
  return WriteCopy(std::vector<const mezite::v1::RecordFrame*>{&frame});
}

void SyncRecorder::CopyFailed(const std::string& why) {
  if (copy_failed_) return;
  copy_failed_ = true;
  copy_stopped_.store(true);
  stream_broke_first_ = broken();
  std::string detail = why;
  if (why.find("spool is full") != std::string::npos &&
      options_.budget != nullptr) {
    detail += " (" + std::to_string(options_.budget->used() >> 20) + " of " +
              std::to_string(options_.budget->limit() >> 20) +
              " MiB in use; raise --spool-budget or make mezrecd reachable)";
  }
  MEZ_LOG(kError) << "agent: session " << session_id_ << " of " << info_.key_id
                  << ": " << detail;
  if (options_.on_copy_failed) options_.on_copy_failed(info_, detail);
  // The session ends; the stream, still open, carries what the copy lacks
  // and is closed as usual.
  MarkBroken(detail);
}

void SyncRecorder::SettleCopy() {
  if (!copy_) return;
  bool clean;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    clean = stream_clean_;
  }
  clean = clean && accepted_ && !dropped_ &&
          summary_.session_id() == session_id_ &&
          summary_.bytes() == sent_bytes_;
  // A copy that stopped while the stream went on holds less than the
  // stream: the stream's recording stands.
  bool copy_short = copy_failed_ && !stream_broke_first_;
  if (clean || !accepted_ || copy_short) {
    // mezrecd holds every byte (or the user saw nothing): not needed.
    copy_.reset();
    if (unlink(copy_path_.c_str()) != 0) {
      MEZ_LOG(kError) << "agent: cannot delete " << copy_path_ << ": "
                      << std::strerror(errno);
    }
    options_.budget->Release(copy_reserved_);
    return;
  }
  Status s = copy_->End();
  copy_.reset();
  if (!s.ok()) {
    // Uploaded without its end marker: mezrecd marks it incomplete.
    MEZ_LOG(kError) << "agent: " << s.ToString();
  }
  std::string kept = options_.spool_dir + "/" + session_id_ + ".spool";
  if (rename(copy_path_.c_str(), kept.c_str()) != 0) {
    MEZ_LOG(kError) << "agent: cannot rename " << copy_path_ << " to " << kept
                    << ": " << std::strerror(errno)
                    << " (mezd uploads it at its next start)";
    return;
  }
  MEZ_LOG(kWarning) << "agent: the recording of session " << session_id_
                    << " is incomplete at mezrecd (" << summary_.bytes()
                    << " of " << sent_bytes_
                    << " bytes confirmed); uploading the local copy " << kept;
  if (options_.on_copy_kept) options_.on_copy_kept(kept);
}

void SyncRecorder::AwaitAccepted() {
  // A service that neither answers nor fails is given up on.
  if (writer_->AwaitAccepted(
          std::chrono::microseconds(options_.accept_timeout_us))) {
    return;
  }
  // The call failed (refused header, unreachable, or timed out): say why.
  closed_ = true;
  Status s = writer_->Finish();
  MarkBroken(s.ok() ? std::string("the recording was not accepted")
                    : "recording service: " + s.message());
}

SyncRecorder::~SyncRecorder() {
  Close();
  SettleCopy();
}

std::string SyncRecorder::broken_message() const {
  std::lock_guard<std::mutex> lock(mu_);
  return broken_message_;
}

void SyncRecorder::MarkBroken(const std::string& why) {
  if (broken_.exchange(true)) return;
  std::string message =
      "mezd: session recording failed (" + why + "); ending the session";
  {
    std::lock_guard<std::mutex> lock(mu_);
    broken_message_ = message;
  }
  MEZ_LOG(kWarning) << "agent: recording of session " << session_id_
                    << " broke: " << why;
  if (options_.on_broken) options_.on_broken(message);
}

void SyncRecorder::CheckWriter() {
  if (!writer_failed_.load() || broken()) return;
  std::string why;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    why = writer_error_;
  }
  MarkBroken(why);
}

bool SyncRecorder::Send(mezite::v1::RecordFrame frame, size_t bytes) {
  CheckWriter();
  // A recorder broken only by its local copy streams on until the end.
  bool stream_usable = !broken() || (copy_failed_ && !stream_broke_first_ &&
                                     !writer_failed_.load());
  std::unique_lock<std::mutex> lock(queue_mu_);
  if (writer_done_ || !writer_thread_.joinable()) {
    // No writer (never started, failed or closed): the copy is this
    // thread's now, and what the user sees still goes in it.
    lock.unlock();
    NoteCopyError(WriteCopy(frame));
    if (writer_failed_.load()) CheckWriter();
    return false;
  }
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::microseconds(options_.stall_timeout_us);
  bool queued = stream_usable && !closed_;
  bool stalled = false;
  // A frame larger than the whole queue still goes in, alone.
  while (queued && queued_bytes_ > 0 &&
         queued_bytes_ + bytes > options_.max_queued_bytes && !writer_done_) {
    if (room_cv_.wait_until(lock, deadline) == std::cv_status::timeout &&
        std::chrono::steady_clock::now() >= deadline) {
      queued = false;
      stalled = true;
    }
  }
  if (writer_done_) {
    // The writer failed while this thread waited; it wrote what was
    // queued to the copy.
    lock.unlock();
    NoteCopyError(WriteCopy(frame));
    CheckWriter();
    return false;
  }
  // Not for the stream (broken, or it stalled) but still for the copy:
  // queued all the same, so that the copy keeps the frames' order; the
  // writer sends it or, once the stream failed, writes it to the copy.
  queued_bytes_ += bytes;
  queue_.push_back(
      Queued{std::move(frame), bytes, std::chrono::steady_clock::now()});
  // The writer waits for the first frame, then for enough to merge.
  if (queue_.size() == 1 || queued_bytes_ >= options_.merge_bytes) {
    queue_cv_.notify_one();
  }
  if (!copy_error_.empty() && !copy_error_seen_) {
    copy_error_seen_ = true;
    pending_copy_error_ = copy_error_;
  }
  bool over = !queued && queued_bytes_ > options_.max_queued_bytes;
  lock.unlock();
  if (stalled) {
    writer_->TryCancel();  // Frees the writer thread.
    MarkBroken("the recording service took no data for " +
               std::to_string(options_.stall_timeout_us / 1'000'000) + " s");
  } else if (over) {
    writer_->TryCancel();  // Broken and still full: stop waiting for it.
  }
  return queued;
}

void SyncRecorder::NoteCopyError(const std::string& why) {
  if (!why.empty() && pending_copy_error_.empty() && !copy_failed_) {
    pending_copy_error_ = why;
  }
}

namespace {

// Frames in one batch message at most (each costs a few bytes of framing;
// the server takes messages up to 2 MiB).
constexpr int kMaxBatchFrames = 4096;

// Whether `next` may be appended to the chunk `into`.
bool Mergeable(const mezite::v1::RecordFrame& into,
               const mezite::v1::RecordFrame& next, size_t limit) {
  return into.has_chunk() && next.has_chunk() &&
         into.chunk().direction() == next.chunk().direction() &&
         into.chunk().data().size() + next.chunk().data().size() <= limit;
}

}  // namespace

void SyncRecorder::WriterLoop() {
  const auto linger = std::chrono::microseconds(options_.linger_us);
  const size_t limit = std::min(options_.merge_bytes, spool::kMaxChunkBytes);
  std::unique_lock<std::mutex> lock(queue_mu_);
  for (;;) {
    queue_cv_.wait(lock, [&] { return !queue_.empty() || closing_; });
    if (queue_.empty()) break;  // Closing, and everything is out.
    queue_cv_.wait_until(lock, queue_.front().at + linger, [&] {
      return closing_ || queued_bytes_ >= options_.merge_bytes;
    });
    // Everything queued goes out as one message (a batch when more than
    // one frame is left after merging), up to `limit` bytes of data.
    mezite::v1::RecordBatch batch;
    mezite::v1::RecordFrame* last = nullptr;
    size_t bytes = 0;
    while (!queue_.empty()) {
      Queued& q = queue_.front();
      if (last != nullptr && bytes + q.bytes > limit) break;
      if (last != nullptr && Mergeable(*last, q.frame, limit)) {
        last->mutable_chunk()->mutable_data()->append(q.frame.chunk().data());
      } else if (batch.frames_size() < kMaxBatchFrames) {
        last = batch.add_frames();
        last->Swap(&q.frame);
      } else {
        break;
      }
      bytes += q.bytes;
      queue_.pop_front();
    }
    mezite::v1::RecordFrame frame;
    if (batch.frames_size() == 1) {
      frame.Swap(batch.mutable_frames(0));
    } else {
      frame.mutable_batch()->Swap(&batch);
    }
    // More frames waiting: gRPC may send them together.
    bool more_follow = !queue_.empty();
    lock.unlock();
    // Into the copy before the stream: the copy always holds at least
    // what mezrecd was sent.
    std::string copy_error = WriteCopy(frame);
    bool ok = writer_->Write(frame, more_follow);
    lock.lock();
    if (!copy_error.empty() && copy_error_.empty()) copy_error_ = copy_error;
    queued_bytes_ -= bytes;
    room_cv_.notify_all();
    if (!ok) {
      // The stream is gone; Finish says why.
      lock.unlock();
      Status s = writer_->Finish();
      lock.lock();
      writer_error_ = s.ok() ? std::string("stream closed")
                             : "recording service: " + s.message();
      FlushQueueToCopy();
      writer_failed_.store(true);
      writer_done_ = true;
      room_cv_.notify_all();
      return;
    }
  }
  lock.unlock();
  writer_->WritesDone();
  Status s = writer_->Finish();
  lock.lock();
  if (!s.ok()) {
    writer_error_ = "recording service: " + s.message();
    writer_failed_.store(true);
  }
  stream_clean_ = s.ok();
  writer_done_ = true;
  room_cv_.notify_all();
}

void SyncRecorder::FlushQueueToCopy() {
  // What the user saw and the stream did not take goes in the copy, in
  // order, before the connection's thread may write to it.
  std::vector<const mezite::v1::RecordFrame*> frames;
  frames.reserve(queue_.size());
  for (const Queued& q : queue_) frames.push_back(&q.frame);
  std::string copy_error = WriteCopy(frames);
  if (!copy_error.empty() && copy_error_.empty()) copy_error_ = copy_error;
  queue_.clear();
  queued_bytes_ = 0;
}

void SyncRecorder::Close() {
  if (closed_ || !writer_) return;
  closed_ = true;
  if (!writer_thread_.joinable()) return;
  // Frames the user saw were not streamed: the stream must not end as
  // complete (mezrecd would keep it and refuse the local copy).
  if (dropped_) writer_->TryCancel();
  {
    std::unique_lock<std::mutex> lock(queue_mu_);
    closing_ = true;
    queue_cv_.notify_all();
    // A service that takes nothing more is not waited for forever.
    if (!room_cv_.wait_for(lock,
                           std::chrono::microseconds(options_.stall_timeout_us),
                           [&] { return writer_done_; })) {
      writer_->TryCancel();
    }
  }
  writer_thread_.join();
  CheckWriter();
  TakeCopyError();
}

void SyncRecorder::TakeCopyError() {
  std::string why;
  {
    std::lock_guard<std::mutex> lock(queue_mu_);
    if (!copy_error_.empty() && !copy_error_seen_) {
      copy_error_seen_ = true;
      why = copy_error_;
    }
  }
  if (why.empty()) why.swap(pending_copy_error_);
  pending_copy_error_.clear();
  if (!why.empty()) CopyFailed(why);
}

Status SyncRecorder::TrackProcess(pid_t pid) {
  return feed_ ? feed_->Track(pid) : Status::Ok();
}

void SyncRecorder::EmitEvents(std::vector<std::string> lines) {
  if (lines.empty()) return;
  int64_t offset = options_.clock->MonotonicMicros() - start_micros_;
  for (auto& frame : EventsFrames(std::move(lines), offset)) {
    size_t bytes = frame.ByteSizeLong();
    if (!Send(std::move(frame), bytes)) dropped_ = true;
  }
  if (!pending_copy_error_.empty()) {
    std::string why;
    why.swap(pending_copy_error_);
    CopyFailed(why);
  }
}

void SyncRecorder::OnData(Direction direction, std::string_view bytes,
                          int64_t micros) {
  if (feed_) EmitEvents(feed_->Take());
  Emit(ChunkFrame(direction, bytes, micros - start_micros_), bytes.size());
}

void SyncRecorder::OnResize(int width, int height, int64_t micros) {
  if (width <= 0 || height <= 0) return;  // No size to record.
  Emit(ResizeFrame(width, height, micros - start_micros_), 0);
}

void SyncRecorder::OnExit(int exit_status, int64_t micros) {
  // The events of the channel's last processes before its exit frame.
  if (feed_) EmitEvents(feed_->Finish());
  Emit(ExitFrame(exit_status, micros - start_micros_), 0);
  Close();
  SettleCopy();
}

void SyncRecorder::Emit(mezite::v1::RecordFrame frame, size_t bytes) {
  if (Send(std::move(frame), bytes)) {
    sent_bytes_ += bytes;
  } else {
    dropped_ = true;
  }
  if (!pending_copy_error_.empty()) {
    std::string why;
    why.swap(pending_copy_error_);
    CopyFailed(why);
  }
}

std::string SyncRecorder::EndReason() {
  if (feed_ && !closed_) EmitEvents(feed_->Take());
  CheckWriter();
  if (!broken() && !closed_ && writer_) {
    rpc::ChannelState state = rpc::GetChannelState(*options_.channel, false);
    if (state == rpc::ChannelState::kReady) {
      seen_ready_ = true;
    } else if (state == rpc::ChannelState::kShutdown ||
               state == rpc::ChannelState::kTransientFailure || seen_ready_) {
      MarkBroken("lost the connection to the recording service");
    }
  }
  return broken() ? broken_message() : std::string();
}

ssh::TapFactory MakeSyncTapFactory(SyncRecorderOptions options) {
  std::shared_ptr<void> watcher = rpc::WatchChannel(options.channel);
  return [options = std::move(options), watcher](
             const ssh::ChannelInfo& info) -> std::unique_ptr<ssh::ChannelTap> {
    return SyncRecorder::Start(options, info);
  };
}

}  // namespace mez::recorder
