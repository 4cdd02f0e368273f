// The SGD update (momentum, Nesterov, weight decay) on a GPU, PyTorch's formulation with
// the CPU twin's float arithmetic (ops/cpu/sgd.cpp): one fused pass per parameter, or
// over a list of parameters (sgd_step_multi, ops/cuda/multi_tensor.h).
#include <array>
#include <vector>

#include "ops/cuda/cuda_ops.h"
#include "ops/cuda/multi_tensor.cuh"

namespace residual::ops::gpu {
namespace {

// arrays: param, grad, velocity.
struct SgdUpdate {
  float lr, mu, wd;
  bool nesterov;

  __device__ __forceinline__ void operator()(float* const* arrays, int64_t i) const {
    float& p = arrays[0][i];
    const float g = arrays[1][i] + wd * p;
    float& v = arrays[2][i];
    v = mu * v + g;
    p -= lr * (nesterov ? g + mu * v : v);
  }
};

SgdUpdate update_for(const SgdConfig& c) { return {c.lr, c.momentum, c.weight_decay, c.nesterov}; }

}  // namespace

void sgd_step(const SgdConfig& c, Tensor& param, const Tensor& grad, Tensor& velocity) {
  apply_to_tensors<3>("sgd_step", {{&param, &grad, &velocity}}, update_for(c));
}

void sgd_step_multi(const SgdConfig& c, const std::vector<SgdSlot>& slots) {
  std::vector<std::array<const Tensor*, 3>> arrays;
  arrays.reserve(slots.size());
  for (const SgdSlot& s : slots) arrays.push_back({s.param, s.grad, s.velocity});
  apply_to_tensors<3>("sgd_step_multi", arrays, update_for(c));
}

}  // namespace residual::ops::gpu
