#include "core/layers/config_reader.h"

#include <algorithm>
#include <vector>

#include "core/edit_distance.h"
#include "core/error.h"

namespace residual {

ConfigReader::ConfigReader(std::string layer, std::string type, const nlohmann::json& config)
    : layer_(std::move(layer)), type_(std::move(type)), config_(config) {
  RESIDUAL_CHECK(config_.is_null() || config_.is_object(), "layer '", layer_, "' (", type_,
                 "): config must be a JSON object");
}

void ConfigReader::fail_key(const std::string& key, const std::string& what) const {
  fail("layer '", layer_, "' (", type_, "): argument '", key, "' ", what);
}

const nlohmann::json* ConfigReader::find(const std::string& key) const {
  seen_.insert(key);
  if (!config_.is_object()) return nullptr;
  auto it = config_.find(key);
  return it == config_.end() ? nullptr : &*it;
}

const nlohmann::json* ConfigReader::raw(const std::string& key) const { return find(key); }

int64_t ConfigReader::integer(const std::string& key) const {
  const auto* v = find(key);
  if (!v) fail_key(key, "is required" + misspelling_hint(key));
  if (!v->is_number_integer()) fail_key(key, "must be an integer, got " + v->dump());
  return v->get<int64_t>();
}

int64_t ConfigReader::integer(const std::string& key, int64_t fallback) const {
  return find(key) ? integer(key) : fallback;
}

double ConfigReader::number(const std::string& key, double fallback) const {
  const auto* v = find(key);
  if (!v) return fallback;
  if (!v->is_number()) fail_key(key, "must be a number, got " + v->dump());
  return v->get<double>();
}

bool ConfigReader::boolean(const std::string& key, bool fallback) const {
  const auto* v = find(key);
  if (!v) return fallback;
  if (!v->is_boolean()) fail_key(key, "must be true or false, got " + v->dump());
  return v->get<bool>();
}

std::string ConfigReader::text(const std::string& key, const std::string& fallback) const {
  const auto* v = find(key);
  if (!v) return fallback;
  if (!v->is_string()) fail_key(key, "must be a string, got " + v->dump());
  return v->get<std::string>();
}

std::array<int64_t, 2> ConfigReader::pair(const std::string& key) const {
  const auto* v = find(key);
  if (!v) fail_key(key, "is required" + misspelling_hint(key));
  if (v->is_number_integer()) return {v->get<int64_t>(), v->get<int64_t>()};
  if (v->is_array() && v->size() == 2 && (*v)[0].is_number_integer() &&
      (*v)[1].is_number_integer()) {
    return {(*v)[0].get<int64_t>(), (*v)[1].get<int64_t>()};
  }
  fail_key(key, "must be an integer or [h, w], got " + v->dump());
}

std::array<int64_t, 2> ConfigReader::pair(const std::string& key,
                                          std::array<int64_t, 2> fallback) const {
  return find(key) ? pair(key) : fallback;
}

// A required key is missing: a present key within two edits of it is probably its
// misspelling, and saying so beats "is required" alone.
std::string ConfigReader::misspelling_hint(const std::string& missing) const {
  if (!config_.is_object()) return "";
  for (const auto& [key, value] : config_.items()) {
    if (key != missing && edit_distance(key, missing) <= 2) {
      return " (the config has '" + key + "': a misspelling?)";
    }
  }
  return "";
}

void ConfigReader::finish() const {
  if (!config_.is_object()) return;
  for (const auto& [key, value] : config_.items()) {
    if (seen_.count(key) == 0) {
      std::string known;
      for (const auto& k : seen_) known += (known.empty() ? "" : ", ") + k;
      fail("layer '", layer_, "' (", type_, "): unknown argument '", key, "'",
           known.empty() ? std::string(" (it takes none)") : " (known: " + known + ")");
    }
  }
}

nlohmann::json pair_to_json(std::array<int64_t, 2> p) {
  if (p[0] == p[1]) return p[0];
  return nlohmann::json::array({p[0], p[1]});
}

nlohmann::json PaddingSpec::to_json() const {
  if (mode != "explicit") return mode;
  const auto& p = explicit_pad;
  if (p[0] == p[1] && p[2] == p[3]) return pair_to_json({p[0], p[2]});
  return nlohmann::json::array({nlohmann::json::array({p[0], p[1]}),
                                nlohmann::json::array({p[2], p[3]})});
}

std::array<int64_t, 4> PaddingSpec::resolve(int64_t in_h, int64_t in_w,
                                            std::array<int64_t, 2> kernel,
                                            std::array<int64_t, 2> strides,
                                            std::array<int64_t, 2> dilation) const {
  if (mode == "explicit") return explicit_pad;
  if (mode == "valid") return {0, 0, 0, 0};
  // TensorFlow's "same": output ceil(in / stride), the smaller half of the padding first.
  auto same = [](int64_t in, int64_t k, int64_t s, int64_t d) {
    const int64_t out = (in + s - 1) / s;
    const int64_t total = std::max<int64_t>((out - 1) * s + (k - 1) * d + 1 - in, 0);
    return std::array<int64_t, 2>{total / 2, total - total / 2};
  };
  const auto h = same(in_h, kernel[0], strides[0], dilation[0]);
  const auto w = same(in_w, kernel[1], strides[1], dilation[1]);
  return {h[0], h[1], w[0], w[1]};
}

PaddingSpec read_padding(const ConfigReader& reader, const std::string& fallback) {
  PaddingSpec spec;
  const nlohmann::json* v = reader.raw("padding");
  if (!v) {
    spec.mode = fallback;
    return spec;
  }
  if (v->is_string()) {
    spec.mode = v->get<std::string>();
    if (spec.mode != "valid" && spec.mode != "same") {
      reader.fail_key("padding", "must be \"valid\", \"same\", an integer or a list, got " + v->dump());
    }
    return spec;
  }
  spec.mode = "explicit";
  auto nonneg = [&](const nlohmann::json& x) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0) {
      reader.fail_key("padding", "must hold non-negative integers, got " + v->dump());
    }
    return x.get<int64_t>();
  };
  if (v->is_number_integer()) {
    const int64_t p = nonneg(*v);
    spec.explicit_pad = {p, p, p, p};
  } else if (v->is_array() && v->size() == 2 && (*v)[0].is_array() && (*v)[1].is_array() &&
             (*v)[0].size() == 2 && (*v)[1].size() == 2) {
    spec.explicit_pad = {nonneg((*v)[0][0]), nonneg((*v)[0][1]), nonneg((*v)[1][0]),
                         nonneg((*v)[1][1])};
  } else if (v->is_array() && v->size() == 2) {
    const int64_t h = nonneg((*v)[0]), w = nonneg((*v)[1]);
    spec.explicit_pad = {h, h, w, w};
  } else {
    reader.fail_key("padding", "must be \"valid\", \"same\", an integer, [h, w] or "
                               "[[top, bottom], [left, right]], got " + v->dump());
  }
  return spec;
}

}  // namespace residual
