#include "libmez/ingest/ingest.h"

#include <nlohmann/json.hpp>

#include "libmez/ingest/events.h"
#include "libmez/util/log.h"
#include "libmez/util/path.h"
#include "libmez/util/thread_name.h"

namespace mez::ingest {
namespace {

constexpr int64_t kGzipFlushUs = 1'000'000;

Status Invalid(const std::string& m) { return InvalidArgument(m); }

std::string OpenerName(const Caller& caller) {
  return std::string(auth::RoleName(caller.role)) + ":" + caller.name;
}

}  // namespace

struct IngestStream::PcapShare {
  IngestManager::PcapKey key;
  std::string storage_key;
  std::unique_ptr<record::PcapWriter> writer;
  int refs = 0;
  bool ending = false;
  int64_t idle_since_mono_us = 0;
};

// ---------------------------------------------------------------------------
// IngestStream

IngestStream::IngestStream(IngestManager* manager, catalog::Session session)
    : manager_(manager), session_(std::move(session)) {}

IngestStream::~IngestStream() {
  (void)Finish(false);
  manager_->Forget(this);
}

Status IngestStream::Chunk(int64_t offset_us, Direction dir,
                           std::string_view data) {
  if (data.size() > kMaxChunkBytes) {
    return Invalid("chunk of " + std::to_string(data.size()) +
                   " bytes is over the limit of " +
                   std::to_string(kMaxChunkBytes) + " bytes");
  }
  if (offset_us < 0) return Invalid("chunk offset is negative");
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return FailedPrecondition("stream already finished");
  MEZ_RETURN_IF_ERROR(TakeStorageError());
  ++frames_;
  bytes_ += data.size();
  if (cast_) {
    MEZ_RETURN_IF_ERROR(Stored(cast_->Write(offset_us, dir, data)));
    dirty_ = true;
    if (!manager_->opt_.recording.gzip) return Stored(cast_->Flush());
    return Status::Ok();
  }
  if (pcap_) {
    if (dir == Direction::kErr) {
      return Invalid("tcpip streams carry only in and out chunks");
    }
    int64_t wall = session_.started_us + offset_us;
    if (!flow_open_) {
      MEZ_ASSIGN_OR_RETURN(
          flow_, pcap_->writer->OpenFlow(session_.started_us, src_host_,
                                         src_port_, dst_host_, dst_port_));
      flow_open_ = true;
    }
    if ((dir == Direction::kIn && in_shut_) ||
        (dir == Direction::kOut && out_shut_)) {
      return Invalid("data after end of that direction");
    }
    if (data.empty()) {
      // An empty chunk marks the end of that direction (half close).
      (dir == Direction::kIn ? in_shut_ : out_shut_) = true;
      return pcap_->writer->Shutdown(flow_, wall, dir);
    }
    return pcap_->writer->Data(flow_, wall, dir, data);
  }
  return Status::Ok();  // Format "none": counted, not stored.
}

Status IngestStream::Resize(int64_t offset_us, uint32_t width,
                            uint32_t height) {
  if (session_.kind == "tcpip") return Invalid("resize on a tcpip stream");
  if (width < 1 || width > 65535 || height < 1 || height > 65535) {
    return Invalid("resize to " + std::to_string(width) + "x" +
                   std::to_string(height) + " is out of range (1..65535)");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return FailedPrecondition("stream already finished");
  MEZ_RETURN_IF_ERROR(TakeStorageError());
  ++frames_;
  if (!cast_) return Status::Ok();
  MEZ_RETURN_IF_ERROR(Stored(cast_->Resize(offset_us, static_cast<int>(width),
                                           static_cast<int>(height))));
  dirty_ = true;
  return Status::Ok();
}

Status IngestStream::Exit(int64_t offset_us, int32_t status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return FailedPrecondition("stream already finished");
  MEZ_RETURN_IF_ERROR(TakeStorageError());
  ++frames_;
  exit_status_ = status;
  if (cast_) {
    MEZ_RETURN_IF_ERROR(Stored(cast_->Exit(offset_us, status)));
    dirty_ = true;
    return Status::Ok();
  }
  if (pcap_ && !flow_open_ && status != 0 && !failed_open_) {
    // The forwarded connection was refused: SYN answered by RST.
    failed_open_ = true;
    return pcap_->writer->FailedOpen(session_.started_us + offset_us, src_host_,
                                     src_port_, dst_host_, dst_port_);
  }
  return Status::Ok();
}

Status IngestStream::Tick(int64_t now_mono_us) {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_ || !cast_ || !(dirty_ || events_dirty_)) return Status::Ok();
  if (now_mono_us - last_flush_mono_us_ < kGzipFlushUs) return Status::Ok();
  last_flush_mono_us_ = now_mono_us;
  // Kept, not returned: the stream's next frame (or Finish) reports it.
  Status s;
  if (dirty_) s = cast_->Flush();
  dirty_ = false;
  if (s.ok() && events_dirty_ && events_writer_) s = events_writer_->Flush();
  events_dirty_ = false;
  if (!s.ok() && storage_error_.ok()) storage_error_ = s;
  return Status::Ok();
}

Status IngestStream::Stored(Status s) {
  if (s.ok()) return s;
  if (storage_error_.ok()) storage_error_ = s;
  storage_error_returned_ = true;
  return s;
}

Status IngestStream::TakeStorageError() {
  if (!storage_error_.ok()) storage_error_returned_ = true;
  return storage_error_;
}

Status IngestStream::Finish(bool complete, int64_t ended_at_us) {
  Status result;
  int64_t ended_us;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return Status::Ok();
    finished_ = true;
    ended_us =
        ended_at_us > 0 ? ended_at_us : manager_->opt_.clock->WallMicros();
    if (events_writer_) {
      result = events_writer_->Close();
      events_writer_.reset();
    }
    if (cast_) {
      Status closed = cast_->Close();
      if (result.ok()) result = closed;
      cast_.reset();
      // Unless a frame's caller already got (and logged) it, the first
      // error is logged here: once found by Tick, or only now by Close.
      if (!storage_error_returned_) {
        Status first = storage_error_.ok() ? result : storage_error_;
        if (!first.ok()) {
          MEZ_LOG(kError) << "session " << session_.id << ": writing "
                          << manager_->opt_.store->Describe(
                                 session_.storage_key)
                          << ": " << first.ToString();
        }
      }
    }
    if (pcap_ && flow_open_) {
      auto& w = pcap_->writer;
      if (complete) {
        if (!in_shut_) {
          result = w->Shutdown(flow_, ended_us, Direction::kIn);
        }
        if (!out_shut_ && result.ok()) {
          result = w->Shutdown(flow_, ended_us, Direction::kOut);
        }
      } else {
        result = w->Reset(flow_, ended_us, Direction::kOut);
      }
    }
  }
  if (pcap_) {
    manager_->ReleasePcap(pcap_);
    pcap_.reset();
  }
  bool ok = complete && result.ok();
  auto status = ok ? catalog::SessionStatus::kComplete
                   : catalog::SessionStatus::kIncomplete;
  // Retried until stored: a session must not stay `recording` because one
  // catalog write failed.
  (void)manager_->retrier_->FinishSession(session_.id, ended_us, bytes_,
                                          status);
  if (manager_->opt_.on_end) {
    catalog::Session ended = session_;
    ended.ended_us = ended_us;
    ended.bytes = bytes_;
    ended.status = status;
    manager_->opt_.on_end(ended);
  }
  nlohmann::json details = {
      {"duration_us", ended_us - session_.started_us},
      {"bytes", bytes_},
      {"status", std::string(catalog::SessionStatusName(status))},
      {"kind", session_.kind},
      {"login", session_.login},
      {"storage_key", session_.storage_key}};
  if (exit_status_) details["exit_status"] = *exit_status_;
  if (event_lines_ > 0) details["events"] = event_lines_;
  if (!result.ok()) details["error"] = result.message();
  AuditEventsOmitted();
  manager_->Audit("session.end", session_.user, session_.id, session_.node,
                  details.dump());
  return result;
}

