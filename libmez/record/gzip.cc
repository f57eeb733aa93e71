#include "libmez/record/gzip.h"

#include <zlib.h>

#include <cstring>

namespace mez::record {
namespace {

// An 8 KiB window and memLevel 6 keep deflate's state near 64 KiB per open
// stream (the zlib defaults take ~256 KiB) for a few percent of ratio on
// terminal output: mezrecd holds one per live session.
constexpr int kGzipWindowBits = 13 + 16;  // 13-bit window, gzip wrapper.
constexpr int kGzipMemLevel = 6;
constexpr int kAutoWindowBits = 15 + 32;  // Accept gzip or zlib headers.
constexpr size_t kOutChunk = 16 * 1024;

}  // namespace

struct GzipSink::Impl {
  z_stream zs{};
  std::string out;
};

GzipSink::GzipSink(std::unique_ptr<ByteSink> below, GzipOptions options)
    : impl_(std::make_unique<Impl>()),
      below_(std::move(below)),
      options_(options) {
  if (options_.clock == nullptr) options_.clock = RealClock();
}

GzipSink::~GzipSink() {
  if (!closed_) (void)Close();
  deflateEnd(&impl_->zs);
}

Result<std::unique_ptr<GzipSink>> GzipSink::Create(
    std::unique_ptr<ByteSink> below, GzipOptions options) {
  MEZ_CHECK(below != nullptr);
  std::unique_ptr<GzipSink> sink(new GzipSink(std::move(below), options));
  int rc = deflateInit2(&sink->impl_->zs, options.level, Z_DEFLATED,
                        kGzipWindowBits, kGzipMemLevel, Z_DEFAULT_STRATEGY);
  if (rc != Z_OK) {
    return Internal("deflateInit2 failed with " + std::to_string(rc));
  }
  sink->impl_->out.resize(kOutChunk);
  return sink;
}

Status GzipSink::Deflate(std::string_view data, int flush) {
  z_stream& zs = impl_->zs;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  do {
    zs.next_out = reinterpret_cast<Bytef*>(impl_->out.data());
    zs.avail_out = static_cast<uInt>(impl_->out.size());
    int rc = deflate(&zs, flush);
    if (rc == Z_STREAM_ERROR) return Internal("deflate failed");
    size_t have = impl_->out.size() - zs.avail_out;
    if (have > 0) {
      MEZ_RETURN_IF_ERROR(
          below_->Append(std::string_view(impl_->out.data(), have)));
    }
  } while (zs.avail_out == 0 || zs.avail_in > 0);
  return Status::Ok();
}

Status GzipSink::Append(std::string_view data) {
  if (closed_) return FailedPrecondition("append to closed gzip stream");
  // deflate takes uInt lengths; feed very large buffers in slices.
  while (!data.empty()) {
    size_t n = std::min<size_t>(data.size(), 1u << 30);
    MEZ_RETURN_IF_ERROR(Deflate(data.substr(0, n), Z_NO_FLUSH));
    data.remove_prefix(n);
    bytes_in_ += n;
  }
  if (pending_since_us_ < 0) {
    pending_since_us_ = options_.clock->MonotonicMicros();
    return Status::Ok();
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
  MEZ_RETURN_IF_ERROR(Deflate({}, Z_SYNC_FLUSH));
  pending_since_us_ = -1;
  return below_->Flush();
}

Status GzipSink::Sync() {
  MEZ_RETURN_IF_ERROR(Flush());
  return below_->Sync();
}

Status GzipSink::Close() {
  if (closed_) return Status::Ok();
  Status s = Deflate({}, Z_FINISH);
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
