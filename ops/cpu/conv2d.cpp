// Convolution on oneDNN. Activations stay N x H x W x C (oneDNN's nhwc, which its
// brgconv/jit kernels run at full speed: see docs/architecture.md); kernels are stored
// O x I x kH x kW and reordered into the primitive's preferred blocked layout per call
// (small next to the activations). Primitives are cached by geometry.
//
// Mixed precision (x and w bfloat16, ops/ops.h): the same plans with bf16 sources,
// weights and output gradients and fp32 outputs and weight gradients, so the primitives
// accumulate in fp32 and nothing is converted back afterwards (AMX or AVX512-BF16
// kernels; ops::cpu_bf16_support() says whether the CPU has them).
//
// Pointwise convolutions (1x1, no padding, one group; any stride) in bf16 run their backward
// passes as matrix products over the N*H*W pixel rows instead: oneDNN 2.6's AMX matmul
// (brgemm) computes their weight gradients 2-6x and their input gradients 1.1-1.7x faster
// than its convolution kernels for 32 to 2048 channels (ResNet-50's bottleneck shapes,
// batch 16, 2 threads; not for 16 channels, and no gain in fp32, where both paths stay
// convolutions).
//
// A batch of 0 (a rank's empty shard) runs no primitive: oneDNN 2.6.3 does accept
// zero-volume descriptors (it picks ref:any and zeroes the weight gradients), but an empty
// batch would only add a reference plan per geometry to the cache; here it is explicit.
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>

#include "core/error.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/onednn_context.h"
#include "ops/cpu/parallel.h"

