// Sends closed node-mode spool files to mezrecd (Recording.Upload) and
// deletes each one only after mezrecd answered that it stored a complete
// copy with the same size and SHA-256.
//
// Uploads resume: before each attempt the uploader asks how much of the
// file the server holds and continues from there, so neither a mezd nor a
// mezrecd restart sends a byte twice. Failures back off per file
// (exponentially, from retry_min to retry_max), so one file that keeps
// failing never holds up the others. A file the server refuses for good
// (malformed) moves to <spool>/rejected/ and is reported.
#ifndef MEZ_RECORDER_UPLOADER_H_
#define MEZ_RECORDER_UPLOADER_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "libmez/recorder/spool_recorder.h"
#include "libmez/rpc/bearer_token.h"
#include "libmez/rpc/channel.h"
#include "libmez/rpc/client.h"
#include "libmez/rpc/client_streams.h"
#include "libmez/util/clock.h"
#include "libmez/util/status.h"
#include "mezite/v1/recording.pb.h"

namespace mez::recorder {

struct UploaderOptions {
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<rpc::BearerToken> node_token;
  std::string spool_dir;
  SpoolBudget* budget = nullptr;  // Credited as files are deleted.
  int64_t retry_min_us = 1'000'000;
  int64_t retry_max_us = 60'000'000;
  // Bytes per second sent, 0 for no limit (keeps a node's uplink usable).
  uint64_t rate_limit = 0;
  // Called with (session id, reason) when the server refuses a file.
  std::function<void(const std::string&, const std::string&)> on_rejected;
  Clock* clock = nullptr;  // nullptr: RealClock()
};

class Uploader {
 public:
  // Trims and closes the .part files a crash left, counts the spool
  // directory into the budget, and starts the upload thread.
  static Result<std::unique_ptr<Uploader>> Start(UploaderOptions options);
  ~Uploader();  // Stop()
  Uploader(const Uploader&) = delete;
  Uploader& operator=(const Uploader&) = delete;

  // A spool file was closed: try it now.
  void Notify();
  // Stops after the current piece (a cut-off piece resumes next time).
  void Stop();
  // Files waiting for upload.
  int pending() const;

 private:
  explicit Uploader(UploaderOptions options)
      : opt_(std::move(options)), client_(opt_.channel, opt_.node_token) {}
  struct FileState {
    uint64_t size = 0;
    std::string sha256;
    int64_t next_try_us = 0;
    int64_t backoff_us = 0;
    std::string last_error;
  };
  void Loop();
  // Ok when the file is stored (and deleted); else why not.
  Status UploadOne(const std::string& session_id, FileState* st);
  Status Send(const std::string& path, const std::string& session_id,
              const FileState& st, uint64_t offset,
              mezite::v1::UploadStatus* reply);
  void Reject(const std::string& session_id, const std::string& why);

  UploaderOptions opt_;
  rpc::ClusterClient client_;
  std::map<std::string, FileState> files_;  // by session id; Loop only
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool notified_ = false;
  int pending_ = 0;
  rpc::UploadStream* current_ = nullptr;  // guarded by mu_
  std::thread thread_;
};

}  // namespace mez::recorder

#endif  // MEZ_RECORDER_UPLOADER_H_
