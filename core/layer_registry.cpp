#include "core/layer_registry.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace residual {

LayerRegistry LayerRegistry::with_builtins() {
  LayerRegistry registry;
  register_builtin_layers(registry);
  return registry;
}

void LayerRegistry::add(const std::string& type, LayerFactory factory) {
  RESIDUAL_CHECK(!type.empty(), "a layer type needs a name");
  RESIDUAL_CHECK(factory, "layer type '", type, "' registered without a factory");
  RESIDUAL_CHECK(factories_.count(type) == 0, "layer type '", type, "' is already registered");
  factories_.emplace(type, std::move(factory));
}

std::unique_ptr<Layer> LayerRegistry::create(const std::string& type, const std::string& name,
                                             const nlohmann::json& config) const {
  auto it = factories_.find(type);
  if (it == factories_.end()) {
    std::string known;
    for (const auto& [t, f] : factories_) known += (known.empty() ? "" : ", ") + t;
    fail("layer '", name, "': unknown layer type '", type, "' (known types: ", known, ")");
  }
  return it->second(name, config);
}

std::vector<std::string> LayerRegistry::types() const {
  std::vector<std::string> out;
  for (const auto& [t, f] : factories_) out.push_back(t);
  return out;
}

}  // namespace residual
