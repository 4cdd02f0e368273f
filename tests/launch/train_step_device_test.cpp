// A whole training step on a GPU against the same step on the CPU: resnet20 on a small
// synthetic batch through TrainStep (the host batch copied to the device, forward, softmax
// cross-entropy, backward, the gradient reducer, SGD with momentum and weight decay), as
// `residual train --device cuda` runs it. Also the host side of the step's loss on the CPU
// (nothing copied there). The GPU tests skip with the reason on a machine without one.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/device_memory.h"
#include "core/model.h"
#include "core/model_spec.h"
#include "core/optimizer.h"
#include "distributed/communicator.h"
#include "distributed/job.h"
#include "distributed/nccl_communicator.h"
#include "launch/evaluation.h"
#include "launch/train_step.h"
#include "tests/core/tensor_test_peer.h"

namespace residual {
namespace {

constexpr int64_t kBatch = 8, kClasses = 10;
constexpr float kLr = 0.1f;

#define SKIP_WITHOUT_A_GPU()                                                                     \
  if (cuda_device_count() == 0)                                                                  \
  GTEST_SKIP() << "no CUDA device: cuda_device_count() = 0 (" << (cuda_compiled() ? "" : "not ") \
               << "built with CUDA); the GPU training step ran nowhere"

// resnet20 on 16x16x3 images: every layer type of the CIFAR ResNets (convolution, batch
// norm with fused ReLU, option-A shortcut, add, global pooling, dense) at a size the CPU
// steps through in a fraction of a second.
Model make_model() {
  SpecOverrides o;
  o.classes = kClasses;
  o.input_hwc = {16, 16, 3};
  Model model(resolve_model_spec("resnet20", o), LayerRegistry::with_builtins());
  model.initialize(3);
  return model;
}

struct SyntheticBatch {
  Tensor images, labels;  // host
};

SyntheticBatch make_batch() {
  SyntheticBatch b;
  b.images = Tensor::empty(Shape{kBatch, 16, 16, 3});
  b.labels = Tensor::empty(Shape{kBatch}, Device::cpu(), DType::kInt32);
  std::mt19937_64 rng(5);
  std::normal_distribution<float> normal;
  for (int64_t i = 0; i < b.images.numel(); ++i) b.images.f32()[i] = normal(rng);
  for (int64_t i = 0; i < kBatch; ++i)
    b.labels.data<int32_t>()[i] = static_cast<int32_t>(rng() % kClasses);
  return b;
}

std::vector<float> host_values(const Tensor& t) {
  const Tensor host = t.to(Device::cpu());
  return std::vector<float>(host.f32(), host.f32() + host.numel());
}

// Everything a step changes, as host copies, in the model's order.
struct Outcome {
  StepResult result;
  std::vector<std::string> names;
  std::vector<std::vector<float>> before, after, momentum;  // momentum: trainable only
  std::vector<bool> trainable;
};

// One step on `device`, the model built and initialised on the host and moved there (as
// the trainer does); `gradients` sums the gradients (null: a local world of one).
Outcome one_step(Device device, Communicator* gradients = nullptr) {
  Model model = make_model();
  Outcome out;
  for (Parameter* p : model.parameters()) {
    out.names.push_back(p->name);
    out.before.push_back(host_values(p->value));
    out.trainable.push_back(p->trainable);
  }
  model.to(device);
  OptimizerConfig config;
  config.momentum = 0.9f;
  config.weight_decay = 5e-4f;
  Sgd sgd(model.trainable_parameters(), config);
  std::unique_ptr<Communicator> local = make_local_communicator();
  TrainStep step(model, sgd, gradients ? *gradients : *local, nullptr, TrainStepConfig{});
  const SyntheticBatch batch = make_batch();
  PassContext ctx;
  ctx.training = true;
  out.result = step.run(batch.images, batch.labels, kBatch, 0, kLr, ctx);
  for (Parameter* p : model.parameters()) out.after.push_back(host_values(p->value));
  for (const auto& named : sgd.state()) out.momentum.push_back(host_values(*named.second));
  return out;
}

double norm(const std::vector<float>& a, const std::vector<float>* minus = nullptr) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - (minus ? (*minus)[i] : 0.0);
    s += d * d;
  }
  return std::sqrt(s);
}

std::vector<float> difference(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<float> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return d;
}

// Tolerance. Both devices compute in float32 (cuDNN in FMA math, no TF32; cuBLAS pedantic)
// but sum in other orders (cuDNN's and oneDNN's GEMM tilings, block reductions against
// OpenMP loops), so each op's results differ in their last bits: ~1e-6 relative at most.
// How much the step amplifies such differences was measured on the CPU: scaling the input
// images by 1 +- 2e-6 (about 16 ulp) moved the step's change of every tensor by at most
// 5e-5 of that change's norm (the batch-norm gammas are the most sensitive; convolution
// kernels 1e-5, running statistics 3e-6). The step's change of each tensor (lr x (gradient
// + weight decay) for a parameter, the running averages' update, the momentum, which is
// the gradient itself after one step) must agree to 1e-3 of its norm: twenty times that,
// and the design notes' 1e-4 budget for a whole float32 network ten times over. A real
// fault (a wrong or missing kernel, a gradient not reduced, a layer left on the host, a
// step taken twice) changes it by O(1). The floor (1e-6 of the tensor's norm) is the
// float32 rounding of the values the change is read from.
constexpr double kRelative = 1e-3, kFloor = 1e-6;