namespace residual::ops::cpu {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;

struct ConvPlan {
  // src/diff_dst: x and dy (bf16 in a mixed-precision plan); dst/diff_src: y and dx.
  memory::desc src, dst, diff_src, diff_dst, user_weights, user_diff_weights, bias;
  memory::dims strides, dilation, pad_l, pad_r;
  dnnl::convolution_forward::primitive_desc fwd_pd;
  dnnl::convolution_forward fwd;
  dnnl::convolution_backward_data bwd_data;
  dnnl::convolution_backward_weights bwd_weights;
  dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
  memory weights_scratch, diff_weights_scratch;
};

using PlanKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t, int64_t, int64_t, bool, bool, bool, bool>;

// Which of a plan's tensors are bfloat16: x, w and dy (the operands), y, dx.
struct PlanTypes {
  bool operands = false, y = false, dx = false;
};

PlanKey key_of(const Conv2dGeometry& g, bool bias, PlanTypes t) {
  return {g.batch, g.in_h, g.in_w, g.in_c, g.out_h, g.out_w, g.out_c, g.kernel_h,
          g.kernel_w, g.stride_h, g.stride_w, g.dilation_h, g.dilation_w, g.pad_top,
          g.pad_bottom, g.pad_left, g.pad_right, g.groups, bias, t.operands, t.y, t.dx};
}

memory::desc weights_desc(const Conv2dGeometry& g, memory::data_type type, bool any) {
  if (g.groups == 1) {
    return memory::desc({g.out_c, g.in_c, g.kernel_h, g.kernel_w}, type,
                        any ? Tag::any : Tag::oihw);
  }
  return memory::desc({g.groups, g.out_c / g.groups, g.in_c / g.groups, g.kernel_h, g.kernel_w},
                      type, any ? Tag::any : Tag::goihw);
}

enum class Pass { kForward, kBackwardData, kBackwardWeights };

// Creates the primitive of `pass` if the plan has none yet. Primitives are JIT-compiled
// when created, and plans differing only in y's or dx's dtype each serve one or two of the
// passes (a bf16 y is a forward's, a bf16 dx a backward's), so only what runs is built.
void ensure_primitive(ConvPlan& p, Pass pass) {
  switch (pass) {
    case Pass::kForward:
      if (!p.fwd) p.fwd = dnnl::convolution_forward(p.fwd_pd);
      break;
    case Pass::kBackwardData:
      if (!p.bwd_data) p.bwd_data = dnnl::convolution_backward_data(p.bwd_data_pd);
      break;
    case Pass::kBackwardWeights:
      if (!p.bwd_weights) p.bwd_weights = dnnl::convolution_backward_weights(p.bwd_weights_pd);
      break;
  }
}

void describe_plan(const Conv2dGeometry& g, bool has_bias, PlanTypes types, ConvPlan& p);

// The plan of a geometry and dtypes, with the primitive of `pass` built. A bf16 y or dx: a
// bf16 activation or its gradient (Layer::reads_bf16_input).
ConvPlan& plan_for(const Conv2dGeometry& g, bool has_bias, PlanTypes types, Pass pass) {
  static std::mutex mutex;
  static std::map<PlanKey, ConvPlan> plans;
  std::lock_guard<std::mutex> lock(mutex);
  auto [it, inserted] = plans.try_emplace(key_of(g, has_bias, types));
  if (inserted) describe_plan(g, has_bias, types, it->second);
  ensure_primitive(it->second, pass);
  return it->second;
}

// Fills a new plan's descriptors; its primitives come later, per pass.
void describe_plan(const Conv2dGeometry& g, bool has_bias, PlanTypes types, ConvPlan& p) {
  const auto in_type = types.operands ? kBf16 : kF32;
  p.src = nhwc_desc(g.batch, g.in_h, g.in_w, g.in_c, in_type);
  p.dst = nhwc_desc(g.batch, g.out_h, g.out_w, g.out_c, types.y ? kBf16 : kF32);
  p.diff_src = nhwc_desc(g.batch, g.in_h, g.in_w, g.in_c, types.dx ? kBf16 : kF32);
  p.diff_dst = nhwc_desc(g.batch, g.out_h, g.out_w, g.out_c, in_type);
  p.user_weights = weights_desc(g, in_type, false);
  p.user_diff_weights = weights_desc(g, kF32, false);
  p.bias = has_bias ? memory::desc({g.out_c}, kF32, Tag::x) : memory::desc();
  p.strides = {g.stride_h, g.stride_w};
  p.dilation = {g.dilation_h - 1, g.dilation_w - 1};
  p.pad_l = {g.pad_top, g.pad_left};
  p.pad_r = {g.pad_bottom, g.pad_right};
  const auto weights = weights_desc(g, in_type, true);
  const auto diff_weights = weights_desc(g, kF32, true);
  const auto algo = dnnl::algorithm::convolution_direct;
  auto& eng = onednn_engine();
  p.fwd_pd = dnnl::convolution_forward::primitive_desc(
      {dnnl::prop_kind::forward_training, algo, p.src, weights, p.bias, p.dst, p.strides,
       p.dilation, p.pad_l, p.pad_r},
      eng);
  p.bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(
      {algo, p.diff_src, weights, p.diff_dst, p.strides, p.dilation, p.pad_l, p.pad_r}, eng,
      p.fwd_pd);
  p.bwd_weights_pd = dnnl::convolution_backward_weights::primitive_desc(
      {algo, p.src, diff_weights, p.bias, p.diff_dst, p.strides, p.dilation, p.pad_l, p.pad_r},
      eng, p.fwd_pd);
}

// The backward of a pointwise bf16 convolution as matrix products, M = N*OH*OW rows:
// dW (K x C) = dy^T (K x M) * x (M x C) and dx (M x C) = dy (M x K) * W (K x C), where
// a 1 x 1 kernel O x I x 1 x 1 is the plain K x C matrix and dy^T is dy read transposed.
// A strided one (ResNet-50's downsampling 1x1s) reads x at the strided pixels only: those
// are gathered into x_rows, and its dx is zero elsewhere: computed into dx_rows, then
// scattered into a zeroed dx (oneDNN's strided 1x1 backward kernels were its slowest).
struct PointwisePlan {
  memory::desc dy_t, x, dw, dy, w, dx;
  dnnl::matmul bwd_weights, bwd_data;
  Tensor x_rows, dx_rows;  // strided geometries only
};

bool backward_as_matmul(const Conv2dGeometry& g, bool bf16) {
  return bf16 && g.kernel_h == 1 && g.kernel_w == 1 && g.pad_top == 0 &&
         g.pad_bottom == 0 && g.pad_left == 0 && g.pad_right == 0 && g.groups == 1 &&
         g.in_c >= 32 && g.out_c >= 32;
}

bool strided(const Conv2dGeometry& g) { return g.stride_h != 1 || g.stride_w != 1; }

// Copies each output pixel's input pixel, x[n, i * sh, j * sw, :], between the N x H x W x C
// tensor and the (N*OH*OW) x C rows: gathering (to_rows) or scattering back.
void strided_pixels(const Conv2dGeometry& g, const Tensor& image, const Tensor& rows,
                    bool to_rows) {
  const size_t pixel = static_cast<size_t>(g.in_c) * dtype_size(image.dtype());
  auto* image_bytes = static_cast<char*>(image.raw());
  auto* row_bytes = static_cast<char*>(rows.raw());
#pragma omp parallel for collapse(2) schedule(static) if (rows.numel() >= kMinParallelElements)
  for (int64_t b = 0; b < g.batch; ++b) {
    for (int64_t i = 0; i < g.out_h; ++i) {
      for (int64_t j = 0; j < g.out_w; ++j) {
        char* at = image_bytes + ((b * g.in_h + i * g.stride_h) * g.in_w + j * g.stride_w) * pixel;
        char* row = row_bytes + ((b * g.out_h + i) * g.out_w + j) * pixel;
        if (to_rows) {
          std::memcpy(row, at, pixel);
        } else {
          std::memcpy(at, row, pixel);
        }
      }
    }
  }
}

// The plan with the product for the weight gradients (`weights`) or the input gradients
// built: each on first use (a bf16-dx plan serves only the latter). bf16_dx: dx is a bf16
// activation's gradient.
PointwisePlan& pointwise_plan_for(const Conv2dGeometry& g, bool bf16_dx, bool weights) {
  static std::mutex mutex;
  static std::map<std::tuple<int64_t, int64_t, int64_t, bool>, PointwisePlan> plans;
  const int64_t m = g.batch * g.out_h * g.out_w, c = g.in_c, k = g.out_c;
  std::lock_guard<std::mutex> lock(mutex);
  auto [it, inserted] = plans.try_emplace({m, c, k, bf16_dx});
  PointwisePlan& p = it->second;
  if (inserted) {
    p.dy_t = memory::desc({k, m}, kBf16, memory::dims{1, k});
    p.x = memory::desc({m, c}, kBf16, Tag::ab);
    p.dw = memory::desc({k, c}, kF32, Tag::ab);
    p.dy = memory::desc({m, k}, kBf16, Tag::ab);
    p.w = memory::desc({k, c}, kBf16, Tag::ab);
    p.dx = memory::desc({m, c}, bf16_dx ? kBf16 : kF32, Tag::ab);
  }
  auto& eng = onednn_engine();
  if (weights && !p.bwd_weights) {
    p.bwd_weights = dnnl::matmul(dnnl::matmul::primitive_desc({p.dy_t, p.x, p.dw}, eng));
  }
  if (!weights && !p.bwd_data) {
    p.bwd_data = dnnl::matmul(dnnl::matmul::primitive_desc({p.dy, p.w, p.dx}, eng));
  }
  return p;
}

// dst = src * weights, waited for.
void run_matmul(const dnnl::matmul& product, const memory& src, const memory& weights,
                const memory& dst) {
  auto& s = onednn_stream();
  product.execute(s, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}});
  s.wait();
}

}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                    const Tensor* bias, Tensor& y) {
  if (g.batch == 0) return;
  const bool bf16 = is_bf16("conv2d_forward", x, w);
  const bool bf16_y = y.dtype() == DType::kBFloat16;
  RESIDUAL_CHECK(!bf16_y || bf16, "conv2d_forward: a bfloat16 output needs bfloat16 operands");
  ConvPlan& p = plan_for(g, bias != nullptr, {bf16, bf16_y, false}, Pass::kForward);
  auto& s = onednn_stream();
  memory weights = reorder_if_needed(onednn_memory(p.user_weights, w),
                                     p.fwd_pd.weights_desc(), p.weights_scratch);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, onednn_memory(p.src, x)},
                                       {DNNL_ARG_WEIGHTS, weights},
                                       {DNNL_ARG_DST, onednn_memory(p.dst, y)}};
  if (bias) args[DNNL_ARG_BIAS] = onednn_memory(p.bias, *bias);
  p.fwd.execute(s, args);
  s.wait();
}

