#pragma once
// Reads a layer's Keras-style JSON config with errors that name the layer and the key,
// and refuses keys the layer does not know (almost always a typo).
#include <array>
#include <cstdint>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

namespace residual {

class ConfigReader {
 public:
  ConfigReader(std::string layer, std::string type, const nlohmann::json& config);

  int64_t integer(const std::string& key) const;
  int64_t integer(const std::string& key, int64_t fallback) const;
  double number(const std::string& key, double fallback) const;
  bool boolean(const std::string& key, bool fallback) const;
  std::string text(const std::string& key, const std::string& fallback) const;
  // An int or a [h, w] pair.
  std::array<int64_t, 2> pair(const std::string& key) const;
  std::array<int64_t, 2> pair(const std::string& key, std::array<int64_t, 2> fallback) const;
  const nlohmann::json* raw(const std::string& key) const;
  // Throws if the config holds a key that none of the calls above asked for.
  void finish() const;

  [[noreturn]] void fail_key(const std::string& key, const std::string& what) const;

 private:
  const nlohmann::json* find(const std::string& key) const;
  std::string misspelling_hint(const std::string& missing) const;
  std::string layer_, type_;
  const nlohmann::json& config_;
  mutable std::set<std::string> seen_;
};

// Padding as given in a config: "valid", "same", int, [h, w] or [[t, b], [l, r]].
struct PaddingSpec {
  std::string mode = "valid";              // "valid", "same" or "explicit"
  std::array<int64_t, 4> explicit_pad{};   // top, bottom, left, right
  nlohmann::json to_json() const;
  // Pads {top, bottom, left, right} for an input of in_h x in_w.
  std::array<int64_t, 4> resolve(int64_t in_h, int64_t in_w, std::array<int64_t, 2> kernel,
                                 std::array<int64_t, 2> strides,
                                 std::array<int64_t, 2> dilation) const;
};
PaddingSpec read_padding(const ConfigReader& reader, const std::string& fallback);

nlohmann::json pair_to_json(std::array<int64_t, 2> p);

}  // namespace residual
