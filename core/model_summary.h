#pragma once
#include <cstdint>
#include <string>

#include "core/model.h"

namespace residual {

struct ParameterCounts {
  int64_t trainable = 0, non_trainable = 0;
  int64_t total() const { return trainable + non_trainable; }
};
ParameterCounts count_parameters(const Model& model);

// A Keras-like table (layer, type, output shape, parameters, inputs) and totals:
// trainable, non-trainable (BN running statistics), total, forward MACs per image.
std::string format_summary(const Model& model);

// 11689512 -> "11,689,512"
std::string with_commas(int64_t value);

}  // namespace residual
