#include "libmez/store/s3_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "libmez/util/log.h"

namespace mez::store {

// ---------------------------------------------------------------- XML

namespace {

constexpr int kMaxXmlDepth = 32;
constexpr size_t kMaxXmlElements = 100'000;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A recursive-descent parser for the subset of XML that S3 sends.
class XmlParser {
 public:
  explicit XmlParser(std::string_view s) : s_(s) {}

  Result<XmlElement> Parse() {
    MEZ_RETURN_IF_ERROR(SkipMisc());
    if (!Starts("<")) return Bad("no root element");
    XmlElement root;
    MEZ_RETURN_IF_ERROR(ParseElement(&root, 0));
    MEZ_RETURN_IF_ERROR(SkipMisc());
    if (pos_ != s_.size()) return Bad("data after the root element");
    return root;
  }

 private:
  Status Bad(const std::string& what) const {
    return DataLoss("malformed XML at byte " + std::to_string(pos_) + ": " +
                    what);
  }
  bool Starts(std::string_view p) const {
    return s_.substr(pos_, p.size()) == p;
  }
  void SkipSpace() {
    while (pos_ < s_.size() && IsSpace(s_[pos_])) ++pos_;
  }
  // Skips past `end`, or fails.
  Status SkipPast(std::string_view end) {
    size_t at = s_.find(end, pos_);
    if (at == std::string_view::npos) return Bad("unterminated construct");
    pos_ = at + end.size();
    return Status::Ok();
  }
  // Whitespace, <?...?>, <!--...--> and <!DOCTYPE ...> around the root.
  Status SkipMisc() {
    for (;;) {
      SkipSpace();
      if (Starts("<?")) {
        MEZ_RETURN_IF_ERROR(SkipPast("?>"));
      } else if (Starts("<!--")) {
        MEZ_RETURN_IF_ERROR(SkipPast("-->"));
      } else if (Starts("<!DOCTYPE")) {
        MEZ_RETURN_IF_ERROR(SkipPast(">"));
      } else {
        return Status::Ok();
      }
    }
  }
  std::string_view ParseName() {
    size_t start = pos_;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (IsSpace(c) || c == '/' || c == '>' || c == '=' || c == '<' ||
          c == '"' || c == '\'' || c == '&') {
        break;
      }
      ++pos_;
    }
    return s_.substr(start, pos_ - start);
  }
  static std::string LocalName(std::string_view name) {
    size_t colon = name.rfind(':');
    return std::string(
        colon == std::string_view::npos ? name : name.substr(colon + 1));
  }
  Status DecodeText(std::string_view text, std::string* out) {
    size_t i = 0;
    while (i < text.size()) {
      char c = text[i];
      if (c != '&') {
        *out += c;
        ++i;
        continue;
      }
      size_t semi = text.find(';', i);
      if (semi == std::string_view::npos || semi - i > 12) {
        return Bad("bad entity reference");
      }
      std::string_view ent = text.substr(i + 1, semi - i - 1);
      i = semi + 1;
      if (ent == "amp") {
        *out += '&';
      } else if (ent == "lt") {
        *out += '<';
      } else if (ent == "gt") {
        *out += '>';
      } else if (ent == "quot") {
        *out += '"';
      } else if (ent == "apos") {
        *out += '\'';
      } else if (ent.size() >= 2 && ent[0] == '#') {
        bool hex = ent[1] == 'x';
        std::string_view digits = ent.substr(hex ? 2 : 1);
        if (digits.empty()) return Bad("empty character reference");
        uint32_t cp = 0;
        for (char d : digits) {
          int v;
          if (d >= '0' && d <= '9') {
            v = d - '0';
          } else if (hex && d >= 'a' && d <= 'f') {
            v = d - 'a' + 10;
          } else if (hex && d >= 'A' && d <= 'F') {
            v = d - 'A' + 10;
          } else {
            return Bad("bad character reference");
          }
          cp = cp * (hex ? 16 : 10) + static_cast<uint32_t>(v);
          if (cp > 0x10FFFF) return Bad("character reference out of range");
        }
        if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) {
          return Bad("invalid character reference");
        }
        AppendUtf8(cp, out);
      } else {
        return Bad("unknown entity &" + std::string(ent) + ";");
      }
    }
    return Status::Ok();
  }