void conv2d_backward_data(const Conv2dGeometry& g, const Tensor& dy, const Tensor& w,
                          Tensor& dx) {
  if (g.batch == 0) return;
  const bool bf16 = is_bf16("conv2d_backward_data", dy, w);
  const bool bf16_dx = dx.dtype() == DType::kBFloat16;
  RESIDUAL_CHECK(!bf16_dx || bf16, "conv2d_backward_data: a bfloat16 dx needs bfloat16 operands");
  if (backward_as_matmul(g, bf16)) {
    PointwisePlan& m = pointwise_plan_for(g, bf16_dx, false);
    Tensor* rows = &dx;
    if (strided(g)) {
      m.dx_rows.resize(Shape{g.batch * g.out_h * g.out_w, g.in_c}, dx.device(), dx.dtype());
      rows = &m.dx_rows;
    }
    run_matmul(m.bwd_data, onednn_memory(m.dy, dy), onednn_memory(m.w, w),
               onednn_memory(m.dx, *rows));
    if (strided(g)) {
      dx.zero();
      strided_pixels(g, dx, m.dx_rows, false);
    }
    return;
  }
  ConvPlan& p = plan_for(g, false, {bf16, false, bf16_dx}, Pass::kBackwardData);
  auto& s = onednn_stream();
  memory weights = reorder_if_needed(onednn_memory(p.user_weights, w),
                                     p.bwd_data_pd.weights_desc(), p.weights_scratch);
  p.bwd_data.execute(s, {{DNNL_ARG_DIFF_DST, onednn_memory(p.diff_dst, dy)},
                         {DNNL_ARG_WEIGHTS, weights},
                         {DNNL_ARG_DIFF_SRC, onednn_memory(p.diff_src, dx)}});
  s.wait();
}