// ---------------------------------------------------------------------------
// IngestManager

IngestManager::IngestManager(IngestOptions options) : opt_(std::move(options)) {
  MEZ_CHECK(opt_.store != nullptr && opt_.catalog != nullptr &&
            opt_.verifier != nullptr);
  if (opt_.clock == nullptr) opt_.clock = RealClock();
  catalog::CatalogRetrierOptions r;
  r.catalog = opt_.catalog;
  r.clock = opt_.clock;
  r.start_thread = opt_.retry_thread;
  r.name = "ingest";
  retrier_ = std::make_unique<catalog::CatalogRetrier>(std::move(r));
}

IngestManager::~IngestManager() {
  StopTimer();
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [key, share] : pcaps_) {
    Status s = share->writer->Close();
    if (!s.ok())
      MEZ_LOG(kError) << "closing " << share->storage_key << ": "
                      << s.ToString();
  }
  pcaps_.clear();
}

void IngestManager::Audit(const std::string& type, const std::string& user,
                          const std::string& session_id,
                          const std::string& node, const std::string& details) {
  catalog::AuditEvent e;
  e.time_us = opt_.clock->WallMicros();
  e.type = type;
  e.user = user;
  e.session_id = session_id;
  e.node = node;
  e.details = details;
  // A failure is logged and queued for a retry by the retrier.
  (void)retrier_->AppendAudit(e);
}