  // At '<' of a start tag; returns past its end tag.
  Status ParseElement(XmlElement* el, int depth) {
    if (depth >= kMaxXmlDepth) return Bad("elements nested too deeply");
    if (++elements_ > kMaxXmlElements) return Bad("too many elements");
    ++pos_;
    std::string_view name = ParseName();
    if (name.empty()) return Bad("element without a name");
    el->name = LocalName(name);
    for (;;) {  // Attributes, skipped.
      SkipSpace();
      if (pos_ >= s_.size()) return Bad("unterminated start tag");
      if (Starts("/>")) {
        pos_ += 2;
        return Status::Ok();
      }
      if (s_[pos_] == '>') {
        ++pos_;
        break;
      }
      if (ParseName().empty()) return Bad("bad attribute");
      SkipSpace();
      if (!Starts("=")) return Bad("attribute without a value");
      ++pos_;
      SkipSpace();
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'')) {
        return Bad("unquoted attribute value");
      }
      char quote = s_[pos_++];
      size_t end = s_.find(quote, pos_);
      if (end == std::string_view::npos) return Bad("unterminated attribute");
      pos_ = end + 1;
    }
    for (;;) {  // Content.
      if (pos_ >= s_.size()) return Bad("unclosed <" + el->name + ">");
      if (s_[pos_] != '<') {
        size_t end = s_.find('<', pos_);
        if (end == std::string_view::npos) {
          return Bad("unclosed <" + el->name + ">");
        }
        MEZ_RETURN_IF_ERROR(DecodeText(s_.substr(pos_, end - pos_), &el->text));
        pos_ = end;
      } else if (Starts("</")) {
        pos_ += 2;
        if (LocalName(ParseName()) != el->name)
          return Bad("mismatched end tag");
        SkipSpace();
        if (!Starts(">")) return Bad("bad end tag");
        ++pos_;
        return Status::Ok();
      } else if (Starts("<!--")) {
        MEZ_RETURN_IF_ERROR(SkipPast("-->"));
      } else if (Starts("<![CDATA[")) {
        size_t start = pos_ + 9;
        MEZ_RETURN_IF_ERROR(SkipPast("]]>"));
        el->text.append(s_.substr(start, pos_ - 3 - start));
      } else if (Starts("<?")) {
        MEZ_RETURN_IF_ERROR(SkipPast("?>"));
      } else {
        el->children.emplace_back();
        MEZ_RETURN_IF_ERROR(ParseElement(&el->children.back(), depth + 1));
      }
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
  size_t elements_ = 0;
};

Result<uint64_t> ParseSize(const std::string& s) {
  if (s.empty() || s.size() > 19)
    return DataLoss("bad object size '" + s + "'");
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return DataLoss("bad object size '" + s + "'");
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

Status WrongRoot(const XmlElement& root, std::string_view want) {
  return DataLoss("S3 answered <" + root.name + "> where <" +
                  std::string(want) + "> was expected");
}

}  // namespace

const XmlElement* XmlElement::Child(std::string_view child_name) const {
  for (const XmlElement& c : children) {
    if (c.name == child_name) return &c;
  }
  return nullptr;
}

std::string XmlElement::ChildText(std::string_view child_name) const {
  const XmlElement* c = Child(child_name);
  return c ? c->text : std::string();
}

Result<XmlElement> ParseXml(std::string_view doc) {
  return XmlParser(doc).Parse();
}

std::optional<S3ErrorBody> ParseS3Error(std::string_view body) {
  auto doc = ParseXml(body);
  if (!doc.ok() || doc->name != "Error") return std::nullopt;
  return S3ErrorBody{doc->ChildText("Code"), doc->ChildText("Message")};
}

Result<ListPage> ParseListObjectsV2(std::string_view body) {
  MEZ_ASSIGN_OR_RETURN(XmlElement doc, ParseXml(body));
  if (doc.name != "ListBucketResult") return WrongRoot(doc, "ListBucketResult");
  ListPage page;
  for (const XmlElement& c : doc.children) {
    if (c.name == "Contents") {
      S3Object obj;
      obj.key = c.ChildText("Key");
      if (obj.key.empty()) return DataLoss("listed object without a key");
      MEZ_ASSIGN_OR_RETURN(obj.size, ParseSize(c.ChildText("Size")));
      obj.etag = c.ChildText("ETag");
      page.objects.push_back(std::move(obj));
    } else if (c.name == "CommonPrefixes") {
      page.common_prefixes.push_back(c.ChildText("Prefix"));
    }
  }
  page.truncated = doc.ChildText("IsTruncated") == "true";
  page.next_continuation_token = doc.ChildText("NextContinuationToken");
  if (page.truncated && page.next_continuation_token.empty()) {
    return DataLoss("truncated listing without a NextContinuationToken");
  }
  return page;
}

