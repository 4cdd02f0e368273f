#include "core/model.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "core/error.h"
#include "core/layers/builtin_layers.h"
#include "ops/ops.h"

namespace residual {
namespace {

using Clock = std::chrono::steady_clock;

// Adds the time since `start` to profile[key + suffix]. Called only when profiling is on,
// so a normal step builds no key strings.
void charge(std::map<std::string, double>& profile, const std::string& key, const char* suffix,
            Clock::time_point start) {
  profile[key + suffix] += std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string expect_string(const nlohmann::json& v, const std::string& what) {
  RESIDUAL_CHECK(v.is_string(), what, " must be a string, got ", v.dump());
  return v.get<std::string>();
}

constexpr size_t kMaxLayerName = 128;

bool is_name_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '.' || c == '-';
}

// A layer name is a path component in checkpoints (parameters/<layer>/<kind>) and a word
// in one-line messages: "", ".", "..", '/', control characters and edge spaces broke them.
void check_layer_name(const std::string& name, size_t position) {
  const bool ok = !name.empty() && name.size() <= kMaxLayerName && name[0] != '.' &&
                  name[0] != '-' && std::all_of(name.begin(), name.end(), is_name_char);
  // JSON-quoted (ASCII, invalid UTF-8 replaced): whitespace and control characters show.
  RESIDUAL_CHECK(ok, "layer name ",
                 nlohmann::json(name).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace),
                 " (layer ", position, " of \"layers\") is not allowed: a layer name is 1 to ",
                 kMaxLayerName, " characters from A-Z a-z 0-9 _ . - and does not begin with . or -");
}

}  // namespace

Model::Model(const nlohmann::json& spec, const LayerRegistry& registry) {
  RESIDUAL_CHECK(spec.is_object(), "a model must be a JSON object");
  // Read as JSON values: value<std::string>/value<int> would throw the JSON library's
  // type_error for a wrongly typed field ("version": "1") instead of a residual::Error.
  const nlohmann::json format = spec.value("format", nlohmann::json(""));
  RESIDUAL_CHECK(format == "residual-model", "not a residual model (\"format\" is ",
                 format.dump(), ", expected \"residual-model\")");
  const nlohmann::json version = spec.value("version", nlohmann::json(0));
  RESIDUAL_CHECK(version == 1, "model format version ", version.dump(),
                 " is not supported (this residual reads version 1)");
  name_ = spec.contains("name") ? expect_string(spec["name"], "the model name") : "model";
  add_nodes(spec, registry);
  sort_topologically();
  // Shapes and parameters, in topological order.
  for (int i : order_) {
    ModelNode& node = nodes_[i];
    std::vector<Shape> in;
    std::vector<std::string> names;
    for (int j : node.inputs) {
      in.push_back(nodes_[j].shape);
      names.push_back(nodes_[j].name);
    }
    node.layer->set_input_names(names);
    node.shape = node.layer->build(in);
    bool needs = !node.layer->parameters().empty();
    for (int j : node.inputs) needs = needs || nodes_[j].needs_grad;
    node.needs_grad = needs && i != input_;
  }
  fuse_relus();
  mark_bf16_consumers();
  outputs_.resize(nodes_.size());
  grads_.resize(nodes_.size());
  written_.resize(nodes_.size());
  slot_scratch_.resize(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) slot_scratch_[i].resize(nodes_[i].inputs.size());
  initialize(0);
}

