#pragma once
// The one oneDNN CPU engine and stream of the process, and small helpers to describe
// our tensors to oneDNN. Included by ops/cpu/*.cpp only.
#include <dnnl.hpp>

#include "core/error.h"
#include "core/tensor.h"

namespace residual::ops::cpu {

// Tensors are fp32; convolutions and dense layers also take bf16 (mixed precision).
constexpr auto kF32 = dnnl::memory::data_type::f32;
constexpr auto kBf16 = dnnl::memory::data_type::bf16;

dnnl::engine& onednn_engine();
dnnl::stream& onednn_stream();

// A oneDNN memory object over a tensor's storage (no copy).
inline dnnl::memory onednn_memory(const dnnl::memory::desc& desc, const Tensor& t) {
  return dnnl::memory(desc, onednn_engine(), t.raw());
}

// N x H x W x C tensor described with oneDNN's logical {N, C, H, W} dims.
inline dnnl::memory::desc nhwc_desc(int64_t n, int64_t h, int64_t w, int64_t c,
                                    dnnl::memory::data_type type = kF32) {
  return dnnl::memory::desc({n, c, h, w}, type, dnnl::memory::format_tag::nhwc);
}

// Whether a convolution, dense or pooling op runs its mixed-precision plan: its two
// bf16-capable operands (x or dy, and `other`: the weights, dy for the weight gradient, or
// pooling's output) must both be float32 or both bfloat16.
inline bool is_bf16(const char* op, const Tensor& in, const Tensor& other,
                    const char* other_is = "weights") {
  RESIDUAL_CHECK(in.dtype() == other.dtype(), op, ": a ", dtype_name(in.dtype()),
                 " input with ", dtype_name(other.dtype()), " ", other_is);
  return in.dtype() == DType::kBFloat16;
}

// Reorders `from` into `to` when their layouts differ; returns the memory to use.
dnnl::memory reorder_if_needed(const dnnl::memory& from, const dnnl::memory::desc& to_desc,
                               dnnl::memory& scratch);

}  // namespace residual::ops::cpu
