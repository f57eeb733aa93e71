// The connection to mezrecd that every client in the tree uses (the CLIs,
// mezd, the proxy): one way to build its credentials, one way to open it,
// and what the recorders need to know about its state. The channel is an
// opaque handle outside libmez/rpc/: only rpc includes grpcpp.
#ifndef MEZ_RPC_CHANNEL_H_
#define MEZ_RPC_CHANNEL_H_

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace grpc {
class Channel;
class ChannelCredentials;
}  // namespace grpc

namespace mez::rpc {

// TLS trusting only `ca_pem` (the cluster's TLS CA), or plaintext when
// `ca_pem` is empty. Who may use plaintext is the caller's rule (mezd
// allows it only to loopback: agent/transport.h).
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentialsFor(
    const std::string& ca_pem);

// A channel to `addr` (HOST:PORT) with `credentials`. It connects lazily,
// at the first call or state query that asks to. `max_receive_bytes` 0:
// gRPC's default (4 MiB).
std::shared_ptr<grpc::Channel> OpenChannel(
    const std::string& addr,
    std::shared_ptr<grpc::ChannelCredentials> credentials,
    size_t max_receive_bytes = 0);

// Plaintext (no TLS) channel to `addr`: OpenChannel with
// ChannelCredentialsFor("").
std::shared_ptr<grpc::Channel> OpenPlaintextChannel(const std::string& addr);

// gRPC's connectivity states.
enum class ChannelState {
  kIdle,
  kConnecting,
  kReady,
  kTransientFailure,
  kShutdown
};

// The channel's state now; with `try_to_connect`, an idle channel starts
// connecting.
ChannelState GetChannelState(grpc::Channel& channel, bool try_to_connect);

// Waits up to `timeout` for the channel to become ready (it starts
// connecting if idle). Returns the state at the end.
ChannelState WaitUntilReady(grpc::Channel& channel,
                            std::chrono::milliseconds timeout);

// Keeps gRPC polling `channel`'s transport while the result lives, so that
// a mezrecd that went away is noticed within about 100 ms instead of
// gRPC's 5 s backup poll (node-sync sessions then end). One thread per
// watch.
std::shared_ptr<void> WatchChannel(std::shared_ptr<grpc::Channel> channel);

}  // namespace mez::rpc

#endif  // MEZ_RPC_CHANNEL_H_
