// Activation(activation=...) and ReLU.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/layers/builtin_layers.h"
#include "core/layers/config_reader.h"

namespace residual {
namespace {

class ActivationLayer : public Layer {
 public:
  ActivationLayer(const std::string& name, const nlohmann::json& config, bool relu_type)
      : Layer(name), relu_type_(relu_type) {
    ConfigReader r(name, type(), config);
    kind_ = relu_type ? ops::Activation::kRelu
                      : parse_activation(where(), r.text("activation", ""));
    r.finish();
  }
  std::string type() const override { return relu_type_ ? "ReLU" : "Activation"; }
  nlohmann::json config() const override {
    if (relu_type_) return nlohmann::json::object();
    return {{"activation", activation_name(kind_)}};
  }
  ops::Activation kind() const { return kind_; }

  Shape build(const std::vector<Shape>& inputs) override {
    RESIDUAL_CHECK(inputs.size() == 1, where(), "expects one input, got ", inputs.size());
    return inputs[0];
  }
  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext&) override {
    y.resize_like(*x[0]);
    ops::activation_forward(kind_, *x[0], y);
  }
  void backward(const std::vector<const Tensor*>& x, const Tensor& y, const Tensor& dy,
                const std::vector<Tensor*>& dx, const PassContext&) override {
    if (!dx[0]) return;
    dx[0]->resize_like(*x[0]);
    ops::activation_backward(kind_, y, dy, *dx[0]);
  }

 private:
  bool relu_type_;
  ops::Activation kind_ = ops::Activation::kLinear;
};

}  // namespace

bool is_relu_layer(const Layer& layer) {
  const auto* a = dynamic_cast<const ActivationLayer*>(&layer);
  return a && a->kind() == ops::Activation::kRelu;
}

void register_activation_layers(LayerRegistry& registry) {
  registry.add("Activation", [](const std::string& name, const nlohmann::json& config) {
    return std::make_unique<ActivationLayer>(name, config, false);
  });
  registry.add("ReLU", [](const std::string& name, const nlohmann::json& config) {
    return std::make_unique<ActivationLayer>(name, config, true);
  });
}

}  // namespace residual
