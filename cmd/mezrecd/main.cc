// mezrecd: the cluster service (recording ingest, catalog, keys).
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>

#include "cmd/common/heap.h"
#include "cmd/common/run_app.h"
#include "libmez/server/proxy_role.h"
#include "libmez/server/server.h"

int main(int argc, char** argv) {
  // A peer that hung up gives EPIPE on write, never a fatal SIGPIPE.
  signal(SIGPIPE, SIG_IGN);
  CLI::App app{
      "mezrecd - Mezite cluster service: receives SSH session recordings "
      "over gRPC and keeps the catalog, audit log and cluster keys"};
  mez::server::ConfigFlags flags;
  app.add_option("--config", flags.config_path, "mezrecd.yaml to read")
      ->check(CLI::ExistingFile);
  app.add_option("--data-dir", flags.data_dir,
                 "keys, catalog and default storage (default /var/lib/mezite)");
  app.add_option("--listen", flags.listen,
                 "gRPC address HOST:PORT (default 127.0.0.1:3025; port 0 "
                 "picks a free one)");
  app.add_option("--tls-names", flags.tls_names,
                 "more names and addresses nodes and clients reach mezrecd "
                 "at, for its TLS certificate (comma-separated; the --listen "
                 "host, localhost, 127.0.0.1 and ::1 are always in it)");
  // Flag callbacks: an absent flag must leave the lower layers alone.
  app.add_flag_callback(
      "--insecure", [&flags] { flags.insecure = true; },
      "serve plaintext gRPC (loopback addresses only)");
  app.add_option("--storage-path", flags.storage_path,
                 "where recordings are written (default DATA_DIR/recordings)");
  app.add_flag_callback(
      "--gzip", [&flags] { flags.gzip = true; }, "gzip recordings");
  app.add_option("--log-level", flags.log_level, "debug, info, warn or error");
  app.add_option("--seek-index-min-bytes", flags.seek_index_min_bytes,
                 "store a seek index for shell and exec recordings of at "
                 "least this size (default 16MiB; 0: never)");
  app.add_option(
      "--roles", flags.roles,
      "roles to serve: auth, auth,proxy, or proxy alone with --identity "
      "(default auth)");
  app.add_option("--proxy-listen", flags.proxy_listen,
                 "SSH address of the proxy role (default 127.0.0.1:3023)");
  app.add_option("--identity", flags.identity,
                 "proxy-only (--roles proxy): the proxy's identity file, from "
                 "mezctl users add NAME --role=proxy --identity-out FILE");
  app.add_option("--replica-lease-timeout", flags.replica_lease_timeout,
                 "with a shared catalog, mark the live sessions of a replica "
                 "silent this long incomplete (default 60s)");
  // The web UI (docs/web.md): each flag given is passed on as its yaml key.
  auto web_opt = [&app, &flags](const char* flag, const char* key,
                                const char* help) {
    app.add_option_function<std::string>(
        flag,
        [&flags, key](const std::string& v) { flags.web.emplace_back(key, v); },
        help);
  };
  web_opt("--web-listen", "listen",
          "serve the web UI on HOST:PORT (an IP address; off by default)");
  web_opt("--web-cert", "cert",
          "the web UI's certificate chain (PEM; default: the cluster's TLS "
          "certificate)");
  web_opt("--web-key", "key", "the key of --web-cert (PEM)");
  app.add_flag_callback(
      "--web-insecure-http",
      [&flags] { flags.web.emplace_back("insecureHttp", "true"); },
      "serve the web UI over plain HTTP, for a TLS-terminating proxy "
      "(loopback --web-listen only; needs --web-public-url https://...)");
  web_opt("--web-public-url", "publicUrl",
          "the URL users open (default https://WEB_LISTEN)");
  web_opt("--web-trusted-proxies", "trustedProxies",
          "addresses of proxies whose X-Forwarded-For is believed "
          "(comma-separated IPs)");
  web_opt("--web-sign-in-code-ttl", "signInCodeTtl",
          "how long a sign-in code from msh web is good for (1s-60s, "
          "default 60s)");
  app.footer(
      "Environment: MEZITE_DATA_DIR, MEZITE_LISTEN, MEZITE_TLS_NAMES, "
      "MEZITE_INSECURE, "
      "MEZITE_LOG_LEVEL, MEZITE_RECORDING_ENABLED, "
      "MEZITE_RECORDING_STORAGE_PATH, MEZITE_RECORDING_GZIP, "
      "MEZITE_RECORDING_ENC_KEY (64 hex chars), MEZITE_RECORDING_FORMATS, "
      "MEZITE_PCAP_IDLE_TIMEOUT, MEZITE_SEEK_INDEX_MIN_BYTES, MEZITE_ROLES, "
      "MEZITE_PROXY_LISTEN, "
      "MEZITE_IDENTITY, "
      "MEZITE_DB_URL (postgres://...), MEZITE_REPLICA_LEASE_TIMEOUT, "
      "MEZITE_RECORDING_BACKEND (local, s3), "
      "MEZITE_S3_BUCKET, MEZITE_S3_REGION, MEZITE_S3_ACCESS_KEY, "
      "MEZITE_S3_SECRET_KEY, MEZITE_S3_PREFIX, MEZITE_S3_ENDPOINT, "
      "MEZITE_S3_FORCE_PATH_STYLE, MEZITE_S3_CA_FILE, MEZITE_WEB_LISTEN, "
      "MEZITE_WEB_CERT, MEZITE_WEB_KEY, MEZITE_WEB_INSECURE_HTTP, "
      "MEZITE_WEB_PUBLIC_URL, MEZITE_WEB_TRUSTED_PROXIES, "
      "MEZITE_WEB_SIGN_IN_CODE_TTL. Flags override the "
      "environment, which "
      "overrides the config file. See mezrecd(8).");
  if (int rc = mez::cmd::Parse(app, argc, argv); rc >= 0) return rc;

  mez::cmd::KeepFreedHeap();

  auto config = mez::server::LoadServerConfig(flags);
  if (!config.ok()) {
    std::fprintf(stderr, "mezrecd: %s\n", config.status().message().c_str());
    return 2;
  }
  mez::Status s = config->HasRole("auth") ? mez::server::RunMezrecd(*config)
                                          : mez::server::RunProxyOnly(*config);
  if (!s.ok()) {
    std::fprintf(stderr, "mezrecd: %s\n", s.message().c_str());
    return 1;
  }
  return 0;
}