void IngestManager::AuditRejected(const Caller& caller,
                                  const std::string& session_id,
                                  const Status& why) {
  nlohmann::json details = {
      {"caller", caller.name},
      {"caller_role", std::string(auth::RoleName(caller.role))},
      {"code", std::string(CodeName(why.code()))},
      // Sanitized: a reason may quote what the caller sent.
      {"reason", record::SanitizeUtf8(why.message())}};
  std::string sid = IsPlainIdentifier(session_id) ? session_id : "";
  Audit("recording.rejected", "", sid, caller.name, details.dump());
}

Result<std::unique_ptr<IngestStream>> IngestManager::Begin(
    const StreamHeader& h, const Caller& caller) {
  MEZ_ASSIGN_OR_RETURN(Checked checked, Check(h, caller));
  const std::string& user = checked.user;
  const std::string& kind_s = checked.kind;

  catalog::Session s;
  s.id = h.session_id;
  s.connection_id = h.connection_id;
  s.user = user;
  s.node = checked.node;
  s.login = h.login;
  s.kind = kind_s;
  s.command = h.command;
  s.started_us = checked.started_us;
  s.status = catalog::SessionStatus::kRecording;
  s.replica = opt_.replica_id;
  const RecordingConfig& rec = opt_.recording;
  std::string format = rec.enabled ? rec.formats.at(kind_s) : "none";
  s.encrypted = format != "none" && rec.encryption_key.has_value();
  record::AsciicastOptions cast_opt;
  cast_opt.gzip = rec.gzip;
  cast_opt.key = rec.encryption_key;
  cast_opt.session_id = s.id;
  cast_opt.record_input = rec.record_input;
  // A channel without a terminal is stored as a terminal would show it.
  cast_opt.translate_newlines = !h.pty.value_or(!h.term.empty());
  cast_opt.clock = opt_.clock;
  if (format == "asciicast") {
    s.format = "asciicast-v2";
    s.storage_key =
        user + "/" + kind_s + "/" + s.id + record::CastFileSuffix(cast_opt);
  } else if (format == "pcap") {
    s.format = "pcap";
  } else {
    s.format = "none";
  }

  std::unique_ptr<IngestStream> stream(new IngestStream(this, s));
  stream->cast_opt_ = cast_opt;
  if (format == "asciicast")
    stream->events_key_ = store::EventsKey(s.storage_key);
  if (kind_s == "tcpip") {
    stream->events_refusal_ =
        "events frames belong to shell and exec channels, not tcpip";
  } else if (caller.role != auth::Role::kNode) {
    stream->events_refusal_ =
        "events frames come only from a node's agent (a " +
        std::string(auth::RoleName(caller.role)) +
        " recording cannot carry them: agentless nodes have no enhanced "
        "recording)";
  }
  stream->src_host_ = h.src_host;
  stream->src_port_ = static_cast<uint16_t>(h.src_port);
  stream->dst_host_ = h.dst_host;
  stream->dst_port_ = static_cast<uint16_t>(h.dst_port);
  if (format == "pcap") {
    // The shared file's key is known only once it is acquired; the
    // session row is created first so a duplicate id touches nothing.
    s.storage_key = user + "/tcpip/" + h.connection_id + "_" + h.dst_host +
                    "_" + std::to_string(h.dst_port) + ".pcap";
  }
  Status created = opt_.catalog->CreateSession(s);
  if (!created.ok()) {
    // The row is not ours (a duplicate id names another stream's session):
    // the stream ends here without finishing, and so without touching it.
    stream->finished_ = true;
    return created;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    streams_[stream.get()] = true;
  }
  // From here on, an error finishes the session as incomplete.
  Status opened;
  if (format == "asciicast") {
    auto sink = opt_.store->Create(s.storage_key);
    if (!sink.ok()) {
      opened = sink.status();
    } else {
      record::AsciicastHeader ah;
      ah.width = kind_s == "shell" ? static_cast<int>(h.width) : 80;
      ah.height = kind_s == "shell" ? static_cast<int>(h.height) : 24;
      ah.timestamp = s.started_us / 1'000'000;
      ah.command = h.command;
      ah.term = h.term;
      auto w = record::AsciicastWriter::Create(std::move(sink).value(), ah,
                                               cast_opt);
      if (w.ok()) {
        stream->cast_ = std::move(w).value();
        opened = stream->cast_->Flush();
      } else {
        opened = w.status();
      }
    }
  } else if (format == "pcap") {
    auto share = AcquirePcap(caller, user, h, &stream->session_);
    if (share.ok()) {
      stream->pcap_ = std::move(share).value();
      if (stream->session_.storage_key != s.storage_key) {
        // ".pcap.gz", or a ".N" name: the row must name the real file.
        opened = opt_.catalog->SetSessionStorageKey(
            s.id, stream->session_.storage_key);
      }
    } else {
      opened = share.status();
    }
  }
  if (!opened.ok()) {
    MEZ_LOG(kError) << "session " << s.id << ": cannot open "
                    << opt_.store->Describe(s.storage_key) << ": "
                    << opened.ToString();
    (void)stream->Finish(false);
    return Status(Code::kUnavailable,
                  "recording storage is unavailable: " + opened.message());
  }
  nlohmann::json details = {{"kind", kind_s},
                            {"login", h.login},
                            {"storage_key", stream->session_.storage_key},
                            {"format", s.format},
                            {"encrypted", s.encrypted},
                            {"caller", caller.name}};
  if (!h.command.empty()) details["command"] = record::SanitizeUtf8(h.command);
  if (h.enhanced && kind_s != "tcpip") {
    details["enhanced_recording"] = *h.enhanced ? "on" : "off";
  }
  Audit("session.start", user, s.id, s.node, details.dump());
  return stream;
}

