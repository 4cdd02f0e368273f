#pragma once
// The bf16 copies a convolution or dense layer computes with under Precision::kBFloat16
// (core/precision.h): its input and weights, cast in forward and kept for the backward
// (the weights change only between steps), and the output gradient, cast once for both
// backward products. An input that already is a bf16 activation (Conv2D reads them,
// Layer::reads_bf16_input) is used as it is. Under fp32 it holds nothing and the layer
// uses its own tensors.
#include "core/error.h"
#include "core/layer.h"
#include "ops/ops.h"

namespace residual {

class Bf16Operands {
 public:
  // Starts a forward pass: casts x and w when the pass is bf16. Returns whether it is.
  bool begin_forward(const PassContext& ctx, const Tensor& x, const Tensor& w) {
    active_ = ctx.precision == Precision::kBFloat16;
    if (!active_) {
      x_ = w_ = dy_ = Tensor();  // an fp32 pass after a bf16 one keeps no stale copies
      x_shared_ = false;
      return false;
    }
    if (x.dtype() == DType::kBFloat16) {
      x_ = x;  // a bf16 activation (Layer::reads_bf16_input): shared, valid until backward
      x_shared_ = true;
    } else {
      // A cast into storage shared with the producer's output would overwrite it.
      if (x_shared_) x_ = Tensor();
      x_shared_ = false;
      ops::cast_to(DType::kBFloat16, x, x_);
    }
    ops::cast_to(DType::kBFloat16, w, w_);
    return true;
  }

  // In backward: whether the forward was bf16 (then x() and w() are its casts of `x`).
  bool active(const Tensor& x) const {
    if (!active_) return false;
    RESIDUAL_CHECK(x_.shape() == x.shape(), "backward of a ", x.shape().str(),
                   " input after a bf16 forward of ", x_.shape().str());
    return true;
  }
  const Tensor& x() const { return x_; }
  const Tensor& w() const { return w_; }
  const Tensor& cast_grad(const Tensor& dy) {
    ops::cast_to(DType::kBFloat16, dy, dy_);
    return dy_;
  }

 private:
  bool active_ = false;
  bool x_shared_ = false;  // x_ is the bf16 input itself, not a cast of it
  Tensor x_, w_, dy_;
};

}  // namespace residual
