#include "libmez/store/s3_credentials.h"

#include <curl/curl.h>
#include <errno.h>
#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "libmez/util/file.h"
#include "libmez/util/log.h"

namespace mez::store {
namespace {

constexpr size_t kMaxCredentialsFile = 1 << 20;
constexpr size_t kMaxMetadataBody = 64 << 10;
constexpr int64_t kRetryFailedRefreshS = 10;

int64_t NowSeconds(Clock* clock) { return clock->WallMicros() / 1'000'000; }

class Static : public CredentialsProvider {
 public:
  Static(AwsCredentials cred, std::string source)
      : cred_(std::move(cred)), source_(std::move(source)) {}
  Result<AwsCredentials> Get() override { return cred_; }
  std::string source() const override { return source_; }

 private:
  AwsCredentials cred_;
  std::string source_;
};

class Refreshing : public CredentialsProvider {
 public:
  Refreshing(std::function<Result<AwsCredentials>()> fetch, std::string source,
             Clock* clock, int64_t margin)
      : fetch_(std::move(fetch)),
        source_(std::move(source)),
        clock_(clock),
        margin_(margin) {}

  Result<AwsCredentials> Get() override {
    std::unique_lock<std::mutex> lock(mu_);
    int64_t now = NowSeconds(clock_);
    if (cred_ && now < refresh_at_) return *cred_;
    if (fetching_) {
      // Another caller is fetching: valid keys are good enough meanwhile.
      if (cred_ && Valid(now)) return *cred_;
      cv_.wait(lock, [this] { return !fetching_; });
      if (cred_ && Valid(NowSeconds(clock_))) return *cred_;
      return last_error_;
    }
    fetching_ = true;
    lock.unlock();
    Result<AwsCredentials> got = fetch_();
    lock.lock();
    fetching_ = false;
    cv_.notify_all();
    now = NowSeconds(clock_);
    if (got.ok() && got->expiration && *got->expiration <= now) {
      got = Status(Code::kUnavailable,
                   "credentials from " + source_ + " had already expired");
    }
    if (got.ok()) {
      cred_ = *got;
      refresh_at_ = RefreshAt(now, cred_->expiration);
      return *cred_;
    }
    last_error_ = got.status();
    if (cred_ && Valid(now)) {
      MEZ_LOG(kWarning) << "refreshing S3 credentials from " << source_ << ": "
                        << got.status().ToString()
                        << "; using the current ones until they expire";
      refresh_at_ = now + kRetryFailedRefreshS;
      return *cred_;
    }
    return last_error_;
  }

  std::string source() const override { return source_; }

 private:
  bool Valid(int64_t now) const {
    return !cred_->expiration || now < *cred_->expiration;
  }
  int64_t RefreshAt(int64_t now, std::optional<int64_t> expiration) const {
    if (!expiration) return std::numeric_limits<int64_t>::max();
    int64_t at = *expiration - margin_;
    if (at > now) return at;
    // Shorter-lived than the margin: refresh half way.
    return now + std::max<int64_t>(1, (*expiration - now) / 2);
  }

  std::function<Result<AwsCredentials>()> fetch_;
  std::string source_;
  Clock* clock_;
  int64_t margin_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<AwsCredentials> cred_;  // Guarded by mu_, as below.
  int64_t refresh_at_ = 0;
  bool fetching_ = false;
  Status last_error_;
};

// ------------------------------------------------------------ HTTP

struct HttpReply {
  long status = 0;
  std::string body;
};

size_t CollectBody(char* data, size_t size, size_t n, void* user) {
  auto* out = static_cast<std::string*>(user);
  if (out->size() + size * n > kMaxMetadataBody) return 0;
  out->append(data, size * n);
  return size * n;
}

std::once_flag curl_once;

// One request with a short total timeout, never through a proxy. A
// connection failure or timeout is kUnavailable.
Result<HttpReply> HttpCall(const std::string& method, const std::string& url,
                           const std::vector<std::string>& headers,
                           int timeout_ms) {
  std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  CURL* h = curl_easy_init();
  if (h == nullptr) return Internal("curl_easy_init failed");
  struct curl_slist* list = nullptr;
  for (const std::string& line : headers) {
    list = curl_slist_append(list, line.c_str());
  }
  HttpReply reply;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout_ms));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, CollectBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply.body);
  if (method == "PUT") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
  }
  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply.status);
  curl_slist_free_all(list);
  std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
  curl_easy_cleanup(h);
  if (rc != CURLE_OK) {
    return Status(Code::kUnavailable, method + " " + url + ": " + detail +
                                          " (timeout " +
                                          std::to_string(timeout_ms) + " ms)");
  }
  return reply;
}