TEST(GpuTrainStep, Resnet20StepOnCudaMatchesTheCpu) {
  SKIP_WITHOUT_A_GPU();
  const Outcome cpu = one_step(Device::cpu());
  const Outcome gpu = one_step(Device::cuda(0));
  ASSERT_EQ(gpu.names, cpu.names);
  ASSERT_EQ(gpu.momentum.size(), cpu.momentum.size());
  // Forward values: the loss (host double from the loss op) and the accuracy count (from
  // host copies of the logits; a near-tie may flip one sample).
  EXPECT_NEAR(gpu.result.loss_sum, cpu.result.loss_sum, 1e-4 * std::abs(cpu.result.loss_sum));
  EXPECT_NEAR(static_cast<double>(gpu.result.correct), static_cast<double>(cpu.result.correct),
              1.0);
  EXPECT_EQ(gpu.result.samples, kBatch);
  EXPECT_NEAR(gpu.result.grad_norm, cpu.result.grad_norm, kRelative * cpu.result.grad_norm);
  for (size_t i = 0; i < cpu.names.size(); ++i) {
    // The same start: initialised on the host, moved unchanged.
    ASSERT_EQ(gpu.before[i], cpu.before[i]) << cpu.names[i];
    const std::vector<float> change_cpu = difference(cpu.after[i], cpu.before[i]);
    const std::vector<float> change_gpu = difference(gpu.after[i], gpu.before[i]);
    const double off = norm(change_gpu, &change_cpu);
    const double allowed = kRelative * norm(change_cpu) + kFloor * norm(cpu.after[i]);
    EXPECT_LE(off, allowed) << cpu.names[i] << ": the step changed it by " << norm(change_cpu)
                            << " on the CPU; the GPU's change differs by " << off;
  }
  for (size_t i = 0; i < cpu.momentum.size(); ++i) {
    const double off = norm(gpu.momentum[i], &cpu.momentum[i]);
    EXPECT_LE(off, kRelative * norm(cpu.momentum[i]) + 1e-12) << "momentum " << i;
  }
}

// The step's gradients through NCCL (the multi-GPU path: event ordering between the
// compute and communication streams, buckets summed in place) at world size 1 are the
// local world's step: NCCL's sum over one rank leaves the bucket as it is, and the GPU
// kernels are deterministic, so the two agree bit for bit. (`train --device cuda` takes
// the same path: gradient_communicator gives NCCL for one GPU rank too.)
TEST(GpuTrainStep, NcclWorldOfOneIsTheLocalStepBitForBit) {
  SKIP_WITHOUT_A_GPU();
  if (!nccl_compiled()) GTEST_SKIP() << "this build has no NCCL communicator";
  const Outcome local = one_step(Device::cuda(0));
  std::unique_ptr<Communicator> bootstrap = make_local_communicator();
  std::unique_ptr<Communicator> nccl = make_nccl_communicator(*bootstrap, 0);
  EXPECT_TRUE(gradient_communicator(Device::cuda(0)).takes_device_memory());
  const Outcome through_nccl = one_step(Device::cuda(0), nccl.get());
  EXPECT_EQ(through_nccl.result.loss_sum, local.result.loss_sum);
  for (size_t i = 0; i < local.after.size(); ++i)
    EXPECT_EQ(through_nccl.after[i], local.after[i]) << local.names[i];
  EXPECT_EQ(through_nccl.momentum, local.momentum);
}

// The CPU path copies nothing: the loss reads the logits and labels where they are.
TEST(TrainStepDevice, CpuLossMakesNoHostCopies) {
  Tensor logits = Tensor::empty(Shape{2, 3});
  for (int64_t i = 0; i < 6; ++i) logits.f32()[i] = static_cast<float>(i % 4) - 1.f;
  Tensor labels = Tensor::empty(Shape{2}, Device::cpu(), DType::kInt32);
  labels.data<int32_t>()[0] = 2;
  labels.data<int32_t>()[1] = 1;
  LossBuffers buffers;
  const LossOutcome o = compute_loss(logits, labels, 0.f, buffers);
  EXPECT_GT(o.loss, 0);
  EXPECT_EQ(o.correct, 1);  // row 0: logits -1, 0, 1 -> class 2, right; row 1: 2, -1, 0 -> 0, wrong
  EXPECT_EQ(buffers.dlogits.device(), Device::cpu());
  EXPECT_FALSE(buffers.host_logits.defined());
  EXPECT_FALSE(buffers.host_labels.defined());
  EXPECT_FALSE(buffers.device_labels.defined());
}

TEST(TrainStepDevice, LabelsOnAnotherDeviceThanTheLogitsAreRefused) {
  const Tensor logits = Tensor::zeros(Shape{2, 3});
  const Tensor labels = TensorTestPeer::labelled(
      Tensor::zeros(Shape{2}, Device::cpu(), DType::kInt32), Device::cuda(0));
  LossBuffers buffers;
  try {
    compute_loss(logits, labels, 0.f, buffers);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("labels on cuda:0 for logits on cpu"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace residual
