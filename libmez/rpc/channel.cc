#include "libmez/rpc/channel.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <thread>

namespace mez::rpc {
namespace {

ChannelState FromGrpcState(grpc_connectivity_state s) {
  switch (s) {
    case GRPC_CHANNEL_IDLE:
      return ChannelState::kIdle;
    case GRPC_CHANNEL_CONNECTING:
      return ChannelState::kConnecting;
    case GRPC_CHANNEL_READY:
      return ChannelState::kReady;
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
      return ChannelState::kTransientFailure;
    case GRPC_CHANNEL_SHUTDOWN:
      return ChannelState::kShutdown;
  }
  return ChannelState::kShutdown;
}

// A connectivity watch keeps gRPC polling the transport: without an
// operation in flight, a dead connection is otherwise noticed only by
// gRPC's backup poller (every 5 s).
class ChannelWatcher {
 public:
  explicit ChannelWatcher(std::shared_ptr<grpc::Channel> channel)
      : channel_(std::move(channel)), thread_([this] { Loop(); }) {}
  ~ChannelWatcher() {
    stop_ = true;
    thread_.join();
  }

 private:
  void Loop() {
    while (!stop_) {
      grpc_connectivity_state state = channel_->GetState(false);
      channel_->WaitForStateChange(state, std::chrono::system_clock::now() +
                                              std::chrono::milliseconds(100));
    }
  }
  std::shared_ptr<grpc::Channel> channel_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentialsFor(
    const std::string& ca_pem) {
  if (ca_pem.empty()) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_pem;
  return grpc::SslCredentials(ssl);
}

std::shared_ptr<grpc::Channel> OpenChannel(
    const std::string& addr,
    std::shared_ptr<grpc::ChannelCredentials> credentials,
    size_t max_receive_bytes) {
  grpc::ChannelArguments args;
  if (max_receive_bytes > 0) {
    args.SetMaxReceiveMessageSize(static_cast<int>(max_receive_bytes));
  }
  return grpc::CreateCustomChannel(addr, credentials, args);
}

std::shared_ptr<grpc::Channel> OpenPlaintextChannel(const std::string& addr) {
  return OpenChannel(addr, ChannelCredentialsFor(""));
}

ChannelState GetChannelState(grpc::Channel& channel, bool try_to_connect) {
  return FromGrpcState(channel.GetState(try_to_connect));
}

ChannelState WaitUntilReady(grpc::Channel& channel,
                            std::chrono::milliseconds timeout) {
  grpc_connectivity_state state = channel.GetState(true);
  if (state == GRPC_CHANNEL_IDLE || state == GRPC_CHANNEL_CONNECTING) {
    channel.WaitForConnected(std::chrono::system_clock::now() + timeout);
    state = channel.GetState(false);
  }
  return FromGrpcState(state);
}

std::shared_ptr<void> WatchChannel(std::shared_ptr<grpc::Channel> channel) {
  return std::make_shared<ChannelWatcher>(std::move(channel));
}

}  // namespace mez::rpc
