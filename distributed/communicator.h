#pragma once
// The collectives every rank of a data-parallel job takes part in. The Reducer, the
// synchronized batch norm and the trainer talk only to this interface; MPI (CPU) and
// NCCL (GPU, distributed/nccl_communicator.h) implement it. World size 1 is
// LocalCommunicator: the same code path, no MPI needed.
//
// Every collective has a sequence number and a short description, kept in a small ring
// of the last few (CollectiveLog): on a deadline or a disagreement between the ranks,
// that history is what the error message shows. Every wait has a deadline
// (--comm-timeout): a rank that stops answering ends the job instead of hanging it.
#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace residual {

enum class CollectiveKind : uint8_t { kAllReduce, kBroadcast, kAllGather, kBarrier };
const char* collective_name(CollectiveKind kind);

// What a collective was, for the history and for the cross-rank agreement check.
struct CollectiveRecord {
  uint64_t sequence = 0;
  CollectiveKind kind = CollectiveKind::kBarrier;
  int64_t bytes = 0;
  char what[40] = {};  // e.g. "gradient bucket 3", "batch-norm statistics"
  std::string describe() const;
};

// The last kHistory collectives of this rank, and a running fingerprint of every one
// issued since the last check, so the ranks can cheaply verify they issued the same
// sequence of operations (trainer: once per step, together with the step statistics).
class CollectiveLog {
 public:
  static constexpr int kHistory = 8;
  const CollectiveRecord& add(CollectiveKind kind, int64_t bytes, const char* what);
  uint64_t issued() const { return next_; }
  // A 20-bit fingerprint of the collectives since the last call, then restarts it.
  uint32_t take_fingerprint();
  // "#17 all-reduce 4.1 MB (gradient bucket 0); #18 ..." newest last.
  std::string history() const;

 private:
  std::array<CollectiveRecord, kHistory> ring_{};
  uint64_t next_ = 0;
  uint64_t fingerprint_ = 0;
};

// A collective in flight. wait() returns when it is complete on this rank, or ends the
// job with a message naming the collective, the step and this rank's history when the
// deadline passes.
class Work {
 public:
  virtual ~Work() = default;
  virtual bool test() = 0;  // true when complete; drives progress
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Element-wise sums, in place. float for gradients, double for statistics; the order
  // of summation is fixed for a given world size, so runs are bit-reproducible.
  virtual std::unique_ptr<Work> all_reduce_async(float* data, int64_t n, const char* what) = 0;
  virtual void all_reduce(double* data, int64_t n, const char* what) = 0;
  // Element-wise maximum of int64 values (flags, counters).
  virtual void all_reduce_max(int64_t* data, int64_t n, const char* what) = 0;
  virtual void broadcast(void* data, int64_t bytes, int root, const char* what) = 0;
  // out: size() * bytes, rank r's contribution at r * bytes. Only for start-up checks
  // and failure reports (its memory grows with the world size).
  virtual void all_gather(const void* in, int64_t bytes, void* out, const char* what) = 0;
  virtual void barrier(const char* what) = 0;
  // A communicator over the ranks with the same `color` (e.g. one per node, for a
  // synchronized batch norm group), ordered by rank.
  virtual std::unique_ptr<Communicator> split(int color, const char* what) = 0;

  void all_reduce(float* data, int64_t n, const char* what) { all_reduce_async(data, n, what)->wait(); }

  // Whether the collectives take CUDA device memory (NCCL). Handing device memory to a
  // communicator that answers false (MPI) is a crash, so the Reducer checks first.
  virtual bool takes_device_memory() const { return false; }

  // Where the deadline message says the job was ("step 17 of epoch 2"), and the deadline.
  // Both are shared with the communicators made from this one (split, or NCCL over its
  // bootstrap): setting them on any of the family sets them for all.
  void set_phase(std::string phase) { *phase_ = std::move(phase); }
  const std::string& phase() const { return *phase_; }
  void set_timeout(std::chrono::milliseconds timeout) { *timeout_ = timeout; }
  std::chrono::milliseconds timeout() const { return *timeout_; }
  CollectiveLog& log() { return log_; }

 protected:
  // Joins `parent`'s family: its phase and deadline from now on.
  void follow(const Communicator& parent) {
    phase_ = parent.phase_;
    timeout_ = parent.timeout_;
  }

  std::shared_ptr<std::string> phase_ = std::make_shared<std::string>("start-up");
  std::shared_ptr<std::chrono::milliseconds> timeout_ =
      std::make_shared<std::chrono::milliseconds>(std::chrono::minutes(5));
  CollectiveLog log_;
};

// World size 1: every collective is complete at once (the log is still kept).
std::unique_ptr<Communicator> make_local_communicator();

}  // namespace residual
