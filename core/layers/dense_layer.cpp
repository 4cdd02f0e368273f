// Dense (fully connected) on a flat input, with an optional fused activation.
#include <cmath>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/layers/bf16_operands.h"
#include "core/layers/builtin_layers.h"
#include "core/layers/config_reader.h"

namespace residual {
namespace {

class DenseLayer : public Layer {
 public:
  DenseLayer(const std::string& name, const nlohmann::json& config) : Layer(name) {
    ConfigReader r(name, type(), config);
    units_ = r.integer("units");
    if (units_ < 1) r.fail_key("units", "must be >= 1");
    use_bias_ = r.boolean("use_bias", true);
    activation_ = parse_activation(where(), r.text("activation", "linear"));
    r.finish();
  }
  std::string type() const override { return "Dense"; }
  nlohmann::json config() const override {
    // A ReLU fused by the model stays its own node in the written-out graph.
    const auto written = fused_relu_ ? ops::Activation::kLinear : activation_;
    return {{"units", units_}, {"use_bias", use_bias_}, {"activation", activation_name(written)}};
  }

  Shape build(const std::vector<Shape>& inputs) override {
    RESIDUAL_CHECK(inputs.size() == 1, where(), "expects one input");
    RESIDUAL_CHECK(inputs[0].rank() == 1, where(), "expects a flat input, got shape ",
                   inputs[0].str(), " (add Flatten or GlobalAveragePooling2D before it)");
    in_ = inputs[0][0];
    kernel_ = &add_parameter("kernel", Shape{units_, in_}, true, false);
    if (use_bias_) bias_ = &add_parameter("bias", Shape{units_}, true, true);
    return Shape{units_};
  }

  // PyTorch's default for nn.Linear: uniform in +-1/sqrt(fan_in), weights and bias.
  void initialize(std::mt19937_64& rng) override {
    const float bound = 1.f / std::sqrt(static_cast<float>(in_));
    std::uniform_real_distribution<float> uniform(-bound, bound);
    for (int64_t i = 0; i < kernel_->value.numel(); ++i) kernel_->value.f32()[i] = uniform(rng);
    if (bias_) {
      for (int64_t i = 0; i < units_; ++i) bias_->value.f32()[i] = uniform(rng);
    }
  }

  bool fuse_following_relu() override {
    if (activation_ != ops::Activation::kLinear) return false;
    activation_ = ops::Activation::kRelu;
    fused_relu_ = true;
    return true;
  }

  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext& ctx) override {
    y.resize(Shape{x[0]->dim(0), units_}, *x[0]);
    const Tensor* bias = bias_ ? &bias_->value : nullptr;
    if (bf16_.begin_forward(ctx, *x[0], kernel_->value)) {
      ops::dense_forward(bf16_.x(), bf16_.w(), bias, y);
    } else {
      ops::dense_forward(*x[0], kernel_->value, bias, y);
    }
    if (activation_ != ops::Activation::kLinear) ops::activation_forward(activation_, y, y);
  }

  void backward(const std::vector<const Tensor*>& x, const Tensor& y, const Tensor& dy,
                const std::vector<Tensor*>& dx, const PassContext&) override {
    const Tensor* dz = &dy;
    if (activation_ != ops::Activation::kLinear) {
      dz_.resize_like(dy);
      ops::activation_backward(activation_, y, dy, dz_);
      dz = &dz_;
    }
    const bool bf16 = bf16_.active(*x[0]);
    if (bf16) dz = &bf16_.cast_grad(*dz);
    ops::dense_backward_weights(bf16 ? bf16_.x() : *x[0], *dz, kernel_->grad,
                                bias_ ? &bias_->grad : nullptr);
    if (dx[0]) {
      dx[0]->resize_like(*x[0]);
      ops::dense_backward_data(*dz, bf16 ? bf16_.w() : kernel_->value, *dx[0]);
    }
  }

  int64_t macs() const override { return in_ * units_; }

 private:
  int64_t units_ = 0, in_ = 0;
  bool use_bias_ = true, fused_relu_ = false;
  ops::Activation activation_ = ops::Activation::kLinear;
  Parameter* kernel_ = nullptr;
  Parameter* bias_ = nullptr;
  Tensor dz_;
  Bf16Operands bf16_;
};

}  // namespace

void register_dense_layer(LayerRegistry& registry) {
  registry.add("Dense", [](const std::string& name, const nlohmann::json& c) {
    return std::make_unique<DenseLayer>(name, c);
  });
}

}  // namespace residual
