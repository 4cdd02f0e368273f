#pragma once
// The training loop: epochs of steps (TrainStep: forward, loss, backward with the
// gradient all-reduce, finiteness check, clipping, optimizer step), evaluation after each
// epoch, metrics and progress. Every rank runs it; rank 0 alone prints and writes files.
// It holds no I/O format or device logic of its own.
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/optimizer.h"
#include "io/checkpoint.h"
#include "io/checkpoint_store.h"
#include "io/data_loader.h"
#include "distributed/communicator.h"
#include "launch/train_config.h"
#include "launch/train_step.h"

namespace residual {

class MetricsWriter;

struct EpochRecord {
  int64_t epoch = 0, step = 0;
  double lr = 0, train_loss = 0, train_top1 = 0, val_loss = 0, val_top1 = 0, val_top5 = 0;
  double images_per_s = 0, seconds = 0;
};

class Trainer {
 public:
  // `resumed`: the checkpoint to continue, its configuration already in `config`
  // (launch/train_command.cpp reads it and merges what a resume may change).
  // `world`: every rank of the job (a local communicator for one process). `out`: where
  // progress goes (rank 0's standard output; the other ranks pass a null stream).
  Trainer(const TrainConfig& config, std::ostream& out, std::unique_ptr<Checkpoint> resumed,
          Communicator& world);
  ~Trainer();
  // Runs the remaining epochs; throws Error on a non-finite loss or gradient. Returns
  // early, after a checkpoint (when a directory was given), when a SIGINT or SIGTERM
  // reached any rank: stopped_by() then says which signal.
  void run();
  int stopped_by() const { return stopped_by_; }
  // The checkpoint directory a stopped run resumes from ("" when there is none).
  const std::string& checkpoint_dir() const { return config_.checkpoint.dir; }
  Model& model() { return *model_; }
  const std::vector<EpochRecord>& history() const { return history_; }

 private:
  // False when a stop signal ended the epoch early.
  bool train_epoch(int64_t epoch, EpochRecord& record);
  // After each step, one small all-reduce: the step's loss/accuracy sums, a stop request
  // from any rank, and a fingerprint of the collectives each rank issued in the step (the
  // ranks must have issued the same ones). Returns true when the job is to stop.
  bool synchronize_step(const StepResult& step);
  EvalResult evaluate_all_ranks();
  void check_ranks_agree_at_start();
  // Batch-norm running statistics: each rank's own without --sync-bn; averaged over the
  // ranks before evaluation and checkpoints (docs/distributed.md).
  void average_running_statistics();
  void write_metrics(const EpochRecord& r, const char* kind);
  // The whole training state, for a checkpoint; and back.
  Checkpoint snapshot(int64_t batch_in_epoch);
  void restore(const Checkpoint& checkpoint);
  void save_checkpoint(int64_t batch_in_epoch);

  TrainConfig config_;
  std::ostream& out_;
  Communicator& world_;
  Device device_;  // config_.device resolved for this rank
  Precision precision_;  // config_.precision resolved
  std::unique_ptr<Communicator> bn_group_;
  std::unique_ptr<ReplicaSum> sync_bn_;
  std::unique_ptr<TrainStep> step_;
  std::vector<Parameter*> buffers_;  // non-trainable (BN running statistics)
  std::unique_ptr<Dataset> train_data_, val_data_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<DataLoader> train_loader_, val_loader_;
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<Parameter*> params_;
  std::vector<EpochRecord> history_;
  LrScheduleConfig schedule_;  // config_.schedule with --lr-scaling applied
  std::unique_ptr<CheckpointStore> store_;
  // Position inside the current epoch (a mid-epoch resume continues from here).
  int64_t batch_in_epoch_ = 0, samples_in_epoch_ = 0, correct_in_epoch_ = 0;
  double loss_sum_in_epoch_ = 0, last_lr_ = 0;
  double best_value_ = 0;
  int64_t best_epoch_ = 0;
  int64_t global_step_ = 0;
  bool binary_ = false;
  bool show_bar_ = false;
  int stopped_by_ = 0;
  std::unique_ptr<MetricsWriter> metrics_;
};

}  // namespace residual
