#pragma once
// Residual blocks and stages shared by every ResNet family of the zoo (torchvision, Keras,
// CIFAR, squeeze-and-excitation, plain). The families differ only in a ResNetStyle and their
// stems, so a block is written once.
//
// Layer names follow Keras's ResNet50 (identity_block / conv_block): block "2a" has the
// branch convs res2a_branch2a, res2a_branch2b[, res2a_branch2c] with batch norms
// bn2a_branch2a, ..., the shortcut res2a_branch1 / bn2a_branch1, the sum res2a and the ReLU
// after it res2a_relu.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/zoo/graph_builder.h"

namespace residual::zoo {

// What a block does when its input and output shapes differ.
enum class Shortcut {
  kProjection,  // conv 1x1 (strided) + BN, option B of He et al.
  kZeroPadded,  // subsample and zero-pad the channels, option A (no parameters)
  kNone,        // plain network: no shortcut and no Add at all
};

enum class BlockKind {
  kBasic,       // two 3x3 convs, out = width
  kBottleneck,  // 1x1, 3x3, 1x1 convs, out = 4 * width
};

struct ResNetStyle {
  bool conv_bias = false;            // torchvision: no bias before a BN; Keras: bias
  nlohmann::json pad_3x3 = 1;        // explicit 1 matches PyTorch at stride 2; or "same"
  bool stride_on_first_1x1 = false;  // bottleneck: Keras v1 strides the first 1x1 conv
  double bn_momentum = 0.9;          // Keras semantics: PyTorch's momentum 0.1
  double bn_epsilon = 1e-5;
  Shortcut shortcut = Shortcut::kProjection;
  bool squeeze_excitation = false;  // SE on the residual branch before the Add
  bool zero_init_residual = false;  // gamma = 0 on the last BN of each residual branch
};

struct StageSpec {
  int blocks;
  int64_t width;  // channels of the 3x3 convs
  int strides;    // of the stage's first block
};

// "2a", "2b", ... ; stages of more than 26 blocks use Caffe's "4a", "4b1", "4b2", ...
std::string block_label(int stage, int index, int blocks);

// Conv2D (no activation) followed by BatchNormalization, both configured by `style`.
std::string conv_bn(GraphBuilder& b, const std::string& input, const std::string& conv_name,
                    const std::string& bn_name, int64_t filters, int kernel, int strides,
                    const nlohmann::json& padding, const ResNetStyle& style,
                    bool zero_gamma = false);

// One residual block; `channels` is the input's channel count and becomes the output's.
std::string residual_block(GraphBuilder& b, const std::string& input, int64_t& channels,
                           BlockKind kind, int64_t width, int strides, const std::string& label,
                           const ResNetStyle& style);

// Consecutive stages numbered from `first_stage` (2 after a stem, as in the papers).
std::string residual_stages(GraphBuilder& b, const std::string& input, int64_t& channels,
                            BlockKind kind, const std::vector<StageSpec>& stages, int first_stage,
                            const ResNetStyle& style);

// GlobalAveragePooling2D "avg_pool" then Dense(classes) "fc" with bias: the logits.
std::string classifier_head(GraphBuilder& b, const std::string& input, int classes);

}  // namespace residual::zoo