void Model::add_nodes(const nlohmann::json& spec, const LayerRegistry& registry) {
  RESIDUAL_CHECK(spec.contains("layers") && spec["layers"].is_array() && !spec["layers"].empty(),
                 "model '", name_, "' has no \"layers\" list");
  std::map<std::string, int> index;
  for (const auto& entry : spec["layers"]) {
    RESIDUAL_CHECK(entry.is_object(), "every entry of \"layers\" must be an object, got ",
                   entry.dump());
    RESIDUAL_CHECK(entry.contains("name"), "a layer without a \"name\": ", entry.dump());
    const std::string name = expect_string(entry["name"], "a layer name");
    check_layer_name(name, nodes_.size() + 1);
    RESIDUAL_CHECK(entry.contains("type"), "layer '", name, "' has no \"type\"");
    const std::string type = expect_string(entry["type"], "the type of layer '" + name + "'");
    RESIDUAL_CHECK(!index.count(name), "two layers are named '", name, "'");
    index[name] = static_cast<int>(nodes_.size());
    ModelNode node;
    node.name = name;
    node.layer = registry.create(type, name, entry.value("config", nlohmann::json::object()));
    nodes_.push_back(std::move(node));
    if (type == "Input") {
      RESIDUAL_CHECK(input_ < 0, "model '", name_, "' has two Input layers ('",
                     nodes_[input_].name, "' and '", name, "')");
      input_ = index[name];
    }
  }
  RESIDUAL_CHECK(input_ >= 0, "model '", name_, "' has no Input layer");
  size_t k = 0;
  for (const auto& entry : spec["layers"]) {
    ModelNode& node = nodes_[k++];
    const auto inputs = entry.value("inputs", nlohmann::json::array());
    RESIDUAL_CHECK(inputs.is_array(), "layer '", node.name, "': \"inputs\" must be a list");
    const bool is_input = static_cast<int>(k - 1) == input_;
    RESIDUAL_CHECK(is_input || !inputs.empty(), "layer '", node.name, "' has no inputs");
    RESIDUAL_CHECK(!is_input || inputs.empty(), "Input layer '", node.name, "' cannot have inputs");
    for (const auto& in : inputs) {
      const std::string from = expect_string(in, "an input of layer '" + node.name + "'");
      auto it = index.find(from);
      RESIDUAL_CHECK(it != index.end(), "layer '", node.name, "' takes input '", from,
                     "', which is not a layer of the model");
      node.inputs.push_back(it->second);
      nodes_[it->second].consumers.push_back(static_cast<int>(k - 1));
    }
  }
  const auto outputs = spec.value("outputs", nlohmann::json::array());
  RESIDUAL_CHECK(outputs.is_array() && outputs.size() == 1, "model '", name_,
                 "' must name exactly one layer in \"outputs\"");
  const std::string out = expect_string(outputs[0], "the output");
  RESIDUAL_CHECK(index.count(out), "the output '", out, "' is not a layer of the model");
  output_ = index[out];
}

void Model::sort_topologically() {
  // Kahn's algorithm, taking ready nodes in file order so the order is stable.
  std::vector<int> pending(nodes_.size());
  for (size_t i = 0; i < nodes_.size(); ++i) pending[i] = static_cast<int>(nodes_[i].inputs.size());
  std::vector<int> ready;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (pending[i] == 0) ready.push_back(static_cast<int>(i));
  }
  while (!ready.empty()) {
    std::sort(ready.begin(), ready.end(), std::greater<>());
    const int i = ready.back();
    ready.pop_back();
    order_.push_back(i);
    for (int c : nodes_[i].consumers) {
      if (--pending[c] == 0) ready.push_back(c);
    }
  }
  if (order_.size() != nodes_.size()) {
    std::string cyclic;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (pending[i] > 0) cyclic += (cyclic.empty() ? "'" : ", '") + nodes_[i].name + "'";
    }
    fail("model '", name_, "' has a cycle (or depends on one) through layers ", cyclic);
  }
}

void Model::fuse_relus() {
  for (int i : order_) {
    ModelNode& node = nodes_[i];
    if (!is_relu_layer(*node.layer) || node.inputs.size() != 1) continue;
    const int p = node.inputs[0];
    if (p == input_ || nodes_[p].consumers.size() != 1 || p == output_) continue;
    if (nodes_[p].layer->fuse_following_relu()) node.alias_of = p;
  }
}

void Model::mark_bf16_consumers() {
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const int index = static_cast<int>(i);
    // The input is the caller's tensor, the output goes to the loss in float32.
    bool all = index != output_ && index != input_ && nodes_[i].alias_of < 0;
    // The readers of the tensor: the consumers, where a fused ReLU (an alias of this
    // tensor) stands for its own consumers.
    std::vector<int> pending = nodes_[i].consumers;
    bool any = false;
    while (all && !pending.empty()) {
      const int c = pending.back();
      pending.pop_back();
      if (nodes_[c].alias_of >= 0) {
        all = c != output_;
        pending.insert(pending.end(), nodes_[c].consumers.begin(), nodes_[c].consumers.end());
      } else {
        all = nodes_[c].layer->reads_bf16_input();
        any = true;
      }
    }
    nodes_[i].layer->set_consumers_read_bf16(all && any);
  }
}

