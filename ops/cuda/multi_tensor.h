#pragma once
// Fused optimizer steps over many parameters at once (the idea of PyTorch's
// multi_tensor_apply / foreach optimizers): a ResNet has hundreds of small parameter
// tensors (batch-norm scales of 16 floats), and one launch per tensor costs more than
// its arithmetic. These update up to kMaxTensorsPerLaunch tensors per launch, reading
// the pointers from the kernel's arguments (no table to copy to the device first).
//
// INTERNAL to the CUDA backend, not yet an op of ops/ops.h: nothing dispatches to them
// yet. Each does exactly what the per-tensor op (ops/cuda/sgd.cu, ops/cuda/adam.cu) does
// to every slot, with the same element-wise code, so results are bit-identical to
// calling sgd_step / adam_step per tensor. A host header: no CUDA includes.
//
// Every tensor of every slot must be float32 on one and the same GPU, and the tensors of
// a slot must have equal element counts (checked: an Error names the slot). Empty slots
// are skipped.
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "ops/ops.h"

namespace residual::ops::gpu {

constexpr int kMaxTensorsPerLaunch = 48;  // keeps the kernel arguments under 4 KiB

struct SgdSlot {
  Tensor* param;
  const Tensor* grad;
  Tensor* velocity;
};
// sgd_step(c, *s.param, *s.grad, *s.velocity) for every slot s.
void sgd_step_multi(const SgdConfig& c, const std::vector<SgdSlot>& slots);

struct AdamSlot {
  Tensor* param;
  const Tensor* grad;
  Tensor* m;
  Tensor* v;
};
// adam_step(c, step, *s.param, *s.grad, *s.m, *s.v) for every slot s.
void adam_step_multi(const AdamConfig& c, int64_t step, const std::vector<AdamSlot>& slots);

}  // namespace residual::ops::gpu
