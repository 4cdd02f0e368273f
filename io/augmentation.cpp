#include "core/hash.h"
#include "io/augmentation.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"

namespace residual {
Normalization compute_normalization(const Dataset& data, int64_t max_samples) {
  const Shape shape = data.sample_shape();
  const int64_t c = shape[2], pixels = shape[0] * shape[1];
  const int64_t count = std::min(data.size(), max_samples);
  RESIDUAL_CHECK(count > 0, "cannot compute normalisation statistics of an empty data set");
  std::vector<double> sum(c, 0.0), sumsq(c, 0.0);
  constexpr int64_t kBatch = 256;
  std::vector<int64_t> indices;
  std::vector<float> images;
  std::vector<int32_t> labels;
  for (int64_t start = 0; start < count; start += kBatch) {
    const int64_t n = std::min(kBatch, count - start);
    indices.resize(n);
    for (int64_t i = 0; i < n; ++i) indices[i] = (start + i) * data.size() / count;
    images.resize(static_cast<size_t>(n * pixels * c));
    labels.resize(n);
    data.read_batch(indices.data(), n, images.data(), labels.data());
    for (int64_t p = 0; p < n * pixels; ++p) {
      for (int64_t k = 0; k < c; ++k) {
        const double v = images[p * c + k];
        sum[k] += v;
        sumsq[k] += v * v;
      }
    }
  }
  Normalization norm;
  const double total = static_cast<double>(count * pixels);
  for (int64_t k = 0; k < c; ++k) {
    const double mean = sum[k] / total;
    const double var = std::max(sumsq[k] / total - mean * mean, 0.0);
    norm.mean.push_back(static_cast<float>(mean));
    norm.std.push_back(static_cast<float>(std::max(std::sqrt(var), 1e-6)));
  }
  return norm;
}

void augment_sample(const AugmentConfig& config, uint64_t epoch, int64_t index, const Shape& shape,
                    float* image, float* scratch) {
  if (config.crop_padding <= 0 && !config.horizontal_flip) return;
  const int64_t h = shape[0], w = shape[1], c = shape[2];
  const uint64_t r = splitmix64(splitmix64(config.seed ^ 0x5eedULL) ^ splitmix64(epoch) ^
                                static_cast<uint64_t>(index));
  const int64_t span = 2 * config.crop_padding + 1;
  const int64_t dy =
      config.crop_padding > 0 ? static_cast<int64_t>(r % span) - config.crop_padding : 0;
  const int64_t dx =
      config.crop_padding > 0 ? static_cast<int64_t>((r >> 16) % span) - config.crop_padding : 0;
  const bool flip = config.horizontal_flip && ((r >> 40) & 1);
  std::memcpy(scratch, image, sizeof(float) * h * w * c);
  for (int64_t i = 0; i < h; ++i) {
    for (int64_t j = 0; j < w; ++j) {
      const int64_t si = i + dy, sj0 = j + dx;
      const int64_t sj = flip ? (w - 1 - sj0) : sj0;
      float* out = image + (i * w + j) * c;
      if (si < 0 || si >= h || sj0 < 0 || sj0 >= w) {
        std::fill(out, out + c, 0.f);
      } else {
        std::memcpy(out, scratch + (si * w + sj) * c, sizeof(float) * c);
      }
    }
  }
}

void normalize_sample(const Normalization& norm, const Shape& shape, float* image) {
  const int64_t c = shape[2], pixels = shape[0] * shape[1];
  for (int64_t p = 0; p < pixels; ++p) {
    for (int64_t k = 0; k < c; ++k)
      image[p * c + k] = (image[p * c + k] - norm.mean[k]) / norm.std[k];
  }
}

}  // namespace residual
