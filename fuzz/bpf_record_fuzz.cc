// Fuzzes DecodeRecord, the decoder of the kernel's ring buffer records
// (libmez/bpf/event_abi.h), which reads lengths written inside the record:
// an error or an event, never a read out of bounds, a crash or an
// allocation beyond the record's size. An event that decodes must be
// consistent, turn into one line of valid JSON, and collapse with a copy
// of itself as docs/formats/enhanced-events.md says.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "libmez/bpf/collapse.h"
#include "libmez/bpf/event.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto event = mez::bpf::DecodeRecord(std::span<const uint8_t>(data, size), 7);
  if (!event.ok()) return 0;
  const mez::bpf::Event& e = *event;
  if (e.argv_cut_bytes > e.argv_bytes) __builtin_trap();
  size_t argv_size = 0;
  for (const auto& a : e.argv) argv_size += a.size() + 1;
  if (argv_size > size + 1) __builtin_trap();
  const std::string line = mez::bpf::ToJsonLine(e);
  if (line.find('\n') != std::string::npos) __builtin_trap();
  if (!nlohmann::json::accept(line)) __builtin_trap();

  // The next number's copy of an open joins its run; anything else is
  // delivered as it came. Either way every number is delivered once.
  mez::bpf::OpenCollapser collapser(1'000'000'000);
  std::vector<mez::bpf::Event> out;
  auto emit = [&](const mez::bpf::Event& x) { out.push_back(x); };
  mez::bpf::Event next = e;
  next.seq = e.seq + 1;
  collapser.Add(e, emit);
  collapser.Add(next, emit);
  collapser.FlushIf([](uint64_t) { return true; }, emit);
  uint64_t numbers = 0;
  for (const auto& x : out) numbers += x.count;
  if (numbers != 2) __builtin_trap();
  const bool open = e.kind == mez::bpf::EventKind::kFile && e.file_op == "open";
  if (open && e.seq + 1 != 0 && out.size() != 1) __builtin_trap();
  if (!open && out.size() != 2) __builtin_trap();
  return 0;
}
