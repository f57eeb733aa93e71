// Feeds arbitrary bytes to the parsers of the AWS credentials chain
// (s3_credentials.h): the shared credentials file, the JSON of the ECS
// agent and instance metadata, and ISO 8601 expiry times. Each must accept
// or refuse, never crash or hang; what it accepts keeps its promises.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "libmez/store/s3_credentials.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto ini = mez::store::ParseIni(input);
  if (!ini.ok() && ini.status().code() != mez::Code::kInvalidArgument) {
    __builtin_trap();
  }
  if (ini.ok()) {
    for (const auto& [section, keys] : *ini) {
      for (const auto& [key, value] : keys) {
        // Keys are lowercased.
        for (char c : key) {
          if (c >= 'A' && c <= 'Z') __builtin_trap();
        }
      }
    }
  }
  auto creds = mez::store::ParseCredentialsJson(input, "fuzz");
  if (creds.ok() && (creds->access_key.empty() || creds->secret_key.empty())) {
    __builtin_trap();
  }
  (void)mez::store::ParseIso8601(input).ok();  // Only that it returns.
  return 0;
}
