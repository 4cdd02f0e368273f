#include "launch/train_step.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "core/error.h"
#include "distributed/job.h"
#include "ops/ops.h"

namespace residual {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Rows [begin, end) of x (batch first) into out, on x's device.
void copy_rows(const Tensor& x, int64_t begin, int64_t end, Tensor& out) {
  std::vector<int64_t> dims = x.shape().dims();
  const int64_t row = x.numel() / std::max<int64_t>(dims[0], 1);
  dims[0] = end - begin;
  const Shape shape(dims);
  out.resize(shape, x);
  out.copy_from(x.view_at(begin * row, shape));
}

// Gradients live inside the buckets unless micro-batches must be added up.
ReducerConfig with_views(const TrainStepConfig& config) {
  ReducerConfig r = config.reducer;
  r.gradient_as_bucket_view = r.gradient_as_bucket_view && config.accumulate == 1;
  return r;
}

}  // namespace

TrainStep::TrainStep(Model& model, Optimizer& optimizer, Communicator& gradients,
                     ReplicaSum* sync_bn, TrainStepConfig config)
    : model_(model),
      optimizer_(optimizer),
      sync_bn_(sync_bn),
      config_(config),
      params_(model.trainable_parameters()),
      reducer_(params_, gradients, with_views(config)) {
  RESIDUAL_CHECK(config_.accumulate >= 1, "--accumulate must be at least 1");
  model_.on_gradient_ready([this](Parameter& p) { reducer_.on_gradient_ready(p); });
}

StepResult TrainStep::run(const Tensor& images, const Tensor& labels, int64_t global_size,
                          int64_t first_sample, float lr, PassContext ctx) {
  RESIDUAL_CHECK(global_size > 0, "a step needs a non-empty global batch");
  ctx.training = true;
  ctx.sync_batch_norm = sync_bn_;
  StepResult r;
  // Host batches go to the model's device once per step; the labels go with the loss
  // (compute_loss copies them where the logits are).
  const Tensor& all_images = on_device(images, model_.device(), device_images_);
  const int64_t n = images.dim(0), m = config_.accumulate;
  for (int64_t i = 0; i < m; ++i) {
    // Every rank runs all m micro-batches, empty ones too: synchronized batch norm
    // issues its collectives in every forward and backward.
    const int64_t begin = n * i / m, end = n * (i + 1) / m, rows = end - begin;
    const Tensor* x = &all_images;
    const Tensor* y = &labels;
    if (m > 1) {
      copy_rows(all_images, begin, end, micro_images_);
      copy_rows(labels, begin, end, micro_labels_);
      x = &micro_images_;
      y = &micro_labels_;
    }
    auto t = Clock::now();
    ctx.first_sample = first_sample + begin;
    const Tensor& logits = model_.forward(*x, ctx);
    r.forward_ms += ms_since(t);
    t = Clock::now();
    if (rows > 0) {
      const LossOutcome o = compute_loss(logits, *y, config_.label_smoothing, loss_);
      // compute_loss divides by the rows it saw; the step's loss is the global mean.
      ops::scale_inplace(loss_.dlogits, static_cast<float>(static_cast<double>(rows) / global_size));
      r.loss_sum += o.loss * static_cast<double>(rows);
      r.correct += o.correct;
    } else {
      loss_.dlogits.resize_like(logits);
    }
    r.samples += rows;
    r.loss_ms += ms_since(t);
    t = Clock::now();
    reducer_.begin_backward(i == 0, i == m - 1);
    model_.backward(loss_.dlogits, ctx);
    r.backward_ms += ms_since(t);
  }
  auto t = Clock::now();
  reducer_.finalize();
  r.wait_ms = ms_since(t);
  t = Clock::now();
  r.grad_norm = check_gradients(static_cast<int64_t>(ctx.step) + 1);
  if (config_.clip_grad_norm > 0 && r.grad_norm > config_.clip_grad_norm) {
    const float factor = static_cast<float>(config_.clip_grad_norm / r.grad_norm);
    for (Parameter* p : params_) ops::scale_inplace(p->grad, factor);
  }
  optimizer_.step(lr);
  r.update_ms = ms_since(t);
  return r;
}

double TrainStep::check_gradients(int64_t step) const {
  double total = 0;
  for (auto it = params_.rbegin(); it != params_.rend(); ++it) {
    const double sq = ops::squared_norm((*it)->grad);
    if (!std::isfinite(sq)) {
      throw JobWideError("the gradient of " + (*it)->name + " became non-finite at step " +
                         std::to_string(step) + " (the first in backward order): training stopped");
    }
    total += sq;
  }
  return std::sqrt(total);
}

}  // namespace residual
