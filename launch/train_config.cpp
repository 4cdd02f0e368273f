#include "launch/train_config.h"

#include "core/error.h"

namespace residual {
namespace {

// Every saved field, once: `visit(key, field)` for each. Writing and reading both walk
// this list, so a field cannot be saved without being restored (or the reverse).
template <typename Config, typename Visit>
void for_each_field(Config& c, Visit&& visit) {
  visit("model", c.model);
  visit("classes", c.classes);
  visit("input", c.input);
  visit("zero_init_residual", c.zero_init_residual);
  visit("data", c.data);
  visit("val_data", c.val_data);
  visit("hdf5_images", c.data_options.hdf5_images);
  visit("hdf5_labels", c.data_options.hdf5_labels);
  visit("hdf5_layout", c.data_options.hdf5_layout);
  visit("synthetic_size", c.data_options.synthetic_size);
  visit("batch_size", c.batch_size);
  visit("epochs", c.epochs);
  visit("workers", c.workers);
  visit("crop_padding", c.crop_padding);
  visit("flip", c.flip);
  visit("normalize", c.normalize);
  visit("normalization_mean", c.normalization.mean);
  visit("normalization_std", c.normalization.std);
  visit("optimizer", c.optimizer.kind);
  visit("momentum", c.optimizer.momentum);
  visit("nesterov", c.optimizer.nesterov);
  visit("beta1", c.optimizer.beta1);
  visit("beta2", c.optimizer.beta2);
  visit("adam_epsilon", c.optimizer.epsilon);
  visit("weight_decay", c.optimizer.weight_decay);
  visit("decay_bias_and_norm", c.optimizer.decay_bias_and_norm);
  visit("lr_schedule", c.schedule.kind);
  visit("lr", c.schedule.base_lr);
  visit("warmup_epochs", c.schedule.warmup_epochs);
  visit("lr_step_size", c.schedule.step_size);
  visit("lr_milestones", c.schedule.milestones);
  visit("lr_gamma", c.schedule.gamma);
  visit("lr_power", c.schedule.power);
  visit("final_lr", c.schedule.final_lr);
  visit("lr_scaling", c.lr_scaling);
  visit("label_smoothing", c.label_smoothing);
  visit("clip_grad_norm", c.clip_grad_norm);
  visit("seed", c.seed);
  visit("sync_bn", c.sync_bn);
  visit("sync_bn_group_size", c.sync_bn_group_size);
  visit("accumulate", c.accumulate);
  visit("precision", c.precision);
  visit("bucket_cap_mb", c.bucket_cap_mb);
  visit("comm_timeout_s", c.comm_timeout_s);
  visit("checkpoint_every_epochs", c.checkpoint.every_epochs);
  visit("checkpoint_every_steps", c.checkpoint.every_steps);
  visit("keep_last", c.checkpoint.keep_last);
  visit("best_metric", c.checkpoint.best_metric);
  visit("log_every", c.log_every);
}

}  // namespace

nlohmann::json to_json(const TrainConfig& config) {
  nlohmann::json j = nlohmann::json::object();
  for_each_field(config, [&](const char* key, const auto& field) { j[key] = field; });
  return j;
}

TrainConfig train_config_from_json(const nlohmann::json& j) {
  RESIDUAL_CHECK(j.is_object(), "training configuration is not a JSON object");
  TrainConfig c;
  try {
    // Keys missing from an older file keep their defaults.
    for_each_field(c, [&](const char* key, auto& field) {
      if (j.contains(key)) j.at(key).get_to(field);
    });
  } catch (const nlohmann::json::exception& e) {
    fail("training configuration has a value of the wrong type: ", e.what());
  }
  return c;
}

}  // namespace residual
