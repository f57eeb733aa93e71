// The web UI's listener settings (docs/web.md): yaml `web:` block,
// MEZITE_WEB_* variables and --web-* flags, all through SetWebOption so
// that the three layers share one parser and one set of messages.
#ifndef MEZ_WEB_WEB_CONFIG_H_
#define MEZ_WEB_WEB_CONFIG_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "libmez/util/status.h"

namespace mez::web {

struct WebConfig {
  // HOST:PORT (IP literal); empty: the web UI is off (the default).
  std::string listen;
  // An operator's certificate chain and key (PEM files); both empty: the
  // cluster's TLS certificate.
  std::string cert_file;
  std::string key_file;
  // Plain HTTP for a TLS-terminating proxy in front; loopback only.
  bool insecure_http = false;
  // The URL users open ("https://mez.example.com"); empty: derived from
  // the listen address (https://HOST:PORT).
  std::string public_url;
  // Peers whose X-Forwarded-For/-Proto are believed (IP literals).
  std::vector<std::string> trusted_proxies;
  // Lifetime of a sign-in code (at most 60 s).
  int64_t code_ttl_us = 60'000'000;
};

// The option names, as yaml keys under `web:`; the flag is --web-<kebab>
// and the variable MEZITE_WEB_<UPPER_SNAKE> (the table in docs/web.md).
struct WebOptionName {
  const char* yaml;
  const char* flag;
  const char* env;
};
const std::vector<WebOptionName>& WebOptionNames();

// Sets option `yaml_key` (a WebOptionNames().yaml) from `value`;
// `where` names the source in errors ("web.listen", "--web-listen",
// "MEZITE_WEB_LISTEN").
Status SetWebOption(WebConfig* config, const std::string& yaml_key,
                    const std::string& value, const std::string& where);

// Checks a complete configuration (after all layers): the listen address,
// insecure HTTP only on loopback, cert and key together, the public URL.
Status ValidateWebConfig(const WebConfig& config);

// The public URL without a trailing '/': `public_url`, or
// https://HOST:PORT of `bound` (the listen address with its real port).
std::string PublicUrl(const WebConfig& config, const std::string& bound);

}  // namespace mez::web

#endif  // MEZ_WEB_WEB_CONFIG_H_
