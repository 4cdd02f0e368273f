// ZeroPaddedShortcut: the parameter-free option-A shortcut of He et al. (CIFAR ResNets):
// x[::s, ::s] with zero channels added on both sides up to `filters`.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/layers/builtin_layers.h"
#include "core/layers/config_reader.h"

namespace residual {
namespace {

class ZeroPaddedShortcutLayer : public Layer {
 public:
  ZeroPaddedShortcutLayer(const std::string& name, const nlohmann::json& config) : Layer(name) {
    ConfigReader r(name, type(), config);
    stride_ = r.integer("strides", 1);
    filters_ = r.integer("filters");
    if (stride_ < 1) r.fail_key("strides", "must be >= 1");
    r.finish();
  }
  std::string type() const override { return "ZeroPaddedShortcut"; }
  nlohmann::json config() const override { return {{"strides", stride_}, {"filters", filters_}}; }
  Shape build(const std::vector<Shape>& inputs) override {
    expect_inputs(where(), inputs, 1, 3);
    const Shape& in = inputs[0];
    RESIDUAL_CHECK(filters_ >= in[2], where(), "filters ", filters_,
                   " must be at least the input channels ", in[2]);
    before_ = (filters_ - in[2]) / 2;
    after_ = filters_ - in[2] - before_;
    return Shape{(in[0] + stride_ - 1) / stride_, (in[1] + stride_ - 1) / stride_, filters_};
  }
  bool reads_bf16_input() const override { return true; }

  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext& ctx) override {
    const Tensor& in = *x[0];
    y.resize(Shape{in.dim(0), (in.dim(1) + stride_ - 1) / stride_,
                   (in.dim(2) + stride_ - 1) / stride_, filters_},
             in.device(), output_dtype(ctx));
    ops::shortcut_pad_forward(stride_, before_, after_, in, y);
  }
  void backward(const std::vector<const Tensor*>& x, const Tensor&, const Tensor& dy,
                const std::vector<Tensor*>& dx, const PassContext&) override {
    if (!dx[0]) return;
    dx[0]->resize_like(*x[0]);
    ops::shortcut_pad_backward(stride_, before_, after_, dy, *dx[0]);
  }

 private:
  int64_t stride_ = 1, filters_ = 0, before_ = 0, after_ = 0;
};

}  // namespace

void register_zero_padded_shortcut_layer(LayerRegistry& registry) {
  registry.add("ZeroPaddedShortcut", [](const std::string& name, const nlohmann::json& c) {
    return std::make_unique<ZeroPaddedShortcutLayer>(name, c);
  });
}

}  // namespace residual
