// Fully connected layer on oneDNN's inner product: x (N x in) . w^T (w is out x in) + b.
// Mixed precision as in conv2d.cpp: bf16 x, w and dy, fp32 y, dx, dw and bias.
// A batch of 0 runs no primitive (as in conv2d.cpp); its weight gradients are zero.
#include <map>
#include <mutex>
#include <tuple>

#include "core/error.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/onednn_context.h"

namespace residual::ops::cpu {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;

struct DensePlan {
  // src, weights and diff_dst are bf16 in a mixed-precision plan.
  memory::desc src, weights, bias, dst, diff_src, diff_weights, diff_dst;
  dnnl::inner_product_forward fwd;
  dnnl::inner_product_backward_data bwd_data;
  dnnl::inner_product_backward_weights bwd_weights;
};

DensePlan& plan_for(int64_t n, int64_t in, int64_t out, bool has_bias, bool bf16) {
  static std::mutex mutex;
  static std::map<std::tuple<int64_t, int64_t, int64_t, bool, bool>, DensePlan> plans;
  std::lock_guard<std::mutex> lock(mutex);
  auto [it, inserted] = plans.try_emplace({n, in, out, has_bias, bf16});
  DensePlan& p = it->second;
  if (!inserted) return p;
  const auto in_type = bf16 ? kBf16 : kF32;
  p.src = memory::desc({n, in}, in_type, Tag::nc);
  p.weights = memory::desc({out, in}, in_type, Tag::oi);
  p.bias = has_bias ? memory::desc({out}, kF32, Tag::x) : memory::desc();
  p.dst = memory::desc({n, out}, kF32, Tag::nc);
  p.diff_src = memory::desc({n, in}, kF32, Tag::nc);
  p.diff_weights = memory::desc({out, in}, kF32, Tag::oi);
  p.diff_dst = memory::desc({n, out}, in_type, Tag::nc);
  auto& eng = onednn_engine();
  auto fwd_pd = dnnl::inner_product_forward::primitive_desc(
      {dnnl::prop_kind::forward_training, p.src, p.weights, p.bias, p.dst}, eng);
  p.fwd = dnnl::inner_product_forward(fwd_pd);
  p.bwd_data = dnnl::inner_product_backward_data(dnnl::inner_product_backward_data::primitive_desc(
      {p.diff_src, p.weights, p.diff_dst}, eng, fwd_pd));
  p.bwd_weights = dnnl::inner_product_backward_weights(
      dnnl::inner_product_backward_weights::primitive_desc(
          {p.src, p.diff_weights, p.bias, p.diff_dst}, eng, fwd_pd));
  return p;
}

}  // namespace

void dense_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y) {
  if (x.dim(0) == 0) return;
  DensePlan& p = plan_for(x.dim(0), x.dim(1), w.dim(0), bias != nullptr,
                          is_bf16("dense_forward", x, w));
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, onednn_memory(p.src, x)},
                                       {DNNL_ARG_WEIGHTS, onednn_memory(p.weights, w)},
                                       {DNNL_ARG_DST, onednn_memory(p.dst, y)}};
  if (bias) args[DNNL_ARG_BIAS] = onednn_memory(p.bias, *bias);
  p.fwd.execute(onednn_stream(), args);
  onednn_stream().wait();
}

void dense_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx) {
  if (dy.dim(0) == 0) return;
  DensePlan& p = plan_for(dy.dim(0), w.dim(1), w.dim(0), false,
                          is_bf16("dense_backward_data", dy, w));
  p.bwd_data.execute(onednn_stream(), {{DNNL_ARG_DIFF_DST, onednn_memory(p.diff_dst, dy)},
                                       {DNNL_ARG_WEIGHTS, onednn_memory(p.weights, w)},
                                       {DNNL_ARG_DIFF_SRC, onednn_memory(p.diff_src, dx)}});
  onednn_stream().wait();
}

void dense_backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* dbias) {
  if (x.dim(0) == 0) {
    dw.zero();
    if (dbias) dbias->zero();
    return;
  }
  const bool bf16 = is_bf16("dense_backward_weights", x, dy, "output gradient");
  DensePlan& p = plan_for(x.dim(0), x.dim(1), dy.dim(1), dbias != nullptr, bf16);
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, onednn_memory(p.src, x)},
                                       {DNNL_ARG_DIFF_DST, onednn_memory(p.diff_dst, dy)},
                                       {DNNL_ARG_DIFF_WEIGHTS, onednn_memory(p.diff_weights, dw)}};
  if (dbias) args[DNNL_ARG_DIFF_BIAS] = onednn_memory(p.bias, *dbias);
  p.bwd_weights.execute(onednn_stream(), args);
  onednn_stream().wait();
}

}  // namespace residual::ops::cpu
