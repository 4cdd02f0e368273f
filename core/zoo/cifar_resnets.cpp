// The CIFAR-10 networks of He et al. 2016, section 4.2: a 3x3 conv, then 3 stages of n basic
// blocks with 16, 32 and 64 channels (depth 6n + 2), global pooling and the classifier.
//   resnetD      option-A shortcuts (subsample + zero channels: no extra parameters)
//   resnetD-b    option-B shortcuts (projection conv 1x1 + BN where the shape changes)
//   se-resnetD[-b]  the same with squeeze-and-excitation
//   plainD       the same stack without any shortcut, the paper's baseline
#include <string>
#include <vector>

#include "core/error.h"
#include "core/zoo/graph_builder.h"
#include "core/zoo/resnet_blocks.h"
#include "core/zoo/zoo_families.h"

namespace residual::zoo {

namespace {

nlohmann::json cifar_resnet(const std::string& name, int depth, Shortcut shortcut,
                            bool squeeze_excitation, const ZooOptions& options) {
  const ResolvedOptions opts = resolve_options(name, options, 10, {32, 32, 3});
  ResNetStyle style;  // PyTorch conventions, as most CIFAR reproductions
  style.shortcut = shortcut;
  style.squeeze_excitation = squeeze_excitation;
  style.zero_init_residual = opts.zero_init_residual;

  GraphBuilder b(name);
  std::string x = b.input(opts.input_hwc);
  x = conv_bn(b, x, "conv1", "bn_conv1", 16, 3, 1, 1, style);
  x = b.relu("conv1_relu", x);
  const int n = (depth - 2) / 6;
  int64_t channels = 16;
  x = residual_stages(b, x, channels, BlockKind::kBasic, {{n, 16, 1}, {n, 32, 2}, {n, 64, 2}}, 2,
                      style);
  return b.finish(classifier_head(b, x, opts.classes));
}

void add_entry(std::vector<ZooEntry>& entries, const std::string& name, int depth,
               Shortcut shortcut, bool se) {
  entries.push_back({name, [name, depth, shortcut, se](const ZooOptions& options) {
                       return cifar_resnet(name, depth, shortcut, se, options);
                     }});
}

}  // namespace

std::vector<ZooEntry> cifar_resnet_entries() {
  const int depths[] = {20, 32, 44, 56, 110};
  std::vector<ZooEntry> entries;
  for (const char* prefix : {"resnet", "se-resnet"}) {
    const bool se = std::string(prefix) == "se-resnet";
    for (int depth : depths) {
      const std::string name = str_cat(prefix, depth);
      add_entry(entries, name, depth, Shortcut::kZeroPadded, se);
      add_entry(entries, name + "-b", depth, Shortcut::kProjection, se);
    }
  }
  for (int depth : {20, 56}) {
    add_entry(entries, str_cat("plain", depth), depth, Shortcut::kNone, false);
  }
  return entries;
}

}  // namespace residual::zoo
