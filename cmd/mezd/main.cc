// mezd: the node agent. Serves SSH to holders of the cluster's user
// certificates and records every session; this slice implements the
// node-sync mode (each session streamed live to mezrecd).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <string_view>

#include "cmd/common/run_app.h"
#include "libmez/agent/sync_recorder.h"
#include "libmez/auth/ssh_cert.h"
#include "libmez/ssh/ssh_server.h"
#include "libmez/util/encoding.h"
#include "libmez/util/file.h"

namespace {

// "ssh-ed25519 AAAA... comment" -> the wire-format blob.
mez::Result<std::string> PublicKeyLineBlob(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  size_t sp = line.find(' ');
  if (line.substr(0, sp) != "ssh-ed25519" || sp == std::string::npos) {
    return mez::InvalidArgument(
        "the user CA file must hold one \"ssh-ed25519 AAAA...\" line (from "
        "mezctl ca export --type=user)");
  }
  std::string b64 = line.substr(sp + 1);
  b64 = b64.substr(0, b64.find(' '));
  return mez::Base64Decode(b64);
}

// Splits "HOST:PORT" (IPv6 as "[::1]:PORT").
bool SplitHostPort(const std::string& addr, std::string* host, uint16_t* port) {
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos) return false;
  *host = addr.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  try {
    int p = std::stoi(addr.substr(colon + 1));
    if (p < 0 || p > 65535) return false;
    *port = static_cast<uint16_t>(p);
  } catch (...) {
    return false;
  }
  return !host->empty();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "mezd - Mezite node agent: SSH server for cluster user certificates "
      "that records every session (node-sync mode)"};
  std::string auth_addr, token, listen = "0.0.0.0:3022", ca_file, user_ca_file,
                                node_name, host_key_file;
  app.add_option("--auth", auth_addr, "mezrecd address HOST:PORT")->required();
  app.add_option("--token", token, "this node's token")->required();
  app.add_option("--listen", listen,
                 "SSH address HOST:PORT (default 0.0.0.0:3022)");
  app.add_option("--ca-file", ca_file,
                 "the cluster's TLS CA (PEM); without it, plaintext gRPC")
      ->check(CLI::ExistingFile);
  app.add_option("--user-ca-file", user_ca_file,
                 "the user CA public key line (mezctl ca export --type=user)")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--node-name", node_name,
                 "name recorded for this node (default: the host name)");
  app.add_option("--host-key-file", host_key_file,
                 "Ed25519 host key, PKCS#8 PEM (default: a fresh key)")
      ->check(CLI::ExistingFile);
  if (int rc = mez::cmd::Parse(app, argc, argv); rc >= 0) return rc;

  auto ca_text = mez::ReadFile(user_ca_file);
  if (!ca_text.ok()) {
    std::fprintf(stderr, "mezd: %s\n", ca_text.status().message().c_str());
    return 1;
  }
  auto ca_blob = PublicKeyLineBlob(*ca_text);
  if (!ca_blob.ok()) {
    std::fprintf(stderr, "mezd: %s: %s\n", user_ca_file.c_str(),
                 ca_blob.status().message().c_str());
    return 2;
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!ca_file.empty()) {
    auto pem = mez::ReadFile(ca_file);
    if (!pem.ok()) {
      std::fprintf(stderr, "mezd: %s\n", pem.status().message().c_str());
      return 1;
    }
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = *pem;
    creds = grpc::SslCredentials(ssl);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  if (node_name.empty()) {
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    node_name = host;
  }

  mez::ssh::SshServerOptions options;
  if (!SplitHostPort(listen, &options.listen_address, &options.port)) {
    std::fprintf(stderr, "mezd: --listen wants HOST:PORT, not \"%s\"\n",
                 listen.c_str());
    return 2;
  }
  if (!host_key_file.empty()) {
    auto pem = mez::ReadFile(host_key_file);
    auto key = pem.ok() ? mez::auth::OpenSshPrivateKeyFromPem(*pem, "mezd")
                        : mez::Result<std::string>(pem.status());
    if (!key.ok()) {
      std::fprintf(stderr, "mezd: %s: %s\n", host_key_file.c_str(),
                   key.status().message().c_str());
      return 1;
    }
    options.host_key_openssh = *key;
  }
  options.trusted_user_ca_blob = *ca_blob;
  mez::agent::SyncRecorderOptions rec;
  rec.channel = grpc::CreateChannel(auth_addr, creds);
  rec.node_token = token;
  rec.node = node_name;
  options.tap_factory = mez::agent::MakeSyncTapFactory(rec);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = mez::ssh::SshServer::Start(std::move(options));
  if (!server.ok()) {
    std::fprintf(stderr, "mezd: %s\n", server.status().message().c_str());
    return 1;
  }
  std::fprintf(stderr, "mezd: serving SSH on %s port %u, recording to %s\n",
               listen.c_str(), static_cast<unsigned>((*server)->port()),
               auth_addr.c_str());
  int sig = 0;
  sigwait(&signals, &sig);
  (*server)->Stop();
  return 0;
}
