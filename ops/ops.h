#pragma once
// Device-neutral op signatures. Each op checks nothing about shapes that the calling
// layer already validated; it routes on the device of its first tensor argument
// (ops/dispatch.cpp) to ops/cpu/<op>.cpp or ops/cuda/<op>.cu.
//
// Layouts: images N x H x W x C (channels last); convolution kernels
// Cout x Cin/groups x kH x kW; dense kernels out x in.
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace residual::ops {

// CPU threads for oneDNN and the OpenMP loops (default: all cores).
void set_num_threads(int threads);
int num_threads();

struct Conv2dGeometry {
  int64_t batch = 0, in_h = 0, in_w = 0, in_c = 0;
  int64_t out_h = 0, out_w = 0, out_c = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t groups = 1;
};
void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                    const Tensor* bias, Tensor& y);
void conv2d_backward_data(const Conv2dGeometry& g, const Tensor& dy, const Tensor& w,
                          Tensor& dx);
void conv2d_backward_weights(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy,
                             Tensor& dw, Tensor* dbias);

enum class PoolKind { kMax, kAverage };  // average excludes padding (as Keras)
struct Pool2dGeometry {
  int64_t batch = 0, in_h = 0, in_w = 0, channels = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 2, kernel_w = 2, stride_h = 2, stride_w = 2;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  PoolKind kind = PoolKind::kMax;
};
// `workspace` (bytes, owned by the caller) carries max-pool indices to the backward.
void pool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y, Tensor& workspace,
                    bool training);
void pool2d_backward(const Pool2dGeometry& g, const Tensor& dy, const Tensor& workspace,
                     Tensor& dx);

// x: N x in, w: out x in, bias: out (or null), y: N x out.
void dense_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y);
void dense_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx);
void dense_backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* dbias);

// Batch normalisation per channel (last dimension) over all other dimensions.
// `relu` fuses a ReLU after the affine transform (backward then needs `y`).
// batch_mean / batch_var (biased) are written by the training forward, read by backward;
// the training forward needs at least one row (an empty batch has no statistics).
void batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                 float epsilon, bool relu, Tensor& y, Tensor& batch_mean,
                                 Tensor& batch_var);
void batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                  const Tensor& mean, const Tensor& var, float epsilon,
                                  bool relu, Tensor& y);
void batch_norm_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                         const Tensor& gamma, const Tensor& batch_mean,
                         const Tensor& batch_var, float epsilon, bool relu, Tensor& dx,
                         Tensor& dgamma, Tensor& dbeta);
// running = momentum * running + (1 - momentum) * batch, with the unbiased batch
// variance (count / (count - 1)) as PyTorch does.
void batch_norm_update_running(const Tensor& batch_mean, const Tensor& batch_var,
                               int64_t count, float momentum, Tensor& running_mean,
                               Tensor& running_var);

// Batch normalisation split into pieces whose sums add across the shards of a batch
// (synchronised BN: the caller adds the sums of every shard between the steps). C is the
// last dimension of x; `sums` is host memory of 2 * C doubles owned by the caller; a shard
// may have no rows (every sum is then 0 and the per-row steps do nothing).
//   forward:  batch_norm_partial_sums -> (add across shards) -> batch_norm_moments
//             -> batch_norm_forward_inference with the moments (the apply step)
//             -> batch_norm_update_running with the global count
//   backward: batch_norm_backward_partial_sums -> (add across shards)
//             -> batch_norm_backward_apply
//
// sums[0, C) = sum of x, sums[C, 2C) = sum of x^2 per channel over this shard's rows,
// accumulated in double with no shift (so that shards' sums add up); deterministic for a
// given thread count.
void batch_norm_partial_sums(const Tensor& x, double* sums);
// Biased mean and variance (C floats each) from the global sums and row count
// (count >= 1); a variance that rounding makes slightly negative is clamped to 0.
void batch_norm_moments(const double* sums, int64_t count, Tensor& mean, Tensor& var);
// sums[0, C) = sum of dy', sums[C, 2C) = sum of dy' * xhat per channel over this shard's
// rows, in double, where dy' is dy masked by y > 0 when `relu` is fused and
// xhat = (x - mean) / sqrt(var + epsilon) with the global moments. On one shard these are
// dbeta and dgamma.
void batch_norm_backward_partial_sums(const Tensor& x, const Tensor& y, const Tensor& dy,
                                      const Tensor& mean, const Tensor& var, float epsilon,
                                      bool relu, double* sums);
