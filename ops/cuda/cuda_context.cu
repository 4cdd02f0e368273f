// The CUDA device context: two non-blocking streams per GPU, made on first use, and
// events between them (ops/cuda/cuda_context.h says why).
#include <cstdlib>
#include <mutex>
#include <utility>
#include <vector>

#include "ops/cuda/common.cuh"
#include "ops/cuda/cuda_context.h"

namespace residual::cuda {
namespace {

struct DeviceStreams {
  CudaStream compute = nullptr;
  CudaStream comm = nullptr;
};

class Context {
 public:
  // Never deleted: tensors held by other statics may free memory (and so ask for a
  // stream) after every destructor of this file has run. The atexit handler below
  // destroys the streams while the CUDA runtime is still up.
  static Context& get() {
    static Context* context = new Context();
    return *context;
  }

  DeviceStreams streams(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (shut_down_) return {};  // at exit: the default stream, which always exists
    if (devices_.empty()) {
      int count = 0;
      if (cudaGetDeviceCount(&count) != cudaSuccess) {
        (void)cudaGetLastError();  // no driver or no GPU: count stays 0
        count = 0;
      }
      devices_.resize(static_cast<size_t>(count));
    }
    RESIDUAL_CHECK(device >= 0 && device < static_cast<int>(devices_.size()), "cuda:", device,
                   " does not exist: this machine has ", devices_.size(), " CUDA devices");
    DeviceStreams& s = devices_[static_cast<size_t>(device)];
    if (!s.compute) {
      DeviceGuard guard(device);
      DeviceStreams made;
      check(cudaStreamCreateWithFlags(&made.compute, cudaStreamNonBlocking),
            "cudaStreamCreateWithFlags (compute stream)");
      const cudaError_t status = cudaStreamCreateWithFlags(&made.comm, cudaStreamNonBlocking);
      if (status != cudaSuccess) cudaStreamDestroy(made.compute);
      check(status, "cudaStreamCreateWithFlags (communication stream)");
      s = made;
      // Registered after the runtime initialised (the calls above), so it runs before
      // the runtime's own teardown: handlers run in reverse order of registration.
      if (!at_exit_registered_) at_exit_registered_ = std::atexit([] { get().shut_down(); }) == 0;
    }
    return s;
  }

 private:
  void shut_down() {
    std::lock_guard<std::mutex> lock(mutex_);
    shut_down_ = true;
    // Work still queued finishes first: cudaStreamDestroy returns at once and the
    // runtime releases the stream when it is done. Errors are of no use at exit.
    for (const DeviceStreams& s : devices_) {
      if (s.compute) cudaStreamDestroy(s.compute);
      if (s.comm) cudaStreamDestroy(s.comm);
    }
    devices_.clear();
  }

  std::mutex mutex_;
  std::vector<DeviceStreams> devices_;  // by device index, sized on first use
  bool at_exit_registered_ = false;
  bool shut_down_ = false;
};

}  // namespace

CudaStream compute_stream(int device) { return Context::get().streams(device).compute; }
CudaStream comm_stream(int device) { return Context::get().streams(device).comm; }

void stream_wait(int device, CudaStream waiter, CudaStream producer) {
  CudaEvent event(device);
  event.record(producer);
  event.wait(waiter);
  // Destroying it now is fine: the wait is already queued (cudaEventDestroy defers the
  // release until the recorded work completes).
}

void synchronize(int device) {
  const DeviceStreams s = Context::get().streams(device);
  DeviceGuard guard(device);
  check(cudaStreamSynchronize(s.compute), "cudaStreamSynchronize (compute stream)");
  check(cudaStreamSynchronize(s.comm), "cudaStreamSynchronize (communication stream)");
}

CudaEvent::CudaEvent(int device) : device_(device) {
  DeviceGuard guard(device);
  check(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
}

CudaEvent::~CudaEvent() {
  if (event_) cudaEventDestroy(event_);
}

CudaEvent::CudaEvent(CudaEvent&& other) noexcept
    : device_(other.device_), event_(std::exchange(other.event_, nullptr)) {}

CudaEvent& CudaEvent::operator=(CudaEvent&& other) noexcept {
  if (this != &other) {
    if (event_) cudaEventDestroy(event_);
    device_ = other.device_;
    event_ = std::exchange(other.event_, nullptr);
  }
  return *this;
}

void CudaEvent::record(CudaStream stream) {
  RESIDUAL_CHECK(event_, "record on a moved-from CudaEvent");
  DeviceGuard guard(device_);
  check(cudaEventRecord(event_, stream), "cudaEventRecord");
}

void CudaEvent::wait(CudaStream stream) const {
  RESIDUAL_CHECK(event_, "wait on a moved-from CudaEvent");
  check(cudaStreamWaitEvent(stream, event_, 0), "cudaStreamWaitEvent");
}

bool CudaEvent::done() const {
  RESIDUAL_CHECK(event_, "done() on a moved-from CudaEvent");
  const cudaError_t status = cudaEventQuery(event_);
  if (status == cudaErrorNotReady) {
    (void)cudaGetLastError();  // "not ready" is an answer, not an error to report later
    return false;
  }
  check(status, "cudaEventQuery");
  return true;
}

void CudaEvent::synchronize() const {
  RESIDUAL_CHECK(event_, "synchronize on a moved-from CudaEvent");
  check(cudaEventSynchronize(event_), "cudaEventSynchronize");
}

}  // namespace residual::cuda
