#pragma once
// Everything a training run is configured by, as plain data; it round-trips through
// JSON so a checkpoint carries it and `eval --checkpoint` needs nothing else.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/lr_schedule.h"
#include "core/optimizer.h"
#include "io/augmentation.h"
#include "io/checkpoint_store.h"
#include "io/dataset.h"

namespace residual {

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
  // Filled from the training set when normalize is auto (kept in checkpoints so
  // evaluation normalises exactly as training did).
  Normalization normalization;
  // Data parallelism (docs/distributed.md). batch_size above is the *global* batch:
  // the ranks split it. accumulate > 1 splits each rank's share into that many
  // micro-batches whose gradients are added before the one all-reduce of the step.
  bool sync_bn = false;
  int64_t sync_bn_group_size = 0;  // ranks per synchronized BN group (0: the whole world)
  int64_t accumulate = 1;
  double bucket_cap_mb = 25;
  double comm_timeout_s = 300;
  // Checkpoints
  CheckpointPolicy checkpoint;  // checkpoint.dir empty: none
  std::string resume;           // DIR or FILE: continue that run exactly (read by the command)
  std::string init_from;        // FILE: weights only
  bool non_strict = false;      // init_from: load what matches, report the rest
  // Where it runs: cpu | cuda | cuda:N (launch/device_option.h). Not saved in checkpoints:
  // it changes where a run computes, not what, so a run trained on a GPU resumes on the
  // CPU and the reverse (to_json leaves it out).
  std::string device = "cpu";
  // fp32 | bf16 (launch/precision_option.h). Saved, so a resumed run computes as before,
  // and changeable on --resume (the checkpoint's weights are fp32 either way).
  std::string precision = "fp32";
  // Output
  std::string metrics_file;  // .csv or .jsonl
  bool metrics_timing = false;  // add images_per_s and seconds (not reproducible)
  int64_t log_every = 0;     // steps between progress lines / step metrics rows (0: epochs only)
  bool progress_bar = true;  // on a terminal
};

nlohmann::json to_json(const TrainConfig& config);
TrainConfig train_config_from_json(const nlohmann::json& j);

}  // namespace residual
