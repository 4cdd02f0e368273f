// The NCCL communicator (distributed/nccl_communicator.h says what goes where and why).
// Host code against the NCCL C API and the CUDA runtime API; the streams, events and
// record_stream come from the CUDA backend's device context (ops/cuda/cuda_context.h).
#include "distributed/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <initializer_list>
#include <string>
#include <thread>
#include <utility>

#include "core/device_memory.h"
#include "core/error.h"
#include "distributed/job.h"
#include "ops/cuda/cuda_context.h"

namespace residual {
namespace {

using Clock = std::chrono::steady_clock;
using cuda::CudaEvent;
using cuda::CudaStream;

// How long ncclCommAbort may take before the job ends anyway: it has been seen to hang
// in some NCCL versions, and a job that hangs while aborting has gained nothing.
constexpr std::chrono::seconds kAbortGrace{10};

void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("CUDA ", what, " failed: ", cudaGetErrorString(status));
}

// NCCL's start-up acts on the calling thread's current GPU; this makes it ours for a scope.
// (The backend's DeviceGuard is in ops/cuda/common.cuh, which host code does not include.)
class CurrentGpu {
 public:
  explicit CurrentGpu(int gpu) {
    check_cuda(cudaGetDevice(&previous_), "cudaGetDevice");
    changed_ = previous_ != gpu;
    if (changed_) check_cuda(cudaSetDevice(gpu), "cudaSetDevice");
  }
  ~CurrentGpu() {
    if (changed_) cudaSetDevice(previous_);
  }
  CurrentGpu(const CurrentGpu&) = delete;
  CurrentGpu& operator=(const CurrentGpu&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

std::string nccl_error(ncclResult_t result, ncclComm_t comm) {
  std::string text = ncclGetErrorString(result);
  const char* last = ncclGetLastError(comm);
  if (last && *last) text += str_cat(" (", last, ")");
  return text;
}

// The GPU whose memory `ptr` is, or -1 for host memory (pageable or pinned).
int gpu_of(const void* ptr) {
  if (!ptr) return -1;
  cudaPointerAttributes attributes{};
  if (cudaPointerGetAttributes(&attributes, ptr) != cudaSuccess) {
    (void)cudaGetLastError();  // not an address CUDA knows: host memory
    return -1;
  }
  const bool device = attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged;
  return device ? attributes.device : -1;
}

class NcclCommunicator;

// A collective on device memory in flight: an event recorded after it on the
// communication stream.
class NcclWork : public Work {
 public:
  NcclWork(NcclCommunicator& comm, const CollectiveRecord& record, CudaEvent done)
      : comm_(comm), record_(record), done_(std::move(done)) {}
  bool test() override;
  void wait() override;

 private:
  NcclCommunicator& comm_;
  CollectiveRecord record_;
  CudaEvent done_;
  bool waited_ = false;
};

class NcclCommunicator : public Communicator {
 public:
  // `owned`: the bootstrap when this communicator owns it (a split), else null.
  NcclCommunicator(Communicator& bootstrap, std::unique_ptr<Communicator> owned, int gpu);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  bool takes_device_memory() const override { return true; }

  std::unique_ptr<Work> all_reduce_async(float* data, int64_t n, const char* what) override {
    if (to_bootstrap(data, CollectiveKind::kAllReduce, n * 4, what)) {
      return bootstrap_.all_reduce_async(data, n, what);
    }
    const CollectiveRecord record = note(CollectiveKind::kAllReduce, n * 4, what);
    CudaEvent done = launch(record, {data}, [&](CudaStream stream) {
      return ncclAllReduce(data, data, count(n), ncclFloat32, ncclSum, comm_, stream);
    });
    return std::make_unique<NcclWork>(*this, record, std::move(done));
  }

  void all_reduce(double* data, int64_t n, const char* what) override {
    if (to_bootstrap(data, CollectiveKind::kAllReduce, n * 8, what)) {
      bootstrap_.all_reduce(data, n, what);
      return;
    }
    run(CollectiveKind::kAllReduce, n * 8, what, {data}, [&](CudaStream stream) {
      return ncclAllReduce(data, data, count(n), ncclFloat64, ncclSum, comm_, stream);
    });
  }

  void all_reduce_max(int64_t* data, int64_t n, const char* what) override {
    if (to_bootstrap(data, CollectiveKind::kAllReduce, n * 8, what)) {
      bootstrap_.all_reduce_max(data, n, what);
      return;
    }
    run(CollectiveKind::kAllReduce, n * 8, what, {data}, [&](CudaStream stream) {
      return ncclAllReduce(data, data, count(n), ncclInt64, ncclMax, comm_, stream);
    });
  }

  void broadcast(void* data, int64_t bytes, int root, const char* what) override {
    if (to_bootstrap(data, CollectiveKind::kBroadcast, bytes, what)) {
      bootstrap_.broadcast(data, bytes, root, what);
      return;
    }
    RESIDUAL_CHECK(root >= 0 && root < size_, "broadcast '", what, "' from rank ", root, " of ", size_);
    run(CollectiveKind::kBroadcast, bytes, what, {data}, [&](CudaStream stream) {
      return ncclBroadcast(data, data, count(bytes), ncclUint8, root, comm_, stream);
    });
  }

  void all_gather(const void* in, int64_t bytes, void* out, const char* what) override {
    const bool device_in = on_gpu(in, what), device_out = on_gpu(out, what);
    RESIDUAL_CHECK(device_in == device_out, "all-gather '", what, "' from ",
                   device_in ? "device" : "host", " memory into ", device_out ? "device" : "host",
                   " memory: both must be on the GPU (NCCL) or both on the host");
    if (!device_in) {
      log_.add(CollectiveKind::kAllGather, bytes, what);
      bootstrap_.all_gather(in, bytes, out, what);
      return;
    }
    void* source = const_cast<void*>(in);
    run(CollectiveKind::kAllGather, bytes, what, {source, out}, [&](CudaStream stream) {
      return ncclAllGather(source, out, count(bytes), ncclUint8, comm_, stream);
    });
  }

  void barrier(const char* what) override {
    log_.add(CollectiveKind::kBarrier, 0, what);
    bootstrap_.barrier(what);
  }

  // The bootstrap splits (who is in which group), then the group starts NCCL of its own
  // over that split, on the same GPU.
  std::unique_ptr<Communicator> split(int color, const char* what) override {
    log_.add(CollectiveKind::kBarrier, 0, what);
    std::unique_ptr<Communicator> group = bootstrap_.split(color, what);
    Communicator& bootstrap = *group;
    return std::make_unique<NcclCommunicator>(bootstrap, std::move(group), gpu_);
  }

  // NcclWork's two halves.
  bool poll(const CollectiveRecord& record, const CudaEvent& done) {
    async_state(record);
    return done.done();
  }
  void complete(const CollectiveRecord& record, const CudaEvent& done) {
    await(record, [&] { return done.done(); });
    // The host saw it finish, so this orders nothing more today; it keeps the compute
    // stream's dependency explicit should wait() ever stop blocking the host.
    done.wait(compute_stream_);
  }

 private:
  static size_t count(int64_t n) {
    RESIDUAL_CHECK(n >= 0, "a collective of ", n, " elements");
    return static_cast<size_t>(n);
  }

  // Whether `ptr` is device memory of this communicator's GPU (else host memory).
  bool on_gpu(const void* ptr, const char* what) const {
    const int gpu = gpu_of(ptr);
    if (gpu < 0) return false;
    RESIDUAL_CHECK(gpu == gpu_, "collective '", what, "': its buffer is on cuda:", gpu,
                   " but this rank's NCCL communicator is on cuda:", gpu_);
    return true;
  }

  // True when `data` is host memory: the collective is then the bootstrap's, noted in
  // this log too (so its history lists every collective of the rank).
  bool to_bootstrap(const void* data, CollectiveKind kind, int64_t bytes, const char* what) {
    if (on_gpu(data, what)) return false;
    log_.add(kind, bytes, what);
    return true;
  }

  // A collective NCCL carries: in this log, and in the bootstrap's (whose fingerprint the
  // trainer compares across the ranks once per step).
  CollectiveRecord note(CollectiveKind kind, int64_t bytes, const char* what) {
    bootstrap_.log().add(kind, bytes, what);
    return log_.add(kind, bytes, what);
  }

  // Queues `call` (one NCCL collective on the communication stream) after everything
  // queued on the compute stream so far; returns an event recorded after it.
  template <typename Call>
  CudaEvent launch(const CollectiveRecord& record, std::initializer_list<void*> buffers, Call call) {
    // Until the collective has run, the allocator must not hand these blocks to compute.
    for (void* buffer : buffers) cuda::record_stream(buffer, comm_stream_);
    cuda::stream_wait(gpu_, comm_stream_, compute_stream_);
    CurrentGpu current(gpu_);  // NCCL switches to its GPU itself; this costs nothing to be sure
    const ncclResult_t rc = call(comm_stream_);
    // Non-blocking: ncclInProgress means NCCL is still queuing the kernels; the stream
    // holds them only once the communicator's state is ncclSuccess.
    if (rc == ncclInProgress) {
      await(record, [&] { return async_state(record) == ncclSuccess; });
    } else if (rc != ncclSuccess) {
      failed(record, nccl_error(rc, comm_));
    }
    CudaEvent done(gpu_);
    done.record(comm_stream_);
    return done;
  }

  // A blocking collective: noted, launched (as launch), and waited for (as complete).
  template <typename Call>
  void run(CollectiveKind kind, int64_t bytes, const char* what,
           std::initializer_list<void*> buffers, Call call) {
    const CollectiveRecord record = note(kind, bytes, what);
    CudaEvent done = launch(record, buffers, call);
    complete(record, done);
  }

  // ncclSuccess or ncclInProgress; any error aborts the communicator and ends the job.
  ncclResult_t async_state(const CollectiveRecord& record) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t rc = ncclCommGetAsyncError(comm_, &state);
    if (rc != ncclSuccess) failed(record, str_cat("ncclCommGetAsyncError: ", nccl_error(rc, comm_)));
    if (state != ncclSuccess && state != ncclInProgress) failed(record, nccl_error(state, comm_));
    return state;
  }

  // Polls `done` until it is true, watching NCCL's asynchronous errors and the deadline;
  // spins (yielding the core) for the first 2 ms, then checks every 50 us, as the MPI
  // communicator does.
  template <typename Done>
  void await(const CollectiveRecord& record, Done done) {
    const auto start = Clock::now();
    const auto deadline = start + timeout();
    const auto spin_until = start + std::chrono::milliseconds(2);
    while (!done()) {
      async_state(record);
      const auto now = Clock::now();
      if (now > deadline) deadline_passed(record);
      if (now < spin_until) {
        std::this_thread::yield();
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }
  }

  [[noreturn]] void deadline_passed(const CollectiveRecord& record) {
    char head[512];
    std::snprintf(head, sizeof(head),
                  "rank %d: collective %s did not complete within %.0f s (--comm-timeout) at %s: "
                  "another rank is stopped, dead or unreachable (NCCL on cuda:%d, communicator "
                  "aborted); this rank's last collectives: ",
                  job_info().rank, record.describe().c_str(),
                  std::chrono::duration<double>(timeout()).count(), phase().c_str(), gpu_);
    const std::string message = head + log_.history();
    abort_communicator();
    end_job(message, 1);
  }

  [[noreturn]] void failed(const CollectiveRecord& record, const std::string& error) {
    const std::string message =
        str_cat("rank ", job_info().rank, ": NCCL failed in collective ", record.describe(), " at ",
                phase(), ": ", error, " (cuda:", gpu_, ", communicator aborted); this rank's last collectives: ",
                log_.history());
    abort_communicator();
    end_job(message, 1);
  }

  // ncclCommAbort stops NCCL's kernels and threads. It runs on a thread of its own with
  // a grace period: the job ends next whatever it does.
  void abort_communicator() {
    if (!comm_ || aborted_) return;
    aborted_ = true;
    auto finished = std::make_shared<std::atomic<bool>>(false);
    ncclComm_t comm = comm_;
    std::thread([comm, finished] {
      ncclCommAbort(comm);
      finished->store(true);
    }).detach();
    const auto until = Clock::now() + kAbortGrace;
    while (!finished->load() && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }

  std::unique_ptr<Communicator> owned_;
  Communicator& bootstrap_;
  int gpu_ = 0;
  int rank_ = 0, size_ = 1;
  CudaStream compute_stream_ = nullptr, comm_stream_ = nullptr;
  ncclComm_t comm_ = nullptr;
  bool aborted_ = false;
};

bool NcclWork::test() {
  return waited_ || comm_.poll(record_, done_);
}

void NcclWork::wait() {
  if (waited_) return;
  comm_.complete(record_, done_);
  waited_ = true;
}

NcclCommunicator::NcclCommunicator(Communicator& bootstrap, std::unique_ptr<Communicator> owned, int gpu)
    : owned_(std::move(owned)), bootstrap_(bootstrap), gpu_(gpu), rank_(bootstrap.rank()),
      size_(bootstrap.size()) {
  follow(bootstrap_);
  compute_stream_ = cuda::compute_stream(gpu_);
  comm_stream_ = cuda::comm_stream(gpu_);
  // Rank 0's unique id, or why it has none: then every rank stops with the same error
  // instead of waiting in start-up for a rank 0 that has left.
  struct StartUp {
    ncclUniqueId id;
    char error[160];
  } start{};
  if (rank_ == 0) {
    const ncclResult_t rc = ncclGetUniqueId(&start.id);
    if (rc != ncclSuccess) std::snprintf(start.error, sizeof(start.error), "%s", nccl_error(rc, nullptr).c_str());
  }
  bootstrap_.broadcast(&start, static_cast<int64_t>(sizeof(start)), 0, "NCCL start-up: unique id");
  if (start.error[0] != '\0') {
    throw JobWideError(str_cat("NCCL could not start: ncclGetUniqueId on rank 0: ", start.error));
  }
  const CollectiveRecord record = log_.add(CollectiveKind::kBarrier, 0, "NCCL start-up");
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // every NCCL call returns, so the deadline can always fire
  CurrentGpu current(gpu_);
  const ncclResult_t rc = ncclCommInitRankConfig(&comm_, size_, start.id, rank_, &config);
  if (rc != ncclSuccess && rc != ncclInProgress) {
    failed(record, str_cat("ncclCommInitRankConfig: ", nccl_error(rc, comm_),
                           " (one GPU per rank: several ranks on one GPU is not possible)"));
  }
  await(record, [&] { return async_state(record) == ncclSuccess; });
}

NcclCommunicator::~NcclCommunicator() {
  if (!comm_ || aborted_) return;
  // Unwinding from an error on this rank: the others may never come to finalize.
  if (std::uncaught_exceptions() > 0) {
    abort_communicator();
    return;
  }
  // Finalize flushes what is queued; destroy then frees without blocking. A destructor
  // cannot end the job, so an error or the deadline here only aborts.
  int previous = 0;
  const bool switched = cudaGetDevice(&previous) == cudaSuccess && previous != gpu_ &&
                        cudaSetDevice(gpu_) == cudaSuccess;
  ncclResult_t state = ncclCommFinalize(comm_);
  const auto deadline = Clock::now() + timeout();
  while (state == ncclInProgress && Clock::now() < deadline) {
    if (ncclCommGetAsyncError(comm_, &state) != ncclSuccess) break;
    if (state == ncclInProgress) std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  if (state == ncclSuccess) {
    ncclCommDestroy(comm_);
  } else {
    abort_communicator();
  }
  if (switched) cudaSetDevice(previous);
}

}  // namespace

bool nccl_compiled() { return true; }

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int gpu) {
  if (gpu < 0) gpu = local_gpu_index();
  const int count = cuda_device_count();
  RESIDUAL_CHECK(count > 0, "the NCCL communicator needs a GPU, and the CUDA runtime sees none "
                 "on this machine");
  RESIDUAL_CHECK(gpu < count, "the NCCL communicator was asked for cuda:", gpu,
                 ", but CUDA devices here are cuda:0 to cuda:", count - 1);
  return std::make_unique<NcclCommunicator>(bootstrap, nullptr, gpu);
}

}  // namespace residual
