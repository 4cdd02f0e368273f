#include "ops/cpu/onednn_context.h"

#include <omp.h>

#include <algorithm>

#include "ops/cpu/cpu_ops.h"

namespace residual::ops::cpu {

dnnl::engine& onednn_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& onednn_stream() {
  static dnnl::stream stream(onednn_engine());
  return stream;
}

dnnl::memory reorder_if_needed(const dnnl::memory& from, const dnnl::memory::desc& to_desc,
                               dnnl::memory& scratch) {
  if (from.get_desc() == to_desc) return from;
  if (!scratch || scratch.get_desc() != to_desc) scratch = dnnl::memory(to_desc, onednn_engine());
  dnnl::reorder(from, scratch).execute(onednn_stream(), const_cast<dnnl::memory&>(from), scratch);
  return scratch;
}

}  // namespace residual::ops::cpu

namespace residual::ops {

void set_num_threads(int threads) { omp_set_num_threads(std::max(1, threads)); }
int num_threads() { return omp_get_max_threads(); }

CpuBf16Support cpu_bf16_support() {
  static const CpuBf16Support support = [] {
    using Isa = dnnl::cpu_isa;
    CpuBf16Support s;
    const Isa isa = dnnl::get_effective_cpu_isa();
    switch (isa) {
      case Isa::avx512_core_bf16: s.isa = "avx512_core_bf16"; break;
      case Isa::avx512_core_amx: s.isa = "avx512_core_amx"; break;
      case Isa::avx512_core: s.isa = "avx512_core"; break;
      case Isa::avx512_core_vnni: s.isa = "avx512_core_vnni"; break;
      case Isa::avx2_vnni: s.isa = "avx2_vnni"; break;
      case Isa::avx2: s.isa = "avx2"; break;
      case Isa::avx: s.isa = "avx"; break;
      case Isa::sse41: s.isa = "sse41"; break;
      default: s.isa = "other"; break;
    }
    s.native = isa == Isa::avx512_core_bf16 || isa == Isa::avx512_core_amx;
    return s;
  }();
  return support;
}

}  // namespace residual::ops
