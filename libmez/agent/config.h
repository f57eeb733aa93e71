// mezd's configuration: its command line (the flags `mezd --help` lists)
// and its variables (MEZITE_RECORDING_MODE, MEZITE_BPF_ENABLED,
// MEZITE_BPF_DEGRADED), read into AgentOptions, then readied to start
// (data dir, start credential, how mezrecd is trusted). cmd/mezd only
// prints what these return, starts the agent and waits for a signal.
#ifndef MEZ_AGENT_CONFIG_H_
#define MEZ_AGENT_CONFIG_H_

#include <string>

#include "libmez/agent/agent.h"
#include "libmez/util/status.h"

namespace mez::agent {

// What mezd's command line asks for.
struct AgentConfig {
  // -1: start with `options`. Otherwise exit with this code, printing
  // `out` on stdout and `err` on stderr: 0 after --help (the help in
  // `out`), 2 for a command line the flag parser refused (an unknown or
  // repeated flag, a missing --auth, a file flag naming no file,
  // --token with --token-file, --insecure with --ca-file), its message
  // in `err`.
  int exit_code = -1;
  std::string out, err;
  // With exit_code -1: every flag's value and the variables
  // (mode_override), the files --token-file, --ca-file and
  // --user-ca-file name read in. start_credential and credentials are
  // left to PrepareAgentStart.
  AgentOptions options;
};

// Reads argv (argv[0] is the program's name) and the environment through
// `getenv_fn` (nullptr: the process's; it returns nullptr when a variable
// is unset). Errors name the flag or variable and what it wants:
// kInvalidArgument for a bad value (--spool-budget, --upload-rate-limit:
// a size such as 10M; --upload-retry-max: a duration of at least 1s;
// --heartbeat: 1s to 5m; MEZITE_RECORDING_MODE: node-sync, node or off;
// MEZITE_BPF_ENABLED, MEZITE_BPF_DEGRADED: true or false, the flags --bpf
// and --bpf-degraded turning them on whatever the variables say; degraded
// without BPF asked for);
// the file's own error when a --*-file cannot be read.
Result<AgentConfig> LoadAgentConfig(
    int argc, const char* const* argv,
    const char* (*getenv_fn)(const char*) = nullptr);

// Readies `options` (from LoadAgentConfig) to start, before anything is
// sent: checks --data-dir (CheckDataDir), loads the credential to start
// with (LoadStartCredential), creates the data dir (0700), and resolves how
// mezrecd is trusted (ResolveNodeTransport; never plaintext by accident).
// Sets options->start_credential and options->credentials.
// kInvalidArgument for a setting to fix (mezd exits 2); other codes for
// what failed on the way (cannot create the data dir, mezrecd unreachable
// while fetching the pinned CA).
Status PrepareAgentStart(AgentOptions* options);

}  // namespace mez::agent

#endif  // MEZ_AGENT_CONFIG_H_
