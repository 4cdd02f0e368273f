// Small CNNs for quick end-to-end runs.
#include <string>
#include <vector>

#include "core/zoo/graph_builder.h"
#include "core/zoo/zoo_families.h"

namespace residual::zoo {

namespace {

// HappyModel of the Coursera "Keras tutorial" (Happy House, 64 x 64 faces, smiling or not),
// with the course's layer names. The course ends in Dense(1, sigmoid); here the unit is a
// logit like every zoo output, trained with sigmoid binary cross-entropy, which is the same
// model with a numerically stabler loss. There is one unit whatever `classes` says.
nlohmann::json happy_model(const ZooOptions& options) {
  const ResolvedOptions opts = resolve_options("happy-model", options, 1, {64, 64, 3});
  GraphBuilder b("happy-model");
  std::string x = b.input(opts.input_hwc);
  x = b.add("ZeroPadding2D", "zero_padding2d", {x}, {{"padding", 3}});
  x = b.conv2d("conv0", x, {{"filters", 32}, {"kernel_size", 7}, {"strides", 1}});
  x = b.batch_norm("bn0", x, nlohmann::json::object());  // Keras defaults: 0.99, 1e-3
  x = b.relu("relu0", x);
  x = b.add("MaxPooling2D", "max_pool", {x}, {{"pool_size", 2}});
  x = b.add("Flatten", "flatten", {x});
  return b.finish(b.dense("fc", x, {{"units", 1}}));
}

// A VGG-like MNIST classifier: 3 conv stages of growing width, then two dropout-regularized
// dense layers. Dense(classes) gives logits; the loss applies softmax.
nlohmann::json mnist_cnn(const ZooOptions& options) {
  const ResolvedOptions opts = resolve_options("mnist-cnn", options, 10, {28, 28, 1});
  GraphBuilder b("mnist-cnn");
  auto conv = [&b](const std::string& name, const std::string& in, int filters, int kernel) {
    return b.conv2d(name, in,
                    {{"filters", filters},
                     {"kernel_size", kernel},
                     {"padding", "same"},
                     {"activation", "relu"}});
  };
  auto pool = [&b](const std::string& name, const std::string& in) {
    return b.add("MaxPooling2D", name, {in}, {{"pool_size", 2}});
  };
  auto dense_dropout = [&b](const std::string& name, const std::string& in, int units) {
    const std::string y = b.dense(name, in, {{"units", units}, {"activation", "relu"}});
    return b.add("Dropout", name + "_dropout", {y}, {{"rate", 0.5}});
  };
  std::string x = b.input(opts.input_hwc);
  x = pool("pool1", conv("conv1", x, 64, 7));
  x = pool("pool2", conv("conv2b", conv("conv2a", x, 128, 3), 128, 3));
  x = pool("pool3", conv("conv3b", conv("conv3a", x, 256, 3), 256, 3));
  x = b.add("Flatten", "flatten", {x});
  x = dense_dropout("fc1", x, 128);
  x = dense_dropout("fc2", x, 64);
  return b.finish(b.dense("logits", x, {{"units", opts.classes}}));
}

}  // namespace

std::vector<ZooEntry> small_cnn_entries() {
  return {{"happy-model", happy_model}, {"mnist-cnn", mnist_cnn}};
}

}  // namespace residual::zoo
