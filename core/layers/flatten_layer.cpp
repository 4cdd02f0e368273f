// Flatten: H x W x C -> H*W*C in that (Keras channels-last) order. The memory is
// already in that order, so forward and backward are copies.
#include <nlohmann/json.hpp>

#include "core/error.h"

#include "core/layers/builtin_layers.h"
#include "core/layers/config_reader.h"

namespace residual {
namespace {

class FlattenLayer : public Layer {
 public:
  FlattenLayer(const std::string& name, const nlohmann::json& config) : Layer(name) {
    ConfigReader(name, type(), config).finish();
  }
  std::string type() const override { return "Flatten"; }
  nlohmann::json config() const override { return nlohmann::json::object(); }
  Shape build(const std::vector<Shape>& inputs) override {
    RESIDUAL_CHECK(inputs.size() == 1, where(), "expects one input");
    return Shape{inputs[0].numel()};
  }
  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext&) override {
    const int64_t n = x[0]->dim(0);
    y.resize(Shape{n, x[0]->shape().without_batch().numel()}, *x[0]);
    y.copy_from(*x[0]);
  }
  void backward(const std::vector<const Tensor*>& x, const Tensor&, const Tensor& dy,
                const std::vector<Tensor*>& dx, const PassContext&) override {
    if (!dx[0]) return;
    dx[0]->resize_like(*x[0]);
    dx[0]->copy_from(dy);
  }
};

}  // namespace

void register_flatten_layer(LayerRegistry& registry) {
  registry.add("Flatten", [](const std::string& name, const nlohmann::json& c) {
    return std::make_unique<FlattenLayer>(name, c);
  });
}

}  // namespace residual
