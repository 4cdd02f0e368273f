// Model::to and Optimizer::to: a no-op on the current device, all or nothing elsewhere
// (a machine without a GPU keeps the model intact), and on a GPU a round trip that keeps
// every value. The GPU test skips with the reason where there is none.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/device_memory.h"
#include "core/model.h"
#include "core/optimizer.h"
#include "tests/core/tensor_test_peer.h"
#include "tests/core/test_util.h"

namespace residual {
namespace {

using test::error_of;
using test::has;

// Convolution, batch norm (running statistics and batch statistics) and a dense head.
constexpr const char* kSmallModel = R"({
  "format": "residual-model", "version": 1, "name": "small",
  "layers": [
    {"name": "input", "type": "Input", "config": {"shape": [4, 4, 2]}},
    {"name": "conv", "type": "Conv2D", "inputs": ["input"],
     "config": {"filters": 3, "kernel_size": 3, "padding": "same"}},
    {"name": "bn", "type": "BatchNormalization", "inputs": ["conv"]},
    {"name": "pool", "type": "GlobalAveragePooling2D", "inputs": ["bn"]},
    {"name": "logits", "type": "Dense", "inputs": ["pool"], "config": {"units": 2}}
  ],
  "outputs": ["logits"]
})";

Model small_model() {
  static const LayerRegistry registry = LayerRegistry::with_builtins();
  Model model(nlohmann::json::parse(kSmallModel), registry);
  model.initialize(7);
  return model;
}

Tensor input() {
  Tensor x = Tensor::empty(Shape{2, 4, 4, 2});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = static_cast<float>(i % 7) - 3.f;
  return x;
}

// Host copies of every tensor the layers keep (parameter values and gradients, batch
// norm's batch statistics), and where each lives now.
struct Snapshot {
  std::vector<std::vector<float>> values;
  std::vector<const void*> addresses;
};

Snapshot snapshot(const Model& model) {
  Snapshot s;
  for (const ModelNode& node : model.nodes()) {
    for (const Tensor* t : node.layer->tensors()) {
      const Tensor host = t->to(Device::cpu());
      s.values.emplace_back(host.f32(), host.f32() + host.numel());
      s.addresses.push_back(t->device_raw());
    }
  }
  return s;
}

TEST(ModelDevice, MovingToItsOwnDeviceChangesNothing) {
  Model model = small_model();
  const Snapshot before = snapshot(model);
  model.to(Device::cpu());
  EXPECT_EQ(model.device(), Device::cpu());
  const Snapshot after = snapshot(model);
  EXPECT_EQ(after.addresses, before.addresses);  // not even copied
  EXPECT_EQ(after.values, before.values);
}

TEST(ModelDevice, AMissingGpuLeavesTheModelWhereItWas) {
  Model model = small_model();
  PassContext ctx;
  const Tensor x = input();
  const Tensor expected = model.forward(x, ctx).clone();
  const Snapshot before = snapshot(model);
  const Device missing = Device::cuda(cuda_device_count());  // cuda:0 here: no GPU
  const std::string message = error_of([&] { model.to(missing); });
  EXPECT_TRUE(has(message, "model 'small' cannot move to " + missing.str()));
  EXPECT_TRUE(has(message, "it stays on cpu"));
  EXPECT_EQ(model.device(), Device::cpu());
  const Snapshot after = snapshot(model);
  EXPECT_EQ(after.addresses, before.addresses);
  EXPECT_EQ(after.values, before.values);
  const Tensor& y = model.forward(x, ctx);
  for (int64_t i = 0; i < y.numel(); ++i) EXPECT_EQ(y.f32()[i], expected.f32()[i]);
}

TEST(ModelDevice, AnInputOnAnotherDeviceIsRefused) {
  Model model = small_model();
  const Tensor x = TensorTestPeer::labelled(input(), Device::cuda(0));
  EXPECT_TRUE(has(error_of([&] { model.forward(x, PassContext{}); }),
                  "model 'small' is on cpu but its input is on cuda:0"));
}

TEST(ModelDevice, OptimizerStateStaysOnAFailedMove) {
  Model model = small_model();
  OptimizerConfig config;
  config.kind = "adam";
  auto optimizer = make_optimizer(model.trainable_parameters(), config);
  std::vector<const void*> before;
  for (const auto& named : optimizer->state()) before.push_back(named.second->device_raw());
  optimizer->to(Device::cpu());
  const std::string message =
      error_of([&] { optimizer->to(Device::cuda(cuda_device_count())); });
  EXPECT_TRUE(has(message, "the optimizer state cannot move to cuda:"));
  std::vector<const void*> after;
  for (const auto& named : optimizer->state()) after.push_back(named.second->device_raw());
  EXPECT_EQ(after, before);
}

// Every value and gradient, batch norm's statistics included, survives cuda and back
// bit for bit; initialising on the GPU gives the values it gives on the CPU.
TEST(ModelDevice, CudaRoundTripKeepsEveryValueOrSkips) {
  if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine";
  Model model = small_model();
  PassContext ctx;
  ctx.training = true;
  model.forward(input(), ctx);  // batch statistics and running statistics move off 0/1
  const Snapshot before = snapshot(model);
  OptimizerConfig config;
  auto optimizer = make_optimizer(model.trainable_parameters(), config);
  model.to(Device::cuda(0));
  optimizer->to(Device::cuda(0));
  EXPECT_EQ(model.device(), Device::cuda(0));
  for (Parameter* p : model.parameters()) EXPECT_EQ(p->value.device(), Device::cuda(0)) << p->name;
  for (const auto& named : optimizer->state()) EXPECT_TRUE(named.second->device().is_cuda());
  model.to(Device::cpu());
  EXPECT_EQ(snapshot(model).values, before.values);

  Model on_gpu = small_model();
  on_gpu.to(Device::cuda(0));
  on_gpu.initialize(11);
  on_gpu.to(Device::cpu());
  Model on_cpu = small_model();
  on_cpu.initialize(11);
  EXPECT_EQ(snapshot(on_gpu).values, snapshot(on_cpu).values);
}

}  // namespace
}  // namespace residual
