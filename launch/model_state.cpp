#include "launch/model_state.h"

#include "core/error.h"

namespace residual {

void store_weights(Model& model, Checkpoint& checkpoint) {
  for (Parameter* p : model.parameters()) {
    (p->trainable ? checkpoint.parameters : checkpoint.buffers)[p->name] = host_copy(p->value);
  }
}

Tensor host_copy(const Tensor& t) { return t.device().is_cpu() ? t : t.to(Device::cpu()); }

void load_weights(Model& model, const Checkpoint& checkpoint, bool strict, std::ostream& report,
                  const std::string& origin) {
  std::vector<std::string> problems;
  std::map<std::string, const Tensor*> available;
  for (const auto& [name, t] : checkpoint.parameters) available[name] = &t;
  for (const auto& [name, t] : checkpoint.buffers) available[name] = &t;
  std::vector<std::pair<Parameter*, const Tensor*>> matched;
  for (Parameter* p : model.parameters()) {
    auto it = available.find(p->name);
    if (it == available.end()) {
      problems.push_back("missing " + p->name + " (" + p->value.shape().str() + ")");
      continue;
    }
    if (it->second->shape() != p->value.shape()) {
      problems.push_back("shape of " + p->name + ": model " + p->value.shape().str() +
                         ", checkpoint " + it->second->shape().str());
    } else {
      matched.emplace_back(p, it->second);
    }
    available.erase(it);
  }
  for (const auto& [name, t] : available) {
    problems.push_back("unexpected " + name + " (" + t->shape().str() + ")");
  }
  if (strict && !problems.empty()) {
    std::string list;
    for (const auto& p : problems) list += (list.empty() ? "" : "; ") + p;
    fail("checkpoint '", origin, "' does not fit model '", model.name(), "': ", list,
         " (--non-strict loads what matches)");
  }
  for (auto& [param, tensor] : matched) param->value.copy_from(*tensor);
  if (!problems.empty()) {
    report << "loaded " << matched.size() << " tensors from " << origin << ", skipped "
           << problems.size() << ":\n";
    for (const auto& p : problems) report << "  " << p << "\n";
  }
}

}  // namespace residual
