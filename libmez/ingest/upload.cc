#include "libmez/ingest/upload.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>

#include "libmez/auth/token.h"
#include "libmez/ingest/events.h"
#include "libmez/ingest/proto_convert.h"
#include "libmez/spool/frame_enums.h"
#include "libmez/spool/spool.h"
#include "libmez/util/clock.h"
#include "libmez/util/file.h"
#include "libmez/util/log.h"
#include "libmez/util/path.h"

namespace mez::ingest {
namespace {

bool IsSha256Hex(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<uint64_t> FileSize(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) return static_cast<uint64_t>(st.st_size);
  if (errno == ENOENT) return NotFound(path);
  return ErrnoStatus("stat " + path, errno);
}

// "<size> <sha256>[ <storage key>]"
struct Marker {
  uint64_t size = 0;
  std::string sha256;
  std::string storage_key;
};

std::optional<Marker> ReadMarker(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return std::nullopt;
  std::istringstream in(*text);
  Marker m;
  if (!(in >> m.size >> m.sha256)) return std::nullopt;
  in >> m.storage_key;
  return m;
}

Status WriteMarker(const std::string& path, const Marker& m) {
  std::string text = std::to_string(m.size) + " " + m.sha256;
  if (!m.storage_key.empty()) text += " " + m.storage_key;
  return AtomicWriteFile(path, text + "\n", 0600);
}

}  // namespace

UploadWriter::~UploadWriter() {
  if (fd_ >= 0) close(fd_);
  manager_->Release(caller_.name + "/" + session_id_);
}

Status UploadWriter::Append(std::string_view data) {
  if (finished_) return FailedPrecondition("upload piece already finished");
  if (data.size() > total_ - size_) {
    return Status(Code::kOutOfRange, "upload of " + session_id_ +
                                         " goes past its announced " +
                                         std::to_string(total_) + " bytes");
  }
  MEZ_RETURN_IF_ERROR(WriteAll(fd_, data));
  size_ += data.size();
  return Status::Ok();
}

Result<UploadState> UploadWriter::Finish() {
  if (finished_) return FailedPrecondition("upload piece already finished");
  finished_ = true;
  if (fsync(fd_) != 0) return ErrnoStatus("fsync upload", errno);
  close(fd_);
  fd_ = -1;
  MEZ_ASSIGN_OR_RETURN(std::string dir, manager_->Dir(caller_));
  std::string base = dir + "/" + session_id_;
  if (size_ < total_) {
    UploadState st;
    st.session_id = session_id_;
    st.received = size_;
    st.total_size = total_;
    st.sha256 = sha256_;
    return st;
  }
  return manager_->Replay(this, base);
}

Result<std::unique_ptr<UploadManager>> UploadManager::New(
    UploadOptions options) {
  if (options.root.empty()) return InvalidArgument("upload root is empty");
  if (mkdir(options.root.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus("create " + options.root, errno);
  }
  return std::unique_ptr<UploadManager>(new UploadManager(std::move(options)));
}

Result<std::string> UploadManager::Dir(const Caller& caller) {
  if (!IsPlainIdentifier(caller.name)) {
    return InvalidArgument("caller name '" + caller.name +
                           "' cannot name an upload directory");
  }
  return SafeMakeDirs(opt_.root, caller.name);
}

Status UploadManager::Validate(const Caller& caller,
                               const std::string& session_id,
                               uint64_t total_size, const std::string& sha256) {
  if (caller.role != auth::Role::kNode && caller.role != auth::Role::kProxy &&
      caller.role != auth::Role::kAdmin) {
    return PermissionDenied("only nodes and proxies upload recordings");
  }
  if (!IsPlainIdentifier(session_id)) {
    return InvalidArgument(
        "session_id must be 1-128 characters of letters, digits, '.', '_', "
        "'-' (not starting with '.' or '-')");
  }
  if (!IsSha256Hex(sha256)) {
    return InvalidArgument("sha256 must be 64 lowercase hex digits");
  }
  if (total_size <= spool::kSpoolHeaderBytes) {
    return InvalidArgument("a spool file is longer than " +
                           std::to_string(total_size) + " bytes");
  }
  if (total_size > opt_.max_bytes) {
    return InvalidArgument("spool of " + std::to_string(total_size) +
                           " bytes is over the limit of " +
                           std::to_string(opt_.max_bytes));
  }
  return Status::Ok();
}

Result<UploadState> UploadManager::GetStatus(const Caller& caller,
                                             const std::string& session_id,
                                             uint64_t total_size,
                                             const std::string& sha256) {
  MEZ_RETURN_IF_ERROR(Validate(caller, session_id, total_size, sha256));
  MEZ_ASSIGN_OR_RETURN(std::string dir, Dir(caller));
  std::string base = dir + "/" + session_id;
  UploadState st;
  st.session_id = session_id;
  st.total_size = total_size;
  st.sha256 = sha256;
  if (auto done = ReadMarker(base + ".done")) {
    st.received = done->size;
    st.total_size = done->size;
    st.sha256 = done->sha256;
    st.storage_key = done->storage_key;
    st.complete = true;
    return st;
  }
  auto meta = ReadMarker(base + ".meta");
  if (meta && meta->size == total_size && meta->sha256 == sha256) {
    auto size = FileSize(base + ".part");
    if (size.ok()) st.received = std::min(*size, total_size);
  }
  return st;
}

Result<std::unique_ptr<UploadWriter>> UploadManager::Begin(
    const Caller& caller, const std::string& session_id, uint64_t total_size,
    const std::string& sha256, uint64_t offset) {
  MEZ_ASSIGN_OR_RETURN(UploadState st,
                       GetStatus(caller, session_id, total_size, sha256));
  if (st.complete) {
    return Status(Code::kAlreadyExists,
                  "session " + session_id + " is already stored");
  }
  if (offset != st.received) {
    return FailedPrecondition(
        "upload of " + session_id + " starts at " + std::to_string(offset) +
        " but the server holds " + std::to_string(st.received) +
        " bytes; resume from there");
  }
  std::string key = caller.name + "/" + session_id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!active_.insert(key).second) {
      return FailedPrecondition("an upload of " + session_id +
                                " is already in progress");
    }
  }
  auto release = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    active_.erase(key);
  };
  auto dir = Dir(caller);
  if (!dir.ok()) {
    release();
    return dir.status();
  }
  std::string base = *dir + "/" + session_id;
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_APPEND;
  if (offset == 0) {
    // A fresh start (or a copy for another size or hash): begin anew.
    flags |= O_TRUNC;
    Status s = WriteMarker(base + ".meta", Marker{total_size, sha256, ""});
    if (!s.ok()) {
      release();
      return s;
    }
  }
  int fd = open((base + ".part").c_str(), flags, 0600);
  if (fd < 0) {
    release();
    return ErrnoStatus("open " + base + ".part", errno);
  }
  return std::unique_ptr<UploadWriter>(new UploadWriter(
      this, caller, session_id, total_size, sha256, fd, offset));
}

