// What mezrecd does with the recordings it receives: the recording section
// of mezrecd's configuration (libmez/server/server_config.h loads it), as
// ingest and the storage back ends read it.
#ifndef MEZ_INGEST_RECORDING_CONFIG_H_
#define MEZ_INGEST_RECORDING_CONFIG_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace mez::ingest {

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
  // Shell and exec recordings with at least this many payload bytes get a
  // stored seek index when they end (docs/formats/seek-index.md); 0: none.
  // yaml recording.seekIndexMinBytes, MEZITE_SEEK_INDEX_MIN_BYTES,
  // --seek-index-min-bytes.
  uint64_t seek_index_min_bytes = 16 << 20;
};

}  // namespace mez::ingest

#endif  // MEZ_INGEST_RECORDING_CONFIG_H_
