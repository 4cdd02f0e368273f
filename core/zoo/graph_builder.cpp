#include "core/zoo/graph_builder.h"

#include <utility>

#include "core/error.h"

namespace residual {

using nlohmann::json;

GraphBuilder::GraphBuilder(std::string model_name) : model_name_(std::move(model_name)) {}

std::string GraphBuilder::input(const std::vector<int64_t>& hwc) {
  RESIDUAL_CHECK(names_.count("input") == 0, "model '", model_name_,
                 "': a second Input layer was requested");
  return add("Input", "input", {}, json{{"shape", hwc}});
}

std::string GraphBuilder::add(const std::string& type, const std::string& name,
                              const std::vector<std::string>& inputs, json config) {
  for (const std::string& in : inputs) {
    // Layers are appended in topological order here, so an unknown input is a bug in a block
    // builder; catch it where it happens rather than when the engine sorts the graph.
    RESIDUAL_CHECK(names_.count(in) != 0, "model '", model_name_, "': layer '", name,
                   "' takes unknown input '", in, "'");
  }
  json layer = {{"name", unique_name(name)}, {"type", type}};
  if (!inputs.empty()) layer["inputs"] = inputs;
  if (!config.empty()) layer["config"] = std::move(config);
  layers_.push_back(layer);
  return layer["name"].get<std::string>();
}

std::string GraphBuilder::conv2d(const std::string& name, const std::string& input, json config) {
  return add("Conv2D", name, {input}, std::move(config));
}

std::string GraphBuilder::batch_norm(const std::string& name, const std::string& input,
                                     json config) {
  return add("BatchNormalization", name, {input}, std::move(config));
}

std::string GraphBuilder::dense(const std::string& name, const std::string& input, json config) {
  return add("Dense", name, {input}, std::move(config));
}

std::string GraphBuilder::relu(const std::string& name, const std::string& input) {
  return add("ReLU", name, {input});
}

json GraphBuilder::finish(const std::string& output) const {
  RESIDUAL_CHECK(names_.count(output) != 0, "model '", model_name_, "': unknown output '", output,
                 "'");
  return json{{"format", "residual-model"},
              {"version", 1},
              {"name", model_name_},
              {"layers", layers_},
              {"outputs", json::array({output})}};
}

std::string GraphBuilder::unique_name(const std::string& base) {
  std::string name = base;
  for (int i = 1; names_.count(name) != 0; ++i) name = str_cat(base, "_", i);
  names_.insert(name);
  return name;
}

}  // namespace residual
