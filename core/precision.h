#pragma once
// The arithmetic of convolutions and matrix products (train, eval and bench take it as
// --precision). kBFloat16 is mixed precision as PyTorch's autocast: those layers round
// their inputs and weights to bf16 and accumulate in fp32 into fp32 outputs; everything
// else (batch norm, the loss, the optimizer, master weights and checkpoints) stays fp32,
// so a checkpoint does not know which precision wrote it. CPU only, on CPUs with native
// bf16 (ops::cpu_bf16_support()).
#include <string>

namespace residual {

enum class Precision { kFloat32, kBFloat16 };

// "fp32" or "bf16", the spelling of --precision.
const char* precision_name(Precision precision);
// Parses that spelling; anything else is an Error listing both.
Precision parse_precision(const std::string& text);

}  // namespace residual
