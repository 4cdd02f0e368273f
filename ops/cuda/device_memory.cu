// Device memory of the CUDA backend. cudaMalloc/cudaFree are called only by the caching
// allocator (core/caching_allocator.h): cudaMalloc synchronises the device and costs
// milliseconds, so a step that repeats the last one's allocations must not reach it.
// Blocks belong to the compute stream of their GPU, where copies and memsets are queued
// too; the host waits only where it needs the data (a copy to the host).
#include <cstdio>

#include "core/caching_allocator.h"
#include "core/device_memory.h"
#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_context.h"

namespace residual {
namespace {

cudaStream_t to_cuda(AllocatorStream stream) {
  return static_cast<cudaStream_t>(const_cast<void*>(stream));
}

RawDeviceMemory raw_cuda_memory() {
  RawDeviceMemory raw;
  raw.alloc = [](int device, size_t bytes) -> void* {
    cuda::DeviceGuard guard(device);
    void* ptr = nullptr;
    const cudaError_t status = cudaMalloc(&ptr, bytes);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // reset, or the next unrelated call would report it
      return nullptr;            // the allocator empties its cache and tries again
    }
    cuda::check(status, "cudaMalloc");
    return ptr;
  };
  raw.free = [](int, void* ptr) {
    // With unified addressing cudaFree finds the GPU from the pointer; it also waits for
    // work still queued on the block. Errors (the runtime unloading) are of no use here.
    if (cudaFree(ptr) != cudaSuccess) (void)cudaGetLastError();
  };
  raw.record_event = [](int device, AllocatorStream stream) -> void* {
    cuda::DeviceGuard guard(device);
    cudaEvent_t event = nullptr;
    cuda::check(cudaEventCreateWithFlags(&event, cudaEventDisableTiming), "cudaEventCreateWithFlags");
    const cudaError_t status = cudaEventRecord(event, to_cuda(stream));
    if (status != cudaSuccess) cudaEventDestroy(event);
    cuda::check(status, "cudaEventRecord");
    return event;
  };
  raw.event_done = [](void* event) {
    const cudaError_t status = cudaEventQuery(static_cast<cudaEvent_t>(event));
    if (status == cudaErrorNotReady) {
      (void)cudaGetLastError();
      return false;
    }
    cuda::check(status, "cudaEventQuery");
    return true;
  };
  raw.event_wait = [](void* event) {
    cuda::check(cudaEventSynchronize(static_cast<cudaEvent_t>(event)), "cudaEventSynchronize");
  };
  raw.event_destroy = [](void* event) { cudaEventDestroy(static_cast<cudaEvent_t>(event)); };
  return raw;
}

// Never deleted, like the streams (cuda_context.cu): tensors in other statics are freed
// during exit in no order we control, and the driver takes all memory back at exit.
CachingAllocator& allocator() {
  static CachingAllocator* cache = new CachingAllocator(raw_cuda_memory(), "cuda");
  return *cache;
}

// Registered or cudaMallocHost memory: a copy from it is truly asynchronous, so the host
// could overwrite it before the DMA reads it. Pageable memory (everything residual
// allocates on the host) is staged by the driver before cudaMemcpyAsync returns.
bool is_pinned_host(const void* ptr) {
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, ptr) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attributes.type == cudaMemoryTypeHost;
}

}  // namespace

namespace cuda_backend {

void* alloc(int index, size_t bytes) {
  return allocator().allocate(index, bytes, cuda::compute_stream(index));
}

void free(int, void* ptr) {
  if (!ptr) return;
  if (!allocator().deallocate(ptr)) {
    // Runs in Storage's destructor: it cannot throw, and a silent leak would hide a bug.
    std::fprintf(stderr, "residual: device_free of %p, which the CUDA caching allocator "
                         "does not hold in use (freed twice?)\n", ptr);
  }
}

void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (dst_device.is_cuda() && src_device.is_cuda()) {
    const cudaStream_t dst_stream = cuda::compute_stream(dst_device.index);
    if (dst_device.index == src_device.index) {
      cuda::DeviceGuard guard(dst_device.index);
      cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, dst_stream),
                  "cudaMemcpyAsync (device to device)");
      return;
    }
    // Two GPUs: the copy (on the destination's stream) waits for the source's pending
    // writes, and the source's stream waits for the copy before it may reuse the block.
    const cudaStream_t src_stream = cuda::compute_stream(src_device.index);
    cuda::stream_wait(src_device.index, dst_stream, src_stream);
    {
      cuda::DeviceGuard guard(dst_device.index);
      cuda::check(cudaMemcpyPeerAsync(dst, dst_device.index, src, src_device.index, bytes,
                                      dst_stream),
                  "cudaMemcpyPeerAsync");
    }
    cuda::stream_wait(dst_device.index, src_stream, dst_stream);
  } else if (dst_device.is_cuda()) {
    const cudaStream_t stream = cuda::compute_stream(dst_device.index);
    cuda::DeviceGuard guard(dst_device.index);
    cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream),
                "cudaMemcpyAsync (host to device)");
    // The caller may overwrite or free `src` once this returns.
    if (is_pinned_host(src)) cuda::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  } else {
    const cudaStream_t stream = cuda::compute_stream(src_device.index);
    cuda::DeviceGuard guard(src_device.index);
    cuda::check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream),
                "cudaMemcpyAsync (device to host)");
    // The host reads `dst` next: it must hold the data (and any earlier kernel's writes).
    cuda::check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  }
}

// Queued on the compute stream like the kernels that will read the zeros: the host does
// not wait, and no other stream or GPU is held up (this once ran a kernel followed by
// cudaDeviceSynchronize).
void memset_zero(int index, void* ptr, size_t bytes) {
  const cudaStream_t stream = cuda::compute_stream(index);
  cuda::DeviceGuard guard(index);
  cuda::check(cudaMemsetAsync(ptr, 0, bytes, stream), "cudaMemsetAsync");
}

bool compiled() { return true; }

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();  // cudaErrorNoDevice where there is no GPU (CI)
    return 0;
  }
  return count;
}

CachingAllocatorStats memory_stats(int index) { return allocator().stats(index); }

void release_cached_memory() { allocator().release_cached(); }

void synchronize(int index) { cuda::synchronize(index); }

}  // namespace cuda_backend

namespace cuda {

void record_stream(void* ptr, CudaStream stream) { allocator().record_stream(ptr, stream); }

}  // namespace cuda
}  // namespace residual
