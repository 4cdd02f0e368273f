#pragma once
// Raw memory on a device. The CPU side lives in core; the CUDA side is compiled from
// ops/cuda (or ops/cpu/no_cuda.cpp in a CPU-only build): one implementation per build.
#include <cstddef>

#include "core/device.h"

namespace residual {

struct CachingAllocatorStats;  // core/caching_allocator.h

void* device_alloc(Device device, size_t bytes);
void device_free(Device device, void* ptr);
// Copies between any two devices (host<->CUDA, CUDA<->CUDA, host<->host). On a GPU,
// copies and zeroing are queued on its compute stream, in order with its kernels; a copy
// to the host returns once the data is there, the others may return before.
void device_copy(void* dst, Device dst_device, const void* src, Device src_device,
                 size_t bytes);
void device_memset_zero(Device device, void* ptr, size_t bytes);

// The CUDA backend: whether it was compiled in, and how many GPUs it sees (0 if none).
bool cuda_compiled();
int cuda_device_count();

namespace cuda_backend {
void* alloc(int index, size_t bytes);
void free(int index, void* ptr);
void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void memset_zero(int index, void* ptr, size_t bytes);
bool compiled();
int device_count();
// CUDA memory comes from a caching allocator (core/caching_allocator.h): its counters for
// GPU `index` (all zero in a CPU-only build), for tests and out-of-memory reports.
CachingAllocatorStats memory_stats(int index);
// Returns every cached block to the driver (empty_cache); a no-op without CUDA.
void release_cached_memory();
// Copies, memsets and kernels are queued on the GPU's streams (ops/cuda/cuda_context.h):
// this blocks the host until they are done.
void synchronize(int index);
}  // namespace cuda_backend

}  // namespace residual
