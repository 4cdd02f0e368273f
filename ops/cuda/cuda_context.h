#pragma once
// The CUDA device context: per GPU a compute stream (kernels, copies, memsets) and a
// communication stream (NCCL collectives), and events to order one after the other.
// A host header (no CUDA includes): the handles are the runtime's own opaque types, so
// cudaStream_t and CudaStream are the same type and .cu files or NCCL calls take them
// as they are. Compiled only where the CUDA backend is (ops/CMakeLists.txt).
//
// Why two non-blocking streams: work on the communication stream (a bucket's
// all-reduce) runs beside the rest of backward on the compute stream, and neither waits
// for the legacy default stream. The price is that nothing orders them implicitly: a
// collective that reads gradients must wait for an event recorded on the compute stream
// after they were written, and the optimizer must wait for one recorded after the
// collective (CudaEvent below, or stream_wait). Memory used by the communication stream
// is declared with record_stream, or the caching allocator could reuse it for compute
// while the collective still reads it.
//
// Streams are made on first use per device and live until the process exits; an atexit
// handler destroys them before the CUDA runtime tears itself down, and any later call
// (a static tensor freed at exit) gets the default stream instead of a destroyed one.
struct CUstream_st;
struct CUevent_st;

namespace residual::cuda {

using CudaStream = CUstream_st*;
using CudaEventHandle = CUevent_st*;

// The streams of GPU `device` (made on first use; an Error for a device that is not there).
CudaStream compute_stream(int device);
CudaStream comm_stream(int device);

// Makes `waiter` wait, on the device (the host does not block), for everything queued on
// `producer` so far. `producer` belongs to GPU `device`; `waiter` may be on any GPU.
void stream_wait(int device, CudaStream waiter, CudaStream producer);

// Blocks the host until the work queued so far on both streams of `device` is done.
void synchronize(int device);

// The caching allocator's record_stream for CUDA memory: `ptr` (any address inside a
// block from device_alloc) is also used by work queued on `stream`, so the block is not
// reused before that work completes. Call it before the block may be freed.
// (Implemented in device_memory.cu, beside the allocator.)
void record_stream(void* ptr, CudaStream stream);

// An event without timing (cheaper to record and wait on), owned like a unique_ptr.
class CudaEvent {
 public:
  explicit CudaEvent(int device);
  ~CudaEvent();
  CudaEvent(CudaEvent&& other) noexcept;
  CudaEvent& operator=(CudaEvent&& other) noexcept;
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;

  void record(CudaStream stream);     // marks the work queued on `stream` so far
  void wait(CudaStream stream) const;  // `stream` waits (on the device) for that work
  bool done() const;                   // whether that work has finished (no blocking)
  void synchronize() const;            // blocks the host until it has finished
  CudaEventHandle handle() const { return event_; }
  int device() const { return device_; }

 private:
  int device_ = 0;
  CudaEventHandle event_ = nullptr;
};

}  // namespace residual::cuda
