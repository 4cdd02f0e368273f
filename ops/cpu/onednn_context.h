#pragma once
// The one oneDNN CPU engine and stream of the process, and small helpers to describe
// our tensors to oneDNN. Included by ops/cpu/*.cpp only.
#include <dnnl.hpp>

#include "core/tensor.h"

namespace residual::ops::cpu {

// Every tensor here is fp32.
constexpr auto kF32 = dnnl::memory::data_type::f32;

dnnl::engine& onednn_engine();
dnnl::stream& onednn_stream();

// A oneDNN memory object over a tensor's storage (no copy).
inline dnnl::memory onednn_memory(const dnnl::memory::desc& desc, const Tensor& t) {
  return dnnl::memory(desc, onednn_engine(), t.raw());
}

// N x H x W x C tensor described with oneDNN's logical {N, C, H, W} dims.
inline dnnl::memory::desc nhwc_desc(int64_t n, int64_t h, int64_t w, int64_t c) {
  return dnnl::memory::desc({n, c, h, w}, kF32, dnnl::memory::format_tag::nhwc);
}

// Reorders `from` into `to` when their layouts differ; returns the memory to use.
dnnl::memory reorder_if_needed(const dnnl::memory& from, const dnnl::memory::desc& to_desc,
                               dnnl::memory& scratch);

}  // namespace residual::ops::cpu
