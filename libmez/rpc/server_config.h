// mezrecd's configuration: mezrecd.yaml, overridden by MEZITE_* environment
// variables, overridden by command-line flags. Every unknown key and bad
// value is an error naming the key (and, for env, the variable).
#ifndef MEZ_RPC_SERVER_CONFIG_H_
#define MEZ_RPC_SERVER_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "libmez/util/status.h"

namespace mez::rpc {

struct RecordingConfig {
  bool enabled = true;
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
};

// Reads the YAML file (when config_path is set), then the environment
// (`env` lookups; tests pass their own), then `flags`; fills defaults and
// validates. `getenv` returns nullptr for unset variables.
Result<ServerConfig> LoadServerConfig(
    const ConfigFlags& flags, const char* (*getenv_fn)(const char*) = nullptr);

// Parses "host:port" / "[v6]:port"; checks the port (0 allowed: any).
Status ValidateListenAddress(const std::string& addr);
// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(const std::string& addr);

}  // namespace mez::rpc

#endif  // MEZ_RPC_SERVER_CONFIG_H_
