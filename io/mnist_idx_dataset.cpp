#include "io/mnist_idx_dataset.h"

#include "core/error.h"
#include "io/reader_util.h"

namespace residual {
namespace {

constexpr uint32_t kImagesMagic = 2051;  // idx3, unsigned bytes
constexpr uint32_t kLabelsMagic = 2049;  // idx1, unsigned bytes
constexpr int64_t kImagesHeader = 16;
constexpr int64_t kLabelsHeader = 8;
constexpr int64_t kMaxSide = 16384;

// Raw files are preferred because they are read per sample with pread(). A .gz file
// cannot be read at random offsets, so it is decompressed into memory once here; that is
// fine for MNIST-sized data (47 MB for the full 60,000 training images).
std::unique_ptr<ByteSource> open_idx(const std::string& dir, const std::string& name) {
  const std::string raw = dir + "/" + name;
  if (file_exists(raw)) return open_file(raw);
  if (file_exists(raw + ".gz")) return open_gzip_file(raw + ".gz");
  fail("mnist:", dir, ": missing ", name, ": looked for ", raw, " or ", raw, ".gz");
}

// Reads the big-endian header of an IDX file and checks its magic number and size. The
// magic number is checked first: a labels file given for images is shorter than the
// images header, and "wrong magic number" is the more useful message.
std::vector<uint32_t> read_header(const ByteSource& file, uint32_t magic, int64_t header_bytes,
                                  const char* what) {
  uint8_t bytes[kImagesHeader];
  if (file.size() >= 4) {
    file.read_at(0, 4, bytes);
    RESIDUAL_CHECK(load_be32(bytes) == magic, file.path(), ": wrong magic number: expected ", magic,
                   " (IDX ", what, "), got ", load_be32(bytes));
  }
  RESIDUAL_CHECK(file.size() >= header_bytes, file.path(), ": truncated: ", file.size(),
                 " bytes, shorter than the ", header_bytes, "-byte IDX header of ", what);
  file.read_at(0, header_bytes, bytes);
  std::vector<uint32_t> fields;
  for (int64_t i = 0; i < header_bytes; i += 4) fields.push_back(load_be32(bytes + i));
  return fields;
}

void check_size(const ByteSource& file, int64_t expected, const std::string& promise) {
  RESIDUAL_CHECK(file.size() >= expected, file.path(), ": truncated: ", file.size(),
                 " bytes, but its header promises ", promise, " (", expected, " bytes)");
}

}  // namespace

MnistIdxDataset::MnistIdxDataset(const std::string& dir, Split split) : dir_(dir), split_(split) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  images_ = open_idx(dir, prefix + "-images-idx3-ubyte");
  const std::vector<uint32_t> header = read_header(*images_, kImagesMagic, kImagesHeader, "images");
  count_ = header[1];
  rows_ = header[2];
  cols_ = header[3];
  // The size limit also keeps count * rows * cols well inside int64_t.
  RESIDUAL_CHECK(count_ > 0 && rows_ > 0 && cols_ > 0 && rows_ <= kMaxSide && cols_ <= kMaxSide,
                 images_->path(),
                 ": expected a non-zero image count and an image size from 1x1 to ", kMaxSide, "x",
                 kMaxSide, ", got ", count_, " images of ", rows_, "x", cols_);
  check_size(*images_, kImagesHeader + count_ * rows_ * cols_,
             str_cat(count_, " images of ", rows_, "x", cols_));

  const std::unique_ptr<ByteSource> labels = open_idx(dir, prefix + "-labels-idx1-ubyte");
  const int64_t label_count = read_header(*labels, kLabelsMagic, kLabelsHeader, "labels")[1];
  RESIDUAL_CHECK(label_count == count_, labels->path(), ": holds ", label_count, " labels but ",
                 images_->path(), " holds ", count_, " images");
  check_size(*labels, kLabelsHeader + count_, str_cat(count_, " labels"));
  labels_.resize(static_cast<size_t>(count_));
  labels->read_at(kLabelsHeader, count_, labels_.data());
  for (int64_t i = 0; i < count_; ++i) {
    RESIDUAL_CHECK(labels_[i] < kClasses, labels->path(), ": label ", int{labels_[i]},
                   " of sample ", i, " is out of range: expected 0..", kClasses - 1);
  }
}

void MnistIdxDataset::read(int64_t index, float* image, int32_t* label) const {
  check_index(*this, index);
  const int64_t pixels = rows_ * cols_;
  std::vector<uint8_t> bytes(static_cast<size_t>(pixels));
  images_->read_at(kImagesHeader + index * pixels, pixels, bytes.data());
  to_float(bytes.data(), pixels, image);
  *label = labels_[static_cast<size_t>(index)];
}

std::string MnistIdxDataset::description() const {
  return describe("mnist:" + dir_, split_, *this);
}

}  // namespace residual
