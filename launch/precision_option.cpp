#include "launch/precision_option.h"

#include "core/error.h"
#include "ops/ops.h"

namespace residual {

Precision resolve_precision(const std::string& text, const std::string& device) {
  const Precision precision = parse_precision(text);
  if (precision == Precision::kFloat32) return precision;
  RESIDUAL_CHECK(device == "cpu", "--precision bf16 runs on the CPU only for now; --device ",
                 device, " trains in fp32 (leave out --precision or give --device cpu)");
  const ops::CpuBf16Support support = ops::cpu_bf16_support();
  RESIDUAL_CHECK(support.native, "--precision bf16: this CPU has no native bf16 arithmetic ",
                 "(oneDNN's instruction set here: ", support.isa,
                 "; bf16 needs AVX512-BF16 or AMX: Intel Cooper Lake, Sapphire Rapids or "
                 "later, AMD Zen 4 or later); use --precision fp32");
  return precision;
}

}  // namespace residual
