// Where recording files live. Keys are relative paths in the layout of
// DESIGN.md ("alice/shell/<session>.cast"); a store never writes outside
// its root, whatever the key says.
#ifndef MEZ_STORE_BLOB_STORE_H_
#define MEZ_STORE_BLOB_STORE_H_

#include <memory>
#include <string>

#include "libmez/record/sink.h"
#include "libmez/util/status.h"

namespace mez::store {

// Thread-safe.
class BlobStore {
 public:
  virtual ~BlobStore() = default;
  // Creates a new object for appending. kAlreadyExists if it exists.
  virtual Result<std::unique_ptr<record::ByteSink>> Create(
      const std::string& key) = 0;
  virtual Result<std::unique_ptr<record::ByteSource>> Open(
      const std::string& key) = 0;
  virtual Result<bool> Exists(const std::string& key) = 0;
  // Removes an object. kNotFound if there is none.
  virtual Status Delete(const std::string& key) = 0;
  // A human-readable location for logs ("/var/lib/mezite/recordings/k").
  virtual std::string Describe(const std::string& key) const = 0;
};

// Where the seek index of the recording stored under `recording_key` is
// kept (docs/formats/seek-index.md): beside it, in the same store.
inline std::string SeekIndexKey(const std::string& recording_key) {
  return recording_key + ".seek";
}

// Where the enhanced recording events of the shell or exec recording
// stored under `recording_key` are kept (docs/formats/enhanced-events.md):
// "<dir>/<session>.cast[.gz]" -> "<dir>/<session>.events[.gz]". Empty for
// any other key (pcaps have none).
inline std::string EventsKey(const std::string& recording_key) {
  for (const char* suffix : {".cast.gz", ".cast"}) {
    std::string s(suffix);
    if (recording_key.size() > s.size() &&
        recording_key.compare(recording_key.size() - s.size(), s.size(), s) ==
            0) {
      return recording_key.substr(0, recording_key.size() - s.size()) +
             (s == ".cast.gz" ? ".events.gz" : ".events");
    }
  }
  return "";
}

// Removes a recording and what is kept beside it (its seek index and its
// events file): every path that deletes a recording goes through here.
// kNotFound when the recording is not there; a missing index or events
// file is no error.
inline Status DeleteRecording(BlobStore* store, const std::string& key) {
  Status index = store->Delete(SeekIndexKey(key));
  if (!index.ok() && index.code() != Code::kNotFound) return index;
  std::string events = EventsKey(key);
  if (!events.empty()) {
    Status e = store->Delete(events);
    if (!e.ok() && e.code() != Code::kNotFound) return e;
  }
  return store->Delete(key);
}

// Files under a root directory. Every key is checked with SafeJoin (no
// "..", absolute parts, NUL, symlinks); directories are created 0750 and
// files 0640, never following or replacing a symlink.
class LocalStore : public BlobStore {
 public:
  // Creates `root` (and parents) if missing.
  static Result<std::unique_ptr<LocalStore>> New(const std::string& root);

  Result<std::unique_ptr<record::ByteSink>> Create(
      const std::string& key) override;
  Result<std::unique_ptr<record::ByteSource>> Open(
      const std::string& key) override;
  Result<bool> Exists(const std::string& key) override;
  Status Delete(const std::string& key) override;
  std::string Describe(const std::string& key) const override;
  const std::string& root() const { return root_; }

 private:
  explicit LocalStore(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

}  // namespace mez::store

#endif  // MEZ_STORE_BLOB_STORE_H_