void Model::initialize(uint64_t seed) {
  const Device device = device_;
  to(Device::cpu());  // layers draw their values through host pointers
  for (size_t k = 0; k < order_.size(); ++k) {
    std::mt19937_64 rng(seed * 0x9e3779b97f4a7c15ULL + k);
    nodes_[order_[k]].layer->initialize(rng);
  }
  to(device);
}

void Model::to(Device device) {
  if (device == device_) return;
  std::vector<Tensor*> tensors;
  for (ModelNode& node : nodes_) {
    for (Tensor* t : node.layer->tensors()) tensors.push_back(t);
  }
  try {
    move_all_to(tensors, device);
  } catch (const std::exception& e) {
    fail("model '", name_, "' cannot move to ", device.str(), " (", e.what(), "); it stays on ",
         device_.str());
  }
  // Per-pass buffers: the next pass makes them again, on the device of its input.
  for (auto* buffers : {&outputs_, &grads_}) std::fill(buffers->begin(), buffers->end(), Tensor());
  for (auto& slots : slot_scratch_) std::fill(slots.begin(), slots.end(), Tensor());
  device_ = device;
}

const Tensor& Model::forward(const Tensor& x, const PassContext& ctx) {
  const Shape expected = input_shape();
  RESIDUAL_CHECK(x.rank() == expected.rank() + 1 && x.shape().without_batch() == expected,
                 "model '", name_, "' expects inputs of N x ", expected.str(), ", got ",
                 x.shape().str());
  RESIDUAL_CHECK(x.device() == device_, "model '", name_, "' is on ", device_.str(),
                 " but its input is on ", x.device().str(), ": move one of them (.to())");
  RESIDUAL_CHECK(ctx.precision == Precision::kFloat32 || device_.is_cpu(), "model '", name_,
                 "' is on ", device_.str(), ": ", precision_name(ctx.precision),
                 " precision runs on the CPU only");
  std::vector<const Tensor*> in;
  for (int i : order_) {
    ModelNode& node = nodes_[i];
    if (i == input_) {
      outputs_[i] = x;
    } else if (node.alias_of >= 0) {
      outputs_[i] = outputs_[node.alias_of];
    } else {
      in.clear();
      for (int j : node.inputs) in.push_back(&outputs_[j]);
      const auto start = Clock::now();
      node.layer->forward(in, outputs_[i], ctx);
      if (profiling_) charge(profile_ms_, node.layer->type(), "/forward", start);
    }
  }
  return outputs_[output_];
}

