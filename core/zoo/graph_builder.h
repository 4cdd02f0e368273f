#pragma once
// Builds a model spec (docs/model-format.md) one layer at a time. Every append returns the
// name the layer got, so block builders compose: the output of one is the input of the next.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

namespace residual {

class GraphBuilder {
 public:
  explicit GraphBuilder(std::string model_name);

  // The one Input layer, named "input"; `hwc` is [H, W, C].
  std::string input(const std::vector<int64_t>& hwc);

  // Appends a layer of any type. `name` is made unique by a "_1", "_2", ... suffix when it is
  // taken (the way Keras names unnamed layers), so callers may reuse a base name freely.
  // An empty `config` is left out of the spec.
  std::string add(const std::string& type, const std::string& name,
                  const std::vector<std::string>& inputs,
                  nlohmann::json config = nlohmann::json::object());

  // Shorthands for the common single-input layers; `config` holds the Keras arguments.
  std::string conv2d(const std::string& name, const std::string& input, nlohmann::json config);
  std::string batch_norm(const std::string& name, const std::string& input, nlohmann::json config);
  std::string dense(const std::string& name, const std::string& input, nlohmann::json config);
  std::string relu(const std::string& name, const std::string& input);

  // The finished spec with `output` as its only output (the logits layer).
  nlohmann::json finish(const std::string& output) const;

 private:
  std::string unique_name(const std::string& base);

  std::string model_name_;
  nlohmann::json layers_ = nlohmann::json::array();
  std::set<std::string> names_;
};

}  // namespace residual
