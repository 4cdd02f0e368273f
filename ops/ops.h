#pragma once
// Every op, declared once: its signature (an `...Fn` function type) and the op object
// that callers call like a function. Each backend implements the signature and registers
// its kernel explicitly (ops/cpu/cpu_kernels.cpp, ops/cuda/cuda_kernels.cpp); a call
// checks that all its tensor arguments are on one device and runs that device's kernel
// (ops/op.h). Each op checks nothing about shapes that the calling layer already
// validated.
//
// Layouts: images N x H x W x C (channels last); convolution kernels
// Cout x Cin/groups x kH x kW; dense kernels out x in.
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ops/op.h"

namespace residual::ops {

// CPU threads for oneDNN and the OpenMP loops (default: all cores).
void set_num_threads(int threads);
int num_threads();

// Whether this CPU runs bf16 convolutions and matrix products natively (AVX512-BF16 or
// AMX-BF16), and the instruction set oneDNN picked here ("avx512_core_amx", "avx2", ...;
// ONEDNN_MAX_CPU_ISA lowers it). Without native support oneDNN 2.6 refuses bf16
// primitives (on AVX2) or emulates them slower than fp32 (on plain AVX-512), so the
// bf16 path is refused there rather than run slowly.
struct CpuBf16Support {
  bool native = false;
  std::string isa;
};
CpuBf16Support cpu_bf16_support();

struct Conv2dGeometry {
  int64_t batch = 0, in_h = 0, in_w = 0, in_c = 0;
  int64_t out_h = 0, out_w = 0, out_c = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t groups = 1;
};
// x and w are both float32, or both bfloat16 (mixed precision: products accumulate in
// fp32); bias, dw and dbias are float32; y and dx are float32, or with bfloat16 operands
// either may be bfloat16 (bf16 activations and their gradients); dy of the backward ops
// has w's dtype.
using Conv2dForwardFn = void(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                             const Tensor* bias, Tensor& y);
inline Op<Conv2dForwardFn> conv2d_forward{"conv2d_forward"};
using Conv2dBackwardDataFn = void(const Conv2dGeometry& g, const Tensor& dy, const Tensor& w,
                                  Tensor& dx);
inline Op<Conv2dBackwardDataFn> conv2d_backward_data{"conv2d_backward_data"};
using Conv2dBackwardWeightsFn = void(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy,
                                     Tensor& dw, Tensor* dbias);
inline Op<Conv2dBackwardWeightsFn> conv2d_backward_weights{"conv2d_backward_weights"};

enum class PoolKind { kMax, kAverage };  // average excludes padding (as Keras)
struct Pool2dGeometry {
  int64_t batch = 0, in_h = 0, in_w = 0, channels = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 2, kernel_w = 2, stride_h = 2, stride_w = 2;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  PoolKind kind = PoolKind::kMax;
};
// `workspace` (bytes, owned by the caller) carries max-pool indices to the backward. On
// the CPU x and y (dy and dx) may also both be bfloat16; one of each is an Error.
using Pool2dForwardFn = void(const Pool2dGeometry& g, const Tensor& x, Tensor& y, Tensor& workspace,
                             bool training);
inline Op<Pool2dForwardFn> pool2d_forward{"pool2d_forward"};
using Pool2dBackwardFn = void(const Pool2dGeometry& g, const Tensor& dy, const Tensor& workspace,
                              Tensor& dx);
inline Op<Pool2dBackwardFn> pool2d_backward{"pool2d_backward"};

// x: N x in, w: out x in, bias: out (or null), y: N x out. Dtypes as for conv2d.
using DenseForwardFn = void(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y);
inline Op<DenseForwardFn> dense_forward{"dense_forward"};
using DenseBackwardDataFn = void(const Tensor& dy, const Tensor& w, Tensor& dx);
inline Op<DenseBackwardDataFn> dense_backward_data{"dense_backward_data"};
using DenseBackwardWeightsFn = void(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* dbias);
inline Op<DenseBackwardWeightsFn> dense_backward_weights{"dense_backward_weights"};

// Batch normalisation per channel (last dimension) over all other dimensions. On the CPU
// x, y, dy and dx may each also be bfloat16 (activations and their gradients under mixed
// precision); parameters and statistics are float32.
// `relu` fuses a ReLU after the affine transform (backward then needs `y`).
// batch_mean / batch_var (biased) are written by the training forward, read by backward;
// the training forward needs at least one row (an empty batch has no statistics).
using BatchNormForwardTrainingFn = void(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                        float epsilon, bool relu, Tensor& y, Tensor& batch_mean,
                                        Tensor& batch_var);
inline Op<BatchNormForwardTrainingFn> batch_norm_forward_training{"batch_norm_forward_training"};
using BatchNormForwardInferenceFn = void(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                         const Tensor& mean, const Tensor& var, float epsilon,
                                         bool relu, Tensor& y);
inline Op<BatchNormForwardInferenceFn> batch_norm_forward_inference{"batch_norm_forward_inference"};
using BatchNormBackwardFn = void(const Tensor& x, const Tensor& y, const Tensor& dy,
                                 const Tensor& gamma, const Tensor& batch_mean,
                                 const Tensor& batch_var, float epsilon, bool relu, Tensor& dx,
                                 Tensor& dgamma, Tensor& dbeta);
inline Op<BatchNormBackwardFn> batch_norm_backward{"batch_norm_backward"};
// running = momentum * running + (1 - momentum) * batch, with the unbiased batch
// variance (count / (count - 1)) as PyTorch does.
using BatchNormUpdateRunningFn = void(const Tensor& batch_mean, const Tensor& batch_var,
                                      int64_t count, float momentum, Tensor& running_mean,
                                      Tensor& running_var);
inline Op<BatchNormUpdateRunningFn> batch_norm_update_running{"batch_norm_update_running"};

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
using BatchNormPartialSumsFn = void(const Tensor& x, double* sums);
inline Op<BatchNormPartialSumsFn> batch_norm_partial_sums{"batch_norm_partial_sums"};
// Biased mean and variance (C floats each) from the global sums and row count
// (count >= 1); a variance that rounding makes slightly negative is clamped to 0.
using BatchNormMomentsFn = void(const double* sums, int64_t count, Tensor& mean, Tensor& var);
inline Op<BatchNormMomentsFn> batch_norm_moments{"batch_norm_moments"};
// sums[0, C) = sum of dy', sums[C, 2C) = sum of dy' * xhat per channel over this shard's
// rows, in double, where dy' is dy masked by y > 0 when `relu` is fused and
// xhat = (x - mean) / sqrt(var + epsilon) with the global moments. On one shard these are
// dbeta and dgamma.
using BatchNormBackwardPartialSumsFn = void(const Tensor& x, const Tensor& y, const Tensor& dy,
                                            const Tensor& mean, const Tensor& var, float epsilon,
                                            bool relu, double* sums);
inline Op<BatchNormBackwardPartialSumsFn> batch_norm_backward_partial_sums{
    "batch_norm_backward_partial_sums"};
// dx = gamma / sqrt(var + epsilon) * (dy' - sum_dy / count - xhat * sum_dy_xhat / count)
// with the global sums of batch_norm_backward_partial_sums and the global row count.
using BatchNormBackwardApplyFn = void(const Tensor& x, const Tensor& y, const Tensor& dy,
                                      const Tensor& gamma, const Tensor& mean, const Tensor& var,
                                      float epsilon, bool relu, const double* sums, int64_t count,
                                      Tensor& dx);
inline Op<BatchNormBackwardApplyFn> batch_norm_backward_apply{"batch_norm_backward_apply"};

enum class Activation { kLinear, kRelu, kSigmoid, kSoftmax };
// Softmax runs over the last dimension. Backward reads the forward output y.
using ActivationForwardFn = void(Activation kind, const Tensor& x, Tensor& y);
inline Op<ActivationForwardFn> activation_forward{"activation_forward"};
// On the CPU, ReLU's y, dy and dx may each also be bfloat16 (a bf16 activation and its
// gradient under mixed precision).
using ActivationBackwardFn = void(Activation kind, const Tensor& y, const Tensor& dy, Tensor& dx);
inline Op<ActivationBackwardFn> activation_backward{"activation_backward"};

// y = sum of xs (same shapes), then max(y, 0) when `relu` (a residual block's closing
// ReLU, in the same pass). y may be one of the xs (in-place accumulation). On the CPU the
// xs and y may each also be bfloat16 (activations under mixed precision).
using AddForwardFn = void(const std::vector<const Tensor*>& xs, bool relu, Tensor& y);
inline Op<AddForwardFn> add_forward{"add_forward"};
// y[n, h, w, c] = x[n, h, w, c] * s[n, c]
using ChannelScaleForwardFn = void(const Tensor& x, const Tensor& s, Tensor& y);
inline Op<ChannelScaleForwardFn> channel_scale_forward{"channel_scale_forward"};
using ChannelScaleBackwardFn = void(const Tensor& x, const Tensor& s, const Tensor& dy, Tensor* dx,
                                    Tensor* ds);
inline Op<ChannelScaleBackwardFn> channel_scale_backward{"channel_scale_backward"};
// N x H x W x C -> N x C. On the CPU x and dx may also be bfloat16 (a bf16 activation and
// its gradient; y and dy stay float32).
using GlobalAvgPoolForwardFn = void(const Tensor& x, Tensor& y);
inline Op<GlobalAvgPoolForwardFn> global_avg_pool_forward{"global_avg_pool_forward"};
using GlobalAvgPoolBackwardFn = void(const Tensor& dy, Tensor& dx);
inline Op<GlobalAvgPoolBackwardFn> global_avg_pool_backward{"global_avg_pool_backward"};

struct Padding2d {
  int64_t top = 0, bottom = 0, left = 0, right = 0;
};
using ZeroPad2dForwardFn = void(const Padding2d& p, const Tensor& x, Tensor& y);
inline Op<ZeroPad2dForwardFn> zero_pad2d_forward{"zero_pad2d_forward"};
using ZeroPad2dBackwardFn = void(const Padding2d& p, const Tensor& dy, Tensor& dx);
inline Op<ZeroPad2dBackwardFn> zero_pad2d_backward{"zero_pad2d_backward"};

// Option-A shortcut of He et al.: x[:, ::stride, ::stride, :] with `pad_before` and
// `pad_after` zero channels around it. On the CPU x, y, dy and dx may each also be
// bfloat16.
using ShortcutPadForwardFn = void(int64_t stride, int64_t pad_before, int64_t pad_after,
                                  const Tensor& x, Tensor& y);
inline Op<ShortcutPadForwardFn> shortcut_pad_forward{"shortcut_pad_forward"};
using ShortcutPadBackwardFn = void(int64_t stride, int64_t pad_before, int64_t pad_after,
                                   const Tensor& dy, Tensor& dx);
inline Op<ShortcutPadBackwardFn> shortcut_pad_backward{"shortcut_pad_backward"};

// Concatenation along the last dimension.
using ConcatForwardFn = void(const std::vector<const Tensor*>& xs, Tensor& y);
inline Op<ConcatForwardFn> concat_forward{"concat_forward"};
using ConcatBackwardFn = void(const Tensor& dy, const std::vector<Tensor*>& dxs);
inline Op<ConcatBackwardFn> concat_backward{"concat_backward"};

// Inverted dropout: keeps an element with probability 1 - rate and scales it by
// 1 / (1 - rate). The mask is a pure function of (seed, element index), so the
// backward recomputes it and a resumed run draws the same masks.
// `first_element`: the index of x's first element in the whole global batch, so a rank's
// share draws the mask one process would draw for those elements (0 for a whole batch).
using DropoutForwardFn = void(float rate, uint64_t seed, const Tensor& x, Tensor& y,
                              int64_t first_element);
inline Op<DropoutForwardFn> dropout_forward{"dropout_forward"};
using DropoutBackwardFn = void(float rate, uint64_t seed, const Tensor& dy, Tensor& dx,
                               int64_t first_element);
inline Op<DropoutBackwardFn> dropout_backward{"dropout_backward"};

// Mean softmax cross-entropy of logits (N x K) against int32 labels (N), with label
// smoothing; writes dlogits = d(loss)/d(logits) * grad_scale * N (kGradOfMean: 1/N, the
// gradient of the mean). Returns the mean loss; N = 0 returns 0 and writes nothing.
constexpr double kGradOfMean = 0;
using SoftmaxCrossEntropyFn = double(const Tensor& logits, const Tensor& labels,
                                     float label_smoothing, Tensor& dlogits, double grad_scale);
inline Op<SoftmaxCrossEntropyFn> softmax_cross_entropy{"softmax_cross_entropy"};
// Mean binary cross-entropy of sigmoid(logits) against float targets in [0, 1] (0 for
// an empty batch); grad_scale as above.
using SigmoidBinaryCrossEntropyFn = double(const Tensor& logits, const Tensor& targets,
                                           Tensor& dlogits, double grad_scale);
inline Op<SigmoidBinaryCrossEntropyFn> sigmoid_binary_cross_entropy{"sigmoid_binary_cross_entropy"};

// One SGD step on one parameter: g += wd * p; v = momentum * v + g;
// p -= lr * (nesterov ? g + momentum * v : v). (PyTorch's formulation.)
struct SgdConfig {
  float lr = 0.1f, momentum = 0.9f, weight_decay = 0.f;
  bool nesterov = false;
};
using SgdStepFn = void(const SgdConfig& c, Tensor& param, const Tensor& grad, Tensor& velocity);
inline Op<SgdStepFn> sgd_step{"sgd_step"};

// One Adam step (AdamW when decoupled): bias-corrected moments; `step` counts from 1.
// Adam adds weight_decay * p to the gradient; AdamW multiplies p by (1 - lr * wd).
struct AdamConfig {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f, weight_decay = 0.f;
  bool decoupled = false;
};
using AdamStepFn = void(const AdamConfig& c, int64_t step, Tensor& param, const Tensor& grad,
                        Tensor& m, Tensor& v);
inline Op<AdamStepFn> adam_step{"adam_step"};

// Sum of squares in double (NaN or Inf in the tensor propagates to the result).
using SquaredNormFn = double(const Tensor& x);
inline Op<SquaredNormFn> squared_norm{"squared_norm"};
// x *= factor
using ScaleInplaceFn = void(Tensor& x, float factor);
inline Op<ScaleInplaceFn> scale_inplace{"scale_inplace"};

// Element-wise float32 <-> bfloat16 (the direction from the dtypes; same element count):
// to bf16 rounds to nearest even, keeping NaN a NaN; to float32 is exact.
using CastFn = void(const Tensor& src, Tensor& dst);
inline Op<CastFn> cast{"cast"};
// `dst` resized to src's shape and device with `dtype`, then src cast into it.
inline void cast_to(DType dtype, const Tensor& src, Tensor& dst) {
  dst.resize(src.shape(), src.device(), dtype);
  cast(src, dst);
}

}  // namespace residual::ops
