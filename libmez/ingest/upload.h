// Node-mode uploads, independent of gRPC: the pieces of a node's spool file
// (libmez/spool/spool.h) are appended to a partial copy under the upload
// root; when the copy is whole and matches the announced size and SHA-256,
// it is replayed through the IngestManager exactly as a live Record stream
// would have been, and a marker remembers that the session is stored.
//
// Files, per node (the caller) and session:
//   <root>/<node>/<session>.part   the bytes received so far
//   <root>/<node>/<session>.meta   "<size> <sha256>" the part belongs to
//   <root>/<node>/<session>.done   "<size> <sha256> <storage key>" once stored
//   <root>/<node>/<session>.bad    a whole copy that failed to replay
#ifndef MEZ_INGEST_UPLOAD_H_
#define MEZ_INGEST_UPLOAD_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "libmez/ingest/ingest.h"

namespace mez::ingest {

struct UploadState {
  std::string session_id;
  uint64_t received = 0;  // Bytes of the spool file held.
  bool complete = false;  // Stored from a verified copy.
  uint64_t total_size = 0;
  std::string sha256;
  std::string storage_key;
};

struct UploadOptions {
  std::string root;  // Created (0700) if missing.
  IngestManager* ingest = nullptr;
  catalog::Catalog* catalog = nullptr;
  store::BlobStore* store = nullptr;
  // Verifies the user token of an upload that would replace a session
  // (nullptr: such uploads are refused).
  const auth::TokenVerifier* verifier = nullptr;
  Clock* clock = nullptr;            // nullptr: RealClock()
  uint64_t max_bytes = 64ULL << 30;  // Largest spool accepted.
};

class UploadManager;

// One piece of an upload. Not thread-safe; destroy before the manager.
class UploadWriter {
 public:
  ~UploadWriter();
  UploadWriter(const UploadWriter&) = delete;
  UploadWriter& operator=(const UploadWriter&) = delete;

  // kOutOfRange past the announced size.
  Status Append(std::string_view data);
  // Makes the piece durable. When the copy is whole: verifies the hash
  // (kDataLoss and the copy is dropped when it differs) and replays it
  // (kInvalidArgument when the spool is malformed; the copy is kept as
  // .bad). Other errors (disk, catalog) leave the copy for a retry.
  Result<UploadState> Finish();

 private:
  friend class UploadManager;
  UploadWriter(UploadManager* manager, Caller caller, std::string session_id,
               uint64_t total, std::string sha256, int fd, uint64_t size)
      : manager_(manager),
        caller_(std::move(caller)),
        session_id_(std::move(session_id)),
        total_(total),
        sha256_(std::move(sha256)),
        fd_(fd),
        size_(size) {}

  UploadManager* manager_;
  Caller caller_;
  std::string session_id_;
  uint64_t total_;
  std::string sha256_;
  int fd_;
  uint64_t size_;
  bool finished_ = false;
};

// Thread-safe.
class UploadManager {
 public:
  static Result<std::unique_ptr<UploadManager>> New(UploadOptions options);

  // What the server holds of a spool of `total_size` bytes and `sha256`.
  Result<UploadState> GetStatus(const Caller& caller,
                                const std::string& session_id,
                                uint64_t total_size, const std::string& sha256);
  // Starts a piece at `offset`, which must equal what GetStatus reports
  // as received (kFailedPrecondition otherwise, naming both). Only one
  // piece per session at a time (kFailedPrecondition).
  Result<std::unique_ptr<UploadWriter>> Begin(const Caller& caller,
                                              const std::string& session_id,
                                              uint64_t total_size,
                                              const std::string& sha256,
                                              uint64_t offset);

 private:
  friend class UploadWriter;
  explicit UploadManager(UploadOptions options) : opt_(std::move(options)) {}
  Result<std::string> Dir(const Caller& caller);
  Status Validate(const Caller& caller, const std::string& session_id,
                  uint64_t total_size, const std::string& sha256);
  // Every check ingest's Begin runs on `h`, without side effects; the
  // verified user on success.
  Result<std::string> CheckHeader(const StreamHeader& h, const Caller& caller);
  // Verifies the whole copy (hash, every frame, the header as ingest
  // checks it, the node by the caller's credential, and an existing
  // session's node, user, kind and state) before it removes anything, then
  // replays it. An existing session is replaced only when it is the
  // caller's, the same user's and kind, and neither live nor complete.
  Result<UploadState> Replay(UploadWriter* w, const std::string& base);
  void Release(const std::string& key);

  UploadOptions opt_;
  std::mutex mu_;
  std::set<std::string> active_;  // "<node>/<session>" with a live writer
};

}  // namespace mez::ingest

#endif  // MEZ_INGEST_UPLOAD_H_
