#pragma once
// Batches from a Dataset for one rank: samples are drawn by global index from a
// permutation of (seed, epoch), each global batch is cut into world_size shards as equal
// as they can be (128 over 3 ranks: 43, 43, 42; a rank may get none when the batch is
// smaller than the world) and rank r takes shard r, so k ranks see exactly the samples one
// process would. Worker
// threads read, augment and normalise batches ahead of the training loop.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "core/tensor.h"
#include "io/augmentation.h"
#include "io/dataset.h"

namespace residual {

struct LoaderConfig {
  int64_t batch_size = 128;  // global: the samples of one step over all ranks
  int rank = 0, world_size = 1;
  bool shuffle = true;
  // Training drops the last incomplete global batch (every step has the same size on
  // every rank); evaluation keeps it (the last batch may be smaller and uneven).
  bool drop_last = true;
  uint64_t seed = 0;
  AugmentConfig augment;  // training only
  Normalization normalization;
  int workers = 2;
  int prefetch = 3;  // batches ready ahead of the one in use
};

struct Batch {
  Tensor images;      // N x H x W x C, normalised
  Tensor labels;      // N, int32
  int64_t index = 0;  // batch number within the epoch
  int64_t global_size = 0;  // samples of this global batch over all ranks
  int64_t first_sample = 0; // position of this rank's share in the global batch
};

class DataLoader {
 public:
  DataLoader(const Dataset& data, LoaderConfig config);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t batches_per_epoch() const { return batches_; }
  // Samples this rank sees per epoch.
  int64_t samples_per_epoch() const;
  // Starts (or restarts) an epoch at batch `first_batch` (for a mid-epoch resume).
  void start_epoch(uint64_t epoch, int64_t first_batch = 0);
  // The next batch of the epoch, or nullptr at its end. Valid until the next call.
  const Batch* next();

 private:
  struct Slot {
    Batch batch;
    int64_t ready_for = -1;  // batch number held, -1 if none
  };
  void stop_workers();
  void worker(int id, int64_t first_batch);
  void fill(int64_t batch_number, Batch& out, std::vector<float>& scratch);
  // Samples in global batch `batch_number` (the last one may be short in evaluation).
  int64_t global_size(int64_t batch_number) const;
  // This rank's [begin, end) range of positions in the permutation for a batch.
  std::pair<int64_t, int64_t> shard(int64_t batch_number) const;

  const Dataset& data_;
  LoaderConfig config_;
  Shape sample_shape_;
  int64_t batches_ = 0;
  uint64_t epoch_ = 0;
  std::vector<int64_t> order_;
  std::vector<Slot> slots_;
  int64_t next_ = 0, released_below_ = 0;
  bool stopping_ = false;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::thread> threads_;
  std::exception_ptr error_;
};

}  // namespace residual
