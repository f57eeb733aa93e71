#include "tests/s3_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sstream>

#include "libmez/store/s3_client.h"

namespace mez::testing {
namespace {

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `command` with /bin/sh; returns its exit code (-1 if it did not
// exit normally) and its stdout in *out.
int RunCapture(const std::string& command, std::string* out) {
  FILE* p = popen(("(" + command + ") </dev/null").c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out->append(buf, n);
  int status = pclose(p);
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

S3Server::S3Server(const std::string& script) : script_(script) {
  char tmpl[] = "/tmp/mez_s3.XXXXXX";
  if (mkdtemp(tmpl) == nullptr) {
    error_ = "mkdtemp failed";
    return;
  }
  dir_ = tmpl;
  std::string out;
  std::string err_file = dir_ + "/start.err";
  int rc = RunCapture(Quote(script_) + " " + Quote(dir_) + " --watch " +
                          std::to_string(getpid()) + " 2>" + Quote(err_file),
                      &out);
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string k = line.substr(0, eq), v = line.substr(eq + 1);
    if (k == "S3_ENDPOINT") endpoint_ = v;
    if (k == "S3_REGION") region_ = v;
    if (k == "S3_ACCESS_KEY") access_key_ = v;
    if (k == "S3_SECRET_KEY") secret_key_ = v;
  }
  if (rc != 0 || endpoint_.empty() || secret_key_.empty()) {
    std::string err;
    RunCapture("tail -c 2000 " + Quote(err_file), &err);
    error_ = script_ + " failed (exit " + std::to_string(rc) + "): " + err;
    return;
  }
  Status warm = WarmUp();
  if (!warm.ok()) error_ = "S3 server not ready: " + warm.ToString();
}

// Right after start, Swift may answer the first container PUT with 503
// ("Please reduce your request rate") while its account is being created.
// A probe bucket is created (with patient retries) and deleted, so that
// the tests' own first bucket PUT finds a ready server.
Status S3Server::WarmUp() {
  store::S3Options o;
  o.endpoint = endpoint_;
  o.region = region_;
  o.access_key = access_key_;
  o.secret_key = secret_key_;
  o.bucket = "mez-warm-up";
  o.force_path_style = true;
  o.max_attempts = 8;
  o.initial_backoff_ms = 250;  // Up to ~30 s in all.
  auto client = store::S3Client::New(o);
  if (!client.ok()) return client.status();
  Status created = (*client)->CreateBucket();
  if (!created.ok() && created.code() != Code::kAlreadyExists) return created;
  return (*client)->DeleteBucket();
}

S3Server::~S3Server() {
  if (dir_.empty()) return;
  std::string ignored;
  RunCapture(Quote(script_) + " --stop " + Quote(dir_) + " >/dev/null 2>&1",
             &ignored);
  RunCapture("rm -rf " + Quote(dir_), &ignored);
}

}  // namespace mez::testing