Result<std::vector<MultipartUpload>> ParseListMultipartUploads(
    std::string_view body) {
  MEZ_ASSIGN_OR_RETURN(XmlElement doc, ParseXml(body));
  if (doc.name != "ListMultipartUploadsResult") {
    return WrongRoot(doc, "ListMultipartUploadsResult");
  }
  std::vector<MultipartUpload> uploads;
  for (const XmlElement& c : doc.children) {
    if (c.name != "Upload") continue;
    uploads.push_back({c.ChildText("Key"), c.ChildText("UploadId")});
  }
  return uploads;
}

// ---------------------------------------------------------------- HTTP

struct S3Client::Request {
  std::string method;
  std::string key;  // Empty: the bucket itself.
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string_view body;
};

struct S3Client::Response {
  long status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // Lowercase.

  std::string Header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
};

namespace {

constexpr size_t kMaxResponseBody = size_t{1} << 30;

std::string EncodedQuery(
    const std::vector<std::pair<std::string, std::string>>& query) {
  std::vector<std::pair<std::string, std::string>> q;
  for (const auto& [k, v] : query) {
    q.emplace_back(UriEncode(k, false), UriEncode(v, false));
  }
  std::sort(q.begin(), q.end());
  std::string out;
  for (const auto& [k, v] : q) {
    out += out.empty() ? "" : "&";
    out += k + "=" + v;
  }
  return out;
}

struct Body {
  std::string* out;
  bool overflow = false;
};

size_t WriteBody(char* data, size_t size, size_t n, void* user) {
  auto* b = static_cast<Body*>(user);
  if (b->out->size() + size * n > kMaxResponseBody) {
    b->overflow = true;
    return 0;
  }
  b->out->append(data, size * n);
  return size * n;
}

size_t WriteHeader(char* data, size_t size, size_t n, void* user) {
  auto* headers =
      static_cast<std::vector<std::pair<std::string, std::string>>*>(user);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {
    headers->clear();  // A new response (after 100 Continue or similar).
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(line.substr(0, colon));
  for (char& c : name) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && IsSpace(value.front())) value.remove_prefix(1);
  while (!value.empty() && IsSpace(value.back())) value.remove_suffix(1);
  headers->emplace_back(std::move(name), std::string(value));
  return size * n;
}

struct Upload {
  std::string_view data;
  size_t pos = 0;
};

size_t ReadBody(char* buf, size_t size, size_t n, void* user) {
  auto* u = static_cast<Upload*>(user);
  size_t len = std::min(size * n, u->data.size() - u->pos);
  std::copy_n(u->data.data() + u->pos, len, buf);
  u->pos += len;
  return len;
}

// Rewinds the upload when libcurl resends (redirect, auth, reconnect).
int SeekBody(void* user, curl_off_t offset, int origin) {
  auto* u = static_cast<Upload*>(user);
  if (origin != SEEK_SET || offset < 0 ||
      static_cast<size_t>(offset) > u->data.size()) {
    return CURL_SEEKFUNC_FAIL;
  }
  u->pos = static_cast<size_t>(offset);
  return CURL_SEEKFUNC_OK;
}

bool TransientCurl(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

bool TlsTrustError(CURLcode rc) {
  return rc == CURLE_PEER_FAILED_VERIFICATION ||
         rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM;
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::once_flag curl_init_once;

}  // namespace

Result<std::unique_ptr<S3Client>> S3Client::New(S3Options options) {
  if (options.bucket.empty()) {
    return InvalidArgument("no S3 bucket: set MEZITE_S3_BUCKET");
  }
  if (options.bucket.find('/') != std::string::npos) {
    return InvalidArgument("S3 bucket name '" + options.bucket +
                           "' contains '/': check MEZITE_S3_BUCKET");
  }
  if (options.credentials == nullptr) {
    CredentialChainOptions chain;
    chain.explicit_access_key = options.access_key;
    chain.explicit_secret_key = options.secret_key;
    chain.explicit_session_token = options.session_token;
    MEZ_ASSIGN_OR_RETURN(options.credentials, ResolveCredentials(chain));
  }
  if (options.region.empty()) {
    return InvalidArgument("no S3 region: set MEZITE_S3_REGION");
  }
  if (options.max_attempts < 1) options.max_attempts = 1;
  std::string endpoint = options.endpoint.empty()
                             ? "https://s3." + options.region + ".amazonaws.com"
                             : options.endpoint;
  while (endpoint.ends_with("/")) endpoint.pop_back();
  size_t sep = endpoint.find("://");
  std::string scheme = sep == std::string::npos ? "" : endpoint.substr(0, sep);
  std::string host = sep == std::string::npos ? "" : endpoint.substr(sep + 3);
  if ((scheme != "http" && scheme != "https") || host.empty() ||
      host.find_first_of("/?#@ ") != std::string::npos) {
    return InvalidArgument("S3 endpoint '" + options.endpoint +
                           "' is not http(s)://host[:port]: check "
                           "MEZITE_S3_ENDPOINT");
  }
  std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  return std::unique_ptr<S3Client>(
      new S3Client(std::move(options), std::move(scheme), std::move(host)));
}

S3Client::S3Client(S3Options options, std::string scheme, std::string host)
    : options_(std::move(options)),
      scheme_(std::move(scheme)),
      host_(std::move(host)) {}

S3Client::~S3Client() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* S3Client::TakeHandle() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void S3Client::ReturnHandle(void* handle) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(handle);
}

std::string S3Client::KeyForMessages() const {
  auto cred = options_.credentials->Get();
  std::string key = cred.ok() ? cred->access_key : "?";
  std::string source = options_.credentials->source();
  if (source == "MEZITE_S3_ACCESS_KEY") return "'" + key + "'";
  return "'" + key + "' (from " + source + ")";
}

std::string S3Client::Describe(const std::string& key) const {
  return "s3://" + options_.bucket + "/" + key;
}

Result<S3Client::Response> S3Client::Attempt(const Request& req,
                                             bool* transient) {
  *transient = false;
  std::string host =
      options_.force_path_style ? host_ : options_.bucket + "." + host_;
  std::string path = options_.force_path_style ? "/" + options_.bucket : "";
  if (!req.key.empty() || path.empty()) path += "/" + req.key;
  std::string url = scheme_ + "://" + host + UriEncode(path, true);
  std::string query = EncodedQuery(req.query);
  if (!query.empty()) url += "?" + query;

  auto cred = options_.credentials->Get();
  if (!cred.ok()) {
    return cred.status().WithContext("S3 credentials from " +
                                     options_.credentials->source());
  }
  auto now = std::chrono::system_clock::now();
  std::string amz_date = AmzDate(
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch())
          .count());
  SigV4Request sig;
  sig.method = req.method;
  sig.path = path;
  sig.query = req.query;
  sig.payload_sha256 = Sha256Hex(req.body);
  sig.headers = {{"host", host},
                 {"x-amz-date", amz_date},
                 {"x-amz-content-sha256", sig.payload_sha256}};
  if (!cred->session_token.empty()) {
    sig.headers.emplace_back("x-amz-security-token", cred->session_token);
  }
  for (const auto& h : req.headers) sig.headers.push_back(h);
  SigV4Credentials signing{cred->access_key, cred->secret_key, options_.region,
                           "s3"};

