// Feeds arbitrary bytes to the S3 response parsers (s3_client.h): each must
// accept or refuse, never crash, hang or recurse without bound. Whatever
// ParseListObjectsV2 accepts must keep its documented promises.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "libmez/store/s3_client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto doc = mez::store::ParseXml(input);
  if (!doc.ok() && doc.status().code() != mez::Code::kDataLoss) {
    __builtin_trap();
  }
  mez::store::ParseS3Error(input);
  auto page = mez::store::ParseListObjectsV2(input);
  if (page.ok()) {
    if (page->truncated && page->next_continuation_token.empty()) {
      __builtin_trap();
    }
    for (const auto& o : page->objects) {
      if (o.key.empty()) __builtin_trap();
    }
  }
  // Only that it returns: any answer to garbage is fine.
  (void)mez::store::ParseListMultipartUploads(input).ok();
  return 0;
}
