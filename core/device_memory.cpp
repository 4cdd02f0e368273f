#include "core/device_memory.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"

namespace residual {
namespace {
constexpr size_t kCpuAlignment = 64;  // one cache line, and an AVX-512 vector
}

void* device_alloc(Device device, size_t bytes) {
  if (device.is_cuda()) return cuda_backend::alloc(device.index, bytes);
  const size_t rounded = (bytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  void* ptr = std::aligned_alloc(kCpuAlignment, rounded);
  if (!ptr) throw std::bad_alloc();
  return ptr;
}

void device_free(Device device, void* ptr) {
  if (device.is_cuda()) {
    cuda_backend::free(device.index, ptr);
  } else {
    std::free(ptr);
  }
}

void device_copy(void* dst, Device dst_device, const void* src, Device src_device,
                 size_t bytes) {
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
  } else {
    cuda_backend::copy(dst, dst_device, src, src_device, bytes);
  }
}

void device_memset_zero(Device device, void* ptr, size_t bytes) {
  if (device.is_cuda()) {
    cuda_backend::memset_zero(device.index, ptr, bytes);
  } else {
    std::memset(ptr, 0, bytes);
  }
}

bool cuda_compiled() { return cuda_backend::compiled(); }
int cuda_device_count() { return cuda_backend::device_count(); }

}  // namespace residual