Result<std::shared_ptr<IngestStream::PcapShare>> IngestManager::AcquirePcap(
    const Caller& caller, const std::string& user, const StreamHeader& h,
    catalog::Session* s) {
  PcapKey key{OpenerName(caller), user, h.connection_id, h.dst_host,
              h.dst_port};
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pcaps_.find(key);
  if (it != pcaps_.end() && !it->second->ending) {
    ++it->second->refs;
    s->storage_key = it->second->storage_key;
    return it->second;
  }
  // A new file; if one of that name exists (an earlier mezrecd run, or a
  // file closed after idling), the next free ".N" name is used.
  std::string stem = user + "/tcpip/" + h.connection_id + "_" + h.dst_host +
                     "_" + std::to_string(h.dst_port);
  const RecordingConfig& rec = opt_.recording;
  bool gzip = rec.gzip && !rec.encryption_key.has_value();
  Result<std::unique_ptr<record::ByteSink>> sink = Status(Code::kInternal, "");
  std::string storage_key;
  for (int n = 0; n < 100; ++n) {
    storage_key = stem + (n == 0 ? "" : "." + std::to_string(n)) + ".pcap" +
                  (gzip ? ".gz" : "");
    sink = opt_.store->Create(storage_key);
    if (sink.ok() || sink.status().code() != Code::kAlreadyExists) break;
  }
  if (!sink.ok()) return sink.status();
  std::unique_ptr<record::ByteSink> out = std::move(sink).value();
  if (gzip) {
    record::GzipOptions gz;
    gz.clock = opt_.clock;
    MEZ_ASSIGN_OR_RETURN(out, record::GzipSink::Create(std::move(out), gz));
  }
  record::PcapWriterOptions popt;
  popt.start_wall_us = opt_.clock->WallMicros();
  if (rec.encryption_key.has_value()) {
    std::string seal_id = storage_key.substr(storage_key.rfind('/') + 1);
    MEZ_ASSIGN_OR_RETURN(
        popt.sealer, record::ChunkSealer::Create(*rec.encryption_key, seal_id));
    popt.session_id = seal_id;
    popt.key_id = record::KeyId(*rec.encryption_key);
  }
  MEZ_ASSIGN_OR_RETURN(
      auto writer, record::PcapWriter::Create(std::move(out), std::move(popt)));
  auto share = std::make_shared<IngestStream::PcapShare>();
  share->key = key;
  share->storage_key = storage_key;
  share->writer = std::move(writer);
  share->refs = 1;
  pcaps_[key] = share;
  s->storage_key = storage_key;
  return share;
}

