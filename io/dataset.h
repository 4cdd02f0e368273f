#pragma once
// Random access to labelled images. Readers fetch samples from their files on demand
// wherever the format allows it, so a data set may be larger than memory; read() and
// read_batch() are safe to call from several loader threads at once.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/shape.h"

namespace residual {

enum class Split { kTrain, kTest };
const char* split_name(Split split);

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  // H x W x C of one image.
  virtual Shape sample_shape() const = 0;
  virtual int64_t num_classes() const = 0;
  // Sample `index` as H*W*C floats in H, W, C order, with the source's values (0..255
  // for 8-bit images: normalisation is the loader's business), and its class.
  virtual void read(int64_t index, float* image, int32_t* label) const = 0;
  // Samples indices[0..n) into consecutive images / labels. Formats that gain from
  // batched I/O (HDF5) override it.
  virtual void read_batch(const int64_t* indices, int64_t n, float* images,
                          int32_t* labels) const;
  // "mnist:data/mnist-10k (train: 8010 images 28x28x1, 10 classes)"
  virtual std::string description() const = 0;
};

// Where the data comes from, as given on the command line (`--data`):
//   mnist:DIR        train-images-idx3-ubyte[.gz] ... t10k-labels-idx1-ubyte[.gz]
//   cifar10:DIR      data_batch_1..5.bin, test_batch.bin (the CIFAR-10 binary version)
//   cifar100:DIR     train.bin, test.bin (fine labels)
//   hdf5:FILE        datasets named by DataOptions (uint8 or float32, NHWC or NCHW)
//   synthetic:CxHxW:CLASSES   deterministic random images, for benchmarks and tests
struct DataOptions {
  // HDF5 dataset names; "{split}" is replaced by "train" or "test".
  std::string hdf5_images = "images";
  std::string hdf5_labels = "labels";
  std::string hdf5_layout = "nhwc";  // or "nchw"
  int64_t synthetic_size = 1024;     // samples per split of synthetic data
};

std::unique_ptr<Dataset> open_dataset(const std::string& spec, Split split,
                                      const DataOptions& options = {});

}  // namespace residual
