#include "launch/benchmark.h"

#include <algorithm>
#include <chrono>
#include <random>

#include "core/device_memory.h"
#include "core/error.h"
#include "core/model.h"
#include "core/model_spec.h"
#include "core/model_summary.h"
#include "core/optimizer.h"
#include "distributed/communicator.h"
#include "distributed/job.h"
#include "distributed/sync_batch_norm.h"
#include "launch/device_option.h"
#include "launch/precision_option.h"
#include "launch/train_step.h"
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

BenchResult run_benchmark(const BenchConfig& config, std::ostream& log, Communicator& world) {
  RESIDUAL_CHECK(config.batch_size > 0, "--batch-size must be positive");
  RESIDUAL_CHECK(config.steps > 0, "--steps must be positive");
  SpecOverrides overrides;
  overrides.classes = config.classes;
  overrides.input_hwc = config.input_hwc;
  const Device device = resolve_device(config.device);
  const Precision precision = resolve_precision(config.precision, config.device);
  Model model(resolve_model_spec(config.model, overrides), LayerRegistry::with_builtins());
  model.initialize(config.seed);
  model.to(device);  // before the optimizer and the reducer, which hold its tensors
  const Shape in = model.input_shape();
  const int64_t classes = model.classifier_outputs();
  const bool binary = classes == 1;

  // This rank's share of the global batch, as the loader would cut it.
  const int64_t k = world.size(), r = world.rank();
  const int64_t share = config.batch_size * (r + 1) / k - config.batch_size * r / k;
  std::mt19937_64 rng(config.seed + static_cast<uint64_t>(r));
  std::normal_distribution<float> normal;
  Tensor host_x = Tensor::empty(in.with_batch(share));
  for (int64_t i = 0; i < host_x.numel(); ++i) host_x.f32()[i] = normal(rng);
  Tensor host_labels = Tensor::empty(Shape{share}, Device::cpu(), DType::kInt32);
  for (int64_t i = 0; i < share; ++i) {
    host_labels.data<int32_t>()[i] = static_cast<int32_t>(binary ? rng() % 2 : rng() % classes);
  }
  const Tensor x = device.is_cpu() ? host_x : host_x.to(device);
  const Tensor labels = device.is_cpu() ? host_labels : host_labels.to(device);
  OptimizerConfig sgd;
  sgd.momentum = 0.9f;
  sgd.weight_decay = 1e-4f;
  Sgd optimizer(model.trainable_parameters(), sgd);
  std::unique_ptr<Communicator> bn_group;
  std::unique_ptr<CommunicatorReplicaSum> sync_bn;
  if (config.sync_bn) {
    bn_group = make_batch_norm_group(world, 0);
    sync_bn = std::make_unique<CommunicatorReplicaSum>(*bn_group);
  }
  TrainStepConfig sc;
  sc.reducer.bucket_cap_bytes = static_cast<int64_t>(config.bucket_cap_mb * (1 << 20));
  // As the trainer: NCCL (over the job's world communicator) sums gradients on GPUs.
  Communicator& gradients = device.is_cpu() ? world : gradient_communicator(device);
  TrainStep train_step(model, optimizer, gradients, sync_bn.get(), sc);

  log << "bench model=" << model.name() << " input=" << in.str() << " batch=" << config.batch_size
      << " ranks=" << k << " device=" << device.str() << " precision="
      << precision_name(precision) << " cpu_isa=" << ops::cpu_bf16_support().isa
      << " threads=" << ops::num_threads()
      << " params=" << with_commas(count_parameters(model).trainable)
      << " buckets=" << train_step.reducer().bucket_count() << (config.sync_bn ? " sync_bn" : "") << "\n";
  std::vector<double> fwd, loss_t, bwd, upd, step, reduce, exposed;
  PassContext ctx;
  ctx.training = true;
  ctx.precision = precision;
  for (int s = 0; s < config.warmup + config.steps; ++s) {
    ctx.step = static_cast<uint64_t>(s);
    world.barrier("bench step start");  // every rank's step time covers the same step
    const auto t0 = Clock::now();
    const StepResult o = train_step.run(x, labels, config.batch_size, config.batch_size * r / k, 0.1f, ctx);
    // The optimizer's kernels may still be queued: the step ends when the GPU is done.
    if (device.is_cuda()) cuda_backend::synchronize(device.index);
    const double total = ms_since(t0);
    if (s + 1 == config.warmup) model.set_profiling(config.profile);
    if (s < config.warmup) continue;
    fwd.push_back(o.forward_ms);
    loss_t.push_back(o.loss_ms);
    bwd.push_back(o.backward_ms);
    upd.push_back(o.update_ms);
    step.push_back(total);
    reduce.push_back(train_step.reducer().last_times().all_reduce_ms);
    exposed.push_back(train_step.reducer().last_times().exposed_ms);
    log << "step " << s - config.warmup + 1 << "/" << config.steps
        << " loss=" << (share > 0 ? o.loss_sum / share : 0.0) << " ms=" << total << "\n";
  }
  if (config.profile) {
    log << "profile (ms per step, by layer type and phase):\n";
    for (const auto& [key, ms] : model.profile()) log << "  " << key << " " << ms / config.steps << "\n";
  }
  BenchResult result;
  result.forward_ms = median(fwd);
  result.loss_ms = median(loss_t);
  result.backward_ms = median(bwd);
  result.update_ms = median(upd);
  result.step_ms = median(step);
  result.all_reduce_ms = median(reduce);
  result.exposed_ms = median(exposed);
  // The job's rate is set by its slowest rank: the step time of the job is the largest.
  double times[2] = {result.step_ms, static_cast<double>(share)};
  std::vector<double> all(static_cast<size_t>(2 * k));
  world.all_gather(times, sizeof(times), all.data(), "bench step times");
  double slowest = 0;
  for (int64_t i = 0; i < k; ++i) {
    slowest = std::max(slowest, all[static_cast<size_t>(2 * i)]);
    result.rank_images_per_s.push_back(all[static_cast<size_t>(2 * i + 1)] / (all[static_cast<size_t>(2 * i)] / 1000.0));
  }
  result.images_per_s = config.batch_size / (slowest / 1000.0);
  result.train_gflop_per_image = 3.0 * 2.0 * static_cast<double>(model.macs_per_sample()) / 1e9;
  return result;
}

}  // namespace residual