// dx = gamma / sqrt(var + epsilon) * (dy' - sum_dy / count - xhat * sum_dy_xhat / count)
// with the global sums of batch_norm_backward_partial_sums and the global row count.
void batch_norm_backward_apply(const Tensor& x, const Tensor& y, const Tensor& dy,
                               const Tensor& gamma, const Tensor& mean, const Tensor& var,
                               float epsilon, bool relu, const double* sums, int64_t count,
                               Tensor& dx);

enum class Activation { kLinear, kRelu, kSigmoid, kSoftmax };
// Softmax runs over the last dimension. Backward reads the forward output y.
void activation_forward(Activation kind, const Tensor& x, Tensor& y);
void activation_backward(Activation kind, const Tensor& y, const Tensor& dy, Tensor& dx);

// y = sum of xs (same shapes).
void add_forward(const std::vector<const Tensor*>& xs, Tensor& y);
// y[n, h, w, c] = x[n, h, w, c] * s[n, c]
void channel_scale_forward(const Tensor& x, const Tensor& s, Tensor& y);
void channel_scale_backward(const Tensor& x, const Tensor& s, const Tensor& dy, Tensor* dx,
                            Tensor* ds);
// N x H x W x C -> N x C
void global_avg_pool_forward(const Tensor& x, Tensor& y);
void global_avg_pool_backward(const Tensor& dy, Tensor& dx);

struct Padding2d {
  int64_t top = 0, bottom = 0, left = 0, right = 0;
};
void zero_pad2d_forward(const Padding2d& p, const Tensor& x, Tensor& y);
void zero_pad2d_backward(const Padding2d& p, const Tensor& dy, Tensor& dx);

// Option-A shortcut of He et al.: x[:, ::stride, ::stride, :] with `pad_before` and
// `pad_after` zero channels around it.
void shortcut_pad_forward(int64_t stride, int64_t pad_before, int64_t pad_after,
                          const Tensor& x, Tensor& y);
void shortcut_pad_backward(int64_t stride, int64_t pad_before, int64_t pad_after,
                           const Tensor& dy, Tensor& dx);

// Concatenation along the last dimension.
void concat_forward(const std::vector<const Tensor*>& xs, Tensor& y);
void concat_backward(const Tensor& dy, const std::vector<Tensor*>& dxs);

// Inverted dropout: keeps an element with probability 1 - rate and scales it by
// 1 / (1 - rate). The mask is a pure function of (seed, element index), so the
// backward recomputes it and a resumed run draws the same masks.
// `first_element`: the index of x's first element in the whole global batch, so a rank's
// share draws the mask one process would draw for those elements.
void dropout_forward(float rate, uint64_t seed, const Tensor& x, Tensor& y, int64_t first_element = 0);
void dropout_backward(float rate, uint64_t seed, const Tensor& dy, Tensor& dx,
                      int64_t first_element = 0);

// Mean softmax cross-entropy of logits (N x K) against int32 labels (N), with label
// smoothing; writes dlogits = d(loss)/d(logits) * grad_scale * N (grad_scale defaults
// to 1/N, the mean). Returns the mean loss; N = 0 returns 0 and writes nothing.
double softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                             float label_smoothing, Tensor& dlogits, double grad_scale = 0);
// Mean binary cross-entropy of sigmoid(logits) against float targets in [0, 1] (0 for
// an empty batch).
double sigmoid_binary_cross_entropy(const Tensor& logits, const Tensor& targets,
                                    Tensor& dlogits, double grad_scale = 0);

// One SGD step on one parameter: g += wd * p; v = momentum * v + g;
// p -= lr * (nesterov ? g + momentum * v : v). (PyTorch's formulation.)
struct SgdConfig {
  float lr = 0.1f, momentum = 0.9f, weight_decay = 0.f;
  bool nesterov = false;
};
void sgd_step(const SgdConfig& c, Tensor& param, const Tensor& grad, Tensor& velocity);

// One Adam step (AdamW when decoupled): bias-corrected moments; `step` counts from 1.
// Adam adds weight_decay * p to the gradient; AdamW multiplies p by (1 - lr * wd).
struct AdamConfig {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f, weight_decay = 0.f;
  bool decoupled = false;
};
void adam_step(const AdamConfig& c, int64_t step, Tensor& param, const Tensor& grad, Tensor& m,
               Tensor& v);

// Sum of squares in double (NaN or Inf in the tensor propagates to the result).
double squared_norm(const Tensor& x);
// x *= factor
void scale_inplace(Tensor& x, float factor);

}  // namespace residual::ops
