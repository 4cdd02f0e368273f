#pragma once
// One cuDNN handle per GPU, bound to that GPU's compute stream. For .cu files only (it
// includes the cuDNN header); ops/cuda/cudnn_handle.cu says how handles live and die.
#include <cudnn.h>

#include <mutex>

namespace residual::cuda {

// The handle of GPU `device` (made on first use), locked for the life of this object.
// Its stream is compute_stream(device), so cuDNN work is ordered with every other kernel,
// copy and memset of that GPU. cuDNN, unlike cuBLAS, lets threads share a handle only if
// they never use it at the same time, hence the lock: hold it for the whole of one op
// (descriptors, algorithm choice and the calls), never across ops. The caller must make
// `device` current (DeviceGuard): cuDNN calls act on the handle's device.
class CudnnHandle {
 public:
  explicit CudnnHandle(int device);
  cudnnHandle_t get() const { return handle_; }

 private:
  std::unique_lock<std::mutex> lock_;
  cudnnHandle_t handle_ = nullptr;
};

// A failed cuDNN call is an Error naming the call and cuDNN's reason.
void check_cudnn(cudnnStatus_t status, const char* what);

}  // namespace residual::cuda
