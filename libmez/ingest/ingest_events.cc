// IngestStream's enhanced recording events: the events file beside the
// recording and the audit rows (docs/formats/enhanced-events.md, "Stored
// form").
#include <nlohmann/json.hpp>

#include "libmez/ingest/events.h"
#include "libmez/ingest/ingest.h"
#include "libmez/ingest/proto_convert.h"

namespace mez::ingest {
namespace {

uint64_t AuditRowLimit(const std::string& audit_type) {
  if (audit_type == "session.command") return kMaxCommandAuditRows;
  if (audit_type == "session.network") return kMaxNetworkAuditRows;
  if (audit_type == "session.file") return kMaxFileAuditRows;
  return kMaxLossAuditRows;
}

}  // namespace

// proto_convert.h; here, not in proto_convert.cc, which the spool fuzz
// target builds without the rest of ingest.
Status EventsFromProto(IngestStream* stream,
                       const mezite::v1::RecordEvents& p) {
  if (static_cast<size_t>(p.lines_size()) > kMaxEventLines) {
    return InvalidArgument(
        "an events frame of " + std::to_string(p.lines_size()) +
        " lines is over the limit of " + std::to_string(kMaxEventLines));
  }
  std::vector<std::string_view> lines(p.lines().begin(), p.lines().end());
  return stream->Events(p.offset_us(), lines);
}

Status IngestStream::Events(int64_t offset_us,
                            const std::vector<std::string_view>& lines) {
  if (!events_refusal_.empty()) return InvalidArgument(events_refusal_);
  MEZ_ASSIGN_OR_RETURN(std::vector<CheckedEvent> events,
                       CheckEventLines(lines, offset_us, session_.started_us));
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_) return FailedPrecondition("stream already finished");
    MEZ_RETURN_IF_ERROR(TakeStorageError());
    ++frames_;
    event_lines_ += events.size();
    if (cast_ && !events.empty()) {
      if (!events_writer_) MEZ_RETURN_IF_ERROR(Stored(OpenEventsFile()));
      for (const CheckedEvent& e : events) {
        MEZ_RETURN_IF_ERROR(Stored(
            events_writer_->WriteText(e.offset_us, kEventCode, StoredLine(e))));
      }
      events_dirty_ = true;
      if (!manager_->opt_.recording.gzip) {
        MEZ_RETURN_IF_ERROR(Stored(events_writer_->Flush()));
      }
    }
  }
  AuditEvents(events);
  return Status::Ok();
}

Status IngestStream::OpenEventsFile() {
  MEZ_ASSIGN_OR_RETURN(auto sink, manager_->opt_.store->Create(events_key_));
  record::AsciicastHeader h;
  h.timestamp = session_.started_us / 1'000'000;
  h.title = "mezite enhanced recording events of session " + session_.id;
  record::AsciicastOptions o = cast_opt_;
  // Bound to its own name: the recording's chunks and these never pass
  // for each other.
  o.session_id = session_.id + ".events";
  o.translate_newlines = false;
  MEZ_ASSIGN_OR_RETURN(events_writer_,
                       record::AsciicastWriter::Create(std::move(sink), h, o));
  return events_writer_->Flush();
}

void IngestStream::AuditEvents(const std::vector<CheckedEvent>& events) {
  for (const CheckedEvent& e : events) {
    std::string type = AuditTypeOf(e.type);
    if (type.empty()) continue;
    uint64_t& n = audited_[type];
    if (n >= AuditRowLimit(type)) {
      ++omitted_[type];
      continue;
    }
    ++n;
    manager_->Audit(type, session_.user, session_.id, session_.node,
                    AuditDetailsOf(e).dump());
  }
}

void IngestStream::AuditEventsOmitted() {
  if (omitted_.empty()) return;
  nlohmann::json d = nlohmann::json::object();
  nlohmann::json omitted = nlohmann::json::object();
  nlohmann::json limits = nlohmann::json::object();
  for (const auto& [type, n] : omitted_) {
    omitted[type] = n;
    limits[type] = AuditRowLimit(type);
  }
  d["omitted"] = std::move(omitted);
  d["limits"] = std::move(limits);
  d["events_key"] = events_key_;
  manager_->Audit("session.events_omitted", session_.user, session_.id,
                  session_.node, d.dump());
}

}  // namespace mez::ingest
