// The fused multi-tensor optimizer steps of the CUDA backend (ops/cuda/multi_tensor.h):
// over many tensors of mixed sizes (empty ones, more than one launch's worth) they must
// give every bit the per-tensor ops give. Built only with the CUDA backend; without a GPU
// each test skips and says why.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "core/device_memory.h"
#include "core/error.h"
#include "ops/cuda/multi_tensor.h"
#include "ops/ops.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

// 0 (skipped), 1, a partial block, several blocks, many blocks; 130 tensors need three
// launches of kMaxTensorsPerLaunch.
std::vector<int64_t> sizes() {
  const int64_t pattern[] = {0, 1, 16, 257, 4099, 70001};
  std::vector<int64_t> out;
  for (int i = 0; i < 130; ++i) out.push_back(pattern[i % 6]);
  return out;
}

struct Tensors {
  std::vector<Tensor> params, grads, states_a, states_b;
};

Tensors random_tensors(ref::Rng& rng) {
  const Device gpu = Device::cuda(0);
  Tensors t;
  for (int64_t n : sizes()) {
    t.params.push_back(ref::uniform_tensor(Shape{n}, rng).to(gpu));
    t.grads.push_back(ref::uniform_tensor(Shape{n}, rng).to(gpu));
    t.states_a.push_back(ref::uniform_tensor(Shape{n}, rng, 0.f, 1.f).to(gpu));
    t.states_b.push_back(ref::uniform_tensor(Shape{n}, rng, 0.f, 1.f).to(gpu));
  }
  return t;
}

std::vector<Tensor> clones(const std::vector<Tensor>& ts) {
  std::vector<Tensor> out;
  for (const Tensor& t : ts) out.push_back(t.clone());
  return out;
}

void expect_same_bits(const std::vector<Tensor>& got, const std::vector<Tensor>& want,
                      const char* what) {
  for (size_t i = 0; i < got.size(); ++i) {
    const Tensor g = got[i].to(Device::cpu()), w = want[i].to(Device::cpu());
    EXPECT_EQ(std::memcmp(g.raw(), w.raw(), g.nbytes()), 0) << what << " " << i;
  }
}

class CudaMultiTensorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) {
      GTEST_SKIP() << "no CUDA device: the CUDA runtime sees no GPU on this machine";
    }
  }
};

TEST_F(CudaMultiTensorTest, SgdMatchesThePerTensorOpBitForBit) {
  ref::Rng rng(11);
  Tensors t = random_tensors(rng);
  std::vector<Tensor> params = clones(t.params), velocity = clones(t.states_a);
  ops::SgdConfig c;
  c.lr = 0.1f;
  c.momentum = 0.9f;
  c.weight_decay = 5e-4f;
  c.nesterov = true;
  std::vector<ops::gpu::SgdSlot> slots;
  for (size_t i = 0; i < params.size(); ++i) {
    ops::sgd_step(c, t.params[i], t.grads[i], t.states_a[i]);
    slots.push_back({&params[i], &t.grads[i], &velocity[i]});
  }
  ops::gpu::sgd_step_multi(c, slots);
  expect_same_bits(params, t.params, "param");
  expect_same_bits(velocity, t.states_a, "velocity");
}

TEST_F(CudaMultiTensorTest, AdamMatchesThePerTensorOpBitForBit) {
  for (bool decoupled : {false, true}) {
    ref::Rng rng(12);
    Tensors t = random_tensors(rng);
    std::vector<Tensor> params = clones(t.params), m = clones(t.states_a), v = clones(t.states_b);
    ops::AdamConfig c;
    c.weight_decay = 0.01f;
    c.decoupled = decoupled;
    std::vector<ops::gpu::AdamSlot> slots;
    for (size_t i = 0; i < params.size(); ++i) {
      ops::adam_step(c, 7, t.params[i], t.grads[i], t.states_a[i], t.states_b[i]);
      slots.push_back({&params[i], &t.grads[i], &m[i], &v[i]});
    }
    ops::gpu::adam_step_multi(c, 7, slots);
    expect_same_bits(params, t.params, decoupled ? "AdamW param" : "Adam param");
    expect_same_bits(m, t.states_a, "m");
    expect_same_bits(v, t.states_b, "v");
  }
}

TEST_F(CudaMultiTensorTest, MismatchedSizesAreAnError) {
  const Device gpu = Device::cuda(0);
  Tensor p = Tensor::zeros(Shape{8}, gpu), g = Tensor::zeros(Shape{8}, gpu);
  Tensor short_velocity = Tensor::zeros(Shape{7}, gpu);
  EXPECT_THROW(ops::gpu::sgd_step_multi(ops::SgdConfig{}, {{&p, &g, &short_velocity}}), Error);
}

}  // namespace
}  // namespace residual
