#include "io/cifar_binary_dataset.h"
#include "io_test_util.h"

namespace residual {
namespace {

using test::expect_error;
using test::TempDir;
using test::write_file;

constexpr int64_t kPlane = 32 * 32;

// The byte of channel c at pixel p (row-major in the 32x32 plane) of sample s.
uint8_t pixel(int64_t s, int64_t c, int64_t p) { return static_cast<uint8_t>(s * 7 + c * 50 + p); }

// Records of the given label bytes (one or two a record) and the pixels above, stored CHW
// as in the CIFAR binary files; `first` numbers the samples.
std::vector<uint8_t> records(const std::vector<std::vector<uint8_t>>& labels, int64_t first) {
  std::vector<uint8_t> bytes;
  for (size_t r = 0; r < labels.size(); ++r) {
    bytes.insert(bytes.end(), labels[r].begin(), labels[r].end());
    for (int64_t c = 0; c < 3; ++c) {
      for (int64_t p = 0; p < kPlane; ++p)
        bytes.push_back(pixel(first + static_cast<int64_t>(r), c, p));
    }
  }
  return bytes;
}

// data_batch_1..5 with 2, 3, 1, 2, 2 records, labelled (sample index) % 10.
void write_cifar10_train(const TempDir& dir) {
  const int counts[] = {2, 3, 1, 2, 2};
  int64_t first = 0;
  for (int b = 0; b < 5; ++b) {
    std::vector<std::vector<uint8_t>> labels;
    for (int i = 0; i < counts[b]; ++i) labels.push_back({static_cast<uint8_t>((first + i) % 10)});
    write_file(dir.file(str_cat("data_batch_", b + 1, ".bin")), records(labels, first));
    first += counts[b];
  }
}

void expect_sample(const Dataset& data, int64_t index, int64_t pixels_of, int32_t label) {
  std::vector<float> image(static_cast<size_t>(3 * kPlane));
  int32_t got = -1;
  data.read(index, image.data(), &got);
  EXPECT_EQ(got, label) << "sample " << index;
  // Channels last: pixel p's three channels are consecutive.
  for (int64_t p = 0; p < kPlane; ++p) {
    for (int64_t c = 0; c < 3; ++c) {
      ASSERT_EQ(image[p * 3 + c], pixel(pixels_of, c, p)) << "sample " << index << " p " << p;
    }
  }
}

TEST(CifarBinary, Cifar10TrainFilesAppearAsOneDataSet) {
  TempDir dir;
  write_cifar10_train(dir);
  const auto data = open_dataset("cifar10:" + dir.path(), Split::kTrain);
  EXPECT_EQ(data->size(), 10);
  EXPECT_EQ(data->sample_shape(), (Shape{32, 32, 3}));
  EXPECT_EQ(data->num_classes(), 10);
  EXPECT_EQ(data->description(),
            "cifar10:" + dir.path() + " (train: 10 images 32x32x3, 10 classes)");
  for (int64_t i = 0; i < 10; ++i) expect_sample(*data, i, i, static_cast<int32_t>(i % 10));
}

TEST(CifarBinary, Cifar10TestFile) {
  TempDir dir;
  write_file(dir.file("test_batch.bin"), records({{3}, {9}, {0}}, 40));
  CifarBinaryDataset data(dir.path(), Split::kTest, CifarVariant::kCifar10);
  EXPECT_EQ(data.size(), 3);
  expect_sample(data, 0, 40, 3);
  expect_sample(data, 1, 41, 9);
  expect_sample(data, 2, 42, 0);
}

TEST(CifarBinary, Cifar100UsesTheFineLabel) {
  TempDir dir;
  write_file(dir.file("train.bin"), records({{19, 99}, {0, 42}, {7, 0}}, 5));
  write_file(dir.file("test.bin"), records({{1, 73}}, 9));
  const auto train = open_dataset("cifar100:" + dir.path(), Split::kTrain);
  EXPECT_EQ(train->size(), 3);
  EXPECT_EQ(train->num_classes(), 100);
  expect_sample(*train, 0, 5, 99);
  expect_sample(*train, 1, 6, 42);
  expect_sample(*train, 2, 7, 0);
  const auto test = open_dataset("cifar100:" + dir.path(), Split::kTest);
  EXPECT_EQ(test->size(), 1);
  expect_sample(*test, 0, 9, 73);
}

TEST(CifarBinary, MissingFileNamesTheSplitsFiles) {
  TempDir dir;
  write_cifar10_train(dir);
  std::filesystem::remove(dir.file("data_batch_3.bin"));
  expect_error([&] { CifarBinaryDataset(dir.path(), Split::kTrain, CifarVariant::kCifar10); },
               {dir.file("data_batch_3.bin"), "missing", "data_batch_1.bin .. data_batch_5.bin"});
  expect_error([&] { CifarBinaryDataset(dir.path(), Split::kTest, CifarVariant::kCifar100); },
               {dir.file("test.bin"), "missing"});
}

TEST(CifarBinary, SizeNotAMultipleOfTheRecord) {
  TempDir dir;
  std::vector<uint8_t> bytes = records({{1}, {2}}, 0);
  bytes.pop_back();
  write_file(dir.file("test_batch.bin"), bytes);
  expect_error([&] { CifarBinaryDataset(dir.path(), Split::kTest, CifarVariant::kCifar10); },
               {dir.file("test_batch.bin"), "6145 bytes", "3073-byte record"});
  // A CIFAR-10 file read as CIFAR-100: records are one byte shorter.
  write_file(dir.file("test.bin"), records({{1}, {2}}, 0));
  expect_error([&] { CifarBinaryDataset(dir.path(), Split::kTest, CifarVariant::kCifar100); },
               {dir.file("test.bin"), "3074-byte record"});
  write_file(dir.file("test_batch.bin"), {});
  expect_error([&] { CifarBinaryDataset(dir.path(), Split::kTest, CifarVariant::kCifar10); },
               {dir.file("test_batch.bin"), "size 0 bytes"});
}

TEST(CifarBinary, LabelOutOfRange) {
  TempDir dir;
  write_file(dir.file("test_batch.bin"), records({{1}, {10}}, 0));
  expect_error([&] { CifarBinaryDataset(dir.path(), Split::kTest, CifarVariant::kCifar10); },
               {dir.file("test_batch.bin"), "label 10", "record 1", "0..9"});
  write_file(dir.file("test.bin"), records({{1, 100}}, 0));
  expect_error([&] { CifarBinaryDataset(dir.path(), Split::kTest, CifarVariant::kCifar100); },
               {dir.file("test.bin"), "label 100", "record 0", "0..99"});
}

}  // namespace
}  // namespace residual
