#pragma once
// Internal to the zoo: each model family lists its models; zoo.cpp joins the lists.
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/zoo/zoo.h"

namespace residual::zoo {

struct ZooEntry {
  std::string name;
  std::function<nlohmann::json(const ZooOptions&)> build;
};

// The options a builder works with once the zoo defaults are filled in and checked.
struct ResolvedOptions {
  int classes;
  std::vector<int64_t> input_hwc;
  bool zero_init_residual;
};

// Fills in the model's defaults and checks the rest; errors name `model`.
ResolvedOptions resolve_options(const std::string& model, const ZooOptions& options,
                                int default_classes, std::vector<int64_t> default_hwc);

std::vector<ZooEntry> imagenet_resnet_entries();  // imagenet_resnets.cpp
std::vector<ZooEntry> keras_resnet_entries();     // keras_resnet.cpp
std::vector<ZooEntry> cifar_resnet_entries();     // cifar_resnets.cpp
std::vector<ZooEntry> small_cnn_entries();        // small_cnns.cpp

}  // namespace residual::zoo
