#include "libmez/server/server_config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <set>

#include "libmez/record/seal.h"
#include "libmez/util/duration.h"
#include "libmez/util/file.h"
#include "libmez/util/host_port.h"

namespace mez::server {
namespace {

Status KeyError(const std::string& key, const std::string& what) {
  return InvalidArgument("config: " + key + ": " + what);
}

Result<bool> ParseBool(const std::string& key, const std::string& v) {
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  return KeyError(key, "'" + v + "' is not a boolean (true or false)");
}

Status SetFormat(ingest::RecordingConfig* rec, const std::string& key,
                 const std::string& kind, std::string format) {
  static const std::set<std::string> kKinds = {"shell", "exec", "tcpip"};
  if (kKinds.count(kind) == 0) {
    return KeyError(
        key, "unknown stream kind '" + kind + "' (kinds: shell, exec, tcpip)");
  }
  if (format == "asciinema") format = "asciicast";
  bool ok = kind == "tcpip" ? (format == "pcap" || format == "none")
                            : (format == "asciicast" || format == "none");
  if (!ok) {
    return KeyError(
        key, "format '" + format + "' is not available for " + kind + " (use " +
                 (kind == "tcpip" ? "pcap" : "asciicast") + " or none)");
  }
  rec->formats[kind] = format;
  return Status::Ok();
}

Status SetEncryptionKey(ingest::RecordingConfig* rec, const std::string& key,
                        const std::string& hex) {
  auto parsed = record::ParseKeyHex(hex);
  if (!parsed.ok()) {
    return KeyError(key, parsed.status().message() +
                             "; generate one with: openssl rand -hex 32");
  }
  rec->encryption_key = std::move(parsed).value();
  return Status::Ok();
}

// At least a second: the lease is renewed every third of it, and each
// renewal is a catalog round trip.
Status SetLeaseTimeout(const std::string& key, const std::string& text,
                       ServerConfig* cfg) {
  auto d = ParseDuration(text);
  if (!d.ok()) return KeyError(key, d.status().message());
  if (*d < 1'000'000) {
    return KeyError(key, "'" + text + "' is below the minimum of 1s");
  }
  cfg->replica_lease_timeout_us = *d;
  return Status::Ok();
}

// yaml-cpp throws; every access goes through here.
Result<std::string> Scalar(const YAML::Node& n, const std::string& key) {
  if (!n.IsScalar()) return KeyError(key, "expected a single value");
  return n.Scalar();
}

// A byte count: digits, optionally followed by K, M or G (powers of 1024,
// with or without "iB"/"B").
Status SetSeekIndexMinBytes(const std::string& key, const std::string& text,
                            ingest::RecordingConfig* rec) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') {
    ++digits;
  }
  std::string unit = text.substr(digits);
  int shift = -1;
  if (unit.empty() || unit == "B") shift = 0;
  if (unit == "K" || unit == "KiB" || unit == "KB") shift = 10;
  if (unit == "M" || unit == "MiB" || unit == "MB") shift = 20;
  if (unit == "G" || unit == "GiB" || unit == "GB") shift = 30;
  if (digits == 0 || digits > 12 || shift < 0) {
    return KeyError(
        key, "expected a byte count such as 16MiB or 0, got '" + text + "'");
  }
  rec->seek_index_min_bytes = std::stoull(text.substr(0, digits)) << shift;
  return Status::Ok();
}

