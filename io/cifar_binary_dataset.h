#pragma once
// CIFAR-10 and CIFAR-100 in their binary versions: fixed-size records of label byte(s)
// followed by a 32x32x3 image stored channel by channel.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/dataset.h"
#include "io/file_reader.h"

namespace residual {

enum class CifarVariant { kCifar10, kCifar100 };

class CifarBinaryDataset : public Dataset {
 public:
  static constexpr int64_t kSide = 32;
  static constexpr int64_t kChannels = 3;
  static constexpr int64_t kImageBytes = kSide * kSide * kChannels;

  CifarBinaryDataset(const std::string& dir, Split split, CifarVariant variant);

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  Shape sample_shape() const override { return Shape{kSide, kSide, kChannels}; }
  int64_t num_classes() const override;
  void read(int64_t index, float* image, int32_t* label) const override;
  std::string description() const override;

 private:
  std::string dir_;
  Split split_;
  CifarVariant variant_;
  int64_t label_bytes_;  // 1 (CIFAR-10) or 2 (CIFAR-100: coarse, then fine)
  // CIFAR-10's five training files appear as one data set: file i holds the samples
  // [first_[i], first_[i + 1]).
  std::vector<std::unique_ptr<ByteSource>> files_;
  std::vector<int64_t> first_;
  // One byte a sample, read at open to check their range.
  std::vector<uint8_t> labels_;
};

}  // namespace residual
