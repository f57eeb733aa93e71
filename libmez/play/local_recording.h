// What msh play does with a target that is not a session id: tell the two
// apart, and open a local recording with the key the environment gives.
#ifndef MEZ_PLAY_LOCAL_RECORDING_H_
#define MEZ_PLAY_LOCAL_RECORDING_H_

#include <memory>
#include <string>

#include "libmez/play/source.h"
#include "libmez/util/status.h"

namespace mez::play {

// True when `target` names a local recording: an existing regular file,
// anything with a '/', or a name ending in .cast or .cast.gz (session ids
// are plain identifiers, so such a name is a file even when it does not
// exist, and is reported missing rather than looked up in the cluster).
bool IsLocalRecording(const std::string& target);

// Opens the recording file `path`. An encrypted one is decrypted with
// MEZITE_RECORDING_ENC_KEY (64 hex characters), read through `getenv_fn`
// (nullptr: the process's environment; it returns nullptr when unset).
// kFailedPrecondition naming the variable when it is set and malformed;
// LocalFileSource::Create's errors (naming the path) otherwise.
Result<std::unique_ptr<RecordingSource>> OpenLocalRecording(
    const std::string& path, const char* (*getenv_fn)(const char*) = nullptr);

// Reads a recording from `fd` (a pipe: `msh play -`) to its end into an
// unlinked temporary file in $TMPDIR (or /tmp), so that it can be seeked
// like a file, and opens that as OpenLocalRecording does. The source's id
// is "stdin".
Result<std::unique_ptr<RecordingSource>> OpenStreamRecording(
    int fd, const char* (*getenv_fn)(const char*) = nullptr);

}  // namespace mez::play

#endif  // MEZ_PLAY_LOCAL_RECORDING_H_