void UploadManager::Release(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  active_.erase(key);
}

namespace {

// Every frame after the header, parsed and checked for its kind, without
// side effects: a spool that is malformed anywhere is refused before the
// replay touches anything. Events frames only from a node's shell or exec
// channel, their lines checked as a live stream's are.
Status CheckFrames(spool::SpoolReader* reader,
                   const mezite::v1::RecordHeader& header,
                   const Caller& caller) {
  mezite::v1::RecordFrame frame;
  for (;;) {
    MEZ_ASSIGN_OR_RETURN(bool more, reader->Next(&frame));
    if (!more) return Status::Ok();
    switch (frame.frame_case()) {
      case mezite::v1::RecordFrame::kChunk:
        if (frame.chunk().data().size() > kMaxChunkBytes) {
          return InvalidArgument("a chunk of " +
                                 std::to_string(frame.chunk().data().size()) +
                                 " bytes is over the limit");
        }
        break;
      case mezite::v1::RecordFrame::kResize:
      case mezite::v1::RecordFrame::kExit:
        break;
      case mezite::v1::RecordFrame::kEvents: {
        if (caller.role != auth::Role::kNode) {
          return InvalidArgument(
              "events frames come only from a node's agent, not a " +
              std::string(auth::RoleName(caller.role)));
        }
        if (header.kind() != mezite::v1::SESSION_KIND_SHELL &&
            header.kind() != mezite::v1::SESSION_KIND_EXEC) {
          return InvalidArgument(
              "events frames belong to shell and exec channels only");
        }
        int n = frame.events().lines_size();
        if (static_cast<size_t>(n) > kMaxEventLines) {
          return InvalidArgument("an events frame of " + std::to_string(n) +
                                 " lines is over the limit");
        }
        std::vector<std::string_view> lines(frame.events().lines().begin(),
                                            frame.events().lines().end());
        MEZ_RETURN_IF_ERROR(CheckEventLines(lines, frame.events().offset_us(),
                                            /*started_us=*/0)
                                .status());
        break;
      }
      default:  // The spool holds no second header and no batches.
        return DataLoss(frame.frame_case() ==
                                mezite::v1::RecordFrame::FRAME_NOT_SET
                            ? "an empty frame"
                            : "a header or batch frame after the header");
    }
  }
}

}  // namespace

