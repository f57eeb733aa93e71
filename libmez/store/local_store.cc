#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "libmez/store/blob_store.h"
#include "libmez/util/path.h"

namespace mez::store {
namespace {

Status MakeRoot(const std::string& root) {
  if (root.empty()) return InvalidArgument("storage path is empty");
  std::string path;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = root.find('/', pos + 1);
    path = root.substr(0, pos);
    if (path.empty()) continue;
    if (mkdir(path.c_str(), 0750) != 0 && errno != EEXIST) {
      return ErrnoStatus("create storage directory " + path, errno);
    }
  }
  struct stat st;
  if (stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return FailedPrecondition("storage path " + root + " is not a directory");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<LocalStore>> LocalStore::New(const std::string& root) {
  MEZ_RETURN_IF_ERROR(MakeRoot(root));
  return std::unique_ptr<LocalStore>(new LocalStore(root));
}

Result<std::unique_ptr<record::ByteSink>> LocalStore::Create(
    const std::string& key) {
  size_t slash = key.rfind('/');
  if (slash != std::string::npos) {
    MEZ_RETURN_IF_ERROR(SafeMakeDirs(root_, key.substr(0, slash)).status());
  }
  MEZ_ASSIGN_OR_RETURN(std::string path, SafeJoin(root_, key));
  MEZ_ASSIGN_OR_RETURN(auto sink, record::FileSink::Create(path));
  return std::unique_ptr<record::ByteSink>(std::move(sink));
}

Result<std::unique_ptr<record::ByteSource>> LocalStore::Open(
    const std::string& key) {
  MEZ_ASSIGN_OR_RETURN(std::string path, SafeJoin(root_, key));
  return record::OpenRecording(path);
}

Result<bool> LocalStore::Exists(const std::string& key) {
  MEZ_ASSIGN_OR_RETURN(std::string path, SafeJoin(root_, key));
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return ErrnoStatus("stat " + path, errno);
}

Status LocalStore::Delete(const std::string& key) {
  MEZ_ASSIGN_OR_RETURN(std::string path, SafeJoin(root_, key));
  if (unlink(path.c_str()) == 0) return Status::Ok();
  if (errno == ENOENT) return NotFound("no recording " + key);
  return ErrnoStatus("delete " + path, errno);
}

std::string LocalStore::Describe(const std::string& key) const {
  return root_ + "/" + key;
}

}  // namespace mez::store
