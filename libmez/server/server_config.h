// mezrecd's configuration: mezrecd.yaml, overridden by MEZITE_* environment
// variables, overridden by command-line flags. Every unknown key and bad
// value is an error naming the key (and, for env, the variable).
#ifndef MEZ_SERVER_SERVER_CONFIG_H_
#define MEZ_SERVER_SERVER_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "libmez/ingest/recording_config.h"
#include "libmez/util/status.h"
#include "libmez/web/web_config.h"

namespace mez::server {

struct ServerConfig {
  std::string data_dir = "/var/lib/mezite";
  std::string listen = "127.0.0.1:3025";
  // More names for the TLS certificate, for nodes and clients that reach
  // mezrecd by a name or address other than the --listen host (a DNS
  // name, a load balancer's address). yaml `tlsNames` (a list or
  // "a,b"), MEZITE_TLS_NAMES, --tls-names. With a wildcard listen the
  // machine's host name and interface addresses are added (tls_names.h).
  std::vector<std::string> tls_names;
  bool insecure = false;
  std::string log_level = "info";
  int64_t shutdown_grace_us = 30'000'000;  // SIGTERM: drain this long.
  ingest::RecordingConfig recording;
  // The catalog: empty for SQLite in <data_dir>/catalog.db, or a
  // postgres:// URL (yaml `dbUrl`, MEZITE_DB_URL). Several mezrecd replicas
  // share one PostgreSQL (and one S3 bucket, and the data dir's keys).
  std::string db_url;
  // With a shared catalog: a replica whose lease went unrenewed this long
  // is presumed dead and its sessions still recording are marked
  // incomplete (catalog/replica_lease.h). yaml `replicaLeaseTimeout`,
  // MEZITE_REPLICA_LEASE_TIMEOUT, --replica-lease-timeout; at least 1 s.
  int64_t replica_lease_timeout_us = 60'000'000;
  // Roles this process serves: "auth" (the gRPC cluster service) and
  // "proxy" (the SSH jump host on proxy_listen), or "proxy" alone (a
  // proxy-only mezrecd using the auth mezrecd named in `identity`). yaml
  // `roles` (a list or "auth,proxy"), MEZITE_ROLES, --roles.
  std::vector<std::string> roles = {"auth"};
  // yaml `proxyListen`, MEZITE_PROXY_LISTEN, --proxy-listen. IP literal.
  std::string proxy_listen = "127.0.0.1:3023";
  // Proxy-only: the proxy's identity file (auth address, TLS CA, proxy
  // token), from `mezctl users add NAME --role=proxy --identity-out`.
  // yaml `identity`, MEZITE_IDENTITY, --identity.
  std::string identity;
  // The web UI (yaml `web:`, MEZITE_WEB_*, --web-*; docs/web.md); off
  // unless web.listen is set.
  web::WebConfig web;
  bool HasRole(const std::string& role) const;
};

// What a command line sets (unset fields leave the lower layers alone).
struct ConfigFlags {
  std::string config_path;  // --config
  std::optional<std::string> data_dir;
  std::optional<std::string> listen;
  std::optional<std::string> tls_names;  // "a.example,10.0.0.5"
  std::optional<bool> insecure;
  std::optional<std::string> storage_path;
  std::optional<bool> gzip;
  std::optional<std::string> log_level;
  std::optional<std::string> roles;  // "auth,proxy"
  std::optional<std::string> proxy_listen;
  std::optional<std::string> identity;
  std::optional<std::string> replica_lease_timeout;  // A duration: "60s".
  std::optional<std::string> seek_index_min_bytes;   // "16MiB", "0"
  // --web-* flags given, as (yaml key under web:, value), in order.
  std::vector<std::pair<std::string, std::string>> web;
};

// Reads the YAML file (when config_path is set), then the environment
// (`env` lookups; tests pass their own), then `flags`; fills defaults and
// validates. `getenv` returns nullptr for unset variables.
Result<ServerConfig> LoadServerConfig(
    const ConfigFlags& flags, const char* (*getenv_fn)(const char*) = nullptr);

}  // namespace mez::server

#endif  // MEZ_SERVER_SERVER_CONFIG_H_
