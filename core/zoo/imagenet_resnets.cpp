// ImageNet ResNets in torchvision's layout (He et al. 2016 with the stride of a bottleneck on
// its 3x3 conv, "v1.5"), and their squeeze-and-excitation variants (Hu et al. 2018).
// Built to match torchvision.models.resnet* parameter for parameter, so that PyTorch weights
// map one to one (conv1 <-> conv1, res2a_branch2a <-> layer1.0.conv1, ...).
#include <string>
#include <vector>

#include "core/zoo/graph_builder.h"
#include "core/zoo/resnet_blocks.h"
#include "core/zoo/zoo_families.h"

namespace residual::zoo {

namespace {

struct ImageNetDepth {
  int depth;
  BlockKind kind;
  std::vector<int> blocks;  // per stage, widths 64, 128, 256, 512
};

const std::vector<ImageNetDepth>& imagenet_depths() {
  // One depth a line, as table 1 of the paper.
  // clang-format off
  static const std::vector<ImageNetDepth> depths = {
      {18, BlockKind::kBasic, {2, 2, 2, 2}},
      {34, BlockKind::kBasic, {3, 4, 6, 3}},
      {50, BlockKind::kBottleneck, {3, 4, 6, 3}},
      {101, BlockKind::kBottleneck, {3, 4, 23, 3}},
      {152, BlockKind::kBottleneck, {3, 8, 36, 3}},
  };
  // clang-format on
  return depths;
}

nlohmann::json torchvision_resnet(const std::string& name, const ImageNetDepth& depth,
                                  bool squeeze_excitation, const ZooOptions& options) {
  const ResolvedOptions opts = resolve_options(name, options, 1000, {224, 224, 3});
  ResNetStyle style;  // the defaults are torchvision's: no conv bias, padding 1, BN 0.9 / 1e-5
  style.squeeze_excitation = squeeze_excitation;
  style.zero_init_residual = opts.zero_init_residual;

  GraphBuilder b(name);
  std::string x = b.input(opts.input_hwc);
  // Explicit paddings rather than "same": at stride 2 on an even size TensorFlow's "same"
  // pads 0 before and 1 after, PyTorch pads 1 on both sides, and the outputs would differ
  // by one pixel of alignment.
  x = conv_bn(b, x, "conv1", "bn_conv1", 64, 7, 2, 3, style);
  x = b.relu("conv1_relu", x);
  x = b.add("MaxPooling2D", "pool1", {x}, {{"pool_size", 3}, {"strides", 2}, {"padding", 1}});

  std::vector<StageSpec> stages;
  const int64_t widths[] = {64, 128, 256, 512};
  for (size_t s = 0; s < depth.blocks.size(); ++s) {
    stages.push_back({depth.blocks[s], widths[s], s == 0 ? 1 : 2});
  }
  int64_t channels = 64;
  x = residual_stages(b, x, channels, depth.kind, stages, 2, style);
  return b.finish(classifier_head(b, x, opts.classes));
}

}  // namespace

std::vector<ZooEntry> imagenet_resnet_entries() {
  std::vector<ZooEntry> entries;
  for (bool se : {false, true}) {
    for (const ImageNetDepth& depth : imagenet_depths()) {
      const std::string name =
          std::string(se ? "se-" : "") + "resnet" + std::to_string(depth.depth);
      entries.push_back({name, [name, depth, se](const ZooOptions& options) {
                           return torchvision_resnet(name, depth, se, options);
                         }});
    }
  }
  return entries;
}

}  // namespace residual::zoo
