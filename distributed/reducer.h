#pragma once
// Sums the parameter gradients of every rank, overlapped with the backward pass.
//
// The trainable parameters are grouped into buckets of at most `bucket_cap_bytes`, in
// reverse order of use (the order backward finishes them), the first bucket small so
// that communication starts early. When backward reports the last gradient of a bucket
// final, its all-reduce starts while backward goes on with the earlier layers. Buckets
// are launched strictly in index order (every rank issues the same collectives in the
// same order: the reduction order is fixed and runs are bit-reproducible). finalize()
// waits for the rest and writes the sums back into the gradients.
//
// Each rank's loss gradient is already divided by the *global* batch size, so summing
// is the whole reduction: uneven shares (128 over 3 ranks: 43, 43, 42) and empty shards
// weigh exactly as in one process. It knows nothing about MPI or NCCL.
//
// The buckets live on the gradients' device. On a GPU the copies into and out of them
// are queued on the compute stream, and the communicator (NCCL) orders its all-reduce
// after them and the optimizer after the all-reduce; the CPU path is plain host memory.
#include <chrono>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "core/layer.h"
#include "distributed/communicator.h"

namespace residual {

struct ReducerConfig {
  int64_t bucket_cap_bytes = int64_t{25} << 20;       // PyTorch DDP's default
  int64_t first_bucket_cap_bytes = int64_t{1} << 20;  // starts communication early
  // Parameter gradients become views into the buckets (backward writes them in place):
  // no copy in or out. Off for gradient accumulation, where each backward would
  // overwrite the sum so far.
  bool gradient_as_bucket_view = true;
};

// What the last step's communication cost, for the bench.
struct ReducerTimes {
  double all_reduce_ms = 0;  // first launch to last completion
  double exposed_ms = 0;     // of it, the time finalize() waited (not hidden by backward)
};

class Reducer {
 public:
  // `params`: trainable parameters in forward order (Model::trainable_parameters()).
  Reducer(std::vector<Parameter*> params, Communicator& comm, ReducerConfig config = {});

  // Before each backward. With gradient accumulation, `communicate` is false for all
  // but the last micro-batch of a step: gradients are added up locally, and only the
  // last backward starts the all-reduces. The first backward of a step overwrites.
  void begin_backward(bool first_of_step, bool communicate);
  // The Model's gradient-ready listener.
  void on_gradient_ready(Parameter& p);
  // After the last backward of a step: waits for every bucket, writes the sums back.
  // Throws naming the parameters whose gradient was never reported.
  void finalize();

  int64_t bucket_count() const { return static_cast<int64_t>(buckets_.size()); }
  // Elements per bucket, in launch order.
  std::vector<int64_t> bucket_sizes() const;
  const ReducerTimes& last_times() const { return times_; }

 private:
  struct Slot {
    Parameter* param = nullptr;
    int64_t offset = 0;  // in the bucket's buffer
  };
  struct Bucket {
    std::vector<Slot> slots;
    Tensor buffer;  // float32, every slot's gradient back to back
    int64_t pending = 0;  // gradients not yet reported this backward
    std::unique_ptr<Work> work;
  };
  void launch_ready_buckets();

  Communicator& comm_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const Parameter*, std::pair<int, int>> where_;  // bucket, slot
  std::vector<char> reported_;  // per slot flattened, this backward
  std::vector<int64_t> slot_base_;
  bool views_ = false;
  int next_launch_ = 0;
  bool first_of_step_ = true, communicate_ = true;
  std::chrono::steady_clock::time_point first_launch_;
  ReducerTimes times_;
};

}  // namespace residual