void Model::backward(const Tensor& doutput, const PassContext& ctx) {
  RESIDUAL_CHECK(doutput.shape() == outputs_[output_].shape(), "output gradient of shape ",
                 doutput.shape().str(), " for an output of shape ",
                 outputs_[output_].shape().str());
  RESIDUAL_CHECK(doutput.device() == device_, "model '", name_, "' is on ", device_.str(),
                 " but the gradient of its output is on ", doutput.device().str());
  std::fill(written_.begin(), written_.end(), 0);
  grads_[output_] = doutput;
  written_[output_] = 1;
  std::vector<const Tensor*> in;
  std::vector<Tensor*> dx;
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    const int i = *it;
    ModelNode& node = nodes_[i];
    if (i == input_) continue;
    if (!written_[i]) {  // a branch that does not reach the output
      for (Parameter& p : node.layer->parameters()) {
        if (p.trainable) p.grad.zero();
      }
    } else if (node.alias_of >= 0) {
      grads_[node.alias_of] = grads_[i];
      written_[node.alias_of] = 1;
      continue;
    } else {
      // The first gradient reaching a node is written in place; later ones (fan-out) go
      // to the slot's scratch buffer and are added after the layer's backward.
      dx.assign(node.inputs.size(), nullptr);
      bool accumulates = false;
      for (size_t s = 0; s < node.inputs.size(); ++s) {
        const int j = node.inputs[s];
        if (!nodes_[j].needs_grad) continue;
        const bool taken = std::count(dx.begin(), dx.end(), &grads_[j]) > 0;
        if (!written_[j] && !taken) {
          dx[s] = &grads_[j];
        } else {
          dx[s] = &slot_scratch_[i][s];
          accumulates = true;
        }
      }
      in.clear();
      for (int j : node.inputs) in.push_back(&outputs_[j]);
      const auto start = Clock::now();
      node.layer->backward(in, outputs_[i], grads_[i], dx, ctx);
      if (profiling_) charge(profile_ms_, node.layer->type(), "/backward", start);
      for (size_t s = 0; s < node.inputs.size(); ++s) {
        if (dx[s] == &grads_[node.inputs[s]]) written_[node.inputs[s]] = 1;
      }
      if (accumulates) {
        const auto start_sum = Clock::now();
        for (size_t s = 0; s < node.inputs.size(); ++s) {
          if (dx[s] != &slot_scratch_[i][s]) continue;
          Tensor& total = grads_[node.inputs[s]];
          ops::add_forward({&total, dx[s]}, false, total);
        }
        if (profiling_) charge(profile_ms_, "(gradient sums)", "", start_sum);
      }
    }
    for (const auto& listener : gradient_ready_) {
      for (Parameter& p : node.layer->parameters()) {
        if (p.trainable) listener(p);
      }
    }
  }
}

std::vector<std::string> Model::layers_not_reaching_output() const {
  std::vector<char> reaches(nodes_.size(), 0);
  reaches[output_] = 1;
  for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
    for (int c : nodes_[*it].consumers) reaches[*it] = reaches[*it] || reaches[c];
  }
  std::vector<std::string> names;
  for (int i : order_) {
    if (reaches[i]) continue;
    for (const Parameter& p : nodes_[i].layer->parameters()) {
      if (p.trainable) {
        names.push_back(nodes_[i].name);
        break;
      }
    }
  }
  return names;
}

std::vector<Parameter*> Model::parameters() {
  std::vector<Parameter*> out;
  for (int i : order_) {
    for (Parameter& p : nodes_[i].layer->parameters()) out.push_back(&p);
  }
  return out;
}

std::vector<Parameter*> Model::trainable_parameters() {
  std::vector<Parameter*> out;
  for (Parameter* p : parameters()) {
    if (p->trainable) out.push_back(p);
  }
  return out;
}

nlohmann::json Model::to_json() const {
  nlohmann::json layers = nlohmann::json::array();
  for (int i : order_) {
    const ModelNode& node = nodes_[i];
    nlohmann::json entry{{"name", node.name}, {"type", node.layer->type()}};
    if (!node.inputs.empty()) {
      entry["inputs"] = nlohmann::json::array();
      for (int j : node.inputs) entry["inputs"].push_back(nodes_[j].name);
    }
    entry["config"] = node.layer->config();
    layers.push_back(entry);
  }
  return {{"format", "residual-model"}, {"version", 1}, {"name", name_},
          {"layers", layers}, {"outputs", {nodes_[output_].name}}};
}

int64_t Model::classifier_outputs() const {
  const ModelNode& out = nodes_[output_];
  RESIDUAL_CHECK(out.shape.rank() == 1 && out.shape[0] >= 1, "model '", name_,
                 "': the output layer '", out.name, "' (", out.layer->type(), ") gives ",
                 out.shape.str(), " per sample, but a classifier needs one vector of logits per "
                 "sample, [classes] (or [1] for a binary sigmoid model): end the model with "
                 "Flatten or GlobalAveragePooling2D and a Dense layer");
  return out.shape[0];
}

void Model::set_profiling(bool on) {
  profiling_ = on;
  profile_ms_.clear();
}

int64_t Model::macs_per_sample() const {
  int64_t total = 0;
  for (const auto& node : nodes_) total += node.layer->macs();
  return total;
}

}  // namespace residual
