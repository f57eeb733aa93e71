// How mezd keeps its credential to mezrecd across restarts (the credential
// itself is a rpc::BearerToken shared by every caller in the process).
//
// A node joins with a join token (mezctl nodes add: single use, 30 min,
// pinning the cluster's TLS CA); its first JoinNode exchanges it for a node
// credential, which later heartbeats renew once a third of its life passed
// (auth::kNodeCredentialTtl). mezd keeps the credential in its data dir,
// so a restart needs no join token. See docs/security.md.
#ifndef MEZ_AGENT_CREDENTIAL_H_
#define MEZ_AGENT_CREDENTIAL_H_

#include <cstdint>
#include <memory>
#include <string>

#include "libmez/rpc/bearer_token.h"
#include "libmez/util/status.h"

namespace mez::agent {

// The credential file in mezd's data dir (mode 0600).
inline constexpr char kCredentialFile[] = "node_credential";
// The TLS CA a join token pinned, kept for restarts (mode 0644).
inline constexpr char kClusterCaFile[] = "cluster_ca.pem";

// What mezd starts with: the token to call JoinNode with first and the CA
// pin to check mezrecd against.
struct StartCredential {
  // The stored node credential, or the given token.
  std::shared_ptr<rpc::BearerToken> token;
  // True when `token` is a join token still to be exchanged (its JoinNode
  // response's node_token must then be stored with StoreCredential).
  bool join = false;
  // The join token's pin (auth::Claims::ca_hash); empty when the token is
  // not a join token or pins nothing (a plaintext cluster).
  std::string ca_sha256;
  // SHA-256 hex of the given join token, stored with the credential so
  // that a restart with the same --token uses the stored credential and a
  // new join token (the node was added again) replaces it.
  std::string join_sha256;
};

// mezd trusts what its data dir holds (the CA it pinned, its credential,
// the cached user CA): refuses a `data_dir` that exists and is not a
// directory owned by this process's user, or is writable by group or
// others (kFailedPrecondition naming the fix). A missing one is fine.
Status CheckDataDir(const std::string& data_dir);

// Decides what to start with, from `given` (--token: a join token, an old
// 365-day node token, or a node credential; may be empty) and the
// credential stored in `data_dir`:
//   - `given` a join token already exchanged (its hash is the stored
//     one's), or empty: the stored credential;
//   - `given` a join token not yet exchanged: it (join = true);
//   - `given` a node credential: it.
// kInvalidArgument when `given` is not a Mezite token or is another
// kind's, or when neither gives a credential (naming --token).
Result<StartCredential> LoadStartCredential(const std::string& data_dir,
                                            const std::string& given);

// Puts a node credential JoinNode returned into `start.token` for every
// caller, then stores it (atomically, 0600). The error is the file's: the
// credential is in use either way.
Status StoreCredential(const std::string& data_dir, StartCredential& start,
                       const std::string& node_token, int64_t expires_at);

}  // namespace mez::agent

#endif  // MEZ_AGENT_CREDENTIAL_H_