  struct curl_slist* list = nullptr;
  for (const auto& [name, value] : sig.headers) {
    list = curl_slist_append(list, (name + ": " + value).c_str());
  }
  list = curl_slist_append(
      list, ("Authorization: " + AuthorizationHeader(sig, signing, amz_date))
                .c_str());
  // No "Expect: 100-continue" round trip, and no form Content-Type on POST.
  list = curl_slist_append(list, "Expect:");
  list = curl_slist_append(list, "Content-Type:");

  CURL* h = static_cast<CURL*>(TakeHandle());
  if (h == nullptr) {
    curl_slist_free_all(list);
    return Internal("curl_easy_init failed");
  }
  curl_easy_reset(h);
  Response resp;
  Body body{&resp.body};
  Upload upload{req.body};
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);  // Keys are not normalized.
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout_ms));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(
      h, CURLOPT_LOW_SPEED_TIME,
      std::max(1L, static_cast<long>(options_.stall_timeout_ms / 1000)));
  if (!options_.ca_file.empty()) {
    curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());
  }
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, WriteHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &resp.headers);
  if (req.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (req.method == "GET") {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    if (req.method == "PUT" || req.method == "POST") {
      curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(h, CURLOPT_READFUNCTION, ReadBody);
      curl_easy_setopt(h, CURLOPT_READDATA, &upload);
      curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, SeekBody);
      curl_easy_setopt(h, CURLOPT_SEEKDATA, &upload);
      curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                       static_cast<curl_off_t>(req.body.size()));
    }
  }
  CURLcode rc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp.status);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);
  curl_slist_free_all(list);
  ReturnHandle(h);

  if (body.overflow) {
    return DataLoss("S3 response to " + req.method + " " + Describe(req.key) +
                    " is over 1 GiB");
  }
  if (rc != CURLE_OK) {
    std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (TlsTrustError(rc)) {
      return Status(Code::kUnavailable,
                    "TLS verification of S3 endpoint " + scheme_ + "://" +
                        host + " failed (" + detail +
                        "): check MEZITE_S3_CA_FILE and MEZITE_S3_ENDPOINT");
    }
    *transient = TransientCurl(rc);
    return Status(Code::kUnavailable, "cannot reach S3 endpoint " + scheme_ +
                                          "://" + host + " (" + detail +
                                          "): check MEZITE_S3_ENDPOINT");
  }
  return resp;
}

