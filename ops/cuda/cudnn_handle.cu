// Per-GPU cuDNN handles (ops/cuda/cudnn_handle.cuh), kept by DeviceHandles
// (ops/cuda/device_handles.cuh): made on first use, destroyed at exit before the streams.
#include "ops/cuda/common.cuh"
#include "ops/cuda/cudnn_handle.cuh"
#include "ops/cuda/device_handles.cuh"

namespace residual::cuda {
namespace {

// cuDNN 9 loads its sub-libraries (libcudnn_cnn, _ops, _engines_*, ...) at run time: a
// mix of releases on the library path fails here, in cudnnCreate, with a status that
// says so; this names the versions involved.
cudnnHandle_t make_handle(int device) {
  DeviceGuard guard(device);
  const size_t runtime = cudnnGetVersion();
  RESIDUAL_CHECK(runtime / 10000 == CUDNN_MAJOR, "cuDNN ", runtime / 10000, ".",
                 runtime / 100 % 100, " was loaded, but residual was built against cuDNN ",
                 CUDNN_MAJOR, ".", CUDNN_MINOR, ": put a cuDNN ", CUDNN_MAJOR,
                 " libcudnn.so on LD_LIBRARY_PATH");
  cudnnHandle_t made = nullptr;
  const cudnnStatus_t created = cudnnCreate(&made);
  if (created != CUDNN_STATUS_SUCCESS) {
    fail("cuDNN cudnnCreate on cuda:", device, " failed: ", cudnnGetErrorString(created),
         " (libcudnn ", runtime / 10000, ".", runtime / 100 % 100, ".", runtime % 100,
         ", built against ", CUDNN_MAJOR, ".", CUDNN_MINOR, "; all libcudnn*.so.", CUDNN_MAJOR,
         " on the library path must come from one cuDNN release)");
  }
  const cudnnStatus_t bound = cudnnSetStream(made, compute_stream(device));
  if (bound != CUDNN_STATUS_SUCCESS) {
    cudnnDestroy(made);
    check_cudnn(bound, "cudnnSetStream");
  }
  return made;
}

struct Cudnn {
  using Handle = cudnnHandle_t;
  static constexpr const char* name = "cuDNN";
  static Handle make(int device) { return make_handle(device); }
  // cudnnDestroy synchronises the device first, so queued work finishes.
  static void destroy(Handle handle) { cudnnDestroy(handle); }
};

}  // namespace

CudnnHandle::CudnnHandle(int device) : handle_(DeviceHandles<Cudnn>::acquire(device, lock_)) {}

void check_cudnn(cudnnStatus_t status, const char* what) {
  if (status != CUDNN_STATUS_SUCCESS) {
    fail("cuDNN ", what, " failed: ", cudnnGetErrorString(status), " (status ",
         static_cast<int>(status), ")");
  }
}

}  // namespace residual::cuda
