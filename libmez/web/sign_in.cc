#include "libmez/web/sign_in.h"

#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>

#include "libmez/util/encoding.h"

namespace mez::web {
namespace {

Status Unauthenticated(std::string m) {
  return Status(Code::kUnauthenticated, std::move(m));
}
Status ResourceExhausted(std::string m) {
  return Status(Code::kUnavailable, std::move(m));
}

std::string Key(const std::string& secret) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(secret.data()), secret.size(),
         md);
  return std::string(reinterpret_cast<const char*>(md), sizeof(md));
}

// Whose codes and sessions count together: the catalog id, else the name.
std::string Owner(const auth::Claims& c) {
  return c.uid.empty() ? "name:" + c.subject : c.uid;
}

}  // namespace

template <typename Map>
void SignInStore::MakeRoomLocked(Map* map, std::vector<std::string>* keys,
                                 size_t max) {
  keys->erase(std::remove_if(keys->begin(), keys->end(),
                             [&](const std::string& k) {
                               return map->find(k) == map->end();
                             }),
              keys->end());
  while (!keys->empty() && keys->size() >= max) {
    map->erase(keys->front());
    keys->erase(keys->begin());
  }
}

std::string RandomToken() {
  unsigned char bytes[32];
  MEZ_CHECK(RAND_bytes(bytes, sizeof(bytes)) == 1);
  return HexEncode(
      std::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

void SignInStore::DropExpiredLocked(int64_t now) {
  for (auto it = codes_.begin(); it != codes_.end();) {
    it = it->second.expires_us <= now ? codes_.erase(it) : std::next(it);
  }
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    it = it->second.expires_us <= now ? sessions_.erase(it) : std::next(it);
  }
}

Result<IssuedCode> SignInStore::IssueCode(const auth::Claims& caller) {
  int64_t now = clock_->WallMicros();
  if (caller.expires_at != 0 && caller.expires_at * 1'000'000 <= now) {
    return Unauthenticated("your token has expired");
  }
  IssuedCode out;
  out.code = RandomToken();
  out.expires_us = now + code_ttl_us_;
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string>& mine = user_codes_[Owner(caller)];
  MakeRoomLocked(&codes_, &mine, kMaxCodesPerUser);
  if (codes_.size() >= kMaxCodes) DropExpiredLocked(now);
  if (codes_.size() >= kMaxCodes) {
    return ResourceExhausted(
        "too many sign-in codes outstanding; try again in a minute");
  }
  std::string key = Key(out.code);
  codes_[key] = Code{caller, out.expires_us, false};
  mine.push_back(key);
  return out;
}

Result<std::pair<std::string, WebSession>> SignInStore::Exchange(
    const std::string& code) {
  int64_t now = clock_->WallMicros();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = codes_.find(Key(code));
  if (it == codes_.end()) {
    return Unauthenticated(
        "unknown sign-in code: run 'msh web' again for a new link");
  }
  if (it->second.used) {
    return Unauthenticated(
        "this sign-in code was already used: run 'msh web' again for a new "
        "link");
  }
  if (it->second.expires_us <= now) {
    codes_.erase(it);
    return Unauthenticated(
        "this sign-in code has expired: run 'msh web' again for a new link");
  }
  // Kept, marked, until it expires: a second use is told so.
  it->second.used = true;
  WebSession s;
  s.caller = it->second.caller;
  s.csrf = RandomToken();
  s.expires_us = now + kMaxSessionUs;
  if (s.caller.expires_at != 0) {
    s.expires_us = std::min(s.expires_us, s.caller.expires_at * 1'000'000);
  }
  std::vector<std::string>& mine = user_sessions_[Owner(s.caller)];
  MakeRoomLocked(&sessions_, &mine, kMaxSessionsPerUser);
  if (sessions_.size() >= kMaxSessions) DropExpiredLocked(now);
  if (sessions_.size() >= kMaxSessions) {
    return ResourceExhausted("too many web sessions; try again later");
  }
  std::string id = RandomToken();
  std::string key = Key(id);
  sessions_[key] = s;
  mine.push_back(key);
  return std::make_pair(id, s);
}

Result<WebSession> SignInStore::Find(const std::string& id) {
  int64_t now = clock_->WallMicros();
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sessions_.find(Key(id));
  if (it == sessions_.end()) return Unauthenticated("not signed in");
  if (it->second.expires_us <= now) {
    sessions_.erase(it);
    return Unauthenticated("your web session has expired: run 'msh web'");
  }
  return it->second;
}

void SignInStore::End(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  sessions_.erase(Key(id));
}

}  // namespace mez::web