Result<S3Client::Response> S3Client::Execute(const Request& req) {
  static thread_local std::mt19937 rng{std::random_device{}()};
  Status last_error;
  std::optional<Response> last_response;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    bool transient = false;
    auto r = Attempt(req, &transient);
    if (r.ok()) {
      std::string code;
      if (r->status == 400 || r->status == 503) {
        if (auto e = ParseS3Error(r->body)) code = e->code;
      }
      bool retry = r->status >= 500 || r->status == 429 ||
                   code == "RequestTimeout" || code == "SlowDown";
      if (!retry) return r;
      last_response = std::move(r).value();
    } else {
      if (!transient) return r.status();
      last_error = r.status();
      last_response.reset();
    }
    if (attempt == options_.max_attempts) break;
    int64_t base = int64_t{options_.initial_backoff_ms} << (attempt - 1);
    std::uniform_int_distribution<int64_t> jitter(0, base / 2);
    MEZ_LOG(kWarning) << "S3 " << req.method << " " << Describe(req.key)
                      << ": attempt " << attempt << " failed ("
                      << (last_response
                              ? "HTTP " + std::to_string(last_response->status)
                              : last_error.message())
                      << "); retrying";
    std::this_thread::sleep_for(std::chrono::milliseconds(base + jitter(rng)));
  }
  if (last_response) return *last_response;
  return last_error.WithContext(
      "after " + std::to_string(options_.max_attempts) + " attempts");
}

Status S3Client::ErrorStatus(const Request& req, const Response& resp) const {
  auto err = ParseS3Error(resp.body);
  std::string code = err ? err->code : "";
  std::string what = req.method + " " + Describe(req.key);
  std::string detail = " (HTTP " + std::to_string(resp.status);
  if (err) detail += " " + err->code + ": " + err->message;
  detail += ")";
  if (code == "SignatureDoesNotMatch") {
    // Some servers (Swift's tempauth) answer this for an unknown access
    // key too, so name both settings, the secret first.
    return Status(Code::kUnauthenticated,
                  "S3 rejected the signature of " + what +
                      ": check MEZITE_S3_SECRET_KEY (and that "
                      "MEZITE_S3_ACCESS_KEY " +
                      KeyForMessages() + " is right)" + detail);
  }
  if (code == "InvalidAccessKeyId") {
    return Status(Code::kUnauthenticated,
                  "S3 does not know access key " + KeyForMessages() +
                      ": check MEZITE_S3_ACCESS_KEY" + detail);
  }
  if (code == "ExpiredToken" || code == "InvalidToken" ||
      code == "TokenRefreshRequired") {
    return Status(Code::kUnauthenticated,
                  "S3 rejected the session token of access key " +
                      KeyForMessages() + detail);
  }
  if (code == "AuthorizationHeaderMalformed" || code == "InvalidRegion" ||
      code == "IllegalLocationConstraintException") {
    return Status(Code::kFailedPrecondition,
                  "S3 expects another region than '" + options_.region +
                      "': check MEZITE_S3_REGION" + detail);
  }
  if (code == "NoSuchBucket") {
    return FailedPrecondition("bucket " + options_.bucket +
                              " does not exist: check MEZITE_S3_BUCKET" +
                              detail);
  }
  if (code == "NoSuchUpload") {
    // Our own upload, in progress: something outside mezrecd ended it (a
    // bucket being deleted aborts its uploads first; so can a lifecycle
    // rule).
    return NotFound("multipart upload for " + Describe(req.key) +
                    " no longer exists (aborted or completed outside "
                    "mezrecd: check that the bucket in MEZITE_S3_BUCKET "
                    "still exists and that no lifecycle rule aborts "
                    "uploads)" +
                    detail);
  }
  if (code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists") {
    return Status(Code::kAlreadyExists,
                  "bucket " + options_.bucket + " already exists" + detail);
  }
  if (code == "NoSuchKey" || (resp.status == 404 && code.empty())) {
    return NotFound("no object " + Describe(req.key));
  }
  if (resp.status == 403) {
    // HEAD answers carry no body, so a bad secret looks like this too.
    return PermissionDenied("S3 refused " + what +
                            ": check MEZITE_S3_ACCESS_KEY, "
                            "MEZITE_S3_SECRET_KEY and the bucket's policy" +
                            detail);
  }
  if (resp.status >= 500 || resp.status == 429) {
    return Status(Code::kUnavailable,
                  "S3 " + what + " failed after " +
                      std::to_string(options_.max_attempts) + " attempts" +
                      detail);
  }
  return IoError("S3 " + what + " failed" + detail);
}

