#include "libmez/util/path.h"

#include <sys/stat.h>

#include <cerrno>
#include <vector>

namespace mez {
namespace {

Result<std::vector<std::string_view>> SplitRelative(std::string_view rel) {
  if (rel.empty()) return InvalidArgument("empty path");
  if (rel.find('\0') != std::string_view::npos) {
    return InvalidArgument("path contains a NUL byte");
  }
  if (rel.front() == '/') {
    return InvalidArgument("absolute path '" + std::string(rel) +
                           "' is not allowed here");
  }
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t slash = rel.find('/', start);
    if (slash == std::string_view::npos) slash = rel.size();
    std::string_view part = rel.substr(start, slash - start);
    MEZ_RETURN_IF_ERROR(ValidateComponent(part, "path component"));
    parts.push_back(part);
    start = slash + 1;
  }
  return parts;
}

std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += '?';
    } else {
      out += c;
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

// Walks base/parts..., refusing symlinks; optionally creating directories.
Result<std::string> Walk(std::string_view base, std::string_view rel,
                         bool make_dirs) {
  MEZ_ASSIGN_OR_RETURN(auto parts, SplitRelative(rel));
  std::string path(base);
  if (path.empty()) return InvalidArgument("empty base directory");
  for (size_t i = 0; i < parts.size(); ++i) {
    if (path.back() != '/') path += '/';
    path += parts[i];
    bool last = i + 1 == parts.size();
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) {
      if (errno != ENOENT) return ErrnoStatus("lstat " + path, errno);
      if (!make_dirs) continue;  // Not there yet: nothing to follow.
      if (mkdir(path.c_str(), 0750) != 0 && errno != EEXIST) {
        return ErrnoStatus("mkdir " + path, errno);
      }
      if (lstat(path.c_str(), &st) != 0) {
        return ErrnoStatus("lstat " + path, errno);
      }
    }
    if (S_ISLNK(st.st_mode)) {
      return PermissionDenied("refusing to follow symlink '" + path +
                              "' inside the storage tree");
    }
    if (!last && !S_ISDIR(st.st_mode)) {
      return FailedPrecondition("'" + path + "' is not a directory");
    }
    if (last && make_dirs && !S_ISDIR(st.st_mode)) {
      return FailedPrecondition("'" + path + "' is not a directory");
    }
  }
  return path;
}

}  // namespace

Status ValidateComponent(std::string_view name, std::string_view what) {
  std::string w(what);
  if (name.empty()) return InvalidArgument(w + " is empty");
  if (name.size() > kMaxComponent) {
    return InvalidArgument(w + " is " + std::to_string(name.size()) +
                           " bytes long; the limit is " +
                           std::to_string(kMaxComponent));
  }
  if (name.find('\0') != std::string_view::npos) {
    return InvalidArgument(w + " contains a NUL byte");
  }
  if (name.find('/') != std::string_view::npos) {
    return InvalidArgument(w + " '" + Printable(name) + "' contains '/'");
  }
  if (name == "." || name == "..") {
    return InvalidArgument(w + " '" + std::string(name) +
                           "' would leave its directory");
  }
  return Status::Ok();
}

bool IsPlainIdentifier(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  if (s.front() == '.' || s.front() == '-') return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<std::string> SafeJoin(std::string_view base, std::string_view rel) {
  return Walk(base, rel, /*make_dirs=*/false);
}

Result<std::string> SafeMakeDirs(std::string_view base, std::string_view rel) {
  return Walk(base, rel, /*make_dirs=*/true);
}

}  // namespace mez
