// mezrecd's configuration: mezrecd.yaml, overridden by MEZITE_* environment
// variables, overridden by command-line flags. Every unknown key and bad
// value is an error naming the key (and, for env, the variable).
#ifndef MEZ_RPC_SERVER_CONFIG_H_
#define MEZ_RPC_SERVER_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "libmez/util/status.h"

namespace mez::rpc {

// recording.s3 / MEZITE_S3_*: where recordings go with backend "s3".
struct S3Config {
  std::string bucket;  // MEZITE_S3_BUCKET (required)
  std::string region;  // MEZITE_S3_REGION, else AWS_REGION; us-east-1
  // MEZITE_S3_ACCESS_KEY / _SECRET_KEY, else the file's, else
  // AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN).
  // Both empty: the rest of the AWS credentials chain (s3_credentials.h).
  std::string access_key;
  std::string secret_key;
  std::string session_token;
  std::string prefix;             // MEZITE_S3_PREFIX
  bool force_path_style = false;  // MEZITE_S3_FORCE_PATH_STYLE
  std::string endpoint;  // MEZITE_S3_ENDPOINT; empty: AWS for the region
  std::string ca_file;   // MEZITE_S3_CA_FILE
};

struct RecordingConfig {
  bool enabled = true;
  // "local" (files under storage_path) or "s3" (MEZITE_RECORDING_BACKEND).
  std::string backend = "local";
  S3Config s3;
  std::string storage_path;  // Default: <data_dir>/recordings
  // Stream kind -> format: shell/exec -> "asciicast" (alias "asciinema")
  // or "none"; tcpip -> "pcap" or "none". "none" keeps the catalog entry
  // and audit events but stores no file.
  std::map<std::string, std::string> formats = {
      {"shell", "asciicast"}, {"exec", "asciicast"}, {"tcpip", "pcap"}};
  bool gzip = false;
  std::optional<std::string> encryption_key;   // 32 raw bytes when set
  int64_t pcap_idle_timeout_us = 300'000'000;  // Close an idle shared pcap.
  bool record_input = false;                   // asciicast "i" events
};

struct ServerConfig {
  std::string data_dir = "/var/lib/mezite";
  std::string listen = "127.0.0.1:3025";
  bool insecure = false;
  std::string log_level = "info";
  int64_t shutdown_grace_us = 30'000'000;  // SIGTERM: drain this long.
  RecordingConfig recording;
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
  bool HasRole(const std::string& role) const;
};

// What a command line sets (unset fields leave the lower layers alone).
struct ConfigFlags {
  std::string config_path;  // --config
  std::optional<std::string> data_dir;
  std::optional<std::string> listen;
  std::optional<bool> insecure;
  std::optional<std::string> storage_path;
  std::optional<bool> gzip;
  std::optional<std::string> log_level;
  std::optional<std::string> roles;  // "auth,proxy"
  std::optional<std::string> proxy_listen;
  std::optional<std::string> identity;
  std::optional<std::string> replica_lease_timeout;  // A duration: "60s".
};

// Reads the YAML file (when config_path is set), then the environment
// (`env` lookups; tests pass their own), then `flags`; fills defaults and
// validates. `getenv` returns nullptr for unset variables.
Result<ServerConfig> LoadServerConfig(
    const ConfigFlags& flags, const char* (*getenv_fn)(const char*) = nullptr);

// Parses "host:port" / "[v6]:port"; checks the port (0 allowed: any).
Status ValidateListenAddress(const std::string& addr);

}  // namespace mez::rpc

#endif  // MEZ_RPC_SERVER_CONFIG_H_