// ---------------------------------------------------------------- API

Status S3Client::CreateBucket() {
  Request req{"PUT", "", {}, {}, {}};
  MEZ_ASSIGN_OR_RETURN(Response resp, Execute(req));
  if (resp.status / 100 == 2) return Status::Ok();
  return ErrorStatus(req, resp);
}

Status S3Client::DeleteBucket() {
  Request req{"DELETE", "", {}, {}, {}};
  MEZ_ASSIGN_OR_RETURN(Response resp, Execute(req));
  if (resp.status / 100 == 2) return Status::Ok();
  return ErrorStatus(req, resp);
}

Status S3Client::PutObject(const std::string& key, std::string_view data) {
  Request req{"PUT", key, {}, {}, data};
  MEZ_ASSIGN_OR_RETURN(Response resp, Execute(req));
  if (resp.status / 100 == 2) return Status::Ok();
  return ErrorStatus(req, resp);
}

Result<std::string> S3Client::GetObject(const std::string& key, uint64_t offset,
                                        uint64_t length) {
  Request req{"GET", key, {}, {}, {}};
  if (offset != 0 || length != 0) {
    std::string range = "bytes=" + std::to_string(offset) + "-";
    if (length != 0) range += std::to_string(offset + length - 1);
    req.headers.emplace_back("range", range);
  }
  MEZ_ASSIGN_OR_RETURN(Response resp, Execute(req));
  if (resp.status == 416) return std::string();  // Range past the end.
  if (resp.status / 100 != 2) return ErrorStatus(req, resp);
  if (resp.status == 200 && offset != 0) {
    // The server ignored the Range header; cut the answer ourselves.
    if (offset >= resp.body.size()) return std::string();
    resp.body.erase(0, offset);
    if (length != 0 && resp.body.size() > length) resp.body.resize(length);
  } else if (length != 0 && resp.body.size() > length) {
    resp.body.resize(length);
  }
  return std::move(resp.body);
}

Result<S3Object> S3Client::HeadObject(const std::string& key) {
  Request req{"HEAD", key, {}, {}, {}};
  MEZ_ASSIGN_OR_RETURN(Response resp, Execute(req));
  if (resp.status / 100 != 2) return ErrorStatus(req, resp);
  S3Object obj;
  obj.key = key;
  obj.etag = resp.Header("etag");
  std::string len = resp.Header("content-length");
  auto size = ParseSize(len);
  if (!size.ok()) {
    return DataLoss("HEAD " + Describe(key) + ": " + size.status().message());
  }
  obj.size = *size;
  return obj;
}

Status S3Client::DeleteObject(const std::string& key) {
  Request req{"DELETE", key, {}, {}, {}};
  MEZ_ASSIGN_OR_RETURN(Response resp, Execute(req));
  if (resp.status / 100 == 2) return Status::Ok();
  return ErrorStatus(req, resp);
}