void IngestManager::ReleasePcap(
    const std::shared_ptr<IngestStream::PcapShare>& share) {
  std::lock_guard<std::mutex> lock(mu_);
  --share->refs;
  share->idle_since_mono_us = opt_.clock->MonotonicMicros();
  if (share->refs == 0 && share->ending) {
    Status s = share->writer->Close();
    if (!s.ok()) MEZ_LOG(kError) << share->storage_key << ": " << s.ToString();
    auto it = pcaps_.find(share->key);
    if (it != pcaps_.end() && it->second == share) pcaps_.erase(it);
  }
}

int IngestManager::EndConnection(const Caller& caller,
                                 const std::string& connection_id) {
  std::string opener = OpenerName(caller);
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (auto it = pcaps_.begin(); it != pcaps_.end();) {
    auto& share = it->second;
    if (std::get<0>(it->first) != opener ||
        std::get<2>(it->first) != connection_id) {
      ++it;
      continue;
    }
    ++n;
    share->ending = true;
    if (share->refs == 0) {
      Status s = share->writer->Close();
      if (!s.ok())
        MEZ_LOG(kError) << share->storage_key << ": " << s.ToString();
      it = pcaps_.erase(it);
    } else {
      ++it;
    }
  }
  return n;
}

void IngestManager::Forget(IngestStream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  streams_.erase(stream);
}

void IngestManager::Tick() {
  std::lock_guard<std::mutex> lock(mu_);
  int64_t now = opt_.clock->MonotonicMicros();
  for (auto& [stream, unused] : streams_) {
    Status s = stream->Tick(now);
    if (!s.ok()) {
      MEZ_LOG(kError) << "flush of session " << stream->session_id() << ": "
                      << s.ToString();
    }
  }
  for (auto it = pcaps_.begin(); it != pcaps_.end();) {
    auto& share = it->second;
    if (share->refs == 0 && now - share->idle_since_mono_us >=
                                opt_.recording.pcap_idle_timeout_us) {
      MEZ_LOG(kInfo) << "closing idle " << share->storage_key;
      Status s = share->writer->Close();
      if (!s.ok())
        MEZ_LOG(kError) << share->storage_key << ": " << s.ToString();
      it = pcaps_.erase(it);
      continue;
    }
    Status s = share->writer->Flush();
    if (!s.ok()) MEZ_LOG(kError) << share->storage_key << ": " << s.ToString();
    ++it;
  }
}

void IngestManager::StartTimer(int64_t period_us) {
  timer_ = std::thread([this, period_us] {
    NameThisThread("mez-ingest-tick");
    std::unique_lock<std::mutex> lock(mu_);
    while (!timer_stop_) {
      timer_cv_.wait_for(lock, std::chrono::microseconds(period_us));
      if (timer_stop_) break;
      lock.unlock();
      Tick();
      lock.lock();
    }
  });
}

void IngestManager::StopTimer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    timer_stop_ = true;
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
}

int IngestManager::open_streams() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(streams_.size());
}

int IngestManager::open_pcaps() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(pcaps_.size());
}

}  // namespace mez::ingest