Status ApplyRecordingYaml(const YAML::Node& node,
                          ingest::RecordingConfig* rec) {
  if (!node.IsMap()) return KeyError("recording", "expected a mapping");
  for (const auto& kv : node) {
    std::string name = kv.first.as<std::string>();
    std::string key = "recording." + name;
    const YAML::Node& v = kv.second;
    if (name == "enabled" || name == "gzip" || name == "recordInput") {
      MEZ_ASSIGN_OR_RETURN(std::string s, Scalar(v, key));
      MEZ_ASSIGN_OR_RETURN(bool b, ParseBool(key, s));
      if (name == "enabled") rec->enabled = b;
      if (name == "gzip") rec->gzip = b;
      if (name == "recordInput") rec->record_input = b;
    } else if (name == "storagePath") {
      MEZ_ASSIGN_OR_RETURN(rec->storage_path, Scalar(v, key));
      if (rec->storage_path.empty() || rec->storage_path[0] != '/') {
        return KeyError(key, "must be an absolute path");
      }
    } else if (name == "formats") {
      if (!v.IsMap())
        return KeyError(key, "expected a mapping of kind: format");
      for (const auto& f : v) {
        std::string kind = f.first.as<std::string>();
        MEZ_ASSIGN_OR_RETURN(std::string fmt,
                             Scalar(f.second, key + "." + kind));
        MEZ_RETURN_IF_ERROR(SetFormat(rec, key + "." + kind, kind, fmt));
      }
    } else if (name == "pcapIdleTimeout") {
      MEZ_ASSIGN_OR_RETURN(std::string s, Scalar(v, key));
      auto d = ParseDuration(s);
      if (!d.ok()) return KeyError(key, d.status().message());
      rec->pcap_idle_timeout_us = *d;
    } else if (name == "encryption") {
      if (!v.IsMap()) return KeyError(key, "expected a mapping");
      for (const auto& e : v) {
        std::string ename = e.first.as<std::string>();
        std::string ekey = key + "." + ename;
        if (ename != "keyFile") {
          return KeyError(ekey, "unknown key (known: keyFile)");
        }
        MEZ_ASSIGN_OR_RETURN(std::string path, Scalar(e.second, ekey));
        auto text = ReadFile(path);
        if (!text.ok()) return KeyError(ekey, text.status().message());
        std::string hex = *text;
        while (!hex.empty() && (hex.back() == '\n' || hex.back() == ' ')) {
          hex.pop_back();
        }
        MEZ_RETURN_IF_ERROR(
            SetEncryptionKey(rec, ekey + " (" + path + ")", hex));
      }
    } else if (name == "seekIndexMinBytes") {
      MEZ_ASSIGN_OR_RETURN(std::string s, Scalar(v, key));
      MEZ_RETURN_IF_ERROR(SetSeekIndexMinBytes(key, s, rec));
    } else if (name == "backend") {
      MEZ_ASSIGN_OR_RETURN(rec->backend, Scalar(v, key));
    } else if (name == "s3") {
      if (!v.IsMap()) return KeyError(key, "expected a mapping");
      for (const auto& e : v) {
        std::string sname = e.first.as<std::string>();
        std::string skey = key + "." + sname;
        MEZ_ASSIGN_OR_RETURN(std::string val, Scalar(e.second, skey));
        ingest::S3Config& s3 = rec->s3;
        if (sname == "bucket") {
          s3.bucket = val;
        } else if (sname == "region") {
          s3.region = val;
        } else if (sname == "accessKey") {
          s3.access_key = val;
        } else if (sname == "secretKey") {
          s3.secret_key = val;
        } else if (sname == "prefix") {
          s3.prefix = val;
        } else if (sname == "forcePathStyle") {
          MEZ_ASSIGN_OR_RETURN(s3.force_path_style, ParseBool(skey, val));
        } else if (sname == "endpoint") {
          s3.endpoint = val;
        } else if (sname == "caFile") {
          s3.ca_file = val;
        } else {
          return KeyError(skey,
                          "unknown key (known: bucket, region, accessKey, "
                          "secretKey, prefix, forcePathStyle, endpoint, "
                          "caFile)");
        }
      }
    } else {
      return KeyError(key,
                      "unknown key (known: enabled, backend, storagePath, "
                      "s3, formats, gzip, encryption, pcapIdleTimeout, "
                      "recordInput, seekIndexMinBytes)");
    }
  }
  return Status::Ok();
}

// "a.example, 10.0.0.5" (a list from a flag or variable): each name an IP
// address or a DNS name; auth::LoadOrCreateClusterKeys checks them again.
Result<std::vector<std::string>> ParseTlsNames(const std::string& key,
                                               const std::string& text) {
  std::vector<std::string> names;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string name = text.substr(pos, comma - pos);
    while (!name.empty() && name.front() == ' ') name.erase(0, 1);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    pos = comma + 1;
    if (name.empty()) continue;
    bool ok = name.size() <= 253;
    for (char c : name) {
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                  c == '*' || c == ':' || c == '[' || c == ']');
    }
    if (!ok) {
      return KeyError(key, "'" + name +
                               "' is neither an IP address nor a DNS name "
                               "(a list is separated by commas)");
    }
    names.push_back(name);
  }
  return names;
}

