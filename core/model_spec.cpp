#include "core/model_spec.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/zoo/zoo.h"

namespace residual {

void apply_overrides_unchecked(nlohmann::json& spec, const SpecOverrides& overrides,
                               const std::string& origin);

nlohmann::json parse_model_json(const std::string& text, const std::string& origin) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line L, column C: ..."
    // (or out_of_range.406 for a number like 1e99999)
    std::string message = e.what();
    const auto pos = message.find("] ");
    if (pos != std::string::npos) message = message.substr(pos + 2);
    fail(origin, ": ", message);
  }
}

nlohmann::json load_model_file(const std::string& path) {
  // An ifstream opens a directory without complaint and reads it as empty text.
  RESIDUAL_CHECK(!std::filesystem::is_directory(path), "model file '", path, "' is a directory");
  std::ifstream in(path);
  RESIDUAL_CHECK(in, "cannot open model file '", path, "'");
  std::stringstream text;
  text << in.rdbuf();
  return parse_model_json(text.str(), path);
}

void apply_overrides(nlohmann::json& spec, const SpecOverrides& overrides, const std::string& origin) {
  try {
    apply_overrides_unchecked(spec, overrides, origin);
  } catch (const nlohmann::json::exception& e) {
    fail(origin, ": a layer entry has a value of the wrong type (", e.what(), ")");
  }
}

void apply_overrides_unchecked(nlohmann::json& spec, const SpecOverrides& overrides,
                               const std::string& origin) {
  RESIDUAL_CHECK(spec.is_object() && spec.contains("layers") && spec["layers"].is_array(), origin,
                 ": not a model (no \"layers\" list)");
  if (!overrides.input_hwc.empty()) {
    bool found = false;
    for (auto& layer : spec["layers"]) {
      if (layer.value("type", "") == "Input") {
        layer["config"]["shape"] = overrides.input_hwc;
        found = true;
      }
    }
    RESIDUAL_CHECK(found, origin, ": no Input layer to give the input shape to");
  }
  if (overrides.classes > 0) {
    RESIDUAL_CHECK(spec.contains("outputs") && spec["outputs"].is_array() &&
                       spec["outputs"].size() == 1,
                   origin, ": --classes needs a model with one output");
    const std::string out = spec["outputs"][0].get<std::string>();
    bool found = false;
    for (auto& layer : spec["layers"]) {
      if (layer.value("name", "") == out) {
        RESIDUAL_CHECK(layer.value("type", "") == "Dense", origin, ": --classes needs the output layer '",
                       out, "' to be Dense");
        layer["config"]["units"] = overrides.classes;
        found = true;
      }
    }
    RESIDUAL_CHECK(found, origin, ": output layer '", out, "' not found");
  }
}

nlohmann::json resolve_model_spec(const std::string& name_or_path, const SpecOverrides& overrides) {
  if (is_zoo_model(name_or_path)) {
    ZooOptions options;
    options.classes = static_cast<int>(overrides.classes);
    options.input_hwc = overrides.input_hwc;
    options.zero_init_residual = overrides.zero_init_residual;
    return zoo_model_spec(name_or_path, options);
  }
  if (!std::filesystem::exists(name_or_path)) {
    std::string known;
    for (const auto& n : zoo_model_names()) known += (known.empty() ? "" : ", ") + n;
    fail("unknown model '", name_or_path, "': not a file and not a zoo model (zoo: ", known, ")");
  }
  RESIDUAL_CHECK(!overrides.zero_init_residual, "--zero-init-residual applies to zoo models only");
  nlohmann::json spec = load_model_file(name_or_path);
  apply_overrides(spec, overrides, name_or_path);
  return spec;
}

std::vector<int64_t> parse_chw(const std::string& text) {
  std::vector<int64_t> dims;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, 'x')) {
    try {
      size_t used = 0;
      const long long v = std::stoll(part, &used);
      RESIDUAL_CHECK(used == part.size() && v > 0, "");
      dims.push_back(v);
    } catch (const std::exception&) {
      fail("input shape '", text, "' must be CxHxW with positive integers, e.g. 3x32x32");
    }
  }
  // getline drops an empty last field, so "3x32x32x" would otherwise pass as 3x32x32.
  RESIDUAL_CHECK(dims.size() == 3 && text.back() != 'x', "input shape '", text,
                 "' must be CxHxW, e.g. 3x32x32");
  return {dims[1], dims[2], dims[0]};
}

}  // namespace residual
