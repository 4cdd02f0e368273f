#pragma once
// The training loop: epochs of steps (forward, loss, backward, finiteness check,
// clipping, optimizer step), evaluation after each epoch, metrics and progress. It holds
// no I/O format or device logic of its own.
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/lr_schedule.h"
#include "core/model.h"
#include "core/optimizer.h"
#include "io/data_loader.h"
#include "io/dataset.h"

namespace residual {

class MetricsWriter;

struct TrainConfig {
  // Model: a zoo name or a model file. Zoo models take the data's image shape and class
  // count unless --input / --classes say otherwise.
  std::string model = "resnet20";
  int64_t classes = 0;
  std::string input;  // CxHxW
  bool zero_init_residual = false;
  // Data
  std::string data = "mnist:data/mnist-10k";
  std::string val_data;  // default: the test split of `data`
  DataOptions data_options;
  int64_t batch_size = 128;
  int64_t epochs = 15;
  int workers = 2;
  // Augmentation (training only): -1 / "auto" pick per data set (see docs/training.md).
  int64_t crop_padding = -1;
  std::string flip = "auto";       // auto | on | off
  std::string normalize = "auto";  // auto (from the training set) | none
  // Optimisation
  OptimizerConfig optimizer{"sgd", 0.9f, false, 0.9f, 0.999f, 1e-8f, 5e-4f, true};
  LrScheduleConfig schedule;
  std::string lr_scaling = "none";  // none | linear (lr x global batch / 256)
  float label_smoothing = 0.f;
  float clip_grad_norm = 0.f;  // > 0: clip the global gradient norm to this
  uint64_t seed = 0;
  // Output
  std::string metrics_file;  // .csv or .jsonl
  int64_t log_every = 0;     // steps between progress lines / step metrics rows (0: epochs only)
  bool progress_bar = true;  // on a terminal
};

struct EpochRecord {
  int64_t epoch = 0, step = 0;
  double lr = 0, train_loss = 0, train_top1 = 0, val_loss = 0, val_top1 = 0, val_top5 = 0;
  double images_per_s = 0, seconds = 0;
};

class Trainer {
 public:
  Trainer(const TrainConfig& config, std::ostream& out);
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

  TrainConfig config_;
  std::ostream& out_;
  std::unique_ptr<Dataset> train_data_, val_data_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<DataLoader> train_loader_, val_loader_;
  std::unique_ptr<Optimizer> optimizer_;
  std::vector<Parameter*> params_;
  std::vector<EpochRecord> history_;
  int64_t global_step_ = 0;
  bool binary_ = false;
  bool show_bar_ = false;
  std::unique_ptr<MetricsWriter> metrics_;
};

}  // namespace residual