Result<std::vector<std::string>> ParseRoles(const std::string& key,
                                            const std::string& text) {
  std::vector<std::string> roles;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    if (comma == std::string::npos) comma = text.size();
    std::string role = text.substr(pos, comma - pos);
    while (!role.empty() && role.front() == ' ') role.erase(0, 1);
    while (!role.empty() && role.back() == ' ') role.pop_back();
    if (role != "auth" && role != "proxy") {
      return KeyError(key, "unknown role '" + role + "' (roles: auth, proxy)");
    }
    roles.push_back(role);
    pos = comma + 1;
  }
  return roles;
}

Status ApplyProxyYaml(const std::string& name, const YAML::Node& v,
                      ServerConfig* cfg) {
  if (name == "proxyListen") {
    MEZ_ASSIGN_OR_RETURN(cfg->proxy_listen, Scalar(v, name));
    return Status::Ok();
  }
  if (name == "identity") {
    MEZ_ASSIGN_OR_RETURN(cfg->identity, Scalar(v, name));
    return Status::Ok();
  }
  std::string text;
  if (v.IsSequence()) {
    for (const auto& r : v) {
      MEZ_ASSIGN_OR_RETURN(std::string role, Scalar(r, name));
      text += (text.empty() ? "" : ",") + role;
    }
  } else {
    MEZ_ASSIGN_OR_RETURN(text, Scalar(v, name));
  }
  MEZ_ASSIGN_OR_RETURN(cfg->roles, ParseRoles(name, text));
  return Status::Ok();
}

Status ApplyYaml(const std::string& path, ServerConfig* cfg) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return NotFound("config file " + path + " cannot be read");
  } catch (const YAML::Exception& e) {
    return InvalidArgument("config file " + path + ": " + e.what());
  }
  if (root.IsNull()) return Status::Ok();
  if (!root.IsMap()) {
    return InvalidArgument("config file " + path + ": expected a mapping");
  }
  try {
    for (const auto& kv : root) {
      std::string name = kv.first.as<std::string>();
      const YAML::Node& v = kv.second;
      if (name == "recording") {
        MEZ_RETURN_IF_ERROR(ApplyRecordingYaml(v, &cfg->recording));
      } else if (name == "dataDir") {
        MEZ_ASSIGN_OR_RETURN(cfg->data_dir, Scalar(v, name));
      } else if (name == "listen") {
        MEZ_ASSIGN_OR_RETURN(cfg->listen, Scalar(v, name));
      } else if (name == "tlsNames") {
        std::string text;
        if (v.IsSequence()) {
          for (const auto& n : v) {
            MEZ_ASSIGN_OR_RETURN(std::string one, Scalar(n, name));
            text += (text.empty() ? "" : ",") + one;
          }
        } else {
          MEZ_ASSIGN_OR_RETURN(text, Scalar(v, name));
        }
        MEZ_ASSIGN_OR_RETURN(cfg->tls_names, ParseTlsNames(name, text));
      } else if (name == "insecure") {
        MEZ_ASSIGN_OR_RETURN(std::string s, Scalar(v, name));
        MEZ_ASSIGN_OR_RETURN(cfg->insecure, ParseBool(name, s));
      } else if (name == "logLevel") {
        MEZ_ASSIGN_OR_RETURN(cfg->log_level, Scalar(v, name));
      } else if (name == "dbUrl") {
        MEZ_ASSIGN_OR_RETURN(cfg->db_url, Scalar(v, name));
      } else if (name == "shutdownGrace") {
        MEZ_ASSIGN_OR_RETURN(std::string s, Scalar(v, name));
        auto d = ParseDuration(s);
        if (!d.ok()) return KeyError(name, d.status().message());
        cfg->shutdown_grace_us = *d;
      } else if (name == "replicaLeaseTimeout") {
        MEZ_ASSIGN_OR_RETURN(std::string s, Scalar(v, name));
        MEZ_RETURN_IF_ERROR(SetLeaseTimeout(name, s, cfg));
      } else if (name == "web") {
        if (!v.IsMap()) return KeyError(name, "expected a mapping");
        for (const auto& w : v) {
          std::string key = "web." + w.first.as<std::string>();
          MEZ_ASSIGN_OR_RETURN(std::string val, Scalar(w.second, key));
          MEZ_RETURN_IF_ERROR(web::SetWebOption(
              &cfg->web, w.first.as<std::string>(), val, key));
        }
      } else if (name == "roles" || name == "proxyListen" ||
                 name == "identity") {
        MEZ_RETURN_IF_ERROR(ApplyProxyYaml(name, v, cfg));
      } else {
        return KeyError(
            name,
            "unknown key (known: dataDir, listen, tlsNames, insecure, "
            "logLevel, shutdownGrace, dbUrl, "
            "replicaLeaseTimeout, recording, roles, "
            "proxyListen, identity, web)");
      }
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument("config file " + path + ": " + e.what());
  }
  return Status::Ok();
}

