// Per-GPU cuDNN handles (ops/cuda/cudnn_handle.cuh). They live like the streams of
// cuda_context.cu: made on first use, destroyed by an atexit handler while the CUDA
// runtime is still up, and refused after that.
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

#include "ops/cuda/common.cuh"
#include "ops/cuda/cudnn_handle.cuh"

namespace residual::cuda {
namespace {

struct Slot {
  std::mutex mutex;  // held by a CudnnHandle while one op uses the handle
  cudnnHandle_t handle = nullptr;
  bool shut_down = false;
};

class CudnnHandles {
 public:
  // Never deleted, for the reason Context in cuda_context.cu gives.
  static CudnnHandles& get() {
    static CudnnHandles* handles = new CudnnHandles();
    return *handles;
  }

  // The slot of `device`. Slots are never freed, so the pointer stays valid after the
  // registry lock is released (the slot's own lock is taken outside it: one thread
  // waiting for a busy GPU must not block another that wants a different one).
  Slot* slot(int device) {
    // The stream first: it checks that the device exists, and it registers the streams'
    // atexit handler before ours (register_at_exit), so ours runs first (handlers run in
    // reverse order) and no handle outlives the stream it queues work on.
    (void)compute_stream(device);
    std::lock_guard<std::mutex> lock(mutex_);
    RESIDUAL_CHECK(!shut_down_, "cuDNN called on cuda:", device, " after process exit began");
    while (slots_.size() <= static_cast<size_t>(device)) slots_.push_back(std::make_unique<Slot>());
    return slots_[static_cast<size_t>(device)].get();
  }

  // Called after each cudnnCreate: registered once the CUDA runtime and cuDNN have both
  // initialised (and so registered whatever exit handlers they have), our handler runs
  // before their teardown. call_once, not mutex_: the caller holds a slot lock, which
  // shut_down takes after mutex_.
  void register_at_exit() {
    std::call_once(at_exit_once_, [] { std::atexit([] { get().shut_down(); }); });
  }

 private:
  void shut_down() {
    std::lock_guard<std::mutex> lock(mutex_);
    shut_down_ = true;
    int previous = 0;
    const bool restore = cudaGetDevice(&previous) == cudaSuccess;
    for (size_t i = 0; i < slots_.size(); ++i) {
      Slot& s = *slots_[i];
      std::lock_guard<std::mutex> slot_lock(s.mutex);
      s.shut_down = true;
      if (!s.handle) continue;
      // A handle belongs to the device that was current when it was made; cudnnDestroy
      // synchronises the device first, so queued work finishes. Errors are of no use at exit.
      if (cudaSetDevice(static_cast<int>(i)) == cudaSuccess) cudnnDestroy(s.handle);
      s.handle = nullptr;
    }
    if (restore) cudaSetDevice(previous);
    (void)cudaGetLastError();
  }

  std::mutex mutex_;
  std::vector<std::unique_ptr<Slot>> slots_;  // by device index, grown on first use
  std::once_flag at_exit_once_;
  bool shut_down_ = false;
};

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

}  // namespace

CudnnHandle::CudnnHandle(int device) {
  Slot* s = CudnnHandles::get().slot(device);
  lock_ = std::unique_lock<std::mutex>(s->mutex);
  RESIDUAL_CHECK(!s->shut_down, "cuDNN called on cuda:", device, " after process exit began");
  if (!s->handle) {
    s->handle = make_handle(device);
    CudnnHandles::get().register_at_exit();
  }
  handle_ = s->handle;
}

void check_cudnn(cudnnStatus_t status, const char* what) {
  if (status != CUDNN_STATUS_SUCCESS) {
    fail("cuDNN ", what, " failed: ", cudnnGetErrorString(status), " (status ",
         static_cast<int>(status), ")");
  }
}

}  // namespace residual::cuda
