// Max and average pooling on oneDNN over N x H x W x C. Max pooling keeps oneDNN's
// workspace (argmax indices) in the caller's tensor for the backward. A batch of 0 runs
// no primitive (as in conv2d.cpp). x and y (dy and dx) are both float32 or both bfloat16
// (bf16 activations under mixed precision: oneDNN pools bf16 as it is, averaging in fp32).
#include <map>
#include <mutex>
#include <tuple>

#include "ops/cpu/cpu_ops.h"
#include "ops/cpu/onednn_context.h"

namespace residual::ops::cpu {
namespace {

using dnnl::memory;

struct PoolPlan {
  memory::desc src, dst;
  dnnl::pooling_forward::primitive_desc train_pd;
  dnnl::pooling_forward train, infer;
  dnnl::pooling_backward backward;
};

using PoolKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                           int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int,
                           bool>;

PoolPlan& plan_for(const Pool2dGeometry& g, bool bf16) {
  static std::mutex mutex;
  static std::map<PoolKey, PoolPlan> plans;
  std::lock_guard<std::mutex> lock(mutex);
  PoolKey key{g.batch, g.in_h, g.in_w, g.channels, g.out_h, g.out_w, g.kernel_h, g.kernel_w,
              g.stride_h, g.stride_w, g.pad_top, g.pad_bottom, g.pad_left, g.pad_right,
              static_cast<int>(g.kind), bf16};
  auto [it, inserted] = plans.try_emplace(key);
  PoolPlan& p = it->second;
  if (!inserted) return p;
  const auto type = bf16 ? kBf16 : kF32;
  p.src = nhwc_desc(g.batch, g.in_h, g.in_w, g.channels, type);
  p.dst = nhwc_desc(g.batch, g.out_h, g.out_w, g.channels, type);
  const auto algo = g.kind == PoolKind::kMax ? dnnl::algorithm::pooling_max
                                             : dnnl::algorithm::pooling_avg_exclude_padding;
  const memory::dims strides{g.stride_h, g.stride_w}, kernel{g.kernel_h, g.kernel_w},
      pad_l{g.pad_top, g.pad_left}, pad_r{g.pad_bottom, g.pad_right};
  auto& eng = onednn_engine();
  p.train_pd = dnnl::pooling_forward::primitive_desc(
      {dnnl::prop_kind::forward_training, algo, p.src, p.dst, strides, kernel, pad_l, pad_r}, eng);
  p.train = dnnl::pooling_forward(p.train_pd);
  p.infer = dnnl::pooling_forward(dnnl::pooling_forward::primitive_desc(
      {dnnl::prop_kind::forward_inference, algo, p.src, p.dst, strides, kernel, pad_l, pad_r},
      eng));
  p.backward = dnnl::pooling_backward(dnnl::pooling_backward::primitive_desc(
      {algo, p.src, p.dst, strides, kernel, pad_l, pad_r}, eng, p.train_pd));
  return p;
}

}  // namespace

void pool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y, Tensor& workspace,
                    bool training) {
  if (g.batch == 0) return;
  PoolPlan& p = plan_for(g, is_bf16("pool2d_forward", x, y, "output"));
  auto& s = onednn_stream();
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, onednn_memory(p.src, x)},
                                       {DNNL_ARG_DST, onednn_memory(p.dst, y)}};
  if (training) {
    const auto ws_desc = p.train_pd.workspace_desc();
    if (ws_desc.get_size() > 0) {
      workspace.resize(Shape{static_cast<int64_t>(ws_desc.get_size())}, Device::cpu(), DType::kUInt8);
      args[DNNL_ARG_WORKSPACE] = onednn_memory(ws_desc, workspace);
    }
    p.train.execute(s, args);
  } else {
    p.infer.execute(s, args);
  }
  s.wait();
}

void pool2d_backward(const Pool2dGeometry& g, const Tensor& dy, const Tensor& workspace,
                     Tensor& dx) {
  if (g.batch == 0) return;
  PoolPlan& p = plan_for(g, is_bf16("pool2d_backward", dy, dx, "input gradient"));
  auto& s = onednn_stream();
  std::unordered_map<int, memory> args{{DNNL_ARG_DIFF_DST, onednn_memory(p.dst, dy)},
                                       {DNNL_ARG_DIFF_SRC, onednn_memory(p.src, dx)}};
  const auto ws_desc = p.train_pd.workspace_desc();
  if (ws_desc.get_size() > 0) args[DNNL_ARG_WORKSPACE] = onednn_memory(ws_desc, workspace);
  p.backward.execute(s, args);
  s.wait();
}

}  // namespace residual::ops::cpu
