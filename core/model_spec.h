#pragma once
// Reading model specs (docs/model-format.md) from files, the zoo, or JSON text.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace residual {

// Changes applied to a spec before it is built.
struct SpecOverrides {
  int64_t classes = 0;               // > 0: units of the output Dense layer
  std::vector<int64_t> input_hwc;    // non-empty: the Input shape (H, W, C)
  bool zero_init_residual = false;   // zoo models only: last BN gamma of each block = 0
};

// Parses JSON text; a syntax error names `origin` with its line and column.
nlohmann::json parse_model_json(const std::string& text, const std::string& origin);
nlohmann::json load_model_file(const std::string& path);
// A zoo name or a model file path, with the overrides applied.
nlohmann::json resolve_model_spec(const std::string& name_or_path, const SpecOverrides& overrides);
// Applies classes / input shape to any spec (the zoo applies them itself).
void apply_overrides(nlohmann::json& spec, const SpecOverrides& overrides, const std::string& origin);

// "3x32x32" (C x H x W, as PyTorch users write it) -> {H, W, C}.
std::vector<int64_t> parse_chw(const std::string& text);

}  // namespace residual
