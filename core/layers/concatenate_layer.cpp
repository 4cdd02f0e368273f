// Concatenate along the channel (last) axis.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/layers/builtin_layers.h"
#include "core/layers/config_reader.h"

namespace residual {
namespace {

class ConcatenateLayer : public Layer {
 public:
  ConcatenateLayer(const std::string& name, const nlohmann::json& config) : Layer(name) {
    ConfigReader r(name, type(), config);
    if (const auto* axis = r.raw("axis")) {
      if (!(*axis == -1)) r.fail_key("axis", "must be -1 (the channel axis)");
    }
    r.finish();
  }
  std::string type() const override { return "Concatenate"; }
  nlohmann::json config() const override { return {{"axis", -1}}; }
  Shape build(const std::vector<Shape>& inputs) override {
    RESIDUAL_CHECK(inputs.size() >= 2, where(), "expects at least 2 inputs, got ", inputs.size());
    Shape out = inputs[0];
    const size_t last = out.rank() - 1;
    for (size_t i = 1; i < inputs.size(); ++i) {
      Shape a = inputs[0], b = inputs[i];
      RESIDUAL_CHECK(a.rank() == b.rank(), where(), "inputs of ranks ", a.rank(), " and ", b.rank());
      a[last] = b[last] = 0;
      RESIDUAL_CHECK(a == b, where(), "input shapes ", inputs[0].str(), " and ", inputs[i].str(),
                     " differ outside the channel axis");
      out[last] += inputs[i][last];
    }
    return out;
  }
  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext&) override {
    Shape shape = x[0]->shape();
    for (size_t i = 1; i < x.size(); ++i) shape[shape.rank() - 1] += x[i]->shape()[shape.rank() - 1];
    y.resize(shape, *x[0]);
    ops::concat_forward(x, y);
  }
  void backward(const std::vector<const Tensor*>& x, const Tensor&, const Tensor& dy,
                const std::vector<Tensor*>& dx, const PassContext&) override {
    std::vector<Tensor> skipped(x.size());
    std::vector<Tensor*> outs(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      outs[i] = dx[i] ? dx[i] : &skipped[i];
      outs[i]->resize_like(*x[i]);
    }
    ops::concat_backward(dy, outs);
  }
};

}  // namespace

void register_concatenate_layer(LayerRegistry& registry) {
  registry.add("Concatenate", [](const std::string& name, const nlohmann::json& c) {
    return std::make_unique<ConcatenateLayer>(name, c);
  });
}

}  // namespace residual
