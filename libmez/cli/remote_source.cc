#include "libmez/cli/remote_source.h"

#include <chrono>
#include <mutex>

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
    Update(info);
  }

  Result<std::unique_ptr<record::ByteSource>> Open(uint64_t offset) override {
    // The stream opened to check access serves the first read from 0.
    if (offset == 0 && first_) return std::move(first_);
    auto tracked = std::make_unique<Tracked>(this);
    MEZ_ASSIGN_OR_RETURN(tracked->inner,
                         client_->ReadRecording(id_, offset, &tracked->info));
    return std::unique_ptr<record::ByteSource>(std::move(tracked));
  }
  std::optional<uint64_t> size() override { return std::nullopt; }
  Result<std::optional<std::string>> StoredSeekIndex() override {
    // The client is thread-safe. Bounded in time: quitting the player
    // waits for this call.
    return client_->ReadSeekIndex(id_, std::chrono::seconds(10));
  }
  Result<std::unique_ptr<record::ByteSource>> EventLines() override {
    return client_->ReadEvents(id_);
  }
  play::SessionMeta meta() override {
    std::lock_guard<std::mutex> lock(mu_);
    return meta_;
  }

 private:
  // A stream that tells the source what the server said about the session
  // when it opened (whether it is still being recorded). Streams may be
  // read on another thread (the seek index).
  class Tracked : public record::ByteSource {
   public:
    explicit Tracked(RemoteSource* owner) : owner_(owner) {}
    Result<size_t> Read(char* buf, size_t n) override {
      auto r = inner->Read(buf, n);
      if (!reported_ && !info.id().empty()) {
        owner_->Update(info);
        reported_ = true;
      }
      return r;
    }
    mezite::v1::SessionInfo info;
    std::unique_ptr<record::ByteSource> inner;

   private:
    RemoteSource* owner_;
    bool reported_ = false;
  };

  void Update(const mezite::v1::SessionInfo& info) {
    std::lock_guard<std::mutex> lock(mu_);
    meta_.id = info.id();
    meta_.user = info.user();
    meta_.node = info.node();
    meta_.live = info.status() == "recording";
    if (info.ended_us() > info.started_us() && info.started_us() > 0) {
      meta_.duration_us = info.ended_us() - info.started_us();
    }
  }

  std::unique_ptr<rpc::ClusterClient> client_;
  std::string id_;
  std::unique_ptr<record::ByteSource> first_;
  std::mutex mu_;
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
