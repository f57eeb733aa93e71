// Recordings in an S3 bucket (AWS S3, MinIO, Swift s3api, ...).
//
// Writes: Create returns a sink that buffers appended bytes (in memory, or
// in a local spool file) and hands each full part (part_size, at least
// 5 MiB) to the store's upload threads as a multipart-upload part. A
// writer does not wait for S3: Append only blocks while its own object
// already has max_parts_in_flight parts queued or uploading, so a slow or
// hanging S3 request stalls that one object, never the writers of others.
// An upload error is reported by the next Append, Flush, Sync or Close of
// that object; a multipart upload lost with its bucket is reported as the
// missing bucket (naming MEZITE_S3_BUCKET). Close uploads the rest, completes
// the object and returns only once that is done (and, with a spool, the size
// checked); an object that never filled a part is written with one PUT. The
// object becomes visible in the bucket only at Close: Flush and Sync do not
// make bytes durable in S3 (S3 has no append), they only report earlier errors.
//
// Reads: Open returns a source that reads the object with Range GETs of
// read_chunk_size bytes, each only when the reader gets there (Open itself
// makes the first, and no HEAD); gzip objects are decompressed
// transparently, as LocalStore does.
#ifndef MEZ_STORE_S3_STORE_H_
#define MEZ_STORE_S3_STORE_H_

#include <memory>
#include <string>

#include "libmez/store/blob_store.h"
#include "libmez/store/s3_client.h"
#include "libmez/util/thread_pool.h"

namespace mez::store {

struct S3StoreOptions {
  S3Options s3;  // Endpoint, bucket, region, keys, path style, CA file.
  // Every key is stored as prefix + key ("recordings/" + "alice/..."). A
  // non-empty prefix without a trailing '/' gets one. MEZITE_S3_PREFIX.
  std::string prefix;
  // Multipart part size; raised to 5 MiB if smaller. The part size doubles
  // after every 1,000 parts (up to 16x) so very long recordings stay within
  // the 10,000-part limit (and Swift's default 1,000).
  size_t part_size = 5 << 20;
  size_t read_chunk_size = 1 << 20;
  // New() lists the bucket once so that bad settings fail at startup with
  // a clear message rather than at the first recording.
  bool check_bucket = true;
  // When set (mezrecd sets <data-dir>/s3-spool), sinks write every byte to
  // a local spool file there and upload parts from it: memory stays small
  // per open recording, Sync makes bytes durable locally, and New()
  // finishes the objects whose spools a crash left (aborting their
  // multipart uploads and uploading the spool afresh). A spool is deleted
  // only after a HEAD shows the completed object has every byte.
  std::string spool_dir;
  // Threads that upload parts and complete objects for every sink of this
  // store. 0: uploads run inside Append and Close (synchronously).
  int upload_threads = 4;
  // Per object: parts queued or uploading before Append waits. Bounds
  // memory (without a spool each is a part_size buffer).
  int max_parts_in_flight = 2;
};

// Thread-safe; each sink and source is used by one thread at a time.
// REQUIRES: every sink is closed or destroyed before the store.
class S3Store : public BlobStore {
 public:
  static Result<std::unique_ptr<S3Store>> New(S3StoreOptions options);

  // kAlreadyExists if the object exists (checked with HEAD; S3 has no
  // exclusive create, so two concurrent creators of one key both succeed
  // and the last Close wins).
  Result<std::unique_ptr<record::ByteSink>> Create(
      const std::string& key) override;
  Result<std::unique_ptr<record::ByteSource>> Open(
      const std::string& key) override;
  Result<bool> Exists(const std::string& key) override;
  // kNotFound if there is no such object.
  Status Delete(const std::string& key) override;
  // "s3://bucket/prefix/key".
  std::string Describe(const std::string& key) const override;

  S3Client* client() { return client_.get(); }
  // The object key for a store key: prefix + key.
  std::string ObjectKey(const std::string& key) const;

 private:
  S3Store(S3StoreOptions options, std::unique_ptr<S3Client> client);
  Status CheckKey(const std::string& key) const;
  Status RecoverSpools();

  S3StoreOptions options_;
  std::unique_ptr<S3Client> client_;
  // Declared after client_: joined (after running what is queued) before
  // the client goes. Null when upload_threads is 0.
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace mez::store

#endif  // MEZ_STORE_S3_STORE_H_
