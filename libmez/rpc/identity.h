// Which identity the CLIs call mezrecd with: the --identity flag,
// $MEZ_IDENTITY or the one `msh login` stored, and what its token claims.
#ifndef MEZ_RPC_IDENTITY_H_
#define MEZ_RPC_IDENTITY_H_

#include <cstdint>
#include <string>

#include "libmez/auth/identity.h"
#include "libmez/util/status.h"

namespace mez::rpc {

// Where `msh login` keeps the identity: $HOME/.mez/identity.
std::string DefaultIdentityPath();

// The identity to use: `flag` (--identity) if set, else $MEZ_IDENTITY, else
// the one `msh login` stored. A missing file, or a token that has expired
// (read from the token's claims without verifying them; the server does
// that), is kFailedPrecondition with one line saying what to run.
Result<auth::Identity> ResolveIdentity(const std::string& flag);

// Stores `source` as the default identity (mode 0600, $HOME/.mez 0700).
// Returns the path written.
Result<std::string> StoreLogin(const std::string& source);

// The claims of a token, decoded without verification (display only).
struct TokenInfo {
  std::string subject;
  std::string role;
  int64_t expires_at = 0;
};
Result<TokenInfo> PeekToken(const std::string& token);

}  // namespace mez::rpc

#endif  // MEZ_RPC_IDENTITY_H_