Status ApplyEnv(const char* (*get)(const char*), ServerConfig* cfg) {
  auto env = [&](const char* name) -> std::optional<std::string> {
    const char* v = get(name);
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
  ingest::RecordingConfig& rec = cfg->recording;
  if (auto v = env("MEZITE_DATA_DIR")) cfg->data_dir = *v;
  if (auto v = env("MEZITE_LISTEN")) cfg->listen = *v;
  if (auto v = env("MEZITE_TLS_NAMES")) {
    MEZ_ASSIGN_OR_RETURN(cfg->tls_names, ParseTlsNames("MEZITE_TLS_NAMES", *v));
  }
  if (auto v = env("MEZITE_INSECURE")) {
    MEZ_ASSIGN_OR_RETURN(cfg->insecure, ParseBool("MEZITE_INSECURE", *v));
  }
  if (auto v = env("MEZITE_LOG_LEVEL")) cfg->log_level = *v;
  if (auto v = env("MEZITE_RECORDING_ENABLED")) {
    MEZ_ASSIGN_OR_RETURN(rec.enabled,
                         ParseBool("MEZITE_RECORDING_ENABLED", *v));
  }
  if (auto v = env("MEZITE_RECORDING_STORAGE_PATH")) rec.storage_path = *v;
  if (auto v = env("MEZITE_RECORDING_GZIP")) {
    MEZ_ASSIGN_OR_RETURN(rec.gzip, ParseBool("MEZITE_RECORDING_GZIP", *v));
  }
  if (auto v = env("MEZITE_RECORDING_ENC_KEY")) {
    MEZ_RETURN_IF_ERROR(SetEncryptionKey(&rec, "MEZITE_RECORDING_ENC_KEY", *v));
  }
  if (auto v = env("MEZITE_RECORDING_FORMATS")) {
    // "shell=asciicast,exec=asciicast,tcpip=none"
    size_t pos = 0;
    while (pos <= v->size()) {
      size_t comma = v->find(',', pos);
      if (comma == std::string::npos) comma = v->size();
      std::string item = v->substr(pos, comma - pos);
      size_t eq = item.find('=');
      if (eq == std::string::npos) {
        return KeyError(
            "MEZITE_RECORDING_FORMATS",
            "expected kind=format[,kind=format...], got '" + item + "'");
      }
      MEZ_RETURN_IF_ERROR(SetFormat(&rec, "MEZITE_RECORDING_FORMATS",
                                    item.substr(0, eq), item.substr(eq + 1)));
      pos = comma + 1;
    }
  }
  if (auto v = env("MEZITE_DB_URL")) cfg->db_url = *v;
  if (auto v = env("MEZITE_REPLICA_LEASE_TIMEOUT")) {
    MEZ_RETURN_IF_ERROR(
        SetLeaseTimeout("MEZITE_REPLICA_LEASE_TIMEOUT", *v, cfg));
  }
  if (auto v = env("MEZITE_RECORDING_BACKEND")) rec.backend = *v;
  ingest::S3Config& s3 = rec.s3;
  // The standard AWS variables first, so that MEZITE_S3_* win. Keys from
  // the file win over AWS_* too: explicit configuration comes first in the
  // AWS credentials chain. With no keys at all, mezrecd walks the rest of
  // the chain (shared file, ECS, EC2 metadata) at start.
  if (auto v = env("AWS_REGION")) s3.region = *v;
  if (s3.access_key.empty() && s3.secret_key.empty()) {
    if (auto v = env("AWS_ACCESS_KEY_ID")) s3.access_key = *v;
    if (auto v = env("AWS_SECRET_ACCESS_KEY")) s3.secret_key = *v;
    if (auto v = env("AWS_SESSION_TOKEN")) s3.session_token = *v;
  }
  if (auto v = env("MEZITE_S3_BUCKET")) s3.bucket = *v;
  if (auto v = env("MEZITE_S3_REGION")) s3.region = *v;
  // A session token belongs to the AWS_* pair; overriding either key drops
  // it.
  if (auto v = env("MEZITE_S3_ACCESS_KEY")) {
    s3.access_key = *v;
    s3.session_token.clear();
  }
  if (auto v = env("MEZITE_S3_SECRET_KEY")) {
    s3.secret_key = *v;
    s3.session_token.clear();
  }
  if (auto v = env("MEZITE_S3_PREFIX")) s3.prefix = *v;
  if (auto v = env("MEZITE_S3_ENDPOINT")) s3.endpoint = *v;
  if (auto v = env("MEZITE_S3_CA_FILE")) s3.ca_file = *v;
  if (auto v = env("MEZITE_S3_FORCE_PATH_STYLE")) {
    MEZ_ASSIGN_OR_RETURN(s3.force_path_style,
                         ParseBool("MEZITE_S3_FORCE_PATH_STYLE", *v));
  }
  if (auto v = env("MEZITE_PCAP_IDLE_TIMEOUT")) {
    auto d = ParseDuration(*v);
    if (!d.ok())
      return KeyError("MEZITE_PCAP_IDLE_TIMEOUT", d.status().message());
    rec.pcap_idle_timeout_us = *d;
  }
  if (auto v = env("MEZITE_SEEK_INDEX_MIN_BYTES")) {
    MEZ_RETURN_IF_ERROR(
        SetSeekIndexMinBytes("MEZITE_SEEK_INDEX_MIN_BYTES", *v, &rec));
  }
  if (auto v = env("MEZITE_ROLES")) {
    MEZ_ASSIGN_OR_RETURN(cfg->roles, ParseRoles("MEZITE_ROLES", *v));
  }
  if (auto v = env("MEZITE_PROXY_LISTEN")) cfg->proxy_listen = *v;
  if (auto v = env("MEZITE_IDENTITY")) cfg->identity = *v;
  for (const web::WebOptionName& n : web::WebOptionNames()) {
    if (auto v = env(n.env)) {
      MEZ_RETURN_IF_ERROR(web::SetWebOption(&cfg->web, n.yaml, *v, n.env));
    }
  }
  return Status::Ok();
}

const char* RealGetenv(const char* name) { return std::getenv(name); }

// The roles and proxy flags, then their checks.
Status ApplyProxyFlags(const ConfigFlags& flags, ServerConfig* cfg) {
  if (flags.roles) {
    MEZ_ASSIGN_OR_RETURN(cfg->roles, ParseRoles("--roles", *flags.roles));
  }
  if (flags.proxy_listen) cfg->proxy_listen = *flags.proxy_listen;
  if (flags.identity) cfg->identity = *flags.identity;
  if (!cfg->HasRole("auth") && cfg->identity.empty()) {
    return InvalidArgument(
        "roles: a proxy-only mezrecd (roles: proxy) needs --identity FILE "
        "(MEZITE_IDENTITY, yaml identity), a proxy identity from "
        "mezctl users add NAME --role=proxy --identity-out FILE; or use "
        "--roles auth,proxy");
  }
  if (cfg->HasRole("proxy")) {
    Status s = ValidateListenAddress(cfg->proxy_listen);
    if (!s.ok()) return InvalidArgument("proxy " + s.message());
  }
  return Status::Ok();
}

}  // namespace

