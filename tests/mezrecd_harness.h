// Starts a real mezrecd process on loopback for tests, and talks to it over
// real gRPC (TLS by default) with tokens signed by its own key.
#ifndef MEZ_TESTS_MEZRECD_HARNESS_H_
#define MEZ_TESTS_MEZRECD_HARNESS_H_

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "libmez/auth/token.h"
#include "mezite/v1/recording.grpc.pb.h"

namespace mez::testing {

class Mezrecd {
 public:
  // `data_dir` is created by mezrecd. `args` and `env` are added to the
  // defaults (--data-dir, --listen 127.0.0.1:0).
  Mezrecd(std::string data_dir, std::vector<std::string> args = {},
          std::map<std::string, std::string> env = {});
  // Kills the process if it still runs.
  ~Mezrecd();

  // Starts and waits (up to 30 s) for "serving on". False if it exited
  // instead; log() then says why.
  bool Start();
  // SIGTERM and wait; returns the exit status (-1 on timeout, then killed).
  int Stop(int timeout_ms = 30000);
  void Kill9();
  // Waits for exit after the process stopped by itself; returns exit code.
  int Wait(int timeout_ms = 30000);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  std::string log() const;
  const std::string& addr() const { return addr_; }
  const std::string& data_dir() const { return data_dir_; }

  // Tokens signed by this cluster's key. For kUser, kAdmin, kProxy and
  // kNode the identity must exist, as tokens speak for a catalog id: one
  // missing is created through the running mezrecd's admin API (users
  // with login "root", nodes at 127.0.0.1:22) and the token carries its
  // id. Other roles, or when that fails (mezrecd not running, a name the
  // API refuses), get a token without uid, which mezrecd refuses as a
  // bearer token.
  std::string Token(auth::Role role, const std::string& subject,
                    int64_t ttl_seconds = 3600) const;
  // A recording grant (kSession) as SignUserCert puts in a certificate:
  // sub = user, uid = `user`'s id (created as for Token when missing), aud
  // = `node`, logins {"root"}.
  std::string Grant(const std::string& user, const std::string& node,
                    int64_t ttl = 600) const;
  // The catalog id of user (kUser, kAdmin, kProxy) or node (kNode)
  // `name`, creating the identity as Token does; "" when that fails.
  std::string IdentityId(auth::Role role, const std::string& name) const;
  // The token of admin.identity (the bootstrap admin's).
  std::string AdminToken() const;
  // A token with exactly these claims (issuer filled in when empty).
  std::string Sign(auth::Claims claims) const;
  std::unique_ptr<mezite::v1::Recording::Stub> Stub() const;
  std::shared_ptr<grpc::Channel> Channel() const;
  // Registers a node in the catalog (as `mezctl nodes add` does); recording
  // streams are refused for nodes that are not registered. Idempotent.
  // Returns the join token ("" when the node already existed or on error,
  // which `error` then describes).
  std::string RegisterNode(const std::string& name,
                           const std::string& addr = "127.0.0.1:22",
                           std::string* error = nullptr) const;

 private:
  // Signs `claims` with this cluster's key for `ttl_seconds`; "" on error.
  std::string Issue(auth::Claims claims, int64_t ttl_seconds) const;

  std::string data_dir_;
  std::vector<std::string> args_;
  std::map<std::string, std::string> env_;
  std::string log_path_;
  std::string addr_;
  pid_t pid_ = -1;
};

// One Record call: open, send frames, close, get the status and summary.
struct RecordCall {
  grpc::ClientContext ctx;
  mezite::v1::RecordSummary summary;
  std::unique_ptr<grpc::ClientWriter<mezite::v1::RecordFrame>> writer;

  RecordCall(mezite::v1::Recording::Stub* stub, const std::string& token);
  bool Send(const mezite::v1::RecordFrame& f) { return writer->Write(f); }
  grpc::Status Close();
};

mezite::v1::RecordFrame HeaderFrame(const std::string& session_id,
                                    const std::string& user_token,
                                    mezite::v1::SessionKind kind);
mezite::v1::RecordFrame ChunkFrame(int64_t offset_us, mezite::v1::Direction d,
                                   const std::string& data);
mezite::v1::RecordFrame ResizeFrame(int64_t offset_us, int w, int h);
mezite::v1::RecordFrame ExitFrame(int64_t offset_us, int status);

// Every regular file below `root`, relative, with its size.
std::map<std::string, int64_t> ListFiles(const std::string& root);

}  // namespace mez::testing

#endif  // MEZ_TESTS_MEZRECD_HARNESS_H_
