#include "libmez/util/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <vector>

namespace mez {

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("write", errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status AtomicWriteFile(const std::string& path, std::string_view data,
                       mode_t mode) {
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    return PermissionDenied("refusing to replace symlink '" + path + "'");
  }
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? std::string(".")
                    : slash == 0               ? std::string("/")
                                               : path.substr(0, slash);
  std::vector<char> tmpl(path.begin(), path.end());
  const char kSuffix[] = ".tmp.XXXXXX";
  tmpl.insert(tmpl.end(), kSuffix, kSuffix + sizeof(kSuffix));
  int fd = mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("create temporary file for " + path, errno);
  std::string tmp(tmpl.data());
  Status s = WriteAll(fd, data);
  if (s.ok() && fchmod(fd, mode) != 0) s = ErrnoStatus("chmod " + tmp, errno);
  if (s.ok() && fsync(fd) != 0) s = ErrnoStatus("fsync " + tmp, errno);
  if (close(fd) != 0 && s.ok()) s = ErrnoStatus("close " + tmp, errno);
  if (s.ok() && rename(tmp.c_str(), path.c_str()) != 0) {
    s = ErrnoStatus("rename " + tmp + " to " + path, errno);
  }
  if (!s.ok()) {
    unlink(tmp.c_str());
    return s;
  }
  int dfd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return Status::Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("open " + path, errno);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return ErrnoStatus("read " + path, err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return out;
}

}  // namespace mez
