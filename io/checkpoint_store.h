#pragma once
// A checkpoint directory: files ckpt-e<epoch>-s<step>.h5, a `latest` pointer (a one-line
// text file naming the newest complete checkpoint), the last K kept, and best.h5 for the
// best value of a chosen metric. Only one process writes (rank 0), and only one run uses a
// directory at a time: the store holds an flock on DIR/.lock (which names its pid) for its
// lifetime; the kernel drops it when the process dies, so a crashed run never blocks.
#include <cstdint>
#include <string>

#include "io/checkpoint.h"

namespace residual {

struct CheckpointPolicy {
  std::string dir;
  int64_t every_epochs = 1;  // 0: no epoch checkpoints
  int64_t every_steps = 0;   // 0: no step checkpoints
  int64_t keep_last = 3;     // older regular checkpoints are deleted
  std::string best_metric = "val_top1";  // "" : no best.h5; *_loss: lower is better
};

class CheckpointStore {
 public:
  // Creates the directory and locks it: a directory another live run holds is an Error
  // ("checkpoint directory 'DIR' is in use by another run (pid N)"). Temporary files a
  // killed run left there are removed.
  explicit CheckpointStore(CheckpointPolicy policy);
  // Unlocks the directory and removes the lock file.
  ~CheckpointStore();
  CheckpointStore(const CheckpointStore&) = delete;
  CheckpointStore& operator=(const CheckpointStore&) = delete;
  const CheckpointPolicy& policy() const { return policy_; }
  // Writes the checkpoint, then moves `latest` to it, then prunes old ones. Returns its path.
  std::string save(const Checkpoint& checkpoint);
  // Also writes best.h5 (atomically) when `value` beats the best so far.
  bool higher_is_better() const;

  // A checkpoint file, or a directory resolved through its `latest` pointer.
  static std::string resolve(const std::string& dir_or_file);

 private:
  void lock_directory();
  void remove_stale_temporaries();
  void prune(const std::string& keep);
  CheckpointPolicy policy_;
  std::string lock_path_;
  int lock_fd_ = -1;
};

}  // namespace residual