Result<ServerConfig> LoadServerConfig(const ConfigFlags& flags,
                                      const char* (*getenv_fn)(const char*)) {
  ServerConfig cfg;
  if (!flags.config_path.empty()) {
    MEZ_RETURN_IF_ERROR(ApplyYaml(flags.config_path, &cfg));
  }
  MEZ_RETURN_IF_ERROR(ApplyEnv(getenv_fn ? getenv_fn : RealGetenv, &cfg));
  if (flags.data_dir) cfg.data_dir = *flags.data_dir;
  if (flags.listen) cfg.listen = *flags.listen;
  if (flags.tls_names) {
    MEZ_ASSIGN_OR_RETURN(cfg.tls_names,
                         ParseTlsNames("--tls-names", *flags.tls_names));
  }
  if (flags.insecure) cfg.insecure = *flags.insecure;
  if (flags.storage_path) cfg.recording.storage_path = *flags.storage_path;
  if (flags.gzip) cfg.recording.gzip = *flags.gzip;
  if (flags.log_level) cfg.log_level = *flags.log_level;
  if (flags.seek_index_min_bytes) {
    MEZ_RETURN_IF_ERROR(SetSeekIndexMinBytes(
        "--seek-index-min-bytes", *flags.seek_index_min_bytes, &cfg.recording));
  }
  for (const auto& [key, value] : flags.web) {
    std::string flag = key;
    for (const web::WebOptionName& n : web::WebOptionNames()) {
      if (key == n.yaml) flag = n.flag;
    }
    MEZ_RETURN_IF_ERROR(web::SetWebOption(&cfg.web, key, value, flag));
  }
  MEZ_RETURN_IF_ERROR(web::ValidateWebConfig(cfg.web));
  if (flags.replica_lease_timeout) {
    MEZ_RETURN_IF_ERROR(SetLeaseTimeout("--replica-lease-timeout",
                                        *flags.replica_lease_timeout, &cfg));
  }

  if (cfg.data_dir.empty() || cfg.data_dir[0] != '/') {
    return InvalidArgument("data dir '" + cfg.data_dir +
                           "' must be an absolute path");
  }
  while (cfg.data_dir.size() > 1 && cfg.data_dir.back() == '/') {
    cfg.data_dir.pop_back();
  }
  if (cfg.recording.storage_path.empty()) {
    cfg.recording.storage_path = cfg.data_dir + "/recordings";
  }
  if (cfg.recording.storage_path[0] != '/') {
    return InvalidArgument("storage path '" + cfg.recording.storage_path +
                           "' must be an absolute path");
  }
  const ingest::RecordingConfig& rec = cfg.recording;
  if (rec.backend != "local" && rec.backend != "s3") {
    return InvalidArgument("recording backend '" + rec.backend +
                           "' is not local or s3 (MEZITE_RECORDING_BACKEND, "
                           "recording.backend)");
  }
  if (rec.backend == "s3") {
    if (rec.s3.bucket.empty()) {
      return InvalidArgument(
          "the s3 recording backend needs MEZITE_S3_BUCKET (or "
          "recording.s3 in the config)");
    }
    // Neither key: the AWS credentials chain, resolved when the store
    // opens. Only one: a mistake.
    if (rec.s3.access_key.empty() != rec.s3.secret_key.empty()) {
      return InvalidArgument(
          std::string("the s3 recording backend needs ") +
          (rec.s3.access_key.empty() ? "MEZITE_S3_ACCESS_KEY"
                                     : "MEZITE_S3_SECRET_KEY") +
          " as well (or recording.s3 in the config), or neither key to use "
          "the AWS credentials chain");
    }
  }
  if (!cfg.db_url.empty() && cfg.db_url.rfind("postgres://", 0) != 0 &&
      cfg.db_url.rfind("postgresql://", 0) != 0) {
    return InvalidArgument(
        "MEZITE_DB_URL must be a postgres:// URL (leave it unset for the "
        "SQLite catalog in the data dir)");
  }
  MEZ_RETURN_IF_ERROR(ValidateListenAddress(cfg.listen));
  if (cfg.insecure && !IsLoopbackHost(cfg.listen)) {
    return InvalidArgument(
        "--insecure serves plaintext gRPC and is allowed only on loopback "
        "addresses (127.0.0.1, ::1); '" +
        cfg.listen + "' is not one. Drop --insecure to serve TLS.");
  }
  static const std::set<std::string> kLevels = {"debug", "info", "warn",
                                                "error"};
  if (kLevels.count(cfg.log_level) == 0) {
    return InvalidArgument("log level '" + cfg.log_level +
                           "' is not one of debug, info, warn, error");
  }
  MEZ_RETURN_IF_ERROR(ApplyProxyFlags(flags, &cfg));
  if (!cfg.web.listen.empty() && !cfg.HasRole("auth")) {
    return InvalidArgument(
        "web: the web UI is served by an auth mezrecd (roles auth or "
        "auth,proxy); drop --web-listen from this proxy-only one");
  }
  return cfg;
}

bool ServerConfig::HasRole(const std::string& role) const {
  for (const std::string& r : roles) {
    if (r == role) return true;
  }
  return false;
}

}  // namespace mez::server
