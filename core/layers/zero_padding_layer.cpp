// ZeroPadding2D: zeros around the spatial dimensions.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/layers/builtin_layers.h"
#include "core/layers/config_reader.h"

namespace residual {
namespace {

class ZeroPaddingLayer : public Layer {
 public:
  ZeroPaddingLayer(const std::string& name, const nlohmann::json& config) : Layer(name) {
    ConfigReader r(name, type(), config);
    PaddingSpec spec = read_padding(r, "explicit");
    if (spec.mode == "explicit" && !r.raw("padding")) spec.explicit_pad = {1, 1, 1, 1};
    if (spec.mode != "explicit") r.fail_key("padding", "must be an integer or a list");
    spec_ = spec;
    pad_ = {spec.explicit_pad[0], spec.explicit_pad[1], spec.explicit_pad[2], spec.explicit_pad[3]};
    r.finish();
  }
  std::string type() const override { return "ZeroPadding2D"; }
  nlohmann::json config() const override { return {{"padding", spec_.to_json()}}; }
  Shape build(const std::vector<Shape>& inputs) override {
    expect_inputs(where(), inputs, 1, 3);
    const Shape& in = inputs[0];
    return Shape{in[0] + pad_.top + pad_.bottom, in[1] + pad_.left + pad_.right, in[2]};
  }
  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext&) override {
    const Tensor& in = *x[0];
    y.resize(Shape{in.dim(0), in.dim(1) + pad_.top + pad_.bottom,
                   in.dim(2) + pad_.left + pad_.right, in.dim(3)},
             in);
    ops::zero_pad2d_forward(pad_, in, y);
  }
  void backward(const std::vector<const Tensor*>& x, const Tensor&, const Tensor& dy,
                const std::vector<Tensor*>& dx, const PassContext&) override {
    if (!dx[0]) return;
    dx[0]->resize_like(*x[0]);
    ops::zero_pad2d_backward(pad_, dy, *dx[0]);
  }

 private:
  PaddingSpec spec_;
  ops::Padding2d pad_;
};

}  // namespace

void register_zero_padding_layer(LayerRegistry& registry) {
  registry.add("ZeroPadding2D", [](const std::string& name, const nlohmann::json& c) {
    return std::make_unique<ZeroPaddingLayer>(name, c);
  });
}

}  // namespace residual
