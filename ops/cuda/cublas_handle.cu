// Per-GPU cuBLAS handles (ops/cuda/cublas_handle.cuh), kept by DeviceHandles
// (ops/cuda/device_handles.cuh): made on first use, destroyed at exit before the streams.
#include "ops/cuda/common.cuh"
#include "ops/cuda/cublas_handle.cuh"
#include "ops/cuda/device_handles.cuh"

namespace residual::cuda {
namespace {

struct Cublas {
  using Handle = cublasHandle_t;
  static constexpr const char* name = "cuBLAS";

  static Handle make(int device) {
    DeviceGuard guard(device);
    Handle made = nullptr;
    check_cublas(cublasCreate(&made), "cublasCreate");
    cublasStatus_t status = cublasSetStream(made, compute_stream(device));
    if (status == CUBLAS_STATUS_SUCCESS) status = cublasSetMathMode(made, CUBLAS_PEDANTIC_MATH);
    if (status != CUBLAS_STATUS_SUCCESS) {
      cublasDestroy(made);
      check_cublas(status, "cublasSetStream / cublasSetMathMode");
    }
    return made;
  }
  static void destroy(Handle handle) { cublasDestroy(handle); }
};

}  // namespace

cublasHandle_t cublas_handle(int device) {
  // Threads may share the handle (cublas_handle.cuh), so the slot's lock goes at once.
  std::unique_lock<std::mutex> lock;
  return DeviceHandles<Cublas>::acquire(device, lock);
}

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    fail("cuBLAS ", what, " failed: ", cublasGetStatusString(status), " (status ",
         static_cast<int>(status), ")");
  }
}

}  // namespace residual::cuda
