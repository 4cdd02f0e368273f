#pragma once
// The training loop: epochs of steps (forward, loss, backward, finiteness check,
// clipping, optimizer step), evaluation after each epoch, metrics and progress. It holds
// no I/O format or device logic of its own.
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/model.h"
#include "core/optimizer.h"
#include "io/checkpoint.h"
#include "io/checkpoint_store.h"
#include "io/data_loader.h"
#include "launch/train_config.h"

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
  Trainer(const TrainConfig& config, std::ostream& out,
          std::unique_ptr<Checkpoint> resumed = nullptr);
  ~Trainer();
  // Runs the remaining epochs; throws Error on a non-finite loss or gradient.
  void run();
  Model& model() { return *model_; }
  const std::vector<EpochRecord>& history() const { return history_; }

 private:
  void train_epoch(int64_t epoch, EpochRecord& record);
  // Throws naming the first parameter (in backward order) whose gradient is not finite;
  // returns the global gradient norm.
  double check_gradients(int64_t step);
  void write_metrics(const EpochRecord& r, const char* kind);
  // The whole training state, for a checkpoint; and back.
  Checkpoint snapshot(int64_t batch_in_epoch);
  void restore(const Checkpoint& checkpoint);
  void save_checkpoint(int64_t batch_in_epoch);

  TrainConfig config_;
  std::ostream& out_;
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
  std::unique_ptr<MetricsWriter> metrics_;
};

}  // namespace residual
