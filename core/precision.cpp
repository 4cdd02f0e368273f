#include "core/precision.h"

#include "core/error.h"

namespace residual {

const char* precision_name(Precision precision) {
  return precision == Precision::kBFloat16 ? "bf16" : "fp32";
}

Precision parse_precision(const std::string& text) {
  if (text == "fp32") return Precision::kFloat32;
  if (text == "bf16") return Precision::kBFloat16;
  throw Error("unknown precision '" + text + "' (fp32 or bf16)");
}

}  // namespace residual