void conv2d_backward_weights(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy,
                             Tensor& dw, Tensor* dbias) {
  if (g.batch == 0) {  // no samples: the gradients are sums of nothing
    dw.zero();
    if (dbias) dbias->zero();
    return;
  }
  const bool bf16 = is_bf16("conv2d_backward_weights", x, dy, "output gradient");
  if (!dbias && backward_as_matmul(g, bf16)) {
    PointwisePlan& m = pointwise_plan_for(g, false, true);
    const Tensor* rows = &x;
    if (strided(g)) {
      m.x_rows.resize(Shape{g.batch * g.out_h * g.out_w, g.in_c}, x.device(), x.dtype());
      strided_pixels(g, x, m.x_rows, true);
      rows = &m.x_rows;
    }
    run_matmul(m.bwd_weights, onednn_memory(m.dy_t, dy), onednn_memory(m.x, *rows),
               onednn_memory(m.dw, dw));
    return;
  }
  ConvPlan& p = plan_for(g, dbias != nullptr, {bf16, false, false}, Pass::kBackwardWeights);
  auto& s = onednn_stream();
  memory user_dw = onednn_memory(p.user_diff_weights, dw);
  const auto& diff_desc = p.bwd_weights_pd.diff_weights_desc();
  const bool direct = diff_desc == p.user_diff_weights;
  if (!direct && (!p.diff_weights_scratch || p.diff_weights_scratch.get_desc() != diff_desc)) {
    p.diff_weights_scratch = memory(diff_desc, onednn_engine());
  }
  memory diff_weights = direct ? user_dw : p.diff_weights_scratch;
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, onednn_memory(p.src, x)},
                                       {DNNL_ARG_DIFF_DST, onednn_memory(p.diff_dst, dy)},
                                       {DNNL_ARG_DIFF_WEIGHTS, diff_weights}};
  if (dbias) args[DNNL_ARG_DIFF_BIAS] = onednn_memory(p.bias, *dbias);
  p.bwd_weights.execute(s, args);
  if (!direct) dnnl::reorder(diff_weights, user_dw).execute(s, diff_weights, user_dw);
  s.wait();
}

}  // namespace residual::ops::cpu
