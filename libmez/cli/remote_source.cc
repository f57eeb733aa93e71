#include "libmez/cli/remote_source.h"

#include "libmez/rpc/client.h"

namespace mez::cli {
namespace {

class RemoteSource : public play::RecordingSource {
 public:
  RemoteSource(std::unique_ptr<rpc::ClusterClient> client, std::string id,
               std::unique_ptr<record::ByteSource> first,
               const mezite::v1::SessionInfo& info)
      : client_(std::move(client)),
        id_(std::move(id)),
        first_(std::move(first)) {
    meta_.id = info.id();
    meta_.user = info.user();
    meta_.node = info.node();
    if (info.ended_us() > info.started_us() && info.started_us() > 0) {
      meta_.duration_us = info.ended_us() - info.started_us();
    }
  }

  Result<std::unique_ptr<record::ByteSource>> Open(uint64_t offset) override {
    // The stream opened to check access serves the first read from 0.
    if (offset == 0 && first_) return std::move(first_);
    return client_->ReadRecording(id_, offset);
  }
  std::optional<uint64_t> size() override { return std::nullopt; }
  play::SessionMeta meta() override { return meta_; }

 private:
  std::unique_ptr<rpc::ClusterClient> client_;
  std::string id_;
  std::unique_ptr<record::ByteSource> first_;
  play::SessionMeta meta_;
};

}  // namespace

Result<std::unique_ptr<play::RecordingSource>> OpenRemoteRecording(
    const std::string& identity_flag, const std::string& id) {
  MEZ_ASSIGN_OR_RETURN(auto identity, rpc::ResolveIdentity(identity_flag));
  MEZ_ASSIGN_OR_RETURN(auto client, rpc::ClusterClient::Connect(identity));
  mezite::v1::SessionInfo info;
  MEZ_ASSIGN_OR_RETURN(auto first, client->ReadRecording(id, 0, &info));
  return std::unique_ptr<play::RecordingSource>(
      new RemoteSource(std::move(client), id, std::move(first), info));
}

}  // namespace mez::cli
