#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/layer.h"

namespace residual {

// Makes a layer of one type from its name and JSON config.
using LayerFactory =
    std::function<std::unique_ptr<Layer>(const std::string& name, const nlohmann::json& config)>;

// Layer type name -> factory. Explicit: built-ins are added by register_builtin_layers(),
// user code adds its own types with add(); a duplicate name is refused and an unknown
// type lists the known ones.
class LayerRegistry {
 public:
  // A registry holding every built-in layer type.
  static LayerRegistry with_builtins();

  void add(const std::string& type, LayerFactory factory);
  bool contains(const std::string& type) const { return factories_.count(type) > 0; }
  std::unique_ptr<Layer> create(const std::string& type, const std::string& name,
                                const nlohmann::json& config) const;
  std::vector<std::string> types() const;

 private:
  std::map<std::string, LayerFactory> factories_;
};

// Adds Input, Conv2D, BatchNormalization, Dense, ... (core/layers/) to `registry`.
void register_builtin_layers(LayerRegistry& registry);

}  // namespace residual
