#include "launch/train_config.h"

#include "core/error.h"

namespace residual {
namespace {

template <typename T>
void read(const nlohmann::json& j, const char* key, T& out) {
  if (j.contains(key)) out = j.at(key).get<T>();
}

}  // namespace

nlohmann::json to_json(const TrainConfig& c) {
  const auto& o = c.optimizer;
  const auto& s = c.schedule;
  return {
      {"model", c.model}, {"classes", c.classes}, {"input", c.input},
      {"zero_init_residual", c.zero_init_residual}, {"data", c.data}, {"val_data", c.val_data},
      {"hdf5_images", c.data_options.hdf5_images}, {"hdf5_labels", c.data_options.hdf5_labels},
      {"hdf5_layout", c.data_options.hdf5_layout}, {"batch_size", c.batch_size},
      {"epochs", c.epochs}, {"workers", c.workers}, {"crop_padding", c.crop_padding},
      {"flip", c.flip}, {"normalize", c.normalize},
      {"normalization_mean", c.normalization.mean}, {"normalization_std", c.normalization.std},
      {"optimizer", o.kind}, {"momentum", o.momentum}, {"nesterov", o.nesterov},
      {"beta1", o.beta1}, {"beta2", o.beta2}, {"adam_epsilon", o.epsilon},
      {"weight_decay", o.weight_decay}, {"decay_bias_and_norm", o.decay_bias_and_norm},
      {"lr_schedule", s.kind}, {"lr", s.base_lr}, {"warmup_epochs", s.warmup_epochs},
      {"lr_step_size", s.step_size}, {"lr_milestones", s.milestones}, {"lr_gamma", s.gamma},
      {"lr_power", s.power}, {"final_lr", s.final_lr}, {"lr_scaling", c.lr_scaling},
      {"label_smoothing", c.label_smoothing}, {"clip_grad_norm", c.clip_grad_norm},
      {"seed", c.seed}, {"checkpoint_every_epochs", c.checkpoint.every_epochs},
      {"checkpoint_every_steps", c.checkpoint.every_steps},
      {"keep_last", c.checkpoint.keep_last}, {"best_metric", c.checkpoint.best_metric},
      {"log_every", c.log_every}};
}

TrainConfig train_config_from_json(const nlohmann::json& j) {
  RESIDUAL_CHECK(j.is_object(), "training configuration is not a JSON object");
  TrainConfig c;
  try {
    read(j, "model", c.model);
    read(j, "classes", c.classes);
    read(j, "input", c.input);
    read(j, "zero_init_residual", c.zero_init_residual);
    read(j, "data", c.data);
    read(j, "val_data", c.val_data);
    read(j, "hdf5_images", c.data_options.hdf5_images);
    read(j, "hdf5_labels", c.data_options.hdf5_labels);
    read(j, "hdf5_layout", c.data_options.hdf5_layout);
    read(j, "batch_size", c.batch_size);
    read(j, "epochs", c.epochs);
    read(j, "workers", c.workers);
    read(j, "crop_padding", c.crop_padding);
    read(j, "flip", c.flip);
    read(j, "normalize", c.normalize);
    read(j, "normalization_mean", c.normalization.mean);
    read(j, "normalization_std", c.normalization.std);
    read(j, "optimizer", c.optimizer.kind);
    read(j, "momentum", c.optimizer.momentum);
    read(j, "nesterov", c.optimizer.nesterov);
    read(j, "beta1", c.optimizer.beta1);
    read(j, "beta2", c.optimizer.beta2);
    read(j, "adam_epsilon", c.optimizer.epsilon);
    read(j, "weight_decay", c.optimizer.weight_decay);
    read(j, "decay_bias_and_norm", c.optimizer.decay_bias_and_norm);
    read(j, "lr_schedule", c.schedule.kind);
    read(j, "lr", c.schedule.base_lr);
    read(j, "warmup_epochs", c.schedule.warmup_epochs);
    read(j, "lr_step_size", c.schedule.step_size);
    read(j, "lr_milestones", c.schedule.milestones);
    read(j, "lr_gamma", c.schedule.gamma);
    read(j, "lr_power", c.schedule.power);
    read(j, "final_lr", c.schedule.final_lr);
    read(j, "lr_scaling", c.lr_scaling);
    read(j, "label_smoothing", c.label_smoothing);
    read(j, "clip_grad_norm", c.clip_grad_norm);
    read(j, "seed", c.seed);
    read(j, "checkpoint_every_epochs", c.checkpoint.every_epochs);
    read(j, "checkpoint_every_steps", c.checkpoint.every_steps);
    read(j, "keep_last", c.checkpoint.keep_last);
    read(j, "best_metric", c.checkpoint.best_metric);
    read(j, "log_every", c.log_every);
  } catch (const nlohmann::json::exception& e) {
    fail("training configuration has a value of the wrong type: ", e.what());
  }
  return c;
}

}  // namespace residual
