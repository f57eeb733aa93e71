// Shared by the daemons that move session bytes (mezrecd, mezd).
#ifndef MEZ_CMD_COMMON_HEAP_H_
#define MEZ_CMD_COMMON_HEAP_H_

#include <malloc.h>

namespace mez::cmd {

// Many threads free chunk-sized buffers (SSH packets, record frames) all
// the time; glibc's default trimming hands that memory back with madvise
// and faults it in again at once, and the page faults and TLB shootdowns
// cost more CPU than zlib (bench/ingest_bench) and about a third of an
// agent's throughput (bench/proxy_bench). Keep up to 64 MiB of free heap
// per arena instead, and serve allocations below 4 MiB from it.
inline void KeepFreedHeap() {
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
}

}  // namespace mez::cmd

#endif  // MEZ_CMD_COMMON_HEAP_H_
