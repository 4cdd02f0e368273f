#include "launch/benchmark.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "core/error.h"
#include "core/model.h"
#include "core/model_spec.h"
#include "core/model_summary.h"
#include "core/optimizer.h"
#include "ops/ops.h"

namespace residual {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

BenchResult run_benchmark(const BenchConfig& config, std::ostream& log) {
  RESIDUAL_CHECK(config.batch_size > 0, "--batch-size must be positive");
  RESIDUAL_CHECK(config.steps > 0, "--steps must be positive");
  SpecOverrides overrides;
  overrides.classes = config.classes;
  overrides.input_hwc = config.input_hwc;
  Model model(resolve_model_spec(config.model, overrides), LayerRegistry::with_builtins());
  model.initialize(config.seed);
  const Shape in = model.input_shape();
  const int64_t classes = model.output_shape()[0];
  const bool binary = classes == 1;

  std::mt19937_64 rng(config.seed);
  std::normal_distribution<float> normal;
  Tensor x = Tensor::empty(in.with_batch(config.batch_size));
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = normal(rng);
  Tensor labels = Tensor::empty(Shape{config.batch_size}, Device::cpu(), DType::kInt32);
  Tensor targets = Tensor::empty(Shape{config.batch_size, 1});
  for (int64_t i = 0; i < config.batch_size; ++i) {
    labels.data<int32_t>()[i] = static_cast<int32_t>(rng() % classes);
    targets.f32()[i] = static_cast<float>(rng() % 2);
  }
  Tensor dlogits;
  OptimizerConfig sgd;
  sgd.momentum = 0.9f;
  sgd.weight_decay = 1e-4f;
  Sgd optimizer(model.trainable_parameters(), sgd);

  log << "bench model=" << model.name() << " input=" << in.str() << " batch=" << config.batch_size
      << " threads=" << ops::num_threads()
      << " params=" << with_commas(count_parameters(model).trainable) << "\n";
  std::vector<double> fwd, loss_t, bwd, upd, step;
  PassContext ctx;
  ctx.training = true;
  for (int s = 0; s < config.warmup + config.steps; ++s) {
    ctx.step = static_cast<uint64_t>(s);
    const auto t0 = Clock::now();
    const Tensor& logits = model.forward(x, ctx);
    const double t_fwd = ms_since(t0);
    const auto t1 = Clock::now();
    dlogits.resize(logits.shape());
    const double loss = binary ? ops::sigmoid_binary_cross_entropy(logits, targets, dlogits)
                               : ops::softmax_cross_entropy(logits, labels, 0.f, dlogits);
    const double t_loss = ms_since(t1);
    const auto t2 = Clock::now();
    model.backward(dlogits, ctx);
    const double t_bwd = ms_since(t2);
    const auto t3 = Clock::now();
    optimizer.step(0.1f);
    const double t_upd = ms_since(t3);
    const double total = ms_since(t0);
    if (s + 1 == config.warmup) model.set_profiling(config.profile);
    if (s < config.warmup) continue;
    fwd.push_back(t_fwd);
    loss_t.push_back(t_loss);
    bwd.push_back(t_bwd);
    upd.push_back(t_upd);
    step.push_back(total);
    log << "step " << s - config.warmup + 1 << "/" << config.steps << " loss=" << loss
        << " ms=" << total << "\n";
  }
  if (config.profile) {
    log << "profile (ms per step, by layer type and phase):\n";
    for (const auto& [key, ms] : model.profile()) log << "  " << key << " " << ms / config.steps << "\n";
  }
  BenchResult r;
  r.forward_ms = median(fwd);
  r.loss_ms = median(loss_t);
  r.backward_ms = median(bwd);
  r.update_ms = median(upd);
  r.step_ms = median(step);
  r.images_per_s = config.batch_size / (r.step_ms / 1000.0);
  return r;
}

}  // namespace residual
