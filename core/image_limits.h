#pragma once
// The largest image residual takes: from --input, a synthetic data spec, or a model
// file's Input layer. Within these bounds the sizes of a batch, its bytes and the MAC
// counts of a network stay far below int64 overflow, so nothing downstream has to guard
// each product.
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace residual {

constexpr int64_t kMaxImageDim = 65536;                  // each of C, H, W
constexpr int64_t kMaxImageElements = int64_t{1} << 28;  // their product: 268435456

// Throws an Error "<what>: ..." unless every size is in [1, kMaxImageDim] (a single size,
// [features], in [1, kMaxImageElements]) and their product is at most kMaxImageElements.
inline void check_image_dims(const std::vector<int64_t>& dims, const std::string& what) {
  const int64_t max_dim = dims.size() == 1 ? kMaxImageElements : kMaxImageDim;
  int64_t elements = 1;
  for (int64_t d : dims) {
    RESIDUAL_CHECK(d >= 1 && d <= max_dim, what, ": each size must be in [1, ", max_dim, "], got ",
                   d);
    elements *= d;  // cannot overflow: checked against the bound after each factor
    RESIDUAL_CHECK(elements <= kMaxImageElements, what, ": ", kMaxImageElements,
                   " values per image at most");
  }
}

}  // namespace residual
