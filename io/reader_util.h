#pragma once
// Helpers shared by the Dataset implementations: pixel layout conversion, index checks
// and the one-line description.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "io/dataset.h"

namespace residual {

// Channels-first pixels (C x H x W) to the channels-last floats every reader returns.
template <typename T>
void chw_to_hwc(const T* chw, int64_t c, int64_t h, int64_t w, float* hwc) {
  const int64_t plane = h * w;
  for (int64_t p = 0; p < plane; ++p) {
    for (int64_t k = 0; k < c; ++k) hwc[p * c + k] = static_cast<float>(chw[k * plane + p]);
  }
}

template <typename T>
void to_float(const T* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i]);
}

inline void check_index(const Dataset& data, int64_t index) {
  RESIDUAL_CHECK(index >= 0 && index < data.size(), "sample index ", index, " is out of range for ",
                 data.description());
}

// "mnist:data/mnist-10k (train: 8010 images 28x28x1, 10 classes)"
std::string describe(const std::string& source, Split split, const Dataset& data);

}  // namespace residual
