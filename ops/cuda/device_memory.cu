// Device memory of the CUDA backend: plain cudaMalloc/cudaMemcpy on the tensor's GPU.
#include <cuda_runtime.h>

#include "core/device_memory.h"
#include "core/error.h"

namespace residual::cuda_backend {
namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("CUDA ", what, " failed: ", cudaGetErrorString(status));
}

class DeviceGuard {
 public:
  explicit DeviceGuard(int index) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    check(cudaSetDevice(index), "cudaSetDevice");
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }

 private:
  int previous_ = 0;
};

__global__ void zero_bytes(unsigned char* ptr, size_t bytes) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < bytes;
       i += size_t(gridDim.x) * blockDim.x) {
    ptr[i] = 0;
  }
}

}  // namespace

void* alloc(int index, size_t bytes) {
  DeviceGuard guard(index);
  void* ptr = nullptr;
  check(cudaMalloc(&ptr, bytes), "cudaMalloc");
  return ptr;
}

void free(int index, void* ptr) {
  if (!ptr) return;
  DeviceGuard guard(index);
  cudaFree(ptr);  // never throws from a destructor path
}

void copy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  DeviceGuard guard(dst_device.is_cuda() ? dst_device.index : src_device.index);
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault), "cudaMemcpy");
}

void memset_zero(int index, void* ptr, size_t bytes) {
  DeviceGuard guard(index);
  const unsigned blocks = static_cast<unsigned>(bytes / 256 / 4 + 1 < 4096 ? bytes / 256 / 4 + 1 : 4096);
  zero_bytes<<<blocks, 256>>>(static_cast<unsigned char*>(ptr), bytes);
  check(cudaGetLastError(), "zero kernel launch");
  check(cudaDeviceSynchronize(), "zero kernel");
}

bool compiled() { return true; }

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) return 0;
  return count;
}

}  // namespace residual::cuda_backend
