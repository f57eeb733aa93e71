// Sign-in codes and browser sessions, in this process's memory
// (docs/web.md says why, and what that means with several replicas).
//
// A code is issued to an identified caller (the sign-in RPC), is good for
// one exchange within its lifetime, and carries the caller's identity;
// the exchange creates a session bound to that identity, expiring no
// later than the caller's token. Ids and codes are 256-bit random values;
// only their SHA-256 is kept as a key, so a memory dump or a timing leak
// of a map lookup does not hand out a live credential.
//
// Thread-safe.
#ifndef MEZ_WEB_SIGN_IN_H_
#define MEZ_WEB_SIGN_IN_H_

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "libmez/auth/token.h"
#include "libmez/util/clock.h"
#include "libmez/util/status.h"

namespace mez::web {

struct WebSession {
  auth::Claims caller;     // As the sign-in RPC identified it.
  std::string csrf;        // Sent back in X-CSRF-Token by the page.
  int64_t expires_us = 0;  // Wall clock; at most the token's expiry.
};

struct IssuedCode {
  std::string code;  // 64 lowercase hex digits
  int64_t expires_us = 0;
};

class SignInStore {
 public:
  // Most codes and sessions held; beyond, the oldest expired ones are
  // dropped and then new ones refused (kUnavailable).
  static constexpr size_t kMaxCodes = 10'000;
  static constexpr size_t kMaxSessions = 100'000;
  // Most codes and sessions of one identity (its uid): past them its own
  // oldest goes, so that one user cannot fill the store for everyone.
  static constexpr size_t kMaxCodesPerUser = 16;
  static constexpr size_t kMaxSessionsPerUser = 32;
  static constexpr int64_t kMaxSessionUs = 12LL * 3600 * 1'000'000;

  SignInStore(Clock* clock, int64_t code_ttl_us)
      : clock_(clock), code_ttl_us_(code_ttl_us) {}

  // A new single-use code for `caller` (whose token expires at
  // caller.expires_at, Unix seconds; 0: never).
  Result<IssuedCode> IssueCode(const auth::Claims& caller);
  // Uses up `code` and opens a session. kUnauthenticated, saying which,
  // for an unknown, used or expired code. Returns the session id (hex,
  // 256 bits) and the session.
  Result<std::pair<std::string, WebSession>> Exchange(const std::string& code);
  // The live session `id`, or kUnauthenticated.
  Result<WebSession> Find(const std::string& id);
  void End(const std::string& id);

 private:
  void DropExpiredLocked(int64_t now);
  // Keeps at most `max` - 1 of `owner`'s keys in `map` (dropping the
  // oldest, and keys the map no longer has), so that one more fits.
  template <typename Map>
  void MakeRoomLocked(Map* map, std::vector<std::string>* keys, size_t max);

  Clock* clock_;
  int64_t code_ttl_us_;
  std::mutex mu_;
  struct Code {
    auth::Claims caller;
    int64_t expires_us = 0;
    bool used = false;
  };
  std::map<std::string, Code> codes_;           // By SHA-256 of the code.
  std::map<std::string, WebSession> sessions_;  // By SHA-256 of the id.
  // Each identity's code and session keys, oldest first (some may be gone
  // from codes_ and sessions_ already).
  std::map<std::string, std::vector<std::string>> user_codes_;
  std::map<std::string, std::vector<std::string>> user_sessions_;
};

// 32 random bytes (OpenSSL RAND_bytes), as 64 lowercase hex digits.
std::string RandomToken();

}  // namespace mez::web

#endif  // MEZ_WEB_SIGN_IN_H_
