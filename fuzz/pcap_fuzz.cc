// Fuzzes the pcap reader, plain and with a key, including flow reassembly.
// It must return errors, never crash, hang or leak.
#include <cstddef>
#include <cstdint>
#include <string>

#include "libmez/record/pcap_reader.h"

namespace {

void ReadAll(const std::string& bytes, bool with_key) {
  mez::record::PcapReaderOptions opt;
  if (with_key) opt.key = std::string(32, '\x42');
  auto r = mez::record::PcapReader::Open(mez::record::OpenRecordingBytes(bytes),
                                         opt);
  if (!r.ok()) return;
  (void)mez::record::ReassembleFlows(r->get());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  ReadAll(bytes, false);
  ReadAll(bytes, true);
  return 0;
}
