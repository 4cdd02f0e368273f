#include "core/zoo/zoo.h"

#include <utility>

#include "core/error.h"
#include "core/zoo/zoo_families.h"

namespace residual {
namespace zoo {

ResolvedOptions resolve_options(const std::string& model, const ZooOptions& options,
                                int default_classes, std::vector<int64_t> default_hwc) {
  RESIDUAL_CHECK(options.classes >= 0, "model '", model, "': classes must be at least 1, got ",
                 options.classes);
  ResolvedOptions resolved{options.classes == 0 ? default_classes : options.classes,
                           std::move(default_hwc), options.zero_init_residual};
  if (!options.input_hwc.empty()) {
    const std::vector<int64_t>& hwc = options.input_hwc;
    RESIDUAL_CHECK(hwc.size() == 3 && hwc[0] > 0 && hwc[1] > 0 && hwc[2] > 0, "model '", model,
                   "': the input shape must be three positive sizes H x W x C");
    resolved.input_hwc = hwc;
  }
  return resolved;
}

namespace {

// Built once: the table is a few dozen small closures.
const std::vector<ZooEntry>& zoo_table() {
  static const std::vector<ZooEntry> table = [] {
    std::vector<ZooEntry> all;
    for (auto family :
         {imagenet_resnet_entries, keras_resnet_entries, cifar_resnet_entries, small_cnn_entries}) {
      for (ZooEntry& entry : family()) all.push_back(std::move(entry));
    }
    return all;
  }();
  return table;
}

}  // namespace
}  // namespace zoo

nlohmann::json zoo_model_spec(const std::string& name, const ZooOptions& options) {
  for (const zoo::ZooEntry& entry : zoo::zoo_table()) {
    if (entry.name == name) return entry.build(options);
  }
  std::string known;
  for (const std::string& n : zoo_model_names()) known += (known.empty() ? "" : ", ") + n;
  fail("unknown model '", name, "' (known models: ", known, ")");
}

std::vector<std::string> zoo_model_names() {
  std::vector<std::string> names;
  for (const zoo::ZooEntry& entry : zoo::zoo_table()) names.push_back(entry.name);
  return names;
}

bool is_zoo_model(const std::string& name) {
  for (const zoo::ZooEntry& entry : zoo::zoo_table()) {
    if (entry.name == name) return true;
  }
  return false;
}

}  // namespace residual
