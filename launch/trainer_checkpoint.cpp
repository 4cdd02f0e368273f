// The trainer's checkpoint half: the whole training state into a Checkpoint and back.
// Rank 0 writes; the other ranks wait at one barrier.
#include "core/error.h"
#include "distributed/consistency.h"
#include "launch/model_state.h"
#include "launch/trainer.h"

namespace residual {

Checkpoint Trainer::snapshot(int64_t batch_in_epoch) {
  Checkpoint c;
  c.model = model_->to_json();
  c.config = to_json(config_);
  store_weights(*model_, c);
  c.optimizer = config_.optimizer.kind;
  c.optimizer_steps = optimizer_->steps_taken();
  for (auto& [name, t] : optimizer_->state()) c.optimizer_state[name] = host_copy(*t);
  c.epoch = static_cast<int64_t>(history_.size());
  c.global_step = global_step_;
  c.batch_in_epoch = batch_in_epoch;
  c.samples_in_epoch = batch_in_epoch ? samples_in_epoch_ : 0;
  c.correct_in_epoch = batch_in_epoch ? correct_in_epoch_ : 0;
  c.loss_sum_in_epoch = batch_in_epoch ? loss_sum_in_epoch_ : 0;
  c.seed = config_.seed;
  c.global_batch_size = config_.batch_size;
  c.world_size = world_.size();
  c.learning_rate = last_lr_;
  c.metrics = nlohmann::json::array();
  for (const EpochRecord& r : history_) {
    c.metrics.push_back({{"epoch", r.epoch}, {"step", r.step}, {"lr", r.lr},
                         {"train_loss", r.train_loss}, {"train_top1", r.train_top1},
                         {"val_loss", r.val_loss}, {"val_top1", r.val_top1},
                         {"val_top5", r.val_top5}, {"images_per_s", r.images_per_s},
                         {"seconds", r.seconds}});
  }
  c.best_metric = config_.checkpoint.best_metric;
  c.best_value = best_value_;
  c.best_epoch = best_epoch_;
  return c;
}

void Trainer::restore(const Checkpoint& c) {
  load_weights(*model_, c, true, out_, "the resumed checkpoint");
  RESIDUAL_CHECK(c.optimizer == config_.optimizer.kind, "the checkpoint was trained with ",
                 c.optimizer, ", not ", config_.optimizer.kind);
  for (auto& [name, t] : optimizer_->state()) {
    auto it = c.optimizer_state.find(name);
    RESIDUAL_CHECK(it != c.optimizer_state.end() && it->second.shape() == t->shape(),
                   "the checkpoint lacks optimizer state '", name, "'");
    t->copy_from(it->second);
  }
  optimizer_->set_steps_taken(c.optimizer_steps);
  global_step_ = c.global_step;
  batch_in_epoch_ = c.batch_in_epoch;
  samples_in_epoch_ = c.samples_in_epoch;
  correct_in_epoch_ = c.correct_in_epoch;
  loss_sum_in_epoch_ = c.loss_sum_in_epoch;
  last_lr_ = c.learning_rate;
  best_value_ = c.best_value;
  best_epoch_ = c.best_epoch;
  history_.clear();
  for (const auto& m : c.metrics) {
    EpochRecord r;
    r.epoch = m.value("epoch", int64_t{0});
    r.step = m.value("step", int64_t{0});
    r.lr = m.value("lr", 0.0);
    r.train_loss = m.value("train_loss", 0.0);
    r.train_top1 = m.value("train_top1", 0.0);
    r.val_loss = m.value("val_loss", 0.0);
    r.val_top1 = m.value("val_top1", 0.0);
    r.val_top5 = m.value("val_top5", 0.0);
    r.images_per_s = m.value("images_per_s", 0.0);
    r.seconds = m.value("seconds", 0.0);
    history_.push_back(r);
  }
  RESIDUAL_CHECK(static_cast<int64_t>(history_.size()) == c.epoch,
                 "the checkpoint's metrics history does not match its epoch ", c.epoch);
}

void Trainer::save_checkpoint(int64_t batch_in_epoch) {
  if (config_.checkpoint.dir.empty()) return;
  // Every rank comes here at the same step. Averaging the running statistics in place
  // (not in a copy) keeps a resumed run identical to an uninterrupted one.
  average_running_statistics();
  if (store_) {
    const std::string path = store_->save(snapshot(batch_in_epoch));
    if (!show_bar_) out_ << "checkpoint " << path << "\n" << std::flush;
  }
  world_.barrier("checkpoint written by rank 0");
}

}  // namespace residual
