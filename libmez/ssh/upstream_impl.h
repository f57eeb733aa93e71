// The client connection behind Upstream, shared by upstream.cc (connect,
// Exec) and upstream_bridge.cc (the bridge's relays, which take a
// connection over). Internal to libmez/ssh.
#ifndef MEZ_SSH_UPSTREAM_IMPL_H_
#define MEZ_SSH_UPSTREAM_IMPL_H_

#include <libssh/libssh.h>

#include <string>

#include "libmez/ssh/upstream.h"
#include "libmez/util/status.h"

namespace mez::ssh {

class Upstream::Impl {
 public:
  ~Impl() {
    if (session_ != nullptr) {
      ssh_disconnect(session_);
      ssh_free(session_);
    }
  }
  Status Connect(const UpstreamOptions& o);

  ssh_session session_ = nullptr;
  std::string where_;
  long timeout_seconds_ = 10;
};

}  // namespace mez::ssh

#endif  // MEZ_SSH_UPSTREAM_IMPL_H_
