#include "libmez/server/server.h"

#include <signal.h>
#include <sys/stat.h>

#include <cerrno>

#include "libmez/auth/identity.h"
#include "libmez/auth/keys.h"
#include "libmez/auth/token.h"
#include "libmez/catalog/catalog.h"
#include "libmez/catalog/replica_lease.h"
#include "libmez/ingest/ingest.h"
#include "libmez/ingest/upload.h"
#include "libmez/rpc/cluster_service.h"
#include "libmez/rpc/grpc_server.h"
#include "libmez/rpc/recording_service.h"
#include "libmez/rpc/web_service.h"
#include "libmez/server/proxy_role.h"
#include "libmez/server/seek_indexer.h"
#include "libmez/server/tls_names.h"
#include "libmez/store/blob_store.h"
#include "libmez/store/s3_store.h"
#include "libmez/util/log.h"
#include "libmez/util/thread_name.h"
#include "libmez/util/thread_pool.h"
#include "libmez/web/web_role.h"

namespace mez::server {
namespace {

constexpr int64_t kAdminTokenTtl = 365LL * 24 * 3600;

// Writes admin.identity on first start, and keeps its address current
// (a port chosen by the OS changes on each start) and its token valid and
// speaking for the current admin row (`admin_id`; a token without it, or
// with the id of a removed row, is re-issued).
Status EnsureAdminIdentity(const std::string& data_dir, const std::string& addr,
                           const std::string& ca_pem,
                           const auth::TokenSigner& signer,
                           const auth::TokenVerifier& verifier,
                           const std::string& issuer,
                           const std::string& admin_id, Clock* clock) {
  std::string path = data_dir + "/admin.identity";
  auto existing = auth::ReadIdentityFile(path);
  auth::Identity id;
  bool write = true;
  if (existing.ok()) {
    id = *existing;
    auto claims =
        verifier.Verify(id.token, clock->WallMicros() / 1'000'000 + 86400);
    bool current = claims.ok() && claims->uid == admin_id &&
                   claims->subject == "admin" &&
                   claims->role == auth::Role::kAdmin;
    write = !current || id.auth_addr != addr || id.tls_ca_pem != ca_pem;
    if (!current) id.token.clear();
  }
  if (!write) return Status::Ok();
  id.auth_addr = addr;
  id.tls_ca_pem = ca_pem;
  id.username = "admin";
  if (id.token.empty()) {
    auth::Claims claims;
    claims.subject = "admin";
    claims.role = auth::Role::kAdmin;
    claims.uid = admin_id;
    MEZ_ASSIGN_OR_RETURN(id.token, auth::IssueToken(signer, issuer, claims,
                                                    kAdminTokenTtl, clock));
  }
  return auth::WriteIdentityFile(path, id);
}

// The bootstrap admin of admin.identity is a catalog user like any other.
// Returns its id.
Result<std::string> EnsureAdminUser(catalog::Catalog* catalog, Clock* clock) {
  catalog::User admin;
  admin.name = "admin";
  admin.role = "admin";
  admin.created_us = clock->WallMicros();
  Status s = catalog->CreateUser(admin);
  if (!s.ok() && s.code() != Code::kAlreadyExists) return s;
  MEZ_ASSIGN_OR_RETURN(catalog::User row, catalog->GetUser("admin"));
  return row.id;
}

// Local files, or S3 with a local spool in the data dir (s3_store.h).
Result<std::unique_ptr<store::BlobStore>> OpenStore(const ServerConfig& c) {
  if (c.recording.backend != "s3") {
    MEZ_ASSIGN_OR_RETURN(auto local,
                         store::LocalStore::New(c.recording.storage_path));
    return std::unique_ptr<store::BlobStore>(std::move(local));
  }
  const ingest::S3Config& s3 = c.recording.s3;
  store::S3StoreOptions o;
  o.s3.bucket = s3.bucket;
  if (!s3.region.empty()) o.s3.region = s3.region;
  o.s3.access_key = s3.access_key;
  o.s3.secret_key = s3.secret_key;
  // No keys: S3Client::New walks the AWS credentials chain and fails with
  // one message naming MEZITE_S3_ACCESS_KEY and what the chain found.
  o.s3.session_token = s3.session_token;
  o.s3.endpoint = s3.endpoint;
  o.s3.force_path_style = s3.force_path_style;
  o.s3.ca_file = s3.ca_file;
  o.prefix = s3.prefix;
  o.spool_dir = c.data_dir + "/s3-spool";
  MEZ_ASSIGN_OR_RETURN(auto remote, store::S3Store::New(std::move(o)));
  return std::unique_ptr<store::BlobStore>(std::move(remote));
}

}  // namespace

LogLevel ParseLogLevel(const std::string& s) {
  if (s == "debug") return LogLevel::kDebug;
  if (s == "warn") return LogLevel::kWarning;
  if (s == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

Status MakeDataDir(const std::string& dir) {
  std::string path;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    path = dir.substr(0, pos);
    if (mkdir(path.c_str(), pos == std::string::npos ? 0700 : 0755) != 0 &&
        errno != EEXIST) {
      return ErrnoStatus("create data dir " + path, errno);
    }
  }
  return Status::Ok();
}

Status RunMezrecd(const ServerConfig& config) {
  SetLogLevel(ParseLogLevel(config.log_level));
  Clock* clock = RealClock();

  // Signals are taken synchronously by this thread; every thread started
  // from here on inherits the block.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  MEZ_RETURN_IF_ERROR(MakeDataDir(config.data_dir));
  MEZ_ASSIGN_OR_RETURN(
      auth::ClusterKeys keys,
      auth::LoadOrCreateClusterKeys(
          config.data_dir,
          ServerCertNames(config.listen, config.tls_names, ThisHost()), clock));
  MEZ_ASSIGN_OR_RETURN(auto signer,
                       auth::TokenSigner::FromPem(keys.jwt_private_pem));
  MEZ_ASSIGN_OR_RETURN(auto verifier,
                       auth::TokenVerifier::FromPublicPem(keys.jwt_public_pem,
                                                          keys.cluster_name));
  MEZ_ASSIGN_OR_RETURN(
      auto catalog, catalog::OpenCatalog(config.db_url.empty()
                                             ? config.data_dir + "/catalog.db"
                                             : config.db_url));
  // Dropped (after the streams have ended) before the catalog closes.
  std::unique_ptr<catalog::ReplicaLease> lease;
  std::string replica_id = catalog::NewReplicaId();
  if (config.db_url.empty()) {
    // Its own catalog: whatever is still recording was left by a crash.
    MEZ_ASSIGN_OR_RETURN(int interrupted,
                         catalog->MarkInterruptedSessions(clock->WallMicros()));
    if (interrupted > 0) {
      MEZ_LOG(kWarning) << interrupted
                        << " session(s) were still recording when mezrecd "
                           "stopped; marked incomplete (their files are "
                           "readable up to the interruption)";
    }
  } else {
    // A shared one holds other replicas' live sessions: only those of a
    // replica whose lease expired are interrupted, now and periodically.
    catalog::ReplicaLeaseOptions lopt;
    lopt.catalog = catalog.get();
    lopt.clock = clock;
    lopt.id = replica_id;
    lopt.timeout_us = config.replica_lease_timeout_us;
    MEZ_ASSIGN_OR_RETURN(lease, catalog::ReplicaLease::Start(std::move(lopt)));
    MEZ_LOG(kInfo) << "replica " << replica_id << " (lease timeout "
                   << config.replica_lease_timeout_us / 1'000'000 << " s)";
  }
  MEZ_ASSIGN_OR_RETURN(std::unique_ptr<store::BlobStore> store,
                       OpenStore(config));

  SeekIndexerOptions sopt;
  sopt.store = store.get();
  sopt.encryption_key = config.recording.encryption_key;
  sopt.min_bytes = config.recording.seek_index_min_bytes;
  auto seek_indexer = std::make_unique<SeekIndexer>(std::move(sopt));

  ingest::IngestOptions iopt;
  iopt.on_end = [ix = seek_indexer.get()](const catalog::Session& s) {
    ix->Ended(s);
  };
  iopt.recording = config.recording;
  iopt.store = store.get();
  iopt.catalog = catalog.get();
  iopt.verifier = verifier.get();
  iopt.clock = clock;
  iopt.replica_id = replica_id;
  auto ingest = std::make_unique<ingest::IngestManager>(std::move(iopt));
  ingest->StartTimer();
  auto pool = std::make_unique<ThreadPool>(4, "mez-io");
  rpc::CallAuthenticator authn(verifier.get(), clock);
  ingest::UploadOptions uopt;
  uopt.root = config.data_dir + "/uploads";
  uopt.ingest = ingest.get();
  uopt.catalog = catalog.get();
  uopt.store = store.get();
  uopt.verifier = verifier.get();
  MEZ_ASSIGN_OR_RETURN(auto uploads,
                       ingest::UploadManager::New(std::move(uopt)));
  // Every Record, Upload and GetUploadStatus call speaks for a current
  // identity: a removed node, admin or proxy, or a name removed and added
  // again, can no longer record or upload (cluster_service.h).
  rpc::CallerCheck registered =
      [cat = catalog.get()](const ingest::Caller& c) -> Status {
    MEZ_ASSIGN_OR_RETURN(
        auth::Role role,
        rpc::CheckIdentity(cat, c.role, c.name, c.uid, c.legacy_join_hash));
    if (role == auth::Role::kUser) {
      return PermissionDenied("user '" + c.name +
                              "' is no longer an admin and cannot record");
    }
    return Status::Ok();
  };
  rpc::RecordingService recording(ingest.get(), &authn, pool.get(),
                                  uploads.get(), registered);
  MEZ_ASSIGN_OR_RETURN(std::string admin_id,
                       EnsureAdminUser(catalog.get(), clock));
  rpc::Authorizer authorizer(&authn, catalog.get());
  rpc::ClusterServiceOptions copt;
  copt.catalog = catalog.get();
  copt.store = store.get();
  copt.authorizer = &authorizer;
  copt.signer = signer.get();
  copt.keys = &keys;
  copt.verifier = verifier.get();
  copt.encryption_key = config.recording.encryption_key;
  copt.pool = pool.get();
  copt.clock = clock;
  copt.seek_index = [ix = seek_indexer.get()](const catalog::Session& s) {
    return ix->Read(s);
  };
  if (!config.insecure) {
    MEZ_ASSIGN_OR_RETURN(copt.tls_ca_sha256,
                         auth::CertificateSha256(keys.tls_ca_cert_pem));
  }
  rpc::ClusterService cluster(std::move(copt));
  // The web UI (docs/web.md), and the sign-in codes it takes.
  std::unique_ptr<web::WebRole> web_role;
  rpc::WebServiceOptions wopt;
  wopt.authorizer = &authorizer;
  wopt.pool = pool.get();
  if (!config.web.listen.empty()) {
    web::WebRoleOptions web_opt;
    web_opt.config = config.web;
    web_opt.catalog = catalog.get();
    web_opt.signer = signer.get();
    web_opt.keys = &keys;
    web_opt.verifier = verifier.get();
    web_opt.clock = clock;
    MEZ_ASSIGN_OR_RETURN(web_role, web::WebRole::Start(std::move(web_opt)));
    wopt.issue =
        [w = web_role.get()](const auth::Claims& c) -> Result<rpc::SignInCode> {
      MEZ_ASSIGN_OR_RETURN(web::WebRole::Code code, w->IssueCode(c));
      return rpc::SignInCode{code.code, code.expires_at, w->public_url()};
    };
    std::fprintf(stderr, "mezrecd: web UI on %s (%s), open %s\n",
                 web_role->address().c_str(),
                 config.web.insecure_http ? "http" : "https",
                 web_role->public_url().c_str());
  }
  rpc::WebService web_service(std::move(wopt));

  rpc::GrpcServerOptions gopt;
  gopt.listen = config.listen;
  if (!config.insecure) {
    // The chain ends with the CA, so a joining mezd can find the CA its
    // join token pins (Claims::ca_hash) without being given the file.
    gopt.tls_key_pem = keys.tls_server_key_pem;
    gopt.tls_cert_chain_pem = keys.tls_server_cert_pem + keys.tls_ca_cert_pem;
  }
  gopt.recording = &recording;
  gopt.cluster = &cluster;
  gopt.web = &web_service;
  MEZ_ASSIGN_OR_RETURN(std::unique_ptr<rpc::GrpcServer> server,
                       rpc::GrpcServer::Start(gopt));
  const std::string& addr = server->address();
  // How this machine reaches the gRPC listener: a wildcard is not an
  // address to dial, nor a name the TLS certificate carries.
  std::string host = addr.substr(0, addr.rfind(':'));
  std::string local = host == "0.0.0.0" ? "127.0.0.1"
                      : host == "[::]"  ? "[::1]"
                                        : host;
  std::string local_addr = local + addr.substr(addr.rfind(':'));
  MEZ_RETURN_IF_ERROR(EnsureAdminIdentity(
      config.data_dir, local_addr, config.insecure ? "" : keys.tls_ca_cert_pem,
      *signer, *verifier, keys.cluster_name, admin_id, clock));
  // The proxy role (proxy_role.h).
  // Printed before "serving on", which launchers wait for.
  std::shared_ptr<void> proxy;
  if (config.HasRole("proxy")) {
    RoleContext rc;
    rc.config = &config;
    rc.catalog = catalog.get();
    rc.keys = &keys;
    rc.signer = signer.get();
    rc.grpc_addr = local_addr;
    rc.tls_ca_pem = config.insecure ? "" : keys.tls_ca_cert_pem;
    rc.clock = clock;
    MEZ_ASSIGN_OR_RETURN(proxy, StartInProcessProxy(rc));
  }
  MEZ_LOG(kInfo) << "storage "
                 << (config.recording.backend == "s3"
                         ? store->Describe("")
                         : config.recording.storage_path)
                 << ", catalog "
                 << (config.db_url.empty() ? "sqlite" : "postgresql")
                 << (config.recording.gzip ? ", gzip" : "")
                 << (config.recording.encryption_key ? ", encrypted" : "");
  std::fprintf(stderr, "mezrecd: serving on %s (%s)\n", addr.c_str(),
               config.insecure ? "plaintext" : "tls");

  int sig = 0;
  sigwait(&sigs, &sig);
  // The proxy's sessions end first, so their recordings close while the
  // gRPC server still takes them.
  proxy.reset();
  MEZ_LOG(kInfo) << "signal " << sig << ": draining streams (up to "
                 << config.shutdown_grace_us / 1'000'000 << " s)";
  server->Shutdown(config.shutdown_grace_us);
  pool.reset();          // Runs what the last reactions handed over.
  web_role.reset();      // After the sign-in code calls that use it.
  ingest.reset();        // Closes the shared pcaps.
  seek_indexer.reset();  // Abandons the index being built, if any.
  lease.reset();         // What still records is now an orphan to the others.
  MEZ_LOG(kInfo) << "stopped";
  return Status::Ok();
}

}  // namespace mez::server
