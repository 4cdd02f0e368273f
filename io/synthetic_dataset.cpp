#include "core/hash.h"
#include "io/synthetic_dataset.h"

#include <limits>

#include "core/error.h"
#include "io/reader_util.h"

namespace residual {
SyntheticDataset::SyntheticDataset(Shape shape, int64_t classes, int64_t size, Split split)
    : shape_(std::move(shape)), classes_(classes), size_(size), split_(split) {
  RESIDUAL_CHECK(shape_.rank() == 3 && shape_.numel() > 0 && classes_ > 0 && size_ > 0,
                 "synthetic data set: expected a positive H x W x C shape, class count and "
                 "size, got ",
                 shape_.str(), ", ", classes_, " classes, ", size_, " samples");
  RESIDUAL_CHECK(classes_ <= std::numeric_limits<int32_t>::max(), "synthetic data set: ", classes_,
                 " classes do not fit 32-bit labels");
}

void SyntheticDataset::read(int64_t index, float* image, int32_t* label) const {
  check_index(*this, index);
  // A different stream per split, so train and test samples differ.
  const uint64_t seed = splitmix64(static_cast<uint64_t>(index) * 2 + (split_ == Split::kTest ? 1 : 0));
  const int64_t n = shape_.numel();
  uint64_t bits = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (i % 8 == 0) bits = splitmix64(seed + static_cast<uint64_t>(i / 8));
    image[i] = static_cast<float>(bits & 0xff);
    bits >>= 8;
  }
  *label = static_cast<int32_t>(index % classes_);
}

std::string SyntheticDataset::description() const {
  return describe(str_cat("synthetic:", shape_[2], "x", shape_[0], "x", shape_[1], ":", classes_),
                  split_, *this);
}

}  // namespace residual
