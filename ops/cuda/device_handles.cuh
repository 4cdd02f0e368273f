#pragma once
// One library handle per GPU (cuBLAS, cuDNN), living like the streams of cuda_context.cu:
// made on first use, destroyed by an atexit handler while the CUDA runtime is still up,
// and refused after that. `Library` says how (a struct with `using Handle`, a `name`, and
// static `make(int device)` / `destroy(Handle)`); each library has one registry.
#include <cuda_runtime.h>

#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "ops/cuda/cuda_context.h"

namespace residual::cuda {

template <class Library>
class DeviceHandles {
 public:
  using Handle = typename Library::Handle;

  // The handle of `device`, with its slot's lock held in `lock` on return. A library whose
  // handle threads may share (cuBLAS) lets the lock go; one whose handle must not be used
  // by two threads at once (cuDNN) keeps it for the whole of one op.
  static Handle acquire(int device, std::unique_lock<std::mutex>& lock) {
    Slot& slot = get().slot(device);
    lock = std::unique_lock<std::mutex>(slot.mutex);
    RESIDUAL_CHECK(!slot.shut_down, Library::name, " called on cuda:", device,
                   " after process exit began");
    if (!slot.handle) {
      slot.handle = Library::make(device);
      // Registered once the CUDA runtime and the library have both initialised (and so
      // registered whatever exit handlers they have): ours runs before their teardown.
      // call_once, not mutex_: this thread holds a slot lock, which shut_down takes after
      // mutex_.
      std::call_once(get().at_exit_once_, [] { std::atexit([] { get().shut_down(); }); });
    }
    return slot.handle;
  }

 private:
  struct Slot {
    std::mutex mutex;
    Handle handle = nullptr;
    bool shut_down = false;
  };

  // Never deleted, for the reason Context in cuda_context.cu gives.
  static DeviceHandles& get() {
    static DeviceHandles* handles = new DeviceHandles();
    return *handles;
  }

  // Slots are never freed, so the reference stays valid after mutex_ is released (the
  // slot's own lock is taken outside it: a thread waiting for a busy GPU must not block
  // another that wants a different one).
  Slot& slot(int device) {
    // The stream first: it checks that the device exists, and it registers the streams'
    // atexit handler before ours, so ours runs first (handlers run in reverse order) and
    // no handle outlives the stream it queues work on.
    (void)compute_stream(device);
    std::lock_guard<std::mutex> lock(mutex_);
    RESIDUAL_CHECK(!shut_down_, Library::name, " called on cuda:", device,
                   " after process exit began");
    while (slots_.size() <= static_cast<size_t>(device)) slots_.push_back(std::make_unique<Slot>());
    return *slots_[static_cast<size_t>(device)];
  }

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
      // A handle belongs to the device that was current when it was made. Errors are of
      // no use at exit.
      if (cudaSetDevice(static_cast<int>(i)) == cudaSuccess) Library::destroy(s.handle);
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

}  // namespace residual::cuda
