#include "core/zoo/resnet_blocks.h"

#include "core/error.h"
#include "core/zoo/squeeze_excitation.h"

namespace residual::zoo {

using nlohmann::json;

namespace {
constexpr int64_t kBottleneckExpansion = 4;
}  // namespace

std::string block_label(int stage, int index, int blocks) {
  if (blocks <= 26) return str_cat(stage, static_cast<char>('a' + index));
  // ResNet-152's 36-block stage runs out of letters; the original Caffe models number the
  // blocks after the first instead (res4b1 ... res4b35).
  return index == 0 ? str_cat(stage, 'a') : str_cat(stage, 'b', index);
}

std::string conv_bn(GraphBuilder& b, const std::string& input, const std::string& conv_name,
                    const std::string& bn_name, int64_t filters, int kernel, int strides,
                    const json& padding, const ResNetStyle& style, bool zero_gamma) {
  const std::string conv = b.conv2d(conv_name, input,
                                    {{"filters", filters},
                                     {"kernel_size", kernel},
                                     {"strides", strides},
                                     {"padding", padding},
                                     {"use_bias", style.conv_bias}});
  json bn = {{"momentum", style.bn_momentum}, {"epsilon", style.bn_epsilon}};
  if (zero_gamma) bn["gamma_initializer"] = "zeros";
  return b.batch_norm(bn_name, conv, bn);
}

namespace {

// The residual branch up to its last BN; the caller adds SE, the shortcut and the ReLU.
std::string residual_branch(GraphBuilder& b, const std::string& input, BlockKind kind,
                            int64_t width, int64_t out_channels, int strides,
                            const std::string& label, const ResNetStyle& style) {
  const bool zero_gamma = style.zero_init_residual && style.shortcut != Shortcut::kNone;
  auto conv = [&](const std::string& x, const std::string& part, int64_t filters, int kernel,
                  int conv_strides, bool last) {
    const json padding = kernel == 1 ? json("valid") : style.pad_3x3;
    const std::string y =
        conv_bn(b, x, "res" + label + "_branch" + part, "bn" + label + "_branch" + part, filters,
                kernel, conv_strides, padding, style, last && zero_gamma);
    return last ? y : b.relu("res" + label + "_branch" + part + "_relu", y);
  };
  if (kind == BlockKind::kBasic) {
    const std::string x = conv(input, "2a", width, 3, strides, false);
    return conv(x, "2b", width, 3, 1, true);
  }
  // torchvision ("ResNet v1.5") strides the 3x3 conv, which keeps 3/4 of the input the
  // first 1x1 conv would otherwise skip; Keras and the paper stride the first 1x1 conv.
  const int strides_1x1 = style.stride_on_first_1x1 ? strides : 1;
  const int strides_3x3 = style.stride_on_first_1x1 ? 1 : strides;
  std::string x = conv(input, "2a", width, 1, strides_1x1, false);
  x = conv(x, "2b", width, 3, strides_3x3, false);
  return conv(x, "2c", out_channels, 1, 1, true);
}

}  // namespace

std::string residual_block(GraphBuilder& b, const std::string& input, int64_t& channels,
                           BlockKind kind, int64_t width, int strides, const std::string& label,
                           const ResNetStyle& style) {
  const int64_t out_channels = kind == BlockKind::kBasic ? width : kBottleneckExpansion * width;
  std::string branch = residual_branch(b, input, kind, width, out_channels, strides, label, style);
  if (style.squeeze_excitation) {
    branch = squeeze_excitation(b, branch, out_channels, "res" + label);
  }
  const bool reshapes = strides != 1 || channels != out_channels;
  channels = out_channels;
  if (style.shortcut == Shortcut::kNone) return b.relu("res" + label + "_relu", branch);

  std::string shortcut = input;
  if (reshapes && style.shortcut == Shortcut::kProjection) {
    shortcut = conv_bn(b, input, "res" + label + "_branch1", "bn" + label + "_branch1",
                       out_channels, 1, strides, "valid", style);
  } else if (reshapes) {
    shortcut = b.add("ZeroPaddedShortcut", "res" + label + "_branch1", {input},
                     {{"strides", strides}, {"filters", out_channels}});
  }
  const std::string sum = b.add("Add", "res" + label, {branch, shortcut});
  return b.relu("res" + label + "_relu", sum);
}

std::string residual_stages(GraphBuilder& b, const std::string& input, int64_t& channels,
                            BlockKind kind, const std::vector<StageSpec>& stages, int first_stage,
                            const ResNetStyle& style) {
  std::string x = input;
  for (size_t s = 0; s < stages.size(); ++s) {
    const StageSpec& stage = stages[s];
    const int number = first_stage + static_cast<int>(s);
    for (int i = 0; i < stage.blocks; ++i) {
      x = residual_block(b, x, channels, kind, stage.width, i == 0 ? stage.strides : 1,
                         block_label(number, i, stage.blocks), style);
    }
  }
  return x;
}

std::string classifier_head(GraphBuilder& b, const std::string& input, int classes) {
  const std::string pooled = b.add("GlobalAveragePooling2D", "avg_pool", {input});
  return b.dense("fc", pooled, {{"units", classes}});
}

}  // namespace residual::zoo