Result<std::string> UploadManager::CheckHeader(const StreamHeader& h,
                                               const Caller& caller) {
  if (opt_.verifier == nullptr) {
    return FailedPrecondition(
        "this server cannot verify user tokens for uploads");
  }
  // Every check of a live stream's header (the grant, the node from the
  // caller's credential, the start, the fields), with no side effects.
  MEZ_RETURN_IF_ERROR(opt_.ingest->CheckHeader(h, caller));
  // The grant verified there; read its user again to compare owners.
  int64_t now_us =
      (opt_.clock != nullptr ? opt_.clock : RealClock())->WallMicros();
  int64_t at_us = h.verify_token_at_us > 0 ? h.verify_token_at_us : now_us;
  auto claims = opt_.verifier->Verify(h.user_token, at_us / 1'000'000);
  if (!claims.ok()) {
    return Status(Code::kUnauthenticated,
                  "user_token: " + claims.status().message());
  }
  return claims->subject;
}

Result<UploadState> UploadManager::Replay(UploadWriter* w,
                                          const std::string& base) {
  const std::string part = base + ".part";
  MEZ_ASSIGN_OR_RETURN(std::string sha, spool::FileSha256(part));
  if (sha != w->sha256_) {
    unlink(part.c_str());
    unlink((base + ".meta").c_str());
    return DataLoss("the uploaded copy of " + w->session_id_ + " has SHA-256 " +
                    sha + ", not the announced " + w->sha256_ +
                    "; upload it again from the start");
  }
  const Caller& caller = w->caller_;
  // A spool refused for good is kept aside for an operator.
  auto reject = [&](const Status& why) -> Status {
    rename(part.c_str(), (base + ".bad").c_str());
    unlink((base + ".meta").c_str());
    MEZ_LOG(kWarning) << "upload " << w->session_id_ << " from " << caller.name
                      << " refused: " << why.message() << " (kept as " << base
                      << ".bad)";
    if (why.code() == Code::kPermissionDenied ||
        why.code() == Code::kUnauthenticated) {
      opt_.ingest->AuditRejected(caller, w->session_id_, why);
    }
    return InvalidArgument("spool of " + w->session_id_ +
                           " refused: " + why.message());
  };
  // The whole spool must parse before anything else happens.
  {
    auto check = spool::SpoolReader::Open(part);
    if (!check.ok()) return reject(check.status());
    mezite::v1::RecordFrame header;
    auto first = (*check)->Next(&header);
    if (!first.ok()) return reject(first.status());
    if (!*first) return reject(DataLoss("the spool holds no header frame"));
    Status frames = CheckFrames(check->get(), header.header(), caller);
    if (!frames.ok()) return reject(frames);
  }
  auto reader = spool::SpoolReader::Open(part);
  if (!reader.ok()) return reader.status();
  mezite::v1::RecordFrame frame;
  auto first = (*reader)->Next(&frame);
  if (!first.ok() || !*first) {
    return first.ok() ? DataLoss("the spool changed while it was replayed")
                      : first.status();
  }
  StreamHeader h = HeaderFromProto(frame.header());
  if (h.session_id != w->session_id_) {
    return reject(
        InvalidArgument("its header names session '" + h.session_id + "'"));
  }
  if (h.started_at_us <= 0) {
    return reject(InvalidArgument("its header has no start time"));
  }
  h.verify_token_at_us = h.started_at_us;
  // The recording's node is the caller's credential: a node records only
  // itself. A proxy records the agentless nodes it serves, named in the
  // header (ingest checks that name).
  if (caller.role == auth::Role::kNode) {
    if (!h.node.empty() && h.node != caller.name) {
      return reject(PermissionDenied("its header names node '" + h.node +
                                     "', but the caller is node '" +
                                     caller.name + "'"));
    }
    h.node = caller.name;
  } else if (h.node.empty()) {
    h.node = caller.name;
  }
  // The session is stored: remember it, drop the copy, answer complete.
  auto stored = [&](const std::string& storage_key) -> Result<UploadState> {
    MEZ_RETURN_IF_ERROR(WriteMarker(
        base + ".done", Marker{w->total_, w->sha256_, storage_key}));
    unlink(part.c_str());
    unlink((base + ".meta").c_str());
    UploadState st;
    st.session_id = h.session_id;
    st.received = st.total_size = w->total_;
    st.sha256 = w->sha256_;
    st.storage_key = storage_key;
    st.complete = true;
    return st;
  };

  // A session of this id exists: the node-sync stream of the same session
  // (cut off, to be completed from the node's local copy), or a replay cut
  // short by a crash. Everything is verified before anything is removed.
  auto existing = opt_.catalog->GetSession(h.session_id);
  if (existing.ok()) {
    if (existing->node != h.node) {
      return reject(PermissionDenied("session " + h.session_id +
                                     " belongs to another node"));
    }
    if (existing->status == catalog::SessionStatus::kRecording) {
      // Live (or its stream has not ended yet): never touched. The node
      // retries later.
      return FailedPrecondition(
          "session " + h.session_id +
          " is still recording at mezrecd; the upload is retried once its "
          "stream has ended");
    }
    auto user = CheckHeader(h, caller);
    if (!user.ok()) {
      Code c = user.status().code();
      if (c == Code::kInvalidArgument || c == Code::kUnauthenticated ||
          c == Code::kPermissionDenied) {
        return reject(user.status());
      }
      return user.status();
    }
    if (*user != existing->user) {
      return reject(PermissionDenied("session " + h.session_id +
                                     " belongs to another user"));
    }
    // CheckHeader refused a kind this build does not know.
    std::string kind(h.kind ? ChannelKindName(*h.kind) : "unknown");
    if (existing->kind != kind) {
      return reject(InvalidArgument("session " + h.session_id + " is a " +
                                    existing->kind + " session, not " + kind));
    }
    // A complete recording is never replaced.
    if (existing->status == catalog::SessionStatus::kComplete) {
      return stored(existing->storage_key);
    }
    if (existing->kind != "tcpip" && !existing->storage_key.empty()) {
      Status del = store::DeleteRecording(opt_.store, existing->storage_key);
      if (!del.ok() && del.code() != Code::kNotFound) return del;
    }
    MEZ_RETURN_IF_ERROR(opt_.catalog->DeleteSession(h.session_id));
  } else if (existing.status().code() != Code::kNotFound) {
    return existing.status();
  }

  auto begun = opt_.ingest->Begin(h, caller);
  if (!begun.ok()) {
    Code c = begun.status().code();
    if (c == Code::kInvalidArgument || c == Code::kUnauthenticated ||
        c == Code::kPermissionDenied) {
      return reject(begun.status());
    }
    return begun.status();
  }
  std::unique_ptr<IngestStream> stream = std::move(begun).value();
  int64_t last_us = 0;
  Status s;
  while (s.ok()) {
    auto more = (*reader)->Next(&frame);
    if (!more.ok()) {
      s = more.status();
      break;
    }
    if (!*more) break;
    switch (frame.frame_case()) {
      case mezite::v1::RecordFrame::kChunk:
        last_us = std::max(last_us, frame.chunk().offset_us());
        s = stream->Chunk(frame.chunk().offset_us(),
                          spool::DirectionFromProto(frame.chunk().direction()),
                          frame.chunk().data());
        break;
      case mezite::v1::RecordFrame::kResize:
        last_us = std::max(last_us, frame.resize().offset_us());
        s = stream->Resize(frame.resize().offset_us(), frame.resize().width(),
                           frame.resize().height());
        break;
      case mezite::v1::RecordFrame::kExit:
        last_us = std::max(last_us, frame.exit().offset_us());
        s = stream->Exit(frame.exit().offset_us(), frame.exit().exit_status());
        break;
      case mezite::v1::RecordFrame::kEvents:
        last_us = std::max(last_us, frame.events().offset_us());
        s = EventsFromProto(stream.get(), frame.events());
        break;
      default:
        s = DataLoss("a header or batch frame after the header");
    }
  }
  if (!s.ok()) {
    stream->Finish(false, h.started_at_us + last_us).ok();
    if (s.code() == Code::kInvalidArgument || s.code() == Code::kDataLoss) {
      return reject(s);
    }
    return s;
  }
  bool clean = (*reader)->clean_end();
  std::string storage_key = stream->storage_key();
  MEZ_RETURN_IF_ERROR(stream->Finish(clean, h.started_at_us + last_us));
  return stored(storage_key);
}

}  // namespace mez::ingest
