// GlobalAveragePooling2D: H x W x C -> C.
#include <nlohmann/json.hpp>

#include "core/error.h"

#include "core/layers/builtin_layers.h"
#include "core/layers/config_reader.h"

namespace residual {
namespace {

class GlobalAveragePoolingLayer : public Layer {
 public:
  GlobalAveragePoolingLayer(const std::string& name, const nlohmann::json& config) : Layer(name) {
    ConfigReader(name, type(), config).finish();
  }
  std::string type() const override { return "GlobalAveragePooling2D"; }
  nlohmann::json config() const override { return nlohmann::json::object(); }
  Shape build(const std::vector<Shape>& inputs) override {
    expect_inputs(where(), inputs, 1, 3);
    return Shape{inputs[0][2]};
  }
  bool reads_bf16_input() const override { return true; }

  // y is float32 whatever x is: it is small, and read by layers that take float32.
  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext&) override {
    y.resize(Shape{x[0]->dim(0), x[0]->dim(3)}, x[0]->device(), DType::kFloat32);
    ops::global_avg_pool_forward(*x[0], y);
  }
  void backward(const std::vector<const Tensor*>& x, const Tensor&, const Tensor& dy,
                const std::vector<Tensor*>& dx, const PassContext&) override {
    if (!dx[0]) return;
    dx[0]->resize_like(*x[0]);
    ops::global_avg_pool_backward(dy, *dx[0]);
  }
};

}  // namespace

void register_global_average_pooling_layer(LayerRegistry& registry) {
  registry.add("GlobalAveragePooling2D", [](const std::string& name, const nlohmann::json& c) {
    return std::make_unique<GlobalAveragePoolingLayer>(name, c);
  });
}

}  // namespace residual
