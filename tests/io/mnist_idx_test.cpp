#include <zlib.h>

#include <algorithm>
#include <numeric>

#include "io/mnist_idx_dataset.h"
#include "io_test_util.h"

namespace residual {
namespace {

using test::concat;
using test::expect_error;
using test::idx_header;
using test::TempDir;
using test::write_file;

std::string mnist_dir() { return test::source_dir() + "/data/mnist-10k"; }

TEST(MnistIdx, RealTrainingSet) {
  const auto data = open_dataset("mnist:" + mnist_dir(), Split::kTrain);
  EXPECT_EQ(data->size(), 8010);
  EXPECT_EQ(data->sample_shape(), (Shape{28, 28, 1}));
  EXPECT_EQ(data->num_classes(), 10);
  EXPECT_EQ(data->description(),
            "mnist:" + mnist_dir() + " (train: 8010 images 28x28x1, 10 classes)");

  const test::Samples all = test::read_all(*data);
  std::vector<int> per_class(10, 0);
  for (int32_t label : all.labels) ++per_class.at(static_cast<size_t>(label));
  EXPECT_EQ(per_class, std::vector<int>(10, 801));
  EXPECT_EQ(*std::min_element(all.images.begin(), all.images.end()), 0.0f);
  EXPECT_EQ(*std::max_element(all.images.begin(), all.images.end()), 255.0f);
  for (float v : all.images) ASSERT_EQ(v, static_cast<float>(static_cast<int>(v)));

  // Decoded by hand: python3 -c "import gzip; l = gzip.open('train-labels-idx1-ubyte.gz')
  // .read(); print(list(l[8:20]))", and the sums of the first images' pixels likewise.
  EXPECT_EQ(std::vector<int32_t>(all.labels.begin(), all.labels.begin() + 12),
            (std::vector<int32_t>{6, 1, 4, 7, 1, 0, 1, 7, 2, 0, 3, 8}));
  const auto pixel_sum = [&](int64_t i) {
    return std::accumulate(all.images.begin() + i * 784, all.images.begin() + (i + 1) * 784, 0.0);
  };
  EXPECT_EQ(pixel_sum(0), 25690);
  EXPECT_EQ(pixel_sum(1), 13083);
  EXPECT_EQ(pixel_sum(2), 24753);
  EXPECT_EQ(pixel_sum(8009), 27988);
  // Row 14 of the first image: 00 x8, 95 fe f2 2d 00 00 00 1f d9 fe fe c0 6d 7e c5 00 x5.
  EXPECT_EQ(all.images[14 * 28 + 7], 0x00);
  EXPECT_EQ(all.images[14 * 28 + 8], 0x95);
  EXPECT_EQ(all.images[14 * 28 + 9], 0xfe);
  EXPECT_EQ(all.images[14 * 28 + 22], 0xc5);
}

TEST(MnistIdx, RealTestSet) {
  const auto data = open_dataset("mnist:" + mnist_dir(), Split::kTest);
  EXPECT_EQ(data->size(), 1990);
  EXPECT_EQ(data->sample_shape(), (Shape{28, 28, 1}));
  const test::Samples all = test::read_all(*data);
  EXPECT_EQ(std::vector<int32_t>(all.labels.begin(), all.labels.begin() + 12),
            (std::vector<int32_t>{3, 1, 6, 4, 3, 6, 1, 6, 9, 6, 2, 7}));
  EXPECT_EQ(std::accumulate(all.images.begin(), all.images.begin() + 784, 0.0), 21346);
  // The held-out digits are not balanced (see data/mnist-10k/README.md).
  std::vector<int> per_class(10, 0);
  for (int32_t label : all.labels) ++per_class.at(static_cast<size_t>(label));
  EXPECT_EQ(per_class, (std::vector<int>{200, 326, 190, 231, 179, 62, 213, 269, 143, 177}));
}

// Decompresses a .gz file with zlib, independently of the reader.
std::vector<uint8_t> gunzip(const std::string& path) {
  gzFile gz = gzopen(path.c_str(), "rb");
  EXPECT_NE(gz, nullptr) << path;
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  for (int got; (got = gzread(gz, chunk, sizeof(chunk))) > 0;)
    bytes.insert(bytes.end(), chunk, chunk + got);
  gzclose(gz);
  return bytes;
}

TEST(MnistIdx, RawAndGzipGiveTheSameSamples) {
  TempDir dir;
  for (const char* name : {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    write_file(dir.file(name), gunzip(mnist_dir() + "/" + name + ".gz"));
  }
  const auto raw = open_dataset("mnist:" + dir.path(), Split::kTest);
  const auto gz = open_dataset("mnist:" + mnist_dir(), Split::kTest);
  ASSERT_EQ(raw->size(), gz->size());
  const test::Samples a = test::read_all(*raw);
  const test::Samples b = test::read_all(*gz);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.images, b.images);
}

// A valid 3-image set of 2x3 pixels with labels 0, 9, 4, in `dir` as the training split.
void write_tiny(const TempDir& dir) {
  std::vector<uint8_t> pixels(18);
  std::iota(pixels.begin(), pixels.end(), uint8_t{100});
  write_file(dir.file("train-images-idx3-ubyte"), concat(idx_header(2051, {3, 2, 3}), pixels));
  write_file(dir.file("train-labels-idx1-ubyte"), concat(idx_header(2049, {3}), {0, 9, 4}));
}

TEST(MnistIdx, TinyHandWrittenFiles) {
  TempDir dir;
  write_tiny(dir);
  MnistIdxDataset data(dir.path(), Split::kTrain);
  EXPECT_EQ(data.size(), 3);
  EXPECT_EQ(data.sample_shape(), (Shape{2, 3, 1}));
  float image[6];
  int32_t label = -1;
  data.read(1, image, &label);
  EXPECT_EQ(label, 9);
  EXPECT_EQ(std::vector<float>(image, image + 6),
            (std::vector<float>{106, 107, 108, 109, 110, 111}));
  expect_error([&] { data.read(3, image, &label); }, {"sample index 3", dir.path()});
}

TEST(MnistIdx, MissingFilesSayWhatIsLookedFor) {
  TempDir dir;
  const std::string images = dir.file("t10k-images-idx3-ubyte");
  expect_error([&] { MnistIdxDataset(dir.path(), Split::kTest); }, {images, images + ".gz"});
  write_tiny(dir);
  const std::string labels = dir.file("t10k-labels-idx1-ubyte");
  write_file(dir.file("t10k-images-idx3-ubyte"), concat(idx_header(2051, {1, 1, 1}), {7}));
  expect_error([&] { MnistIdxDataset(dir.path(), Split::kTest); }, {labels, labels + ".gz"});
}

TEST(MnistIdx, WrongMagicNumber) {
  TempDir dir;
  write_tiny(dir);
  const std::string images = dir.file("train-images-idx3-ubyte");
  // Labels where images should be: the classic mix-up.
  write_file(images, concat(idx_header(2049, {3}), {0, 9, 4}));
  expect_error([&] { MnistIdxDataset(dir.path(), Split::kTrain); },
               {images, "magic", "expected 2051", "got 2049"});
}

TEST(MnistIdx, TruncatedFiles) {
  TempDir dir;
  write_tiny(dir);
  const std::string images = dir.file("train-images-idx3-ubyte");
  write_file(images, concat(idx_header(2051, {3, 2, 3}), std::vector<uint8_t>(17)));
  expect_error([&] { MnistIdxDataset(dir.path(), Split::kTrain); },
               {images, "truncated", "33 bytes", "3 images of 2x3", "34 bytes"});
  write_file(images, {0, 0, 8, 3, 0});
  expect_error([&] { MnistIdxDataset(dir.path(), Split::kTrain); },
               {images, "truncated", "header"});

  write_tiny(dir);
  const std::string labels = dir.file("train-labels-idx1-ubyte");
  write_file(labels, concat(idx_header(2049, {3}), {0, 9}));
  expect_error([&] { MnistIdxDataset(dir.path(), Split::kTrain); },
               {labels, "truncated", "3 labels"});
}

TEST(MnistIdx, TruncatedGzipFile) {
  TempDir dir;
  std::vector<uint8_t> gz;
  {
    std::ifstream in(mnist_dir() + "/t10k-labels-idx1-ubyte.gz", std::ios::binary);
    gz.assign(std::istreambuf_iterator<char>(in), {});
  }
  gz.resize(gz.size() / 2);
  write_file(dir.file("t10k-labels-idx1-ubyte.gz"), gz);
  write_file(dir.file("t10k-images-idx3-ubyte"), concat(idx_header(2051, {1, 1, 1}), {7}));
  expect_error([&] { MnistIdxDataset(dir.path(), Split::kTest); },
               {dir.file("t10k-labels-idx1-ubyte.gz"), "decompress"});
}

TEST(MnistIdx, CountsThatDiffer) {
  TempDir dir;
  write_tiny(dir);
  const std::string labels = dir.file("train-labels-idx1-ubyte");
  write_file(labels, concat(idx_header(2049, {2}), {0, 9}));
  expect_error([&] { MnistIdxDataset(dir.path(), Split::kTrain); },
               {labels, "2 labels", "3 images", dir.file("train-images-idx3-ubyte")});
}

TEST(MnistIdx, LabelOutOfRange) {
  TempDir dir;
  write_tiny(dir);
  const std::string labels = dir.file("train-labels-idx1-ubyte");
  write_file(labels, concat(idx_header(2049, {3}), {0, 10, 4}));
  expect_error([&] { MnistIdxDataset(dir.path(), Split::kTrain); },
               {labels, "label 10", "sample 1", "0..9"});
}

TEST(MnistIdx, ZeroDimensions) {
  TempDir dir;
  write_tiny(dir);
  const std::string images = dir.file("train-images-idx3-ubyte");
  write_file(images, idx_header(2051, {3, 0, 3}));
  expect_error([&] { MnistIdxDataset(dir.path(), Split::kTrain); },
               {images, "non-zero", "3 images of 0x3"});
  write_file(images, idx_header(2051, {0, 28, 28}));
  expect_error([&] { MnistIdxDataset(dir.path(), Split::kTrain); }, {images, "0 images"});
}

}  // namespace
}  // namespace residual
