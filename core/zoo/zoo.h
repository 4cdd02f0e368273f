#pragma once
// The model zoo: named architectures written out as model specs (docs/model-format.md).
//
//   ImageNet, torchvision layout:  resnet18 resnet34 resnet50 resnet101 resnet152
//                                  se-resnet18 ... se-resnet152
//   ImageNet, Keras layout:        resnet50-v1
//   CIFAR (He et al. 2016, 6n+2):  resnet20 32 44 56 110 (option-A shortcuts),
//                                  resnetN-b (projection shortcuts), se-resnetN[-b],
//                                  plain20 plain56 (no shortcuts)
//   Small CNNs:                    happy-model mnist-cnn
//
// Every spec's output is a logits layer: no softmax or sigmoid is part of the graph, the loss
// applies it (happy-model's single unit is trained with sigmoid binary cross-entropy).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace residual {

struct ZooOptions {
  // Units of the last Dense layer; 0 keeps the model's default. Ignored by happy-model,
  // whose single unit is a binary logit.
  int classes = 0;
  // Input shape [H, W, C]; empty keeps the model's default.
  std::vector<int64_t> input_hwc;
  // Starts the last BatchNormalization of every residual branch with gamma = 0, so each
  // block begins as the identity (Goyal et al. 2017). Ignored by models without shortcuts.
  bool zero_init_residual = false;
};

// The spec of zoo model `name`. Throws residual::Error for an unknown name (listing the
// known ones) or invalid options.
nlohmann::json zoo_model_spec(const std::string& name, const ZooOptions& options);

// Every zoo model name, in the order of the list above.
std::vector<std::string> zoo_model_names();

bool is_zoo_model(const std::string& name);

}  // namespace residual
