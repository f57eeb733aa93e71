#include "libmez/server/proxy_role.h"

#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "libmez/auth/identity.h"
#include "libmez/auth/keys.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/auth/token.h"
#include "libmez/catalog/catalog.h"
#include "libmez/cluster/cluster.h"
#include "libmez/proxy/proxy.h"
#include "libmez/recorder/mode.h"
#include "libmez/rpc/bearer_token.h"
#include "libmez/rpc/channel.h"
#include "libmez/rpc/client.h"
#include "libmez/rpc/identity.h"
#include "libmez/server/server.h"
#include "libmez/settings/settings.h"
#include "libmez/util/encoding.h"
#include "libmez/util/log.h"
#include "mezite/v1/cluster.pb.h"

namespace mez::server {
namespace {

namespace pb = mezite::v1;

Result<std::optional<recorder::RecordingMode>> ModeFromEnv() {
  return recorder::RecordingModeFromEnv(getenv(recorder::kRecordingModeEnv));
}

}  // namespace

Result<std::shared_ptr<void>> StartInProcessProxy(const RoleContext& rc) {
  constexpr int64_t kProxyTokenTtl = 365LL * 24 * 3600;
  // The in-process proxy is a catalog principal too (kInProcessProxyName,
  // a name AddUser refuses): created on first start and shared by every
  // replica of a scale-out cluster, so that one replica's start does not
  // revoke another's token. `mezctl users rm _mezrecd-proxy` revokes it;
  // the next start creates a new one.
  catalog::User row;
  row.name = std::string(cluster::kInProcessProxyName);
  row.role = "proxy";
  row.created_us = rc.clock->WallMicros();
  if (Status st = rc.catalog->CreateUser(row);
      !st.ok() && st.code() != Code::kAlreadyExists) {
    return st;
  }
  MEZ_ASSIGN_OR_RETURN(row, rc.catalog->GetUser(row.name));
  if (row.role != "proxy") {
    return FailedPrecondition("catalog user " + row.name +
                              " is not a proxy; remove it (mezctl users rm " +
                              row.name + ") and start mezrecd again");
  }
  auth::Claims claims;
  claims.subject = row.name;
  claims.role = auth::Role::kProxy;
  claims.uid = row.id;
  MEZ_ASSIGN_OR_RETURN(
      std::string token,
      auth::IssueToken(*rc.signer, rc.keys->cluster_name, std::move(claims),
                       kProxyTokenTtl, rc.clock));
  proxy::ProxyOptions po;
  po.listen = rc.config->proxy_listen;
  po.data_dir = rc.config->data_dir;
  po.user_ca_public = rc.keys->user_ca_public;
  po.backend = proxy::NewLocalBackend(rc.catalog, rc.keys->user_ca_private_pem,
                                      rc.clock);
  po.channel =
      rpc::OpenChannel(rc.grpc_addr, rpc::ChannelCredentialsFor(rc.tls_ca_pem));
  po.token = std::move(token);
  MEZ_ASSIGN_OR_RETURN(po.mode_override, ModeFromEnv());
  // New sessions read the setting from the catalog, not by RPC to itself.
  po.setting_source = [catalog = rc.catalog] {
    return cluster::ReadSetting(catalog, settings::kSessionRecording);
  };
  po.clock = rc.clock;
  MEZ_ASSIGN_OR_RETURN(std::unique_ptr<proxy::Proxy> proxy,
                       proxy::Proxy::Start(std::move(po)));
  // msh learns where the proxy is, and which host key to expect, from
  // ResolveNode.
  std::string key_line = std::string(auth::kSshEd25519) + " " +
                         Base64Encode(proxy->server_host_key_blob()) +
                         " mezite-proxy";
  MEZ_RETURN_IF_ERROR(rc.catalog->SetConfig(std::string(cluster::kProxyAddrKey),
                                            proxy->address()));
  MEZ_RETURN_IF_ERROR(
      rc.catalog->SetConfig(std::string(cluster::kProxyHostKeyKey), key_line));
  // Users added from the admin identity inherit the proxy address, so
  // that their msh ssh goes through the proxy.
  std::string admin = rc.config->data_dir + "/admin.identity";
  if (auto id = auth::ReadIdentityFile(admin);
      id.ok() && id->proxy_addr != proxy->address()) {
    id->proxy_addr = proxy->address();
    MEZ_RETURN_IF_ERROR(auth::WriteIdentityFile(admin, *id));
  }
  std::fprintf(stderr, "mezrecd: proxy serving SSH on %s\n",
               proxy->address().c_str());
  return std::shared_ptr<void>(std::move(proxy));
}

Status RunProxyOnly(const ServerConfig& config) {
  SetLogLevel(ParseLogLevel(config.log_level));
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  MEZ_ASSIGN_OR_RETURN(auth::Identity id,
                       auth::ReadIdentityFile(config.identity));
  auto peek = rpc::PeekToken(id.token);
  if (peek.ok() && peek->role != "proxy") {
    return InvalidArgument(
        "identity " + config.identity + " is a " + peek->role +
        "'s, not a proxy's; make one with mezctl users add NAME --role=proxy "
        "--identity-out FILE");
  }
  MEZ_RETURN_IF_ERROR(MakeDataDir(config.data_dir));
  auto channel =
      rpc::OpenChannel(id.auth_addr, rpc::ChannelCredentialsFor(id.tls_ca_pem));
  rpc::ClusterClient client(
      channel, std::make_shared<rpc::BearerToken>(id.token), id.auth_addr);
  auto hello = [&](const std::string& addr, const std::string& key,
                   pb::ProxyHelloResponse* resp) -> Status {
    pb::ProxyHelloRequest req;
    req.set_addr(addr);
    req.set_host_key(key);
    Status g = client.ProxyHello(req, resp, std::chrono::seconds(10));
    if (g.ok()) return Status::Ok();
    if (g.code() == Code::kUnauthenticated ||
        g.code() == Code::kPermissionDenied) {
      return Status(Code::kUnauthenticated,
                    "the auth mezrecd at " + id.auth_addr +
                        " refused this proxy's token (" + g.message() +
                        "); make a new identity with mezctl users add NAME "
                        "--role=proxy --identity-out FILE");
    }
    // kUnavailable already says "cannot reach mezrecd at ADDR".
    if (g.code() == Code::kUnavailable) return g;
    return Status(g.code(), "the auth mezrecd at " + id.auth_addr +
                                " refused ProxyHello: " + g.message());
  };
  pb::ProxyHelloResponse first;
  MEZ_RETURN_IF_ERROR(hello("", "", &first));

  proxy::ProxyOptions po;
  po.listen = config.proxy_listen;
  po.data_dir = config.data_dir;
  po.user_ca_public = first.user_ca_public();
  po.backend = proxy::NewRemoteBackend(channel, id.token, id.auth_addr);
  po.channel = channel;
  po.token = id.token;
  MEZ_ASSIGN_OR_RETURN(po.mode_override, ModeFromEnv());
  MEZ_ASSIGN_OR_RETURN(std::unique_ptr<proxy::Proxy> proxy,
                       proxy::Proxy::Start(std::move(po)));
  std::string key_line = std::string(auth::kSshEd25519) + " " +
                         Base64Encode(proxy->server_host_key_blob());
  pb::ProxyHelloResponse published;
  MEZ_RETURN_IF_ERROR(hello(proxy->address(), key_line, &published));
  std::fprintf(stderr, "mezrecd: proxy serving SSH on %s\n",
               proxy->address().c_str());
  std::fprintf(stderr, "mezrecd: serving on %s (proxy only, auth at %s)\n",
               proxy->address().c_str(), id.auth_addr.c_str());
  int sig = 0;
  sigwait(&sigs, &sig);
  MEZ_LOG(kInfo) << "signal " << sig << ": stopping the proxy";
  proxy->Stop();
  return Status::Ok();
}

}  // namespace mez::server
