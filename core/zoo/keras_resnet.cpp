// ResNet-50 as in the paper and keras.applications.ResNet50 ("v1"): the stride of a
// bottleneck on its first 1x1 conv, every conv with a bias, "same" 3x3 convs, Keras's BN
// epsilon. Kept beside the torchvision layout because Keras weights and the Coursera course
// (64 x 64 SIGNS images, 6 classes) use it.
#include <string>
#include <vector>

#include "core/zoo/graph_builder.h"
#include "core/zoo/resnet_blocks.h"
#include "core/zoo/zoo_families.h"

namespace residual::zoo {

namespace {

nlohmann::json keras_resnet50(const std::string& name, const ZooOptions& options) {
  const ResolvedOptions opts = resolve_options(name, options, 1000, {224, 224, 3});
  ResNetStyle style;
  style.conv_bias = true;
  style.pad_3x3 = "same";
  style.stride_on_first_1x1 = true;
  style.bn_momentum = 0.99;  // Keras's default
  // Keras's ResNet50 uses 1.001e-5, not 1e-5: an epsilon just above cuDNN's minimum.
  style.bn_epsilon = 1.001e-5;
  style.zero_init_residual = opts.zero_init_residual;

  GraphBuilder b(name);
  std::string x = b.input(opts.input_hwc);
  x = b.add("ZeroPadding2D", "conv1_pad", {x}, {{"padding", 3}});
  x = conv_bn(b, x, "conv1", "bn_conv1", 64, 7, 2, "valid", style);
  x = b.relu("conv1_relu", x);
  x = b.add("ZeroPadding2D", "pool1_pad", {x}, {{"padding", 1}});
  x = b.add("MaxPooling2D", "pool1", {x}, {{"pool_size", 3}, {"strides", 2}});

  int64_t channels = 64;
  x = residual_stages(b, x, channels, BlockKind::kBottleneck,
                      {{3, 64, 1}, {4, 128, 2}, {6, 256, 2}, {3, 512, 2}}, 2, style);

  // The head: global average pooling then Dense(classes). Keras-2's ResNet50 (224 x 224:
  // AveragePooling2D(7) on the 7 x 7 map) and the Coursera version (64 x 64:
  // AveragePooling2D(2) + Flatten on the 2 x 2 map) both pool the last map down to 1 x 1, so
  // they are this head at their input size and have its parameter count: the backbone has
  // 23,587,712 parameters (trainable and BN moving statistics), plus 2048 * 1000 + 1000 =
  // 25,636,712 in all for ImageNet, plus 2048 * 6 + 6 = 23,600,006 for 6 classes. A fixed
  // AveragePooling2D + Flatten would instead tie the Dense size to the input size.
  return b.finish(classifier_head(b, x, opts.classes));
}

}  // namespace

std::vector<ZooEntry> keras_resnet_entries() {
  return {{"resnet50-v1",
           [](const ZooOptions& options) { return keras_resnet50("resnet50-v1", options); }}};
}

}  // namespace residual::zoo
