#pragma once
// MNIST in its IDX files (train-* / t10k-*), raw or gzipped.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/dataset.h"
#include "io/file_reader.h"

namespace residual {

class MnistIdxDataset : public Dataset {
 public:
  static constexpr int64_t kClasses = 10;

  MnistIdxDataset(const std::string& dir, Split split);

  int64_t size() const override { return count_; }
  Shape sample_shape() const override { return Shape{rows_, cols_, 1}; }
  int64_t num_classes() const override { return kClasses; }
  void read(int64_t index, float* image, int32_t* label) const override;
  std::string description() const override;

 private:
  std::string dir_;
  Split split_;
  std::unique_ptr<ByteSource> images_;
  int64_t count_ = 0;
  int64_t rows_ = 0;
  int64_t cols_ = 0;
  // Labels are one byte a sample, so they are read whole at open and range-checked.
  std::vector<uint8_t> labels_;
};

}  // namespace residual
