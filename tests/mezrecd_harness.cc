#include "tests/mezrecd_harness.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "libmez/auth/identity.h"
#include "libmez/util/file.h"
#include "mezite/v1/cluster.grpc.pb.h"
#include "tests/test_util.h"

namespace mez::testing {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Mezrecd::Mezrecd(std::string data_dir, std::vector<std::string> args,
                 std::map<std::string, std::string> env)
    : data_dir_(std::move(data_dir)),
      args_(std::move(args)),
      env_(std::move(env)),
      log_path_(data_dir_ + ".log") {}

Mezrecd::~Mezrecd() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

std::string Mezrecd::log() const {
  auto r = ReadFile(log_path_);
  return r.ok() ? *r : "";
}

bool Mezrecd::Start() {
  std::vector<std::string> argv = {MEZRECD_PATH, "--data-dir", data_dir_};
  bool has_listen = false;
  for (const auto& a : args_) has_listen |= a == "--listen";
  if (!has_listen) {
    argv.push_back("--listen");
    argv.push_back("127.0.0.1:0");
  }
  argv.insert(argv.end(), args_.begin(), args_.end());
  // Truncate the log: "serving on" must come from this start.
  WriteFileOrDie(log_path_, "");
  pid_ = fork();
  if (pid_ == 0) {
    setpgid(0, 0);
    for (const auto& [k, v] : env_) setenv(k.c_str(), v.c_str(), 1);
    FILE* f = freopen(log_path_.c_str(), "a", stderr);
    (void)f;
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  for (int i = 0; i < 300; ++i) {
    std::string text = log();
    size_t at = text.find("mezrecd: serving on ");
    if (at != std::string::npos) {
      size_t start = at + std::string("mezrecd: serving on ").size();
      addr_ = text.substr(start, text.find(' ', start) - start);
      return true;
    }
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

int Mezrecd::Wait(int timeout_ms) {
  for (int waited = 0; waited < timeout_ms; waited += 20) {
    int status;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

int Mezrecd::Stop(int timeout_ms) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int rc = Wait(timeout_ms);
  if (rc == -1) Kill9();
  return rc;
}

void Mezrecd::Kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string Mezrecd::Issue(auth::Claims claims, int64_t ttl_seconds) const {
  auto pem = ReadFile(data_dir_ + "/jwt.key");
  auto name = ReadFile(data_dir_ + "/cluster_name");
  if (!pem.ok() || !name.ok()) return "";
  auto signer = auth::TokenSigner::FromPem(*pem);
  if (!signer.ok()) return "";
  auto t = auth::IssueToken(**signer, Trim(*name), std::move(claims),
                            ttl_seconds, RealClock());
  return t.ok() ? *t : "";
}

std::string Mezrecd::AdminToken() const {
  auto id = auth::ReadIdentityFile(data_dir_ + "/admin.identity");
  return id.ok() ? id->token : "";
}

std::string Mezrecd::IdentityId(auth::Role role,
                                const std::string& name) const {
  if (role != auth::Role::kUser && role != auth::Role::kAdmin &&
      role != auth::Role::kProxy && role != auth::Role::kNode) {
    return "";
  }
  auto stub = mezite::v1::Cluster::NewStub(Channel());
  auto call = [&](auto method, const auto& req, auto* resp) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + AdminToken());
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    return ((*stub).*method)(&ctx, req, resp);
  };
  if (role == auth::Role::kNode) {
    mezite::v1::ListNodesResponse list;
    if (!call(&mezite::v1::Cluster::Stub::ListNodes,
              mezite::v1::ListNodesRequest(), &list)
             .ok()) {
      return "";
    }
    for (const auto& n : list.nodes()) {
      if (n.name() == name) return n.id();
    }
    mezite::v1::AddNodeRequest req;
    req.set_name(name);
    req.set_addr("127.0.0.1:22");
    mezite::v1::AddNodeResponse resp;
    if (!call(&mezite::v1::Cluster::Stub::AddNode, req, &resp).ok()) return "";
    return resp.node().id();
  }
  mezite::v1::ListUsersResponse list;
  if (!call(&mezite::v1::Cluster::Stub::ListUsers,
            mezite::v1::ListUsersRequest(), &list)
           .ok()) {
    return "";
  }
  for (const auto& u : list.users()) {
    if (u.name() == name) return u.id();
  }
  mezite::v1::AddUserRequest req;
  req.set_name(name);
  req.set_role(std::string(auth::RoleName(role)));
  if (role != auth::Role::kProxy) req.add_logins("root");
  mezite::v1::AddUserResponse resp;
  if (!call(&mezite::v1::Cluster::Stub::AddUser, req, &resp).ok()) return "";
  return resp.user().id();
}

std::string Mezrecd::Token(auth::Role role, const std::string& subject,
                           int64_t ttl_seconds) const {
  auth::Claims claims;
  claims.subject = subject;
  claims.role = role;
  claims.logins = {"root"};
  claims.uid = IdentityId(role, subject);
  return Issue(std::move(claims), ttl_seconds);
}

std::string Mezrecd::Grant(const std::string& user, const std::string& node,
                           int64_t ttl) const {
  auth::Claims claims;
  claims.subject = user;
  claims.role = auth::Role::kSession;
  claims.uid = IdentityId(auth::Role::kUser, user);
  claims.audience = node;
  claims.logins = {"root"};
  return Issue(std::move(claims), ttl);
}

std::string Mezrecd::Sign(auth::Claims claims) const {
  auto pem = ReadFile(data_dir_ + "/jwt.key");
  auto name = ReadFile(data_dir_ + "/cluster_name");
  if (!pem.ok() || !name.ok()) return "";
  auto signer = auth::TokenSigner::FromPem(*pem);
  if (!signer.ok()) return "";
  if (claims.issuer.empty()) claims.issuer = Trim(*name);
  auto t = (*signer)->Sign(claims);
  return t.ok() ? *t : "";
}

std::shared_ptr<grpc::Channel> Mezrecd::Channel() const {
  auto id = auth::ReadIdentityFile(data_dir_ + "/admin.identity");
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (id.ok() && !id->tls_ca_pem.empty()) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = id->tls_ca_pem;
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(8 << 20);
  return grpc::CreateCustomChannel(addr_, creds, args);
}

std::unique_ptr<mezite::v1::Recording::Stub> Mezrecd::Stub() const {
  return mezite::v1::Recording::NewStub(Channel());
}

std::string Mezrecd::RegisterNode(const std::string& name,
                                  const std::string& addr,
                                  std::string* error) const {
  auto stub = mezite::v1::Cluster::NewStub(Channel());
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + AdminToken());
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  mezite::v1::AddNodeRequest req;
  req.set_name(name);
  req.set_addr(addr);
  mezite::v1::AddNodeResponse resp;
  grpc::Status s = stub->AddNode(&ctx, req, &resp);
  if (!s.ok() && s.error_code() != grpc::StatusCode::ALREADY_EXISTS &&
      error != nullptr) {
    *error = s.error_message();
  }
  return s.ok() ? resp.join_token() : "";
}

RecordCall::RecordCall(mezite::v1::Recording::Stub* stub,
                       const std::string& token) {
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  writer = stub->Record(&ctx, &summary);
}

grpc::Status RecordCall::Close() {
  writer->WritesDone();
  return writer->Finish();
}

mezite::v1::RecordFrame HeaderFrame(const std::string& session_id,
                                    const std::string& user_token,
                                    mezite::v1::SessionKind kind) {
  mezite::v1::RecordFrame f;
  auto* h = f.mutable_header();
  h->set_session_id(session_id);
  h->set_connection_id("conn-" + session_id);
  h->set_user_token(user_token);
  h->set_kind(kind);
  h->set_node("web-01");
  h->set_login("root");
  h->set_term("xterm-256color");
  if (kind == mezite::v1::SESSION_KIND_SHELL) {
    h->set_width(80);
    h->set_height(24);
  }
  if (kind == mezite::v1::SESSION_KIND_EXEC) h->set_command("uname -a");
  if (kind == mezite::v1::SESSION_KIND_TCPIP) {
    h->set_dst_host("db.internal");
    h->set_dst_port(5432);
  }
  return f;
}

mezite::v1::RecordFrame ChunkFrame(int64_t offset_us, mezite::v1::Direction d,
                                   const std::string& data) {
  mezite::v1::RecordFrame f;
  f.mutable_chunk()->set_offset_us(offset_us);
  f.mutable_chunk()->set_direction(d);
  f.mutable_chunk()->set_data(data);
  return f;
}

mezite::v1::RecordFrame ResizeFrame(int64_t offset_us, int w, int h) {
  mezite::v1::RecordFrame f;
  f.mutable_resize()->set_offset_us(offset_us);
  f.mutable_resize()->set_width(w);
  f.mutable_resize()->set_height(h);
  return f;
}

mezite::v1::RecordFrame ExitFrame(int64_t offset_us, int status) {
  mezite::v1::RecordFrame f;
  f.mutable_exit()->set_offset_us(offset_us);
  f.mutable_exit()->set_exit_status(status);
  return f;
}

std::map<std::string, int64_t> ListFiles(const std::string& root) {
  std::map<std::string, int64_t> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       it != std::filesystem::recursive_directory_iterator();
       it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec)) {
      out[std::filesystem::relative(it->path(), root).string()] =
          static_cast<int64_t>(it->file_size(ec));
    }
  }
  return out;
}

}  // namespace mez::testing
