#pragma once
// Images and labels stored as two datasets of an HDF5 file.
#include <cstdint>
#include <string>
#include <vector>

#include "io/dataset.h"

namespace residual {

// Images: N x H x W x C (layout "nhwc") or N x C x H x W ("nchw"), or N x H x W for one
// channel; uint8 or float32. Labels: N or N x 1 integers of any integer type. Classes:
// the labels dataset's num_classes attribute, else the largest label + 1.
class Hdf5Dataset : public Dataset {
 public:
  Hdf5Dataset(const std::string& path, Split split, const DataOptions& options);
  ~Hdf5Dataset() override;
  Hdf5Dataset(const Hdf5Dataset&) = delete;
  Hdf5Dataset& operator=(const Hdf5Dataset&) = delete;

  int64_t size() const override { return count_; }
  Shape sample_shape() const override { return Shape{height_, width_, channels_}; }
  int64_t num_classes() const override { return classes_; }
  void read(int64_t index, float* image, int32_t* label) const override;
  // One selection of the batch's rows per dataset, so HDF5 reads each chunk once.
  void read_batch(const int64_t* indices, int64_t n, float* images, int32_t* labels) const override;
  std::string description() const override;

 private:
  void open_images(const std::string& layout);
  void open_labels();
  void count_classes();

  std::string path_;
  Split split_;
  std::string images_name_;
  std::string labels_name_;
  bool channels_first_ = false;
  bool uint8_pixels_ = false;  // else float32
  int64_t count_ = 0;
  int64_t height_ = 0;
  int64_t width_ = 0;
  int64_t channels_ = 1;
  int64_t classes_ = 0;
  // HDF5 handles (hid_t, which is int64_t), kept as integers so that this header does
  // not pull in hdf5.h.
  int64_t file_ = -1;
  int64_t images_ = -1;
  int64_t labels_ = -1;
};

}  // namespace residual
