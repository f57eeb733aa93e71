#include "libmez/cli/key_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "libmez/util/clock.h"

namespace mez::cli {
namespace {

// Key directories older than this are left by a run that was killed: their
// certificate (valid at most 10 minutes) has expired, and a live ssh has
// long read its key.
constexpr int64_t kStaleKeyDirSeconds = 15 * 60;

// The files msh ssh writes into a key directory (AtomicWriteFile may leave
// a temporary sibling named NAME.tmp* when killed mid-write).
bool IsKeyDirFile(const std::string& name) {
  for (const char* f : {"id_ed25519", "id_ed25519-cert.pub", "known_hosts"}) {
    std::string base = f;
    if (name == base) return true;
    if (name.compare(0, base.size() + 4, base + ".tmp") == 0) return true;
  }
  return false;
}

// Removes a key directory of ours: its known files, then the directory.
// Anything else inside (a symlink, a subdirectory, a file we never write)
// is left alone, and so is the directory.
Status RemoveKeyDir(int parent_fd, const std::string& name) {
  int fd = openat(parent_fd, name.c_str(),
                  O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::Ok();
    return Status(Code::kInternal, "cannot open key directory " + name + ": " +
                                       std::strerror(errno));
  }
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    close(fd);
    return Status(Code::kInternal, "cannot list key directory " + name);
  }
  // Verified first, removed after: a directory holding anything else is
  // left exactly as it is.
  Status result;
  std::vector<std::string> files;
  while (struct dirent* e = readdir(d)) {
    std::string f = e->d_name;
    if (f == "." || f == "..") continue;
    struct stat st;
    if (fstatat(dirfd(d), f.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
        !S_ISREG(st.st_mode) || !IsKeyDirFile(f)) {
      result = FailedPrecondition(
          "key directory " + name + " holds an unexpected entry '" + f +
          "'; left in place (remove it yourself if it is not needed)");
      break;
    }
    files.push_back(f);
  }
  for (size_t i = 0; result.ok() && i < files.size(); ++i) {
    if (unlinkat(dirfd(d), files[i].c_str(), 0) != 0 && errno != ENOENT) {
      result =
          Status(Code::kInternal, "cannot remove " + name + "/" + files[i] +
                                      ": " + std::strerror(errno));
    }
  }
  closedir(d);
  if (!result.ok()) return result;
  if (unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return Status(Code::kInternal, "cannot remove key directory " + name +
                                       ": " + std::strerror(errno));
  }
  return Status::Ok();
}

// Removes ssh-* key directories that killed runs left behind (see
// kStaleKeyDirSeconds). Only directories owned by this user are touched.
void RemoveStaleKeyDirs(const std::string& keys_dir) {
  int fd =
      open(keys_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  DIR* d = fdopendir(fd);
  if (d == nullptr) {
    close(fd);
    return;
  }
  std::vector<std::string> stale;
  int64_t now = RealClock()->WallMicros() / 1'000'000;
  while (struct dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name.compare(0, 4, "ssh-") != 0) continue;
    struct stat st;
    if (fstatat(dirfd(d), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      continue;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) continue;
    if (now - static_cast<int64_t>(st.st_mtime) < kStaleKeyDirSeconds) {
      continue;
    }
    stale.push_back(name);
  }
  for (const auto& name : stale) {
    Status s = RemoveKeyDir(dirfd(d), name);
    if (!s.ok()) {
      std::fprintf(stderr, "msh: %s\n", s.message().c_str());
    }
  }
  closedir(d);
}

}  // namespace

Result<std::string> MakeKeyDir() {
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') {
    return FailedPrecondition("HOME is not set; msh ssh keeps keys there");
  }
  std::string dir = std::string(home) + "/.mez";
  for (const std::string& d : {dir, dir + "/keys"}) {
    if (mkdir(d.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status(Code::kInternal,
                    "cannot create " + d + ": " + std::strerror(errno));
    }
  }
  RemoveStaleKeyDirs(dir + "/keys");
  std::string tmpl = dir + "/keys/ssh-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    return Status(Code::kInternal, "cannot create a key directory under " +
                                       dir + "/keys: " + std::strerror(errno));
  }
  return tmpl;
}

Status RemoveKeyDirPath(const std::string& path) {
  size_t slash = path.rfind('/');
  std::string parent = path.substr(0, slash);
  int fd = open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return Status(Code::kInternal,
                  "cannot open " + parent + ": " + std::strerror(errno));
  }
  Status s = RemoveKeyDir(fd, path.substr(slash + 1));
  close(fd);
  return s;
}

}  // namespace mez::cli
