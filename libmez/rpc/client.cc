#include "libmez/rpc/client.h"

#include <sys/stat.h>
#include <time.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>

#include "libmez/auth/token.h"
#include "libmez/rpc/recording_service.h"
#include "libmez/util/file.h"

namespace mez::rpc {
namespace {

std::string IsoTime(int64_t unix_seconds) {
  time_t t = static_cast<time_t>(unix_seconds);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Status Precondition(const std::string& m) { return FailedPrecondition(m); }

// A ByteSource over a server stream of RecordingBytes.
class StreamSource : public record::ByteSource {
 public:
  StreamSource(const ClusterClient* client, mezite::v1::Cluster::Stub* stub,
               const std::string& id, uint64_t offset,
               mezite::v1::SessionInfo* info)
      : client_(client), info_(info) {
    client->Prepare(&ctx_, 0);
    mezite::v1::ReadRecordingRequest req;
    req.set_id(id);
    req.set_offset(offset);
    reader_ = stub->ReadRecording(&ctx_, req);
  }
  ~StreamSource() override {
    if (!done_) {
      ctx_.TryCancel();
      reader_->Finish().ok();
    }
  }

  Result<size_t> Read(char* out, size_t n) override {
    while (pos_ == msg_.data().size()) {
      if (done_) return size_t{0};
      msg_.Clear();
      pos_ = 0;
      if (!reader_->Read(&msg_)) {
        done_ = true;
        MEZ_RETURN_IF_ERROR(client_->Check(reader_->Finish()));
        return size_t{0};
      }
      if (msg_.has_session() && info_ != nullptr) *info_ = msg_.session();
    }
    size_t k = std::min(n, msg_.data().size() - pos_);
    std::memcpy(out, msg_.data().data() + pos_, k);
    pos_ += k;
    return k;
  }

  // Waits for the first message so that errors surface at open time.
  Status Prime() {
    char c;
    return Read(&c, 0).status();
  }

 private:
  const ClusterClient* client_;
  mezite::v1::SessionInfo* info_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReader<mezite::v1::RecordingBytes>> reader_;
  mezite::v1::RecordingBytes msg_;
  size_t pos_ = 0;
  bool done_ = false;
};

}  // namespace

std::string DefaultIdentityPath() {
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/root") + "/.mez/identity";
}

Result<TokenInfo> PeekToken(const std::string& token) {
  size_t a = token.find('.');
  size_t b = token.find('.', a + 1);
  if (a == std::string::npos || b == std::string::npos) {
    return InvalidArgument("the identity's token is not a JWT");
  }
  auto payload = auth::Base64UrlDecode(token.substr(a + 1, b - a - 1));
  if (!payload.ok())
    return InvalidArgument("the identity's token is malformed");
  try {
    auto j = nlohmann::json::parse(*payload);
    TokenInfo info;
    info.subject = j.value("sub", "");
    info.role = j.value("role", "");
    info.expires_at = j.value("exp", int64_t{0});
    return info;
  } catch (const nlohmann::json::exception&) {
    return InvalidArgument("the identity's token is malformed");
  }
}

Result<auth::Identity> ResolveIdentity(const std::string& flag) {
  std::string path = flag;
  std::string from = "--identity";
  if (path.empty()) {
    const char* env = std::getenv("MEZ_IDENTITY");
    if (env && *env) {
      path = env;
      from = "MEZ_IDENTITY";
    }
  }
  if (path.empty()) {
    path = DefaultIdentityPath();
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      return Precondition(
          "not logged in: run 'msh login --identity FILE' with the identity "
          "file your administrator gave you (or pass --identity FILE)");
    }
    from = "msh login";
  }
  auto id = auth::ReadIdentityFile(path);
  if (!id.ok()) {
    return Precondition("cannot use the identity from " + from + ": " +
                        id.status().message());
  }
  auto info = PeekToken(id->token);
  if (!info.ok()) return Precondition(path + ": " + info.status().message());
  time_t now = time(nullptr);
  if (info->expires_at != 0 && info->expires_at <= now) {
    return Precondition("your identity " + path + " expired at " +
                        IsoTime(info->expires_at) +
                        ": ask an administrator for a new one (mezctl users "
                        "add) and run 'msh login --identity FILE'");
  }
  return id;
}

Result<std::string> StoreLogin(const std::string& source) {
  MEZ_ASSIGN_OR_RETURN(auto id, auth::ReadIdentityFile(source));
  auto info = PeekToken(id.token);
  if (!info.ok()) return info.status();
  if (info->expires_at != 0 && info->expires_at <= time(nullptr)) {
    return Precondition("the identity in " + source + " expired at " +
                        IsoTime(info->expires_at) +
                        ": ask an administrator for a new one");
  }
  std::string path = DefaultIdentityPath();
  std::string dir = path.substr(0, path.rfind('/'));
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoStatus("create " + dir, errno);
  }
  MEZ_RETURN_IF_ERROR(auth::WriteIdentityFile(path, id));
  return path;
}

Result<std::unique_ptr<ClusterClient>> ClusterClient::Connect(
    const auth::Identity& identity) {
  std::unique_ptr<ClusterClient> c(new ClusterClient(identity));
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (identity.tls_ca_pem.empty()) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = identity.tls_ca_pem;
    creds = grpc::SslCredentials(ssl);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(8 << 20);
  c->channel_ = grpc::CreateCustomChannel(identity.auth_addr, creds, args);
  c->cluster_ = mezite::v1::Cluster::NewStub(c->channel_);
  c->recording_ = mezite::v1::Recording::NewStub(c->channel_);
  return c;
}

void ClusterClient::Prepare(grpc::ClientContext* ctx,
                            int deadline_seconds) const {
  ctx->AddMetadata("authorization", "Bearer " + identity_.token);
  if (deadline_seconds > 0) {
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(deadline_seconds));
  }
}

Status ClusterClient::Check(const grpc::Status& s) const {
  if (s.ok()) return Status::Ok();
  switch (s.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Status(Code::kUnavailable, "cannot reach mezrecd at " +
                                            identity_.auth_addr + ": " +
                                            s.error_message());
    case grpc::StatusCode::UNAUTHENTICATED:
      return Status(Code::kUnauthenticated,
                    s.error_message() +
                        " (your identity was refused: run 'msh login' with a "
                        "fresh identity file)");
    case grpc::StatusCode::PERMISSION_DENIED:
      return PermissionDenied(s.error_message());
    case grpc::StatusCode::NOT_FOUND:
      return NotFound(s.error_message());
    case grpc::StatusCode::INVALID_ARGUMENT:
      return InvalidArgument(s.error_message());
    case grpc::StatusCode::ALREADY_EXISTS:
      return Status(Code::kAlreadyExists, s.error_message());
    case grpc::StatusCode::FAILED_PRECONDITION:
      return FailedPrecondition(s.error_message());
    case grpc::StatusCode::DATA_LOSS:
      return DataLoss(s.error_message());
    default:
      return Internal(s.error_message());
  }
}

Result<std::unique_ptr<record::ByteSource>> ClusterClient::ReadRecording(
    const std::string& id, uint64_t offset, mezite::v1::SessionInfo* info) {
  auto src =
      std::make_unique<StreamSource>(this, cluster_.get(), id, offset, info);
  MEZ_RETURN_IF_ERROR(src->Prime());
  return std::unique_ptr<record::ByteSource>(std::move(src));
}

}  // namespace mez::rpc
