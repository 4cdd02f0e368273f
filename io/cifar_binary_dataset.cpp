#include "io/cifar_binary_dataset.h"

#include <algorithm>

#include "core/error.h"
#include "io/reader_util.h"

namespace residual {
namespace {

std::vector<std::string> file_names(Split split, CifarVariant variant) {
  if (variant == CifarVariant::kCifar100) {
    return {split == Split::kTrain ? "train.bin" : "test.bin"};
  }
  if (split == Split::kTest) return {"test_batch.bin"};
  std::vector<std::string> names;
  for (int i = 1; i <= 5; ++i) names.push_back(str_cat("data_batch_", i, ".bin"));
  return names;
}

const char* variant_name(CifarVariant variant) {
  return variant == CifarVariant::kCifar10 ? "cifar10" : "cifar100";
}

}  // namespace

CifarBinaryDataset::CifarBinaryDataset(const std::string& dir, Split split, CifarVariant variant)
    : dir_(dir),
      split_(split),
      variant_(variant),
      label_bytes_(variant == CifarVariant::kCifar10 ? 1 : 2) {
  const std::vector<std::string> names = file_names(split, variant);
  const std::string expected = names.size() == 1 ? names[0] : names.front() + " .. " + names.back();
  const int64_t record = label_bytes_ + kImageBytes;
  const std::string record_layout = label_bytes_ == 1
                                        ? "1 label byte + 3072 pixel bytes"
                                        : "coarse and fine label bytes + 3072 pixel bytes";
  first_.push_back(0);
  for (const std::string& name : names) {
    const std::string path = dir + "/" + name;
    RESIDUAL_CHECK(file_exists(path), variant_name(variant), ":", dir, ": missing ", path, " (the ",
                   split_name(split), " split needs ", expected, ")");
    files_.push_back(open_file(path));
    const ByteSource& file = *files_.back();
    RESIDUAL_CHECK(file.size() > 0 && file.size() % record == 0, file.path(), ": size ",
                   file.size(), " bytes is not a positive multiple of the ", record,
                   "-byte record (", record_layout, ")");
    const int64_t records = file.size() / record;
    // The fine label is the last label byte of each record.
    const int64_t begin = static_cast<int64_t>(labels_.size());
    labels_.resize(static_cast<size_t>(begin + records));
    for (int64_t r = 0; r < records; ++r) {
      file.read_at(r * record + label_bytes_ - 1, 1, &labels_[begin + r]);
      RESIDUAL_CHECK(labels_[begin + r] < num_classes(), file.path(), ": label ",
                     int{labels_[begin + r]}, " of record ", r, " is out of range: expected 0..",
                     num_classes() - 1);
    }
    first_.push_back(begin + records);
  }
}

int64_t CifarBinaryDataset::num_classes() const {
  return variant_ == CifarVariant::kCifar10 ? 10 : 100;
}

void CifarBinaryDataset::read(int64_t index, float* image, int32_t* label) const {
  check_index(*this, index);
  const size_t file = static_cast<size_t>(std::upper_bound(first_.begin(), first_.end(), index) -
                                          first_.begin() - 1);
  const int64_t record = index - first_[file];
  uint8_t chw[kImageBytes];
  files_[file]->read_at(record * (label_bytes_ + kImageBytes) + label_bytes_, kImageBytes, chw);
  chw_to_hwc(chw, kChannels, kSide, kSide, image);
  *label = labels_[static_cast<size_t>(index)];
}

std::string CifarBinaryDataset::description() const {
  return describe(str_cat(variant_name(variant_), ":", dir_), split_, *this);
}

}  // namespace residual