Result<ListPage> S3Client::ListObjectsV2(const std::string& prefix,
                                         const std::string& continuation_token,
                                         int max_keys) {
  Request req{"GET", "", {}, {}, {}};
  req.query = {{"list-type", "2"},
               {"prefix", prefix},
               {"max-keys", std::to_string(max_keys)}};
  if (!continuation_token.empty()) {
    req.query.emplace_back("continuation-token", continuation_token);
  }
  MEZ_ASSIGN_OR_RETURN(Response resp, Execute(req));
  if (resp.status / 100 != 2) return ErrorStatus(req, resp);
  auto page = ParseListObjectsV2(resp.body);
  if (!page.ok()) return page.status().WithContext("S3 ListObjectsV2");
  return page;
}

Result<std::vector<S3Object>> S3Client::ListAll(const std::string& prefix) {
  std::vector<S3Object> all;
  std::string token;
  for (;;) {
    MEZ_ASSIGN_OR_RETURN(ListPage page, ListObjectsV2(prefix, token));
    for (auto& o : page.objects) all.push_back(std::move(o));
    if (!page.truncated) return all;
    if (page.next_continuation_token == token) {
      return DataLoss("S3 listing repeats continuation token " + token);
    }
    token = page.next_continuation_token;
  }
}

Result<std::string> S3Client::CreateMultipartUpload(const std::string& key) {
  Request req{"POST", key, {{"uploads", ""}}, {}, {}};
  MEZ_ASSIGN_OR_RETURN(Response resp, Execute(req));
  if (resp.status / 100 != 2) return ErrorStatus(req, resp);
  MEZ_ASSIGN_OR_RETURN(XmlElement doc, ParseXml(resp.body));
  std::string id = doc.ChildText("UploadId");
  if (doc.name != "InitiateMultipartUploadResult" || id.empty()) {
    return DataLoss("S3 CreateMultipartUpload for " + Describe(key) +
                    " answered no UploadId");
  }
  return id;
}

Result<std::string> S3Client::UploadPart(const std::string& key,
                                         const std::string& upload_id,
                                         int part_number,
                                         std::string_view data) {
  Request req{
      "PUT",
      key,
      {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}},
      {},
      data};
  MEZ_ASSIGN_OR_RETURN(Response resp, Execute(req));
  if (resp.status / 100 != 2) return ErrorStatus(req, resp);
  std::string etag = resp.Header("etag");
  if (etag.empty()) {
    return DataLoss("S3 UploadPart " + std::to_string(part_number) + " of " +
                    Describe(key) + " answered no ETag");
  }
  return etag;
}

Status S3Client::CompleteMultipartUpload(
    const std::string& key, const std::string& upload_id,
    const std::vector<CompletedPart>& parts) {
  std::string xml = "<CompleteMultipartUpload>";
  for (const CompletedPart& p : parts) {
    xml += "<Part><PartNumber>" + std::to_string(p.number) +
           "</PartNumber><ETag>" + XmlEscape(p.etag) + "</ETag></Part>";
  }
  xml += "</CompleteMultipartUpload>";
  Request req{"POST", key, {{"uploadId", upload_id}}, {}, xml};
  MEZ_ASSIGN_OR_RETURN(Response resp, Execute(req));
  // S3 may answer 200 and still report an error in the body.
  if (resp.status / 100 == 2) {
    auto err = ParseS3Error(resp.body);
    if (!err) return Status::Ok();
    resp.status = 500;
    if (err->code != "InternalError" && err->code != "SlowDown") {
      resp.status = 400;
    }
  }
  return ErrorStatus(req, resp);
}

Status S3Client::AbortMultipartUpload(const std::string& key,
                                      const std::string& upload_id) {
  Request req{"DELETE", key, {{"uploadId", upload_id}}, {}, {}};
  MEZ_ASSIGN_OR_RETURN(Response resp, Execute(req));
  if (resp.status / 100 == 2) return Status::Ok();
  return ErrorStatus(req, resp);
}

Result<std::vector<MultipartUpload>> S3Client::ListMultipartUploads(
    const std::string& prefix) {
  Request req{"GET", "", {{"uploads", ""}, {"prefix", prefix}}, {}, {}};
  MEZ_ASSIGN_OR_RETURN(Response resp, Execute(req));
  if (resp.status / 100 != 2) return ErrorStatus(req, resp);
  return ParseListMultipartUploads(resp.body);
}

}  // namespace mez::store
