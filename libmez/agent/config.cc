#include "libmez/agent/config.h"

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "libmez/agent/credential.h"
#include "libmez/agent/transport.h"
#include "libmez/recorder/mode.h"
#include "libmez/util/byte_size.h"
#include "libmez/util/duration.h"
#include "libmez/util/file.h"
#include "libmez/util/version.h"

namespace mez::agent {
namespace {

// The flags' text values, parsed after CLI11 is done.
struct Flags {
  std::string token_file, ca_file, user_ca_file;
  std::string budget = "1G", retry_max = "60s", rate = "0", heartbeat = "30s";
  bool insecure = false;
  bool bpf = false, bpf_degraded = false;
};

// The enhanced recording switches' variables (docs/enhanced-recording.md).
constexpr char kBpfEnabledEnv[] = "MEZITE_BPF_ENABLED";
constexpr char kBpfDegradedEnv[] = "MEZITE_BPF_DEGRADED";

// A boolean variable: unset or empty keeps `*value`; true or false set it.
Status BoolFromEnv(const char* name, const char* text, bool* value) {
  if (text == nullptr || *text == '\0') return Status::Ok();
  std::string t = text;
  if (t == "true") {
    *value = true;
  } else if (t == "false") {
    *value = false;
  } else {
    return InvalidArgument(std::string(name) + " wants true or false, not '" +
                           t + "'");
  }
  return Status::Ok();
}

void AddFlags(CLI::App& app, AgentOptions* opt, Flags* f) {
  app.add_option("--auth", opt->auth_addr, "mezrecd address HOST:PORT")
      ->required();
  auto* token = app.add_option(
      "--token", opt->node_token,
      "this node's join token (mezctl nodes add); not needed once the node "
      "has joined (its credential is kept in --data-dir)");
  app.add_option("--token-file", f->token_file,
                 "read the join token from a file (keeps it out of ps)")
      ->excludes(token)
      ->check(CLI::ExistingFile);
  app.add_option("--listen", opt->listen,
                 "SSH address HOST:PORT (default 0.0.0.0:3022)");
  app.add_option("--advertise", opt->advertise,
                 "address users reach this node at (default: --listen with "
                 "the bound port)");
  app.add_option("--data-dir", opt->data_dir,
                 "host key, cached CA and spool (default /var/lib/mezd)");
  auto* ca_opt =
      app.add_option("--ca-file", f->ca_file,
                     "the cluster's TLS CA (PEM) to trust for mezrecd "
                     "(default: the CA the join token pins, fetched from "
                     "mezrecd and kept in --data-dir)")
          ->check(CLI::ExistingFile);
  app.add_flag("--insecure", f->insecure,
               "plaintext gRPC to a mezrecd on loopback (never elsewhere)")
      ->excludes(ca_opt);
  app.add_option("--user-ca-file", f->user_ca_file,
                 "trust this user CA line instead of the cluster's")
      ->check(CLI::ExistingFile);
  app.add_option("--spool-budget", f->budget,
                 "disk the node-mode spool may use (default 1G)");
  app.add_option("--upload-retry-max", f->retry_max,
                 "longest wait between upload retries (default 60s)");
  app.add_option("--upload-rate-limit", f->rate,
                 "upload bytes per second, e.g. 10M (default 0: no limit)");
  app.add_option("--heartbeat", f->heartbeat,
                 "how often to report to mezrecd and learn of removed users "
                 "(default 30s)");
  app.add_flag("--bpf", f->bpf,
               "enhanced recording: record the commands, files and network "
               "connections of shell and exec sessions with BPF; mezd does "
               "not start when it cannot load them (also "
               "MEZITE_BPF_ENABLED=true)");
  app.add_flag("--bpf-degraded", f->bpf_degraded,
               "with --bpf: start without enhanced recording when BPF cannot "
               "load (recordings then say enhanced=false; also "
               "MEZITE_BPF_DEGRADED=true)");
}

// Fills the options the flags' text and the environment give.
Status Resolve(const Flags& f, const char* (*getenv_fn)(const char*),
               AgentOptions* opt) {
  if (!f.token_file.empty()) {
    MEZ_ASSIGN_OR_RETURN(std::string t, ReadFile(f.token_file));
    opt->node_token = t.substr(0, t.find_first_of("\r\n"));
  }
  MEZ_ASSIGN_OR_RETURN(
      opt->mode_override,
      recorder::RecordingModeFromEnv(getenv_fn(recorder::kRecordingModeEnv)));
  auto b = ParseByteSize(f.budget);
  if (!b.ok())
    return InvalidArgument("--spool-budget: " + b.status().message());
  opt->spool_budget = *b;
  auto r = ParseDuration(f.retry_max);
  if (!r.ok() || *r < 1'000'000) {
    return InvalidArgument(
        "--upload-retry-max wants a duration of at least 1s");
  }
  opt->upload_retry_max_us = *r;
  opt->upload_retry_min_us = std::min<int64_t>(1'000'000, *r);
  auto h = ParseDuration(f.heartbeat);
  // At most 5 minutes: certificates live 10, and a removed user's are
  // refused only once a heartbeat brought the news.
  if (!h.ok() || *h < 1'000'000 || *h > 300'000'000) {
    return InvalidArgument("--heartbeat wants a duration from 1s to 5m");
  }
  opt->heartbeat_us = *h;
  auto l = ParseByteSize(f.rate);
  if (!l.ok()) {
    return InvalidArgument("--upload-rate-limit: " + l.status().message());
  }
  opt->upload_rate_limit = *l;
  if (!f.user_ca_file.empty()) {
    MEZ_ASSIGN_OR_RETURN(opt->user_ca_line, ReadFile(f.user_ca_file));
  }
  if (!f.ca_file.empty()) {
    MEZ_ASSIGN_OR_RETURN(opt->ca_pem, ReadFile(f.ca_file));
  }
  opt->insecure = f.insecure;
  // A flag turns a switch on; without it the variable decides (checked
  // either way: a typo is never ignored).
  bool env_bpf = false, env_degraded = false;
  MEZ_RETURN_IF_ERROR(
      BoolFromEnv(kBpfEnabledEnv, getenv_fn(kBpfEnabledEnv), &env_bpf));
  MEZ_RETURN_IF_ERROR(
      BoolFromEnv(kBpfDegradedEnv, getenv_fn(kBpfDegradedEnv), &env_degraded));
  opt->bpf = f.bpf || env_bpf;
  opt->bpf_degraded = f.bpf_degraded || env_degraded;
  if (opt->bpf_degraded && !opt->bpf) {
    return InvalidArgument(
        "--bpf-degraded (MEZITE_BPF_DEGRADED) only applies with --bpf "
        "(MEZITE_BPF_ENABLED=true)");
  }
  return Status::Ok();
}

}  // namespace

Result<AgentConfig> LoadAgentConfig(int argc, const char* const* argv,
                                    const char* (*getenv_fn)(const char*)) {
  if (getenv_fn == nullptr) {
    getenv_fn = [](const char* name) -> const char* {
      return std::getenv(name);
    };
  }
  CLI::App app{
      "mezd - Mezite node agent: an SSH server for the cluster's user "
      "certificates that records every session (node-sync, node or off, "
      "from MEZITE_RECORDING_MODE or the cluster's session_recording)"};
  app.set_version_flag("--version", std::string("mezd ") + Version(),
                       "Print the version and exit");
  AgentConfig config;
  Flags flags;
  AddFlags(app, &config.options, &flags);
  // The outcomes cmd/common/run_app.h gives the other binaries: CLI11's
  // own text, 0 after help, 2 after a usage error.
  std::ostringstream out, err;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e, out, err);
    bool help = dynamic_cast<const CLI::CallForHelp*>(&e) != nullptr ||
                dynamic_cast<const CLI::CallForAllHelp*>(&e) != nullptr ||
                dynamic_cast<const CLI::CallForVersion*>(&e) != nullptr;
    config.exit_code = help ? code : 2;
    config.out = out.str();
    config.err = err.str();
    return config;
  }
  MEZ_RETURN_IF_ERROR(Resolve(flags, getenv_fn, &config.options));
  return config;
}

Status PrepareAgentStart(AgentOptions* opt) {
  if (Status dir = CheckDataDir(opt->data_dir); !dir.ok()) {
    return InvalidArgument(dir.message());
  }
  auto start = LoadStartCredential(opt->data_dir, opt->node_token);
  if (!start.ok()) return InvalidArgument(start.status().message());
  opt->start_credential = *start;
  if (mkdir(opt->data_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status(Code::kIoError, "cannot create --data-dir " + opt->data_dir +
                                      ": " + std::strerror(errno));
  }
  std::string ca_in_use;
  MEZ_ASSIGN_OR_RETURN(
      opt->credentials,
      ResolveNodeTransport(opt->auth_addr, opt->data_dir, opt->ca_pem,
                           opt->insecure, start->ca_sha256, &ca_in_use));
  opt->ca_pem = ca_in_use;
  return Status::Ok();
}

}  // namespace mez::agent
