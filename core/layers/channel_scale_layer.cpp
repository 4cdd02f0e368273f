// ChannelScale: inputs [x (H x W x C), s (C)] -> x scaled per sample and channel: the
// excitation step of squeeze-and-excitation.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/layers/builtin_layers.h"
#include "core/layers/config_reader.h"

namespace residual {
namespace {

class ChannelScaleLayer : public Layer {
 public:
  ChannelScaleLayer(const std::string& name, const nlohmann::json& config) : Layer(name) {
    ConfigReader(name, type(), config).finish();
  }
  std::string type() const override { return "ChannelScale"; }
  nlohmann::json config() const override { return nlohmann::json::object(); }
  Shape build(const std::vector<Shape>& inputs) override {
    RESIDUAL_CHECK(inputs.size() == 2, where(), "expects inputs [x, scale], got ", inputs.size());
    RESIDUAL_CHECK(inputs[0].rank() == 3 && inputs[1].rank() == 1 && inputs[1][0] == inputs[0][2],
                   where(), "expects x of H x W x C and a scale of C, got ", inputs[0].str(),
                   " and ", inputs[1].str());
    return inputs[0];
  }
  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext&) override {
    y.resize_like(*x[0]);
    ops::channel_scale_forward(*x[0], *x[1], y);
  }
  void backward(const std::vector<const Tensor*>& x, const Tensor&, const Tensor& dy,
                const std::vector<Tensor*>& dx, const PassContext&) override {
    if (dx[0]) dx[0]->resize_like(*x[0]);
    if (dx[1]) dx[1]->resize_like(*x[1]);
    ops::channel_scale_backward(*x[0], *x[1], dy, dx[0], dx[1]);
  }
};

}  // namespace

void register_channel_scale_layer(LayerRegistry& registry) {
  registry.add("ChannelScale", [](const std::string& name, const nlohmann::json& c) {
    return std::make_unique<ChannelScaleLayer>(name, c);
  });
}

}  // namespace residual
