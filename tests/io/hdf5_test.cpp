#include "h5_writer.h"
#include "io/hdf5_dataset.h"
#include "io_test_util.h"

namespace residual {
namespace {

using test::expect_error;
using test::H5Writer;
using test::TempDir;

constexpr int64_t kN = 5, kH = 3, kW = 4, kC = 2;

// Pixel (n, h, w, c) of the test images: distinct values in 0..255.
int value(int64_t n, int64_t h, int64_t w, int64_t c) {
  return static_cast<int>(n * 24 + h * 8 + w * 2 + c);
}

template <typename T>
std::vector<T> images(bool channels_first) {
  std::vector<T> out;
  for (int64_t n = 0; n < kN; ++n) {
    for (int64_t a = 0; a < (channels_first ? kC : kH); ++a) {
      for (int64_t b = 0; b < (channels_first ? kH : kW); ++b) {
        for (int64_t d = 0; d < (channels_first ? kW : kC); ++d) {
          out.push_back(static_cast<T>(channels_first ? value(n, b, d, a) : value(n, a, b, d)));
        }
      }
    }
  }
  return out;
}

const std::vector<int64_t> kLabels = {2, 0, 1, 2, 1};

// uint8 NHWC images with int64 N x 1 labels: the usual layout of Keras-era files.
void write_nhwc(const std::string& path) {
  H5Writer file(path);
  file.write("images", H5T_NATIVE_UINT8, {kN, kH, kW, kC}, images<uint8_t>(false));
  file.write("labels", H5T_NATIVE_INT64, {kN, 1}, kLabels);
}

TEST(Hdf5, Uint8NhwcAndFloat32NchwGiveTheSameSamples) {
  TempDir dir;
  write_nhwc(dir.file("nhwc.h5"));
  {
    H5Writer file(dir.file("nchw.h5"));
    file.write("train_x", H5T_NATIVE_FLOAT, {kN, kC, kH, kW}, images<float>(true));
    file.write("train_y", H5T_NATIVE_UINT8, {kN},
               std::vector<uint8_t>(kLabels.begin(), kLabels.end()));
  }
  const auto nhwc = open_dataset("hdf5:" + dir.file("nhwc.h5"), Split::kTrain);
  DataOptions options;
  options.hdf5_images = "{split}_x";
  options.hdf5_labels = "{split}_y";
  options.hdf5_layout = "nchw";
  const auto nchw = open_dataset("hdf5:" + dir.file("nchw.h5"), Split::kTrain, options);
  for (const Dataset* data : {nhwc.get(), nchw.get()}) {
    EXPECT_EQ(data->size(), kN);
    EXPECT_EQ(data->sample_shape(), (Shape{kH, kW, kC}));
    EXPECT_EQ(data->num_classes(), 3);
  }
  EXPECT_EQ(nhwc->description(),
            "hdf5:" + dir.file("nhwc.h5") + " (train: 5 images 3x4x2, 3 classes)");
  const test::Samples a = test::read_all(*nhwc);
  const test::Samples b = test::read_all(*nchw);
  EXPECT_EQ(a.images, images<float>(false));
  EXPECT_EQ(b.images, a.images);
  EXPECT_EQ(a.labels, std::vector<int32_t>(kLabels.begin(), kLabels.end()));
  EXPECT_EQ(b.labels, a.labels);
}

TEST(Hdf5, ReadBatchInAnyOrderWithRepeats) {
  TempDir dir;
  DataOptions options;
  options.hdf5_layout = "nchw";
  {
    H5Writer file(dir.file("d.h5"));
    file.write("images", H5T_NATIVE_FLOAT, {kN, kC, kH, kW}, images<float>(true));
    file.write("labels", H5T_NATIVE_INT16, {kN},
               std::vector<int16_t>(kLabels.begin(), kLabels.end()));
  }
  const Hdf5Dataset data(dir.file("d.h5"), Split::kTest, options);
  const test::Samples all = test::read_all(data);
  const std::vector<int64_t> indices = {4, 0, 4, 2, 3, 1};
  const int64_t stride = kH * kW * kC;
  std::vector<float> batch(indices.size() * stride);
  std::vector<int32_t> labels(indices.size());
  data.read_batch(indices.data(), static_cast<int64_t>(indices.size()), batch.data(),
                  labels.data());
  for (size_t i = 0; i < indices.size(); ++i) {
    EXPECT_EQ(labels[i], all.labels[indices[i]]);
    EXPECT_TRUE(std::equal(batch.begin() + i * stride, batch.begin() + (i + 1) * stride,
                           all.images.begin() + indices[i] * stride))
        << "position " << i;
  }
}

TEST(Hdf5, SingleChannelImagesAndNumClassesAttribute) {
  TempDir dir;
  {
    H5Writer file(dir.file("d.h5"));
    file.write("images", H5T_NATIVE_UINT8, {2, 2, 3},
               std::vector<uint8_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255});
    file.write("labels", H5T_NATIVE_UINT32, {2}, std::vector<uint32_t>{1, 3}, 10);
  }
  const Hdf5Dataset data(dir.file("d.h5"), Split::kTrain, {});
  EXPECT_EQ(data.sample_shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(data.num_classes(), 10);
  const test::Samples all = test::read_all(data);
  EXPECT_EQ(all.images.back(), 255.0f);
  EXPECT_EQ(all.labels, (std::vector<int32_t>{1, 3}));
}

TEST(Hdf5, NotAnHdf5File) {
  TempDir dir;
  test::write_file(dir.file("x.h5"), {'n', 'o', 't', ' ', 'h', 'd', 'f', '5'});
  expect_error([&] { Hdf5Dataset(dir.file("x.h5"), Split::kTrain, {}); },
               {dir.file("x.h5"), "not an HDF5 file"});
  expect_error([&] { Hdf5Dataset(dir.file("none.h5"), Split::kTrain, {}); },
               {dir.file("none.h5"), "no such file"});
}

TEST(Hdf5, MissingDatasetListsTheRoot) {
  TempDir dir;
  write_nhwc(dir.file("d.h5"));
  DataOptions options;
  options.hdf5_images = "{split}_images";
  expect_error([&] { Hdf5Dataset(dir.file("d.h5"), Split::kTest, options); },
               {dir.file("d.h5"), "no dataset 'test_images'", "images, labels"});
}

TEST(Hdf5, WrongShapesAndTypes) {
  TempDir dir;
  const std::string path = dir.file("d.h5");
  const auto open = [&] { Hdf5Dataset(path, Split::kTrain, {}); };
  const std::vector<int64_t> labels = {0, 1};
  {
    H5Writer file(path);
    file.write("images", H5T_NATIVE_UINT8, {2, 12}, std::vector<uint8_t>(24));
    file.write("labels", H5T_NATIVE_INT64, {2}, labels);
  }
  expect_error(open, {path, "'images'", "rank 2", "2x12", "N x H x W x C"});
  {
    H5Writer file(path);
    file.write("images", H5T_NATIVE_INT16, {2, 2, 2, 1}, std::vector<int16_t>(8));
    file.write("labels", H5T_NATIVE_INT64, {2}, labels);
  }
  expect_error(open, {path, "unsupported element type int16", "uint8 or float32"});
  {
    H5Writer file(path);
    file.write("images", H5T_NATIVE_DOUBLE, {2, 2, 2, 1}, std::vector<double>(8));
    file.write("labels", H5T_NATIVE_FLOAT, {2}, std::vector<float>{0, 1});
  }
  expect_error(open, {path, "unsupported element type float64"});
  {
    H5Writer file(path);
    file.write("images", H5T_NATIVE_UINT8, {2, 2, 2, 1}, std::vector<uint8_t>(8));
    file.write("labels", H5T_NATIVE_FLOAT, {2}, std::vector<float>{0, 1});
  }
  expect_error(open, {path, "'labels'", "float32", "integer labels"});
  {
    H5Writer file(path);
    file.write("images", H5T_NATIVE_UINT8, {2, 2, 2, 1}, std::vector<uint8_t>(8));
    file.write("labels", H5T_NATIVE_INT64, {1, 2}, labels);
  }
  expect_error(open, {path, "'labels'", "shape 1x2", "N or N x 1"});
  {
    H5Writer file(path);
    file.write("images", H5T_NATIVE_UINT8, {2, 2, 2, 1}, std::vector<uint8_t>(8));
    file.write("labels", H5T_NATIVE_INT64, {3}, std::vector<int64_t>{0, 1, 2});
  }
  expect_error(open, {path, "3 labels", "2 images"});
  {
    H5Writer file(path);
    file.write("images", H5T_NATIVE_UINT8, {2, 0, 2, 1}, std::vector<uint8_t>{});
    file.write("labels", H5T_NATIVE_INT64, {2}, labels);
  }
  expect_error(open, {path, "zero dimension", "2x0x2x1"});
  DataOptions options;
  options.hdf5_layout = "chwn";
  expect_error([&] { Hdf5Dataset(path, Split::kTrain, options); }, {path, "chwn", "nhwc or nchw"});
}

TEST(Hdf5, LabelOutOfRange) {
  TempDir dir;
  const std::string path = dir.file("d.h5");
  {
    H5Writer file(path);
    file.write("images", H5T_NATIVE_UINT8, {3, 1, 1, 1}, std::vector<uint8_t>(3));
    file.write("labels", H5T_NATIVE_INT8, {3}, std::vector<int8_t>{0, -1, 1});
  }
  expect_error([&] { Hdf5Dataset(path, Split::kTrain, {}); }, {path, "label -1", "sample 1"});
  {
    H5Writer file(path);
    file.write("images", H5T_NATIVE_UINT8, {3, 1, 1, 1}, std::vector<uint8_t>(3));
    file.write("labels", H5T_NATIVE_INT32, {3}, std::vector<int32_t>{0, 4, 5}, 5);
  }
  expect_error([&] { Hdf5Dataset(path, Split::kTrain, {}); },
               {path, "label 5", "sample 2", "0..4", "num_classes"});
}

}  // namespace
}  // namespace residual
