#include "libmez/record/gzip.h"

#include <libdeflate.h>
#include <zlib.h>

#include <cstring>

namespace mez::record {
namespace {

constexpr int kAutoWindowBits = 15 + 32;  // Accept gzip or zlib headers.
constexpr size_t kOutChunk = 16 * 1024;

}  // namespace

namespace {

// Input per member: large enough that a member compresses nearly as well
// as one long stream on terminal output, small enough to hold per live
// session.
constexpr size_t kMemberBytes = 64 * 1024;

// libdeflate compressors are not thread-safe but hold no stream state, so
// each thread keeps one per level instead of each sink keeping its own.
libdeflate_compressor* ThreadCompressor(int level) {
  struct Cache {
    libdeflate_compressor* by_level[13] = {};
    ~Cache() {
      for (auto* c : by_level) {
        if (c) libdeflate_free_compressor(c);
      }
    }
  };
  thread_local Cache cache;
  if (cache.by_level[level] == nullptr) {
    cache.by_level[level] = libdeflate_alloc_compressor(level);
  }
  return cache.by_level[level];
}

}  // namespace

GzipSink::GzipSink(std::unique_ptr<ByteSink> below, GzipOptions options)
    : below_(std::move(below)), options_(options) {
  if (options_.clock == nullptr) options_.clock = RealClock();
}

GzipSink::~GzipSink() {
  if (!closed_) (void)Close();
}

Result<std::unique_ptr<GzipSink>> GzipSink::Create(
    std::unique_ptr<ByteSink> below, GzipOptions options) {
  MEZ_CHECK(below != nullptr);
  if (options.level < 1 || options.level > 12) {
    return InvalidArgument("gzip level " + std::to_string(options.level) +
                           " is out of range (1..12)");
  }
  if (ThreadCompressor(options.level) == nullptr) {
    return Internal("cannot allocate a libdeflate compressor");
  }
  return std::unique_ptr<GzipSink>(new GzipSink(std::move(below), options));
}

Status GzipSink::EmitMember() {
  libdeflate_compressor* c = ThreadCompressor(options_.level);
  if (c == nullptr) return Internal("cannot allocate a libdeflate compressor");
  thread_local std::string out;
  out.resize(libdeflate_gzip_compress_bound(c, buf_.size()));
  size_t n = libdeflate_gzip_compress(c, buf_.data(), buf_.size(), out.data(),
                                      out.size());
  if (n == 0) return Internal("gzip compression failed");
  buf_.clear();
  ++members_;
  return below_->Append(std::string_view(out.data(), n));
}

Status GzipSink::Append(std::string_view data) {
  if (closed_) return FailedPrecondition("append to closed gzip stream");
  bytes_in_ += data.size();
  if (!data.empty() && pending_since_us_ < 0) {
    pending_since_us_ = options_.clock->MonotonicMicros();
  }
  while (!data.empty()) {
    size_t k = std::min(data.size(), kMemberBytes - buf_.size());
    buf_.append(data.substr(0, k));
    data.remove_prefix(k);
    if (buf_.size() == kMemberBytes) MEZ_RETURN_IF_ERROR(EmitMember());
  }
  return Tick();
}

Status GzipSink::Tick() {
  if (closed_ || pending_since_us_ < 0) return Status::Ok();
  int64_t now = options_.clock->MonotonicMicros();
  if (now - pending_since_us_ < options_.flush_interval_us) return Status::Ok();
  return Flush();
}

Status GzipSink::Flush() {
  if (closed_) return FailedPrecondition("flush of closed gzip stream");
  if (!buf_.empty()) {
    MEZ_RETURN_IF_ERROR(EmitMember());
    // A stream flushed by the timer is likely idle: give its buffer back.
    buf_.shrink_to_fit();
  }
  pending_since_us_ = -1;
  return below_->Flush();
}

Status GzipSink::Sync() {
  MEZ_RETURN_IF_ERROR(Flush());
  return below_->Sync();
}

Status GzipSink::Close() {
  if (closed_) return Status::Ok();
  Status s;
  if (!buf_.empty() || members_ == 0) s = EmitMember();
  closed_ = true;
  Status c = below_->Close();
  return s.ok() ? c : s;
}

struct GunzipSource::Impl {
  z_stream zs{};
  std::string in;
  bool in_eof = false;
  bool member_done = false;
};

GunzipSource::GunzipSource(std::unique_ptr<ByteSource> below)
    : impl_(std::make_unique<Impl>()), below_(std::move(below)) {
  int rc = inflateInit2(&impl_->zs, kAutoWindowBits);
  MEZ_CHECK(rc == Z_OK);
  impl_->in.resize(kOutChunk);
}

GunzipSource::~GunzipSource() { inflateEnd(&impl_->zs); }

std::unique_ptr<ByteSource> NewGunzipSource(std::unique_ptr<ByteSource> below) {
  return std::make_unique<GunzipSource>(std::move(below));
}

Result<size_t> GunzipSource::Read(char* buf, size_t n) {
  z_stream& zs = impl_->zs;
  if (done_ || n == 0) return size_t{0};
  zs.next_out = reinterpret_cast<Bytef*>(buf);
  zs.avail_out = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
  size_t want = zs.avail_out;
  while (zs.avail_out == want) {
    if (zs.avail_in == 0) {
      if (impl_->in_eof) {
        // Input ended: cleanly after a member, or cut short inside one.
        truncated_ = !impl_->member_done;
        done_ = true;
        break;
      }
      MEZ_ASSIGN_OR_RETURN(size_t got,
                           below_->Read(impl_->in.data(), impl_->in.size()));
      if (got == 0) {
        impl_->in_eof = true;
        continue;
      }
      zs.next_in = reinterpret_cast<Bytef*>(impl_->in.data());
      zs.avail_in = static_cast<uInt>(got);
    }
    if (impl_->member_done) {
      // Another member follows (e.g. a resumed spool appended one).
      inflateReset(&zs);
      impl_->member_done = false;
    }
    int rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_STREAM_END) {
      impl_->member_done = true;
    } else if (rc == Z_BUF_ERROR) {
      // No progress possible with this input; more input is needed.
      if (zs.avail_in != 0) return DataLoss("gzip stream stalled");
    } else if (rc != Z_OK) {
      return DataLoss(std::string("corrupt gzip data: ") +
                      (zs.msg ? zs.msg : std::to_string(rc)));
    }
  }
  return want - zs.avail_out;
}

Result<std::string> GzipBytes(std::string_view data, int level) {
  auto below = std::make_unique<StringSink>();
  StringSink* raw = below.get();
  GzipOptions opt;
  opt.level = level;
  MEZ_ASSIGN_OR_RETURN(auto gz, GzipSink::Create(std::move(below), opt));
  MEZ_RETURN_IF_ERROR(gz->Append(data));
  MEZ_RETURN_IF_ERROR(gz->Close());
  return raw->data();
}

Result<std::string> GunzipBytes(std::string_view data) {
  GunzipSource src(std::make_unique<StringSource>(std::string(data)));
  std::string out;
  char buf[65536];
  for (;;) {
    MEZ_ASSIGN_OR_RETURN(size_t n, src.Read(buf, sizeof(buf)));
    if (n == 0) break;
    out.append(buf, n);
  }
  if (src.truncated()) return DataLoss("gzip data ends early");
  return out;
}

}  // namespace mez::record