// ------------------------------------------------------------ sources

using Env = std::function<const char*(const char*)>;

std::optional<std::string> Lookup(const Env& env, const char* name) {
  const char* v = env(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  return std::string(v);
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return std::string(s);
}

std::string Lower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

// What one step of the chain found.
struct Step {
  std::unique_ptr<CredentialsProvider> provider;  // Set: use it.
  Status error;      // Not ok: configured but broken; stop.
  std::string note;  // Otherwise: why it was skipped.
};

Step Skip(std::string note) {
  Step s;
  s.note = std::move(note);
  return s;
}
Step Fail(Status error) {
  Step s;
  s.error = std::move(error);
  return s;
}
Step Use(std::unique_ptr<CredentialsProvider> p) {
  Step s;
  s.provider = std::move(p);
  return s;
}

Step FromEnvironment(const Env& env) {
  auto id = Lookup(env, "AWS_ACCESS_KEY_ID");
  auto secret = Lookup(env, "AWS_SECRET_ACCESS_KEY");
  if (!id && !secret) return Skip("environment: AWS_ACCESS_KEY_ID unset");
  if (!id || !secret) {
    return Fail(InvalidArgument(
        std::string("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set "
                    "together; only ") +
        (id ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY") + " is"));
  }
  AwsCredentials c{*id, *secret, Lookup(env, "AWS_SESSION_TOKEN").value_or(""),
                   std::nullopt};
  return Use(
      StaticCredentials(std::move(c), "environment (AWS_ACCESS_KEY_ID)"));
}

Step FromSharedFile(const Env& env) {
  std::string path;
  if (auto f = Lookup(env, "AWS_SHARED_CREDENTIALS_FILE")) {
    path = *f;
  } else if (auto home = Lookup(env, "HOME")) {
    path = *home + "/.aws/credentials";
  } else {
    return Skip("shared credentials file: HOME unset");
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT)
      return Skip("shared credentials file " + path + ": absent");
    return Fail(ErrnoStatus("shared credentials file " + path, errno));
  }
  if (st.st_size > static_cast<off_t>(kMaxCredentialsFile)) {
    return Fail(
        InvalidArgument("shared credentials file " + path + " is over 1 MiB"));
  }
  auto text = ReadFile(path);
  if (!text.ok()) return Fail(text.status());
  auto ini = ParseIni(*text);
  if (!ini.ok()) {
    return Fail(InvalidArgument("malformed shared credentials file " + path +
                                ": " + ini.status().message()));
  }
  auto named = Lookup(env, "AWS_PROFILE");
  std::string profile = named.value_or("default");
  std::string where = path + " [" + profile + "]";
  auto it = ini->find(profile);
  if (it == ini->end()) {
    if (named) {
      return Fail(NotFound("AWS_PROFILE names profile '" + profile +
                           "', which " + path + " does not have"));
    }
    return Skip("shared credentials file " + path + ": no [default] profile");
  }
  const auto& keys = it->second;
  auto get = [&keys](const char* k) -> std::string {
    auto kv = keys.find(k);
    return kv == keys.end() ? "" : kv->second;
  };
  std::string id = get("aws_access_key_id");
  std::string secret = get("aws_secret_access_key");
  if (id.empty() && secret.empty()) {
    return Skip("shared credentials file " + where +
                ": no aws_access_key_id (role_arn, sso and "
                "credential_process profiles are not supported)");
  }
  if (id.empty() || secret.empty()) {
    return Fail(InvalidArgument(
        "profile " + where + " has " +
        (id.empty() ? "aws_secret_access_key but no aws_access_key_id"
                    : "aws_access_key_id but no aws_secret_access_key")));
  }
  AwsCredentials c{id, secret, get("aws_session_token"), std::nullopt};
  return Use(
      StaticCredentials(std::move(c), "shared credentials file " + where));
}

// Hosts to which plain http is allowed for a full container URI: loopback
// and the ECS / EKS Pod Identity agents.
bool AllowedHttpHost(std::string host) {
  if (host.starts_with("[")) {
    size_t end = host.find(']');
    if (end == std::string::npos) return false;
    host = host.substr(1, end - 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  host = Lower(host);
  if (host == "localhost" || host == "::1" || host == "169.254.170.2" ||
      host == "169.254.170.23" || host == "fd00:ec2::23") {
    return true;
  }
  // 127.0.0.0/8, as a dotted quad.
  if (!host.starts_with("127.")) return false;
  int dots = 0;
  for (char c : host) {
    if (c == '.') {
      ++dots;
    } else if (c < '0' || c > '9') {
      return false;
    }
  }
  return dots == 3;
}

Step FromContainer(const CredentialChainOptions& o, const Env& env,
                   Clock* clock) {
  auto relative = Lookup(env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
  auto full = Lookup(env, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
  if (!relative && !full) {
    return Skip(
        "ECS container credentials: AWS_CONTAINER_CREDENTIALS_"
        "RELATIVE_URI and _FULL_URI unset");
  }
  std::string url;
  if (relative) {
    if (!relative->starts_with("/")) {
      return Fail(InvalidArgument("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI '" +
                                  *relative + "' does not start with '/'"));
    }
    url = o.ecs_base + *relative;
  } else {
    url = *full;
    std::string lower = Lower(url);
    bool ok = lower.starts_with("https://") && url.size() > 8;
    if (lower.starts_with("http://")) {
      std::string rest = url.substr(7);
      ok = AllowedHttpHost(rest.substr(0, rest.find_first_of("/?#")));
    }
    if (!ok || url.find_first_of(" \r\n") != std::string::npos) {
      return Fail(
          InvalidArgument("AWS_CONTAINER_CREDENTIALS_FULL_URI '" + url +
                          "' must be https, or http to a loopback address"));
    }
  }
  auto token = Lookup(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
  auto token_file = Lookup(env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
  int timeout = o.metadata_timeout_ms;
  auto fetch = [url, token, token_file, timeout]() -> Result<AwsCredentials> {
    std::vector<std::string> headers;
    std::string auth = token.value_or("");
    if (token_file) {
      MEZ_ASSIGN_OR_RETURN(auth, ReadFile(*token_file));
      while (!auth.empty() && auth.back() == '\n') auth.pop_back();
      auth = Trim(auth);
    }
    if (auth.find_first_of("\r\n") != std::string::npos) {
      return InvalidArgument("the container authorization token has a newline");
    }
    if (!auth.empty()) headers.push_back("Authorization: " + auth);
    MEZ_ASSIGN_OR_RETURN(HttpReply r, HttpCall("GET", url, headers, timeout));
    if (r.status != 200) {
      return Status(Code::kUnavailable, "GET " + url + " answered HTTP " +
                                            std::to_string(r.status));
    }
    return ParseCredentialsJson(r.body, "ECS container credentials at " + url);
  };
  std::string source = "ECS container credentials (" + url + ")";
  auto provider =
      RefreshingCredentials(fetch, source, clock, o.refresh_margin_s);
  auto first = provider->Get();
  if (!first.ok()) return Fail(first.status().WithContext(source));
  return Use(std::move(provider));
}

Step FromInstanceMetadata(const CredentialChainOptions& o, const Env& env,
                          Clock* clock) {
  auto disabled = Lookup(env, "AWS_EC2_METADATA_DISABLED");
  if (disabled && Lower(*disabled) == "true") {
    return Skip("EC2 instance metadata: AWS_EC2_METADATA_DISABLED=true");
  }
  std::string base = Lookup(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT")
                         .value_or("http://169.254.169.254");
  while (base.ends_with("/")) base.pop_back();
  std::string lower = Lower(base);
  if (!lower.starts_with("http://") && !lower.starts_with("https://")) {
    return Fail(InvalidArgument("AWS_EC2_METADATA_SERVICE_ENDPOINT '" + base +
                                "' is not an http(s) URL"));
  }
  int timeout = o.metadata_timeout_ms;
  // Whether the first request reached the service at all: if not, this is
  // simply not an EC2 instance.
  auto reached = std::make_shared<bool>(false);
  auto fetch = [base, timeout, reached]() -> Result<AwsCredentials> {
    MEZ_ASSIGN_OR_RETURN(
        HttpReply tok,
        HttpCall("PUT", base + "/latest/api/token",
                 {"X-aws-ec2-metadata-token-ttl-seconds: 21600"}, timeout));
    *reached = true;
    if (tok.status != 200 || tok.body.empty() ||
        tok.body.find_first_of("\r\n") != std::string::npos) {
      return Status(Code::kUnavailable,
                    "PUT " + base + "/latest/api/token answered HTTP " +
                        std::to_string(tok.status) +
                        (tok.status == 200 ? " with a bad token" : ""));
    }
    std::vector<std::string> h = {"X-aws-ec2-metadata-token: " + tok.body};
    std::string dir = base + "/latest/meta-data/iam/security-credentials/";
    MEZ_ASSIGN_OR_RETURN(HttpReply list, HttpCall("GET", dir, h, timeout));
    if (list.status == 404) {
      return FailedPrecondition("no IAM role is attached to this instance (" +
                                dir + " answered 404)");
    }
    if (list.status != 200) {
      return Status(Code::kUnavailable, "GET " + dir + " answered HTTP " +
                                            std::to_string(list.status));
    }
    std::string role = Trim(list.body.substr(0, list.body.find('\n')));
    if (role.empty() || role.find_first_of("/?#% ") != std::string::npos) {
      return DataLoss("GET " + dir + " named no usable role");
    }
    MEZ_ASSIGN_OR_RETURN(HttpReply cred,
                         HttpCall("GET", dir + role, h, timeout));
    if (cred.status != 200) {
      return Status(Code::kUnavailable, "GET " + dir + role +
                                            " answered HTTP " +
                                            std::to_string(cred.status));
    }
    return ParseCredentialsJson(cred.body,
                                "EC2 instance metadata role " + role);
  };
  std::string source = "EC2 instance metadata (" + base + ")";
  auto provider =
      RefreshingCredentials(fetch, source, clock, o.refresh_margin_s);
  auto first = provider->Get();
  if (first.ok()) return Use(std::move(provider));
  if (!*reached) {
    return Skip("EC2 instance metadata " + base + ": no answer (" +
                first.status().message() + ")");
  }
  return Fail(first.status().WithContext(source));
}

}  // namespace

std::unique_ptr<CredentialsProvider> StaticCredentials(AwsCredentials cred,
                                                       std::string source) {
  return std::make_unique<Static>(std::move(cred), std::move(source));
}

std::unique_ptr<CredentialsProvider> RefreshingCredentials(
    std::function<Result<AwsCredentials>()> fetch, std::string source,
    Clock* clock, int64_t refresh_margin_s) {
  return std::make_unique<Refreshing>(std::move(fetch), std::move(source),
                                      clock ? clock : RealClock(),
                                      refresh_margin_s);
}

Result<IniFile> ParseIni(std::string_view text) {
  IniFile ini;
  std::map<std::string, std::string>* section = nullptr;
  bool after_key = false;  // The previous content line was a key.
  size_t line_no = 0;
  size_t pos = 0;
  auto bad = [&line_no](const std::string& what) {
    return InvalidArgument("line " + std::to_string(line_no) + ": " + what);
  };
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(
        pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (line.find('\0') != std::string_view::npos) return bad("NUL byte");
    std::string trimmed = Trim(line);
    if (trimmed.empty() || trimmed[0] == '#' || trimmed[0] == ';') continue;
    if (line[0] == ' ' || line[0] == '\t') {
      // Continues the previous key (a nested block); not a credential.
      if (!after_key)
        return bad("indented line '" + trimmed + "' after no key");
      continue;
    }
    if (trimmed[0] == '[') {
      if (trimmed.back() != ']') return bad("section header without ']'");
      std::string name =
          Trim(std::string_view(trimmed).substr(1, trimmed.size() - 2));
      if (name.empty()) return bad("empty section name");
      section = &ini[name];
      after_key = false;
      continue;
    }
    size_t eq = trimmed.find('=');
    if (eq == std::string::npos) {
      return bad("expected [section] or key = value, got '" + trimmed + "'");
    }
    if (section == nullptr) return bad("key before any [section]");
    std::string key = Lower(Trim(std::string_view(trimmed).substr(0, eq)));
    if (key.empty()) return bad("empty key");
    (*section)[key] = Trim(std::string_view(trimmed).substr(eq + 1));
    after_key = true;
  }
  return ini;
}

Result<int64_t> ParseIso8601(std::string_view s) {
  auto bad = [s] {
    return DataLoss("bad timestamp '" + std::string(s.substr(0, 64)) + "'");
  };
  // YYYY-MM-DDTHH:MM:SS
  if (s.size() < 20) return bad();
  auto num = [s](size_t at, size_t n, int* out) {
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
  };
  int y, mo, d, h, mi, sec;
  if (!num(0, 4, &y) || s[4] != '-' || !num(5, 2, &mo) || s[7] != '-' ||
      !num(8, 2, &d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !num(11, 2, &h) || s[13] != ':' || !num(14, 2, &mi) || s[16] != ':' ||
      !num(17, 2, &sec)) {
    return bad();
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) {
    return bad();
  }
  size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == start) return bad();
  }
  int64_t offset = 0;
  std::string_view zone = s.substr(i);
  if (zone == "Z" || zone == "z") {
    offset = 0;
  } else if (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') &&
             zone[3] == ':') {
    int oh, om;
    if (!num(i + 1, 2, &oh) || !num(i + 4, 2, &om) || oh > 23 || om > 59) {
      return bad();
    }
    offset = (zone[0] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
  } else {
    return bad();
  }
  struct tm tm = {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  return static_cast<int64_t>(timegm(&tm)) - offset;
}

Result<AwsCredentials> ParseCredentialsJson(std::string_view body,
                                            const std::string& what) {
  nlohmann::json doc =
      nlohmann::json::parse(body.begin(), body.end(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return DataLoss(what + " answered something that is not a JSON object");
  }
  auto text = [&doc](const char* key) -> std::optional<std::string> {
    auto it = doc.find(key);
    if (it == doc.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  if (auto code = text("Code"); code && *code != "Success") {
    return DataLoss(what + " reports " + *code + ": " +
                    text("Message").value_or("no message"));
  }
  AwsCredentials c;
  auto id = text("AccessKeyId");
  auto secret = text("SecretAccessKey");
  if (!id || id->empty() || !secret || secret->empty()) {
    return DataLoss(what + " answered no AccessKeyId or SecretAccessKey");
  }
  c.access_key = *id;
  c.secret_key = *secret;
  c.session_token = text("Token").value_or("");
  if (c.session_token.find_first_of("\r\n") != std::string::npos) {
    return DataLoss(what + " answered a Token with a newline");
  }
  if (doc.contains("Expiration")) {
    auto exp = text("Expiration");
    if (!exp) return DataLoss(what + " answered a non-string Expiration");
    auto t = ParseIso8601(*exp);
    if (!t.ok()) return t.status().WithContext(what + " Expiration");
    c.expiration = *t;
  }
  return c;
}

Result<std::unique_ptr<CredentialsProvider>> ResolveCredentials(
    const CredentialChainOptions& o) {
  bool has_id = !o.explicit_access_key.empty();
  bool has_secret = !o.explicit_secret_key.empty();
  if (has_id && has_secret) {
    return StaticCredentials({o.explicit_access_key, o.explicit_secret_key,
                              o.explicit_session_token, std::nullopt},
                             "MEZITE_S3_ACCESS_KEY");
  }
  if (has_id != has_secret) {
    return InvalidArgument(has_id
                               ? "no S3 secret key: set MEZITE_S3_SECRET_KEY"
                               : "no S3 access key: set MEZITE_S3_ACCESS_KEY");
  }
  Env env =
      o.getenv ? o.getenv : Env([](const char* n) { return ::getenv(n); });
  Clock* clock = o.clock ? o.clock : RealClock();
  std::vector<std::string> notes = {"MEZITE_S3_ACCESS_KEY unset"};
  std::vector<std::function<Step()>> steps = {
      [&] { return FromEnvironment(env); },
      [&] { return FromSharedFile(env); },
      [&] { return FromContainer(o, env, clock); },
      [&] { return FromInstanceMetadata(o, env, clock); },
  };
  for (const auto& step : steps) {
    Step s = step();
    if (s.provider) {
      MEZ_LOG(kInfo) << "S3 credentials from " << s.provider->source();
      return std::move(s.provider);
    }
    if (!s.error.ok()) {
      return Status(s.error.code(), "S3 credentials: " + s.error.message() +
                                        " (or set MEZITE_S3_ACCESS_KEY and "
                                        "MEZITE_S3_SECRET_KEY)");
    }
    notes.push_back(s.note);
  }
  std::string tried;
  for (const std::string& n : notes) tried += "; " + n;
  return FailedPrecondition(
      "no S3 credentials: set MEZITE_S3_ACCESS_KEY and MEZITE_S3_SECRET_KEY "
      "(or recording.s3.accessKey/secretKey), or provide them through the "
      "AWS chain, which found none (tried: " +
      tried.substr(2) + ")");
}

}  // namespace mez::store
