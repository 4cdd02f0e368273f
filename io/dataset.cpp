#include "io/dataset.h"

#include <cstdlib>

#include "core/error.h"
#include "core/image_limits.h"
#include "io/cifar_binary_dataset.h"
#include "io/hdf5_dataset.h"
#include "io/mnist_idx_dataset.h"
#include "io/reader_util.h"
#include "io/synthetic_dataset.h"

namespace residual {
namespace {

constexpr const char* kAcceptedForms =
    "expected one of mnist:DIR, cifar10:DIR, cifar100:DIR, hdf5:FILE, "
    "synthetic:CxHxW:CLASSES (e.g. synthetic:3x32x32:10)";

[[noreturn]] void bad_spec(const std::string& spec, const std::string& why) {
  fail("data set '", spec, "': ", why, "; ", kAcceptedForms);
}

// A positive decimal integer, or -1.
int64_t parse_positive(const std::string& text) {
  if (text.empty() || text.size() > 12 ||
      text.find_first_not_of("0123456789") != std::string::npos) {
    return -1;
  }
  const int64_t value = std::strtoll(text.c_str(), nullptr, 10);
  return value > 0 ? value : -1;
}

std::unique_ptr<Dataset> open_synthetic(const std::string& spec, const std::string& rest,
                                        Split split, const DataOptions& options) {
  const size_t colon = rest.find(':');
  if (colon == std::string::npos) bad_spec(spec, "synthetic needs a shape and a class count");
  const std::string shape = rest.substr(0, colon);
  int64_t dims[3];
  size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    const size_t end = i < 2 ? shape.find('x', start) : shape.size();
    if (end == std::string::npos) bad_spec(spec, "synthetic shape must be CxHxW");
    dims[i] = parse_positive(shape.substr(start, end - start));
    if (dims[i] < 0) bad_spec(spec, "synthetic shape must be three positive integers CxHxW");
    start = end + 1;
  }
  check_image_dims({dims[0], dims[1], dims[2]}, "data set '" + spec + "'");
  const int64_t classes = parse_positive(rest.substr(colon + 1));
  if (classes < 0) bad_spec(spec, "synthetic class count must be a positive integer");
  RESIDUAL_CHECK(options.synthetic_size > 0, "data set '", spec,
                 "': synthetic_size must be positive, got ", options.synthetic_size);
  return std::make_unique<SyntheticDataset>(Shape{dims[1], dims[2], dims[0]}, classes,
                                            options.synthetic_size, split);
}

}  // namespace

const char* split_name(Split split) { return split == Split::kTrain ? "train" : "test"; }

void Dataset::read_batch(const int64_t* indices, int64_t n, float* images, int32_t* labels) const {
  const int64_t stride = sample_shape().numel();
  for (int64_t i = 0; i < n; ++i) read(indices[i], images + i * stride, labels + i);
}

std::string describe(const std::string& source, Split split, const Dataset& data) {
  return str_cat(source, " (", split_name(split), ": ", data.size(), " images ",
                 data.sample_shape().str(), ", ", data.num_classes(), " classes)");
}

std::unique_ptr<Dataset> open_dataset(const std::string& spec, Split split,
                                      const DataOptions& options) {
  const size_t colon = spec.find(':');
  if (colon == std::string::npos) bad_spec(spec, "no ':' between the format and its source");
  const std::string kind = spec.substr(0, colon);
  const std::string rest = spec.substr(colon + 1);
  if (rest.empty()) bad_spec(spec, "nothing after '" + kind + ":'");
  if (kind == "mnist") return std::make_unique<MnistIdxDataset>(rest, split);
  if (kind == "cifar10") {
    return std::make_unique<CifarBinaryDataset>(rest, split, CifarVariant::kCifar10);
  }
  if (kind == "cifar100") {
    return std::make_unique<CifarBinaryDataset>(rest, split, CifarVariant::kCifar100);
  }
  if (kind == "hdf5") return std::make_unique<Hdf5Dataset>(rest, split, options);
  if (kind == "synthetic") return open_synthetic(spec, rest, split, options);
  bad_spec(spec, "unknown format '" + kind + "'");
}

}  // namespace residual
