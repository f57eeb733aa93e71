#include "libmez/store/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <ctime>
#include <map>

#include "libmez/util/encoding.h"

namespace mez::store {
namespace {

bool Unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Trims and collapses runs of spaces and tabs to one space.
std::string CanonicalValue(std::string_view v) {
  std::string out;
  bool pending_space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out += ' ';
    pending_space = false;
    out += c;
  }
  return out;
}

// Lowercased name -> canonical value; duplicates joined with ','.
std::map<std::string, std::string> CanonicalHeaderMap(const SigV4Request& req) {
  std::map<std::string, std::string> headers;
  for (const auto& [name, value] : req.headers) {
    std::string key = Lower(CanonicalValue(name));
    auto [it, inserted] = headers.emplace(key, CanonicalValue(value));
    if (!inserted) it->second += "," + CanonicalValue(value);
  }
  return headers;
}

std::string Scope(const SigV4Credentials& cred, std::string_view amz_date) {
  return std::string(amz_date.substr(0, 8)) + "/" + cred.region + "/" +
         cred.service + "/aws4_request";
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (Unreserved(c) || (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return HexEncode(std::string_view(reinterpret_cast<char*>(md), sizeof(md)));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md,
       &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string SignedHeaders(const SigV4Request& req) {
  std::string out;
  for (const auto& [name, value] : CanonicalHeaderMap(req)) {
    if (!out.empty()) out += ';';
    out += name;
  }
  return out;
}

std::string CanonicalRequest(const SigV4Request& req) {
  std::string out = req.method + "\n";
  out += req.path.empty() ? "/" : UriEncode(req.path, /*keep_slash=*/true);
  out += "\n";

  std::vector<std::pair<std::string, std::string>> query;
  query.reserve(req.query.size());
  for (const auto& [k, v] : req.query) {
    query.emplace_back(UriEncode(k, false), UriEncode(v, false));
  }
  std::sort(query.begin(), query.end());
  for (size_t i = 0; i < query.size(); ++i) {
    if (i > 0) out += '&';
    out += query[i].first + "=" + query[i].second;
  }
  out += "\n";

  auto headers = CanonicalHeaderMap(req);
  for (const auto& [name, value] : headers) out += name + ":" + value + "\n";
  out += "\n";
  out += SignedHeaders(req) + "\n";
  out += req.payload_sha256;
  return out;
}

std::string StringToSign(const SigV4Request& req, const SigV4Credentials& cred,
                         std::string_view amz_date) {
  return "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" +
         Scope(cred, amz_date) + "\n" + Sha256Hex(CanonicalRequest(req));
}

std::string Signature(const SigV4Request& req, const SigV4Credentials& cred,
                      std::string_view amz_date) {
  std::string key = HmacSha256("AWS4" + cred.secret_key, amz_date.substr(0, 8));
  key = HmacSha256(key, cred.region);
  key = HmacSha256(key, cred.service);
  key = HmacSha256(key, "aws4_request");
  return HexEncode(HmacSha256(key, StringToSign(req, cred, amz_date)));
}

std::string AuthorizationHeader(const SigV4Request& req,
                                const SigV4Credentials& cred,
                                std::string_view amz_date) {
  return "AWS4-HMAC-SHA256 Credential=" + cred.access_key + "/" +
         Scope(cred, amz_date) + ", SignedHeaders=" + SignedHeaders(req) +
         ", Signature=" + Signature(req, cred, amz_date);
}

std::string AmzDate(long long unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

}  // namespace mez::store
