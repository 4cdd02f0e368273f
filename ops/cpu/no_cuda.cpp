// The CUDA backend of a CPU-only build: every entry point says so clearly.
#include "core/caching_allocator.h"
#include "core/device_memory.h"
#include "core/error.h"

namespace residual::cuda_backend {
namespace {
[[noreturn]] void no_cuda() {
  fail("this residual was built without CUDA (no CUDA toolkit found at configure time)");
}
}  // namespace

void* alloc(int, size_t) { no_cuda(); }
void free(int, void*) {}
void copy(void*, Device, const void*, Device, size_t) { no_cuda(); }
void memset_zero(int, void*, size_t) { no_cuda(); }
bool compiled() { return false; }
int device_count() { return 0; }
CachingAllocatorStats memory_stats(int) { return {}; }
void release_cached_memory() {}
void synchronize(int) { no_cuda(); }

}  // namespace residual::cuda_backend
