// Writes the seed corpora of the fuzz targets: small valid inputs in each target's input
// format (see the comment at the top of each *_fuzzer.cpp). The files in fuzz/corpus/
// were made with
//   build-fuzz/bin/residual_fuzz_seeds fuzz/corpus
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/file_reader.h"

namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

void save(const fs::path& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
  std::printf("%s: %zu bytes\n", path.c_str(), bytes.size());
}

Bytes gzip(const Bytes& raw) {
  z_stream z{};
  if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  Bytes out(deflateBound(&z, raw.size()) + 32);
  z.next_in = const_cast<Bytes::value_type*>(raw.data());
  z.avail_in = static_cast<uInt>(raw.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) throw std::runtime_error("deflate failed");
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

Bytes be32(std::initializer_list<uint32_t> values) {
  Bytes out;
  for (uint32_t v : values) {
    out.resize(out.size() + 4);
    residual::store_be32(v, out.data() + out.size() - 4);
  }
  return out;
}

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Bytes pattern(size_t n, uint32_t seed, uint32_t modulo = 256) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>((i * 37 + seed * 101) % modulo);
  return out;
}

// The idx target's input: flags, the images file's length (2 bytes), images, labels.
Bytes idx_input(uint8_t flags, const Bytes& images, const Bytes& labels) {
  const Bytes head = {flags, static_cast<uint8_t>(images.size() >> 8),
                      static_cast<uint8_t>(images.size())};
  return head + images + labels;
}

Bytes idx_images(uint32_t count, uint32_t rows, uint32_t cols) {
  return be32({2051, count, rows, cols}) + pattern(size_t{count} * rows * cols, count);
}

Bytes idx_labels(uint32_t count) { return be32({2049, count}) + pattern(count, 7, 10); }

// `count` CIFAR records: label byte(s) below `classes`, then 3072 pixel bytes.
Bytes cifar_records(int count, int label_bytes, uint32_t classes) {
  Bytes out;
  for (int r = 0; r < count; ++r) {
    for (int b = 0; b < label_bytes; ++b)
      out.push_back(static_cast<uint8_t>((r * 3 + b) % classes));
    out = out + pattern(3072, static_cast<uint32_t>(r));
  }
  return out;
}

residual::Tensor tensor(const residual::Shape& shape, float scale) {
  residual::Tensor t = residual::Tensor::empty(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = scale * static_cast<float>(i % 7 - 3);
  return t;
}

// A checkpoint of a two-layer model (conv with batch norm, then dense) after a few steps
// of momentum SGD: every group and attribute of the format, in a few KB.
residual::Checkpoint tiny_checkpoint() {
  residual::Checkpoint c;
  c.model = {{"input", {4, 4, 1}},
             {"layers",
              {{{"type", "conv2d"}, {"name", "conv1"}, {"filters", 2}},
               {{"type", "dense"}, {"name", "dense"}, {"units", 3}}}}};
  c.config = {{"optimizer", "sgd"}, {"lr", 0.1}, {"batch", 4}};
  c.parameters["conv1/kernel"] = tensor({3, 3, 1, 2}, 0.25f);
  c.parameters["conv1/bias"] = tensor({2}, 0.5f);
  c.parameters["dense/kernel"] = tensor({8, 3}, 0.125f);
  c.parameters["dense/bias"] = tensor({3}, 1.0f);
  c.buffers["bn1/moving_mean"] = tensor({2}, 0.1f);
  c.buffers["bn1/moving_variance"] = tensor({2}, 0.2f);
  for (const auto& [name, t] : c.parameters)
    c.optimizer_state[name + "/momentum"] = tensor(t.shape(), 0.01f);
  c.optimizer = "sgd";
  c.optimizer_steps = c.global_step = 6;
  c.epoch = 2;
  c.seed = 42;
  c.global_batch_size = 4;
  c.learning_rate = 0.1;
  c.metrics = {{{"epoch", 1}, {"val_top1", 0.5}}, {{"epoch", 2}, {"val_top1", 0.625}}};
  c.best_metric = "val_top1";
  c.best_value = 0.625;
  c.best_epoch = 2;
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR   (writes CORPUS_DIR/{checkpoint,idx,cifar}/)\n",
                 argv[0]);
    return 2;
  }
  const fs::path root = argv[1];
  for (const char* d : {"checkpoint", "idx", "cifar"}) fs::create_directories(root / d);

  residual::write_checkpoint((root / "checkpoint/tiny.h5").string(), tiny_checkpoint());
  std::printf("%s: %ju bytes\n", (root / "checkpoint/tiny.h5").c_str(),
              static_cast<uintmax_t>(fs::file_size(root / "checkpoint/tiny.h5")));

  save(root / "idx/train-3x4x4", idx_input(0, idx_images(3, 4, 4), idx_labels(3)));
  save(root / "idx/test-2x5x3", idx_input(4, idx_images(2, 5, 3), idx_labels(2)));
  save(root / "idx/train-gz-2x6x6", idx_input(3, gzip(idx_images(2, 6, 6)), gzip(idx_labels(2))));
  save(root / "idx/test-images-gz-1x28x28",
       idx_input(5, gzip(idx_images(1, 28, 28)), idx_labels(1)));

  save(root / "cifar/cifar10-test-1", Bytes{2} + cifar_records(1, 1, 10));
  save(root / "cifar/cifar10-train-5x1", Bytes{4} + cifar_records(1, 1, 10));
  save(root / "cifar/cifar100-train-2", Bytes{1} + cifar_records(2, 2, 100));
  save(root / "cifar/cifar100-test-1", Bytes{3} + cifar_records(1, 2, 100));
  return 0;
}
