#pragma once
// Helpers shared by the CUDA backend's .cu files (never included by host code).
#include <cuda_runtime.h>

#include "core/error.h"

namespace residual::cuda {

// A failed CUDA call is an Error naming the call and the runtime's reason.
inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("CUDA ", what, " failed: ", cudaGetErrorString(status));
}

// Makes `index` the calling thread's current GPU for its scope (runtime calls such as
// cudaMalloc act on the current one), and restores the previous one after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int index) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != index) check(cudaSetDevice(index), "cudaSetDevice");
    changed_ = previous_ != index;
  }
  ~DeviceGuard() {
    if (changed_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

}  // namespace residual::cuda
