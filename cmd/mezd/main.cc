// mezd: the node agent. Serves SSH to holders of the cluster's user
// certificates and records every session (libmez/agent/agent.h); its
// flags and environment are read by libmez/agent/config.h.
#include <signal.h>

#include <cstdio>
#include <optional>
#include <string>

#include "cmd/common/heap.h"
#include "libmez/agent/agent.h"
#include "libmez/agent/config.h"

namespace {

int Fail(const std::string& message, int code) {
  std::fprintf(stderr, "mezd: %s\n", message.c_str());
  return code;
}

// Exit 2 for a setting to fix (kInvalidArgument), else 1.
int Fail(const mez::Status& s) {
  return Fail(s.message(), s.code() == mez::Code::kInvalidArgument ? 2 : 1);
}

}  // namespace

int main(int argc, char** argv) {
  // A peer that hung up gives EPIPE on write, never a fatal SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  auto config = mez::agent::LoadAgentConfig(argc, argv);
  if (!config.ok()) return Fail(config.status());
  if (config->exit_code >= 0) {
    std::fputs(config->out.c_str(), stdout);
    std::fputs(config->err.c_str(), stderr);
    return config->exit_code;
  }
  mez::cmd::KeepFreedHeap();
  mez::agent::AgentOptions& opt = config->options;
  if (auto s = mez::agent::PrepareAgentStart(&opt); !s.ok()) return Fail(s);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto agent = mez::agent::Agent::Start(opt);
  if (!agent.ok()) return Fail(agent.status().message(), 1);
  std::string mode =
      opt.mode_override
          ? std::string(mez::recorder::RecordingModeName(*opt.mode_override)) +
                " (MEZITE_RECORDING_MODE)"
          : "from the cluster's session_recording";
  std::optional<bool> enhanced = (*agent)->enhanced();
  const char* bpf = !enhanced   ? ""
                    : *enhanced ? ", enhanced recording on"
                                : ", enhanced recording off (degraded)";
  std::fprintf(stderr,
               "mezd: serving SSH on %s port %u as node %s, recording %s to "
               "%s%s\n",
               opt.listen.c_str(), static_cast<unsigned>((*agent)->ssh_port()),
               (*agent)->node_name().c_str(), mode.c_str(),
               opt.auth_addr.c_str(), bpf);
  int sig = 0;
  sigwait(&signals, &sig);
  (*agent)->Stop();
  return 0;
}
