#pragma once
// Pseudo-random images for benchmarks and tests: sample i of a split is a pure function
// of (split, i), so any sample is produced on demand and every run sees the same data.
#include <cstdint>
#include <string>

#include "io/dataset.h"

namespace residual {

class SyntheticDataset : public Dataset {
 public:
  // `shape` is H x W x C.
  SyntheticDataset(Shape shape, int64_t classes, int64_t size, Split split);

  int64_t size() const override { return size_; }
  Shape sample_shape() const override { return shape_; }
  int64_t num_classes() const override { return classes_; }
  // Pixels are whole numbers 0..255, like 8-bit images; the label is index % classes,
  // so the classes are balanced.
  void read(int64_t index, float* image, int32_t* label) const override;
  std::string description() const override;

 private:
  Shape shape_;
  int64_t classes_;
  int64_t size_;
  Split split_;
};

}  // namespace residual
