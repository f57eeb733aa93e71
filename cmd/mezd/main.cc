// mezd: the node agent. Serves SSH to holders of the cluster's user
// certificates and records every session (libmez/agent/agent.h).
#include <signal.h>
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cmd/common/heap.h"
#include "cmd/common/run_app.h"
#include "libmez/agent/agent.h"
#include "libmez/agent/credential.h"
#include "libmez/agent/transport.h"
#include "libmez/util/byte_size.h"
#include "libmez/util/duration.h"
#include "libmez/util/file.h"

namespace {

int Fail(const std::string& message, int code = 1) {
  std::fprintf(stderr, "mezd: %s\n", message.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // A peer that hung up gives EPIPE on write, never a fatal SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{
      "mezd - Mezite node agent: an SSH server for the cluster's user "
      "certificates that records every session (node-sync, node or off, "
      "from MEZITE_RECORDING_MODE or the cluster's session_recording)"};
  mez::agent::AgentOptions opt;
  std::string token_file, ca_file, user_ca_file, budget = "1G",
                                                 retry_max = "60s", rate = "0";
  app.add_option("--auth", opt.auth_addr, "mezrecd address HOST:PORT")
      ->required();
  auto* token = app.add_option(
      "--token", opt.node_token,
      "this node's join token (mezctl nodes add); not needed once the node "
      "has joined (its credential is kept in --data-dir)");
  app.add_option("--token-file", token_file,
                 "read the join token from a file (keeps it out of ps)")
      ->excludes(token)
      ->check(CLI::ExistingFile);
  app.add_option("--listen", opt.listen,
                 "SSH address HOST:PORT (default 0.0.0.0:3022)");
  app.add_option("--advertise", opt.advertise,
                 "address users reach this node at (default: --listen with "
                 "the bound port)");
  app.add_option("--data-dir", opt.data_dir,
                 "host key, cached CA and spool (default /var/lib/mezd)");
  auto* ca_opt =
      app.add_option("--ca-file", ca_file,
                     "the cluster's TLS CA (PEM) to trust for mezrecd "
                     "(default: the CA the join token pins, fetched from "
                     "mezrecd and kept in --data-dir)")
          ->check(CLI::ExistingFile);
  bool insecure = false;
  app.add_flag("--insecure", insecure,
               "plaintext gRPC to a mezrecd on loopback (never elsewhere)")
      ->excludes(ca_opt);
  app.add_option("--user-ca-file", user_ca_file,
                 "trust this user CA line instead of the cluster's")
      ->check(CLI::ExistingFile);
  app.add_option("--spool-budget", budget,
                 "disk the node-mode spool may use (default 1G)");
  app.add_option("--upload-retry-max", retry_max,
                 "longest wait between upload retries (default 60s)");
  app.add_option("--upload-rate-limit", rate,
                 "upload bytes per second, e.g. 10M (default 0: no limit)");
  std::string heartbeat = "30s";
  app.add_option("--heartbeat", heartbeat,
                 "how often to report to mezrecd and learn of removed users "
                 "(default 30s)");
  if (int rc = mez::cmd::Parse(app, argc, argv); rc >= 0) return rc;
  mez::cmd::KeepFreedHeap();

  if (!token_file.empty()) {
    auto t = mez::ReadFile(token_file);
    if (!t.ok()) return Fail(t.status().message());
    opt.node_token = t->substr(0, t->find_first_of("\r\n"));
  }
  if (const char* m = std::getenv("MEZITE_RECORDING_MODE"); m && *m) {
    auto mode = mez::recorder::ParseRecordingMode(m);
    if (!mode.ok()) {
      return Fail("MEZITE_RECORDING_MODE: " + mode.status().message(), 2);
    }
    opt.mode_override = *mode;
  }
  auto b = mez::ParseByteSize(budget);
  if (!b.ok()) return Fail("--spool-budget: " + b.status().message(), 2);
  opt.spool_budget = *b;
  auto r = mez::ParseDuration(retry_max);
  if (!r.ok() || *r < 1'000'000) {
    return Fail("--upload-retry-max wants a duration of at least 1s", 2);
  }
  opt.upload_retry_max_us = *r;
  opt.upload_retry_min_us = std::min<int64_t>(1'000'000, *r);
  auto h = mez::ParseDuration(heartbeat);
  // At most 5 minutes: certificates live 10, and a removed user's are
  // refused only once a heartbeat brought the news.
  if (!h.ok() || *h < 1'000'000 || *h > 300'000'000) {
    return Fail("--heartbeat wants a duration from 1s to 5m", 2);
  }
  opt.heartbeat_us = *h;
  auto l = mez::ParseByteSize(rate);
  if (!l.ok()) return Fail("--upload-rate-limit: " + l.status().message(), 2);
  opt.upload_rate_limit = *l;
  if (!user_ca_file.empty()) {
    auto ca = mez::ReadFile(user_ca_file);
    if (!ca.ok()) return Fail(ca.status().message());
    opt.user_ca_line = *ca;
  }
  if (!ca_file.empty()) {
    auto pem = mez::ReadFile(ca_file);
    if (!pem.ok()) return Fail(pem.status().message());
    opt.ca_pem = *pem;
  }
  opt.insecure = insecure;
  // Settings errors exit 2 before anything is sent: the credential to
  // start with, and how mezrecd is trusted (never plaintext by accident).
  if (auto dir = mez::agent::CheckDataDir(opt.data_dir); !dir.ok()) {
    return Fail(dir.message(), 2);
  }
  auto start = mez::agent::LoadStartCredential(opt.data_dir, opt.node_token);
  if (!start.ok()) return Fail(start.status().message(), 2);
  opt.start_credential = *start;
  if (mkdir(opt.data_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Fail("cannot create --data-dir " + opt.data_dir + ": " +
                std::strerror(errno));
  }
  auto creds = mez::agent::ResolveNodeTransport(
      opt.auth_addr, opt.data_dir, opt.ca_pem, insecure, start->ca_sha256);
  if (!creds.ok()) {
    return Fail(creds.status().message(),
                creds.status().code() == mez::Code::kInvalidArgument ? 2 : 1);
  }
  opt.credentials = *creds;

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto agent = mez::agent::Agent::Start(opt);
  if (!agent.ok()) return Fail(agent.status().message());
  std::string mode =
      opt.mode_override
          ? std::string(mez::recorder::RecordingModeName(*opt.mode_override)) +
                " (MEZITE_RECORDING_MODE)"
          : "from the cluster's session_recording";
  std::fprintf(stderr,
               "mezd: serving SSH on %s port %u as node %s, recording %s to "
               "%s\n",
               opt.listen.c_str(), static_cast<unsigned>((*agent)->ssh_port()),
               (*agent)->node_name().c_str(), mode.c_str(),
               opt.auth_addr.c_str());
  int sig = 0;
  sigwait(&signals, &sig);
  (*agent)->Stop();
  return 0;
}
