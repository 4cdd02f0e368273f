#pragma once
// Per-sample preprocessing: random crop with zero padding and horizontal flip (training
// only), then per-channel normalisation. Randomness comes from a stream keyed by
// (seed, epoch, global sample index), so it does not depend on threads, ranks or order.
#include <cstdint>
#include <vector>

#include "core/shape.h"
#include "io/dataset.h"

namespace residual {

struct AugmentConfig {
  int64_t crop_padding = 0;  // > 0: pad by this many zeros, crop back at a random offset
  bool horizontal_flip = false;
  uint64_t seed = 0;
};

struct Normalization {
  std::vector<float> mean, std;  // per channel, in the data set's units (0..255)
};

// Mean and standard deviation per channel over (up to max_samples evenly spaced)
// training samples, read in batches.
Normalization compute_normalization(const Dataset& data, int64_t max_samples = 20000);

// Transforms one image of `shape` (H x W x C) in place; `scratch` holds H*W*C floats.
void augment_sample(const AugmentConfig& config, uint64_t epoch, int64_t index, const Shape& shape,
                    float* image, float* scratch);
void normalize_sample(const Normalization& norm, const Shape& shape, float* image);

}  // namespace residual
