#pragma once
// Checks of option values that need more than one option or the file system, made by the
// commands before any work starts (single values are checked by cli_validators.h).
#include <cstdint>
#include <string>
#include <vector>

#include "launch/train_config.h"

namespace residual {

// --input "CxHxW" -> {H, W, C}, bounded as core/image_limits.h says.
std::vector<int64_t> parse_input_shape(const std::string& text);

// The model, input shape, warm-up and output paths of a training run.
void check_train_config(const TrainConfig& config);

}  // namespace residual
