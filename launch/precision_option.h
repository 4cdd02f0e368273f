#pragma once
// --precision of train, eval, predict and bench: fp32 (the default) or bf16, mixed
// precision on the CPU (core/precision.h). Saved in a training run's configuration so a
// resumed run computes as before; checkpoints hold fp32 weights either way, so any of
// them can be evaluated, resumed or fine-tuned in the other precision.
#include <string>

#include "core/precision.h"

namespace residual {

// The precision `text` asks for on `device` (a --device spelling), or an Error of one line
// saying why it cannot run here: bf16 on a GPU (not built yet), or on a CPU without
// native bf16 (naming the instruction set oneDNN found).
Precision resolve_precision(const std::string& text, const std::string& device);

}  // namespace residual
