// Per-GPU cuBLAS handles (ops/cuda/cublas_handle.cuh). They live like the streams of
// cuda_context.cu: made on first use, destroyed by an atexit handler while the CUDA
// runtime is still up, and refused after that.
#include <cstdlib>
#include <mutex>
#include <vector>

#include "ops/cuda/common.cuh"
#include "ops/cuda/cublas_handle.cuh"

namespace residual::cuda {
namespace {

class CublasHandles {
 public:
  // Never deleted, for the reason Context in cuda_context.cu gives.
  static CublasHandles& get() {
    static CublasHandles* handles = new CublasHandles();
    return *handles;
  }

  cublasHandle_t handle(int device) {
    // The stream first: it checks that the device exists, and it registers the streams'
    // atexit handler before ours, so ours runs first (handlers run in reverse order) and
    // no handle outlives the stream it queues work on.
    const CudaStream stream = compute_stream(device);
    std::lock_guard<std::mutex> lock(mutex_);
    RESIDUAL_CHECK(!shut_down_, "cuBLAS called on cuda:", device, " after process exit began");
    if (handles_.size() <= static_cast<size_t>(device)) {
      handles_.resize(static_cast<size_t>(device) + 1, nullptr);
    }
    cublasHandle_t& slot = handles_[static_cast<size_t>(device)];
    if (!slot) {
      DeviceGuard guard(device);
      cublasHandle_t made = nullptr;
      check_cublas(cublasCreate(&made), "cublasCreate");
      cublasStatus_t status = cublasSetStream(made, stream);
      if (status == CUBLAS_STATUS_SUCCESS) status = cublasSetMathMode(made, CUBLAS_PEDANTIC_MATH);
      if (status != CUBLAS_STATUS_SUCCESS) {
        cublasDestroy(made);
        check_cublas(status, "cublasSetStream / cublasSetMathMode");
      }
      slot = made;
      if (!at_exit_registered_) {
        at_exit_registered_ = std::atexit([] { get().shut_down(); }) == 0;
      }
    }
    return slot;
  }

 private:
  void shut_down() {
    std::lock_guard<std::mutex> lock(mutex_);
    shut_down_ = true;
    int previous = 0;
    const bool restore = cudaGetDevice(&previous) == cudaSuccess;
    for (size_t i = 0; i < handles_.size(); ++i) {
      if (!handles_[i]) continue;
      // The handle belongs to the device that was current when it was made. Errors are
      // of no use at exit.
      if (cudaSetDevice(static_cast<int>(i)) == cudaSuccess) cublasDestroy(handles_[i]);
    }
    if (restore) cudaSetDevice(previous);
    (void)cudaGetLastError();
    handles_.clear();
  }

  std::mutex mutex_;
  std::vector<cublasHandle_t> handles_;  // by device index, grown on first use
  bool at_exit_registered_ = false;
  bool shut_down_ = false;
};

}  // namespace

cublasHandle_t cublas_handle(int device) { return CublasHandles::get().handle(device); }

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    fail("cuBLAS ", what, " failed: ", cublasGetStatusString(status), " (status ",
         static_cast<int>(status), ")");
  }
}

}  // namespace residual::cuda
