#include "libmez/ssh/upstream.h"

#include <libssh/libssh.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "libmez/ssh/upstream_impl.h"
#include "libmez/util/encoding.h"

namespace mez::ssh {
namespace {

// The SSH wire-format blob of a libssh public key (or certificate).
Result<std::string> KeyBlob(ssh_key key) {
  char* b64 = nullptr;
  if (ssh_pki_export_pubkey_base64(key, &b64) != SSH_OK) {
    return Internal("cannot export an SSH key");
  }
  Result<std::string> blob = Base64Decode(b64);
  ssh_string_free_char(b64);
  return blob;
}

}  // namespace

Status Upstream::Impl::Connect(const UpstreamOptions& o) {
  where_ = o.login + "@" + o.host + ":" + std::to_string(o.port);
  timeout_seconds_ = o.timeout_seconds;
  if (o.pinned_host_key_blob.empty()) {
    return InvalidArgument("upstream " + where_ +
                           ": no pinned host key (refusing to trust any)");
  }
  session_ = ssh_new();
  if (session_ == nullptr) return Internal("ssh_new failed");
  unsigned int port = o.port;
  long timeout = o.timeout_seconds;
  bool process_config = false;
  ssh_options_set(session_, SSH_OPTIONS_PROCESS_CONFIG, &process_config);
  ssh_options_set(session_, SSH_OPTIONS_HOST, o.host.c_str());
  ssh_options_set(session_, SSH_OPTIONS_PORT, &port);
  ssh_options_set(session_, SSH_OPTIONS_USER, o.login.c_str());
  ssh_options_set(session_, SSH_OPTIONS_TIMEOUT, &timeout);
  int nodelay = 1;  // Keystrokes go out at once.
  ssh_options_set(session_, SSH_OPTIONS_NODELAY, &nodelay);
  // Only the key type that can be pinned.
  ssh_options_set(session_, SSH_OPTIONS_HOSTKEYS, "ssh-ed25519");
  if (ssh_connect(session_) != SSH_OK) {
    return Status(Code::kUnavailable,
                  "upstream " + where_ + ": " + ssh_get_error(session_));
  }
  ssh_key server_key = nullptr;
  if (ssh_get_server_publickey(session_, &server_key) != SSH_OK) {
    return Status(Code::kUnauthenticated,
                  "upstream " + where_ + ": no host key");
  }
  Result<std::string> blob = KeyBlob(server_key);
  ssh_key_free(server_key);
  if (!blob.ok()) return blob.status();
  if (*blob != o.pinned_host_key_blob) {
    return Status(Code::kUnauthenticated,
                  "upstream " + where_ +
                      ": the host key is not the one pinned for this node "
                      "(ssh-ed25519 " +
                      Base64Encode(*blob) + "); refusing to connect");
  }

  ssh_key priv = nullptr;
  if (ssh_pki_import_privkey_base64(o.user_key_openssh.c_str(), nullptr,
                                    nullptr, nullptr, &priv) != SSH_OK) {
    return InvalidArgument("upstream: the user key is not an OpenSSH key");
  }
  ssh_key cert = nullptr;
  std::string cert_b64 = Base64Encode(o.user_cert_blob);
  if (ssh_pki_import_cert_base64(cert_b64.c_str(), SSH_KEYTYPE_ED25519_CERT01,
                                 &cert) != SSH_OK) {
    ssh_key_free(priv);
    return InvalidArgument("upstream: the user certificate cannot be read");
  }
  int rc = ssh_pki_copy_cert_to_privkey(cert, priv);
  if (rc == SSH_OK) rc = ssh_userauth_try_publickey(session_, nullptr, cert);
  if (rc == SSH_AUTH_SUCCESS) {
    rc = ssh_userauth_publickey(session_, nullptr, priv);
  }
  ssh_key_free(cert);
  ssh_key_free(priv);
  if (rc != SSH_AUTH_SUCCESS) {
    return PermissionDenied(
        "upstream " + where_ +
        ": the node refused the certificate: " + ssh_get_error(session_));
  }
  return Status::Ok();
}

Result<std::unique_ptr<Upstream>> Upstream::Connect(
    const UpstreamOptions& options) {
  static std::once_flag init_once;
  std::call_once(init_once, [] { ssh_init(); });
  auto impl = std::make_unique<Impl>();
  MEZ_RETURN_IF_ERROR(impl->Connect(options));
  return std::unique_ptr<Upstream>(new Upstream(std::move(impl)));
}

Upstream::Upstream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Upstream::~Upstream() = default;

Result<ExecResult> Upstream::Exec(const std::string& command,
                                  std::string_view input) {
  ssh_channel ch = ssh_channel_new(impl_->session_);
  if (ch == nullptr) return Internal("ssh_channel_new failed");
  auto fail = [&](const std::string& what) {
    Status s(Code::kUnavailable, "upstream " + impl_->where_ + ": " + what +
                                     ": " + ssh_get_error(impl_->session_));
    ssh_channel_free(ch);
    return s;
  };
  if (ssh_channel_open_session(ch) != SSH_OK) return fail("open session");
  if (ssh_channel_request_exec(ch, command.c_str()) != SSH_OK) {
    return fail("exec");
  }
  // sshd opens a session channel with an empty window and widens it once
  // the program runs: a write may take nothing at first.
  auto give_up = std::chrono::steady_clock::now() +
                 std::chrono::seconds(impl_->timeout_seconds_);
  while (!input.empty()) {
    int n = ssh_channel_write(ch, input.data(),
                              static_cast<uint32_t>(input.size()));
    if (n < 0) return fail("write");
    input.remove_prefix(static_cast<size_t>(n));
    if (n == 0) {
      if (std::chrono::steady_clock::now() > give_up) {
        return fail("the node takes no input");
      }
      ssh_channel_poll_timeout(ch, 100, 0);
    }
  }
  if (ssh_channel_send_eof(ch) != SSH_OK) return fail("eof");
  ExecResult result;
  char buf[16 * 1024];
  for (int is_err : {0, 1}) {
    for (;;) {
      int n = ssh_channel_read_timeout(ch, buf, sizeof(buf), is_err, 10'000);
      if (n == SSH_ERROR) return fail("read");
      if (n <= 0) break;
      (is_err ? result.err : result.out).append(buf, static_cast<size_t>(n));
    }
  }
  result.exit_status = ssh_channel_get_exit_status(ch);
  ssh_channel_close(ch);
  ssh_channel_free(ch);
  return result;
}

}  // namespace mez::ssh
