#include <algorithm>
#include <numeric>
#include <set>
#include <thread>

#include "h5_writer.h"
#include "io_test_util.h"

namespace residual {
namespace {

using test::expect_error;

TEST(OpenDataset, MalformedSpecsListTheAcceptedForms) {
  for (const char* spec : {"mnist", "mnist:", "foo:bar", "synthetic:3x32:10", "synthetic:3x32x32",
                           "synthetic:3x32x32:0", "synthetic:0x32x32:10", "synthetic:axbxc:10",
                           "synthetic:3x32x32x1:10", "cifar10"}) {
    expect_error([&] { open_dataset(spec, Split::kTrain); },
                 {str_cat("'", spec, "'"), "mnist:DIR", "cifar10:DIR", "cifar100:DIR", "hdf5:FILE",
                  "synthetic:CxHxW:CLASSES"});
  }
  expect_error([] { open_dataset("foo:bar", Split::kTrain); }, {"unknown format 'foo'"});
}

TEST(OpenDataset, MissingDirectoryNamesTheFiles) {
  expect_error([] { open_dataset("mnist:/nonexistent/mnist", Split::kTrain); },
               {"/nonexistent/mnist/train-images-idx3-ubyte or "
                "/nonexistent/mnist/train-images-idx3-ubyte.gz"});
  expect_error([] { open_dataset("cifar10:/nonexistent/c", Split::kTest); },
               {"/nonexistent/c/test_batch.bin"});
}

TEST(Synthetic, DeterministicAndInRange) {
  DataOptions options;
  options.synthetic_size = 40;
  const auto a = open_dataset("synthetic:3x8x6:7", Split::kTrain, options);
  const auto b = open_dataset("synthetic:3x8x6:7", Split::kTrain, options);
  EXPECT_EQ(a->size(), 40);
  EXPECT_EQ(a->sample_shape(), (Shape{8, 6, 3}));
  EXPECT_EQ(a->num_classes(), 7);
  EXPECT_EQ(a->description(), "synthetic:3x8x6:7 (train: 40 images 8x6x3, 7 classes)");
  const test::Samples first = test::read_all(*a);
  const test::Samples second = test::read_all(*b);
  EXPECT_EQ(first.images, second.images);
  EXPECT_EQ(first.labels, second.labels);
  std::set<float> values(first.images.begin(), first.images.end());
  EXPECT_GT(values.size(), 200u);  // looks random
  EXPECT_GE(*values.begin(), 0.0f);
  EXPECT_LE(*values.rbegin(), 255.0f);
  for (float v : values) ASSERT_EQ(v, static_cast<float>(static_cast<int>(v)));
  for (int64_t i = 0; i < 40; ++i) EXPECT_EQ(first.labels[i], i % 7);
  // Samples differ from each other and between the splits.
  const int64_t stride = 8 * 6 * 3;
  EXPECT_FALSE(std::equal(first.images.begin(), first.images.begin() + stride,
                          first.images.begin() + stride));
  const test::Samples test =
      test::read_all(*open_dataset("synthetic:3x8x6:7", Split::kTest, options));
  EXPECT_NE(test.images, first.images);
}

// Reads every sample of `data` from four threads, each in its own interleaved order and
// through read_batch, and compares with a serial read.
void expect_concurrent_reads_match(const Dataset& data) {
  const test::Samples serial = test::read_all(data);
  const int64_t stride = data.sample_shape().numel();
  const int64_t n = data.size();
  std::vector<test::Samples> results(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      test::Samples& out = results[static_cast<size_t>(t)];
      out.images.assign(static_cast<size_t>(n * stride), -1.0f);
      out.labels.assign(static_cast<size_t>(n), -1);
      std::vector<int64_t> order(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) order[i] = (i * (2 * t + 1) + t) % n;
      if (n % (2 * t + 1) == 0) std::iota(order.begin(), order.end(), 0);
      constexpr int64_t kBatch = 16;
      std::vector<float> images(kBatch * stride);
      std::vector<int32_t> labels(kBatch);
      for (int64_t begin = 0; begin < n; begin += kBatch) {
        const int64_t count = std::min(kBatch, n - begin);
        data.read_batch(order.data() + begin, count, images.data(), labels.data());
        for (int64_t i = 0; i < count; ++i) {
          const int64_t index = order[begin + i];
          std::copy(images.begin() + i * stride, images.begin() + (i + 1) * stride,
                    out.images.begin() + index * stride);
          out.labels[index] = labels[i];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const test::Samples& result : results) {
    EXPECT_EQ(result.labels, serial.labels) << data.description();
    EXPECT_EQ(result.images, serial.images) << data.description();
  }
}

TEST(Concurrency, FourThreadsReadWhatOneReads) {
  expect_concurrent_reads_match(
      *open_dataset("mnist:" + test::source_dir() + "/data/mnist-10k", Split::kTest));
  DataOptions options;
  options.synthetic_size = 300;
  expect_concurrent_reads_match(*open_dataset("synthetic:3x16x16:10", Split::kTrain, options));

  test::TempDir dir;
  std::vector<uint8_t> cifar;
  for (int r = 0; r < 200; ++r) {
    cifar.push_back(static_cast<uint8_t>(r % 10));
    for (int p = 0; p < 3072; ++p) cifar.push_back(static_cast<uint8_t>(r * 31 + p * 7));
  }
  test::write_file(dir.file("test_batch.bin"), cifar);
  expect_concurrent_reads_match(*open_dataset("cifar10:" + dir.path(), Split::kTest));

  std::vector<uint8_t> pixels(500 * 3 * 8 * 8);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 13 + i / 192);
  std::vector<int32_t> labels(500);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>(i * 7 % 12);
  {
    test::H5Writer file(dir.file("d.h5"));
    file.write("images", H5T_NATIVE_UINT8, {500, 3, 8, 8}, pixels);
    file.write("labels", H5T_NATIVE_INT32, {500}, labels);
  }
  options.hdf5_layout = "nchw";
  expect_concurrent_reads_match(*open_dataset("hdf5:" + dir.file("d.h5"), Split::kTrain, options));
}

}  // namespace
}  // namespace residual
