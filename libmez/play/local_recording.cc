#include "libmez/play/local_recording.h"

#include <sys/stat.h>

#include <cstdlib>
#include <optional>

#include "libmez/record/seal.h"

namespace mez::play {
namespace {

bool IsFile(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

bool IsLocalRecording(const std::string& target) {
  return IsFile(target) || target.find('/') != std::string::npos ||
         EndsWith(target, ".cast") || EndsWith(target, ".cast.gz");
}

Result<std::unique_ptr<RecordingSource>> OpenLocalRecording(
    const std::string& path, const char* (*getenv_fn)(const char*)) {
  const char* hex = getenv_fn != nullptr
                        ? getenv_fn("MEZITE_RECORDING_ENC_KEY")
                        : std::getenv("MEZITE_RECORDING_ENC_KEY");
  std::optional<std::string> key;
  if (hex != nullptr && *hex != '\0') {
    auto parsed = record::ParseKeyHex(hex);
    if (!parsed.ok()) {
      return FailedPrecondition("MEZITE_RECORDING_ENC_KEY: " +
                                parsed.status().message());
    }
    key = std::move(parsed).value();
  }
  MEZ_ASSIGN_OR_RETURN(auto src, LocalFileSource::Create(path, key));
  return std::unique_ptr<RecordingSource>(std::move(src));
}

}  // namespace mez::play
