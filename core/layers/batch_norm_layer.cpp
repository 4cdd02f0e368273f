// BatchNormalization over the channel axis (Keras arguments). The model may fuse a
// following ReLU into it (one pass over memory instead of two).
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/layers/builtin_layers.h"
#include "core/layers/config_reader.h"

namespace residual {
namespace {

class BatchNormLayer : public Layer {
 public:
  BatchNormLayer(const std::string& name, const nlohmann::json& config) : Layer(name) {
    ConfigReader r(name, "BatchNormalization", config);
    momentum_ = static_cast<float>(r.number("momentum", 0.99));
    epsilon_ = static_cast<float>(r.number("epsilon", 1e-3));
    gamma_init_ = r.text("gamma_initializer", "ones");
    r.raw("axis");  // Keras's axis: channels last is the only layout, so -1/3 are accepted
    if (momentum_ < 0.f || momentum_ > 1.f) r.fail_key("momentum", "must be in [0, 1]");
    if (!(epsilon_ > 0.f)) r.fail_key("epsilon", "must be > 0");
    if (gamma_init_ != "ones" && gamma_init_ != "zeros") {
      r.fail_key("gamma_initializer", "must be \"ones\" or \"zeros\"");
    }
    if (const auto* axis = r.raw("axis")) {
      if (!(*axis == -1 || *axis == 3)) r.fail_key("axis", "must be -1 or 3 (channels last)");
    }
    r.finish();
  }
  std::string type() const override { return "BatchNormalization"; }
  nlohmann::json config() const override {
    return {{"momentum", momentum_}, {"epsilon", epsilon_}, {"gamma_initializer", gamma_init_}};
  }

  Shape build(const std::vector<Shape>& inputs) override {
    RESIDUAL_CHECK(inputs.size() == 1 && inputs[0].rank() >= 1, where(), "expects one input");
    const Shape channels{inputs[0][inputs[0].rank() - 1]};
    gamma_ = &add_parameter("gamma", channels, true, true);
    beta_ = &add_parameter("beta", channels, true, true);
    mean_ = &add_parameter("moving_mean", channels, false, false);
    var_ = &add_parameter("moving_variance", channels, false, false);
    batch_mean_ = Tensor::zeros(channels);
    batch_var_ = Tensor::zeros(channels);
    return inputs[0];
  }

  void initialize(std::mt19937_64&) override {
    gamma_->value.fill(gamma_init_ == "ones" ? 1.f : 0.f);
    beta_->value.zero();
    mean_->value.zero();
    var_->value.fill(1.f);
  }

  bool fuse_following_relu() override { return relu_ = true; }

  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext& ctx) override {
    y.resize(x[0]->shape());
    if (ctx.training) {
      ops::batch_norm_forward_training(*x[0], gamma_->value, beta_->value, epsilon_, relu_, y,
                                       batch_mean_, batch_var_);
      const int64_t count = x[0]->numel() / batch_mean_.numel();
      ops::batch_norm_update_running(batch_mean_, batch_var_, count, momentum_, mean_->value,
                                     var_->value);
    } else {
      ops::batch_norm_forward_inference(*x[0], gamma_->value, beta_->value, mean_->value,
                                        var_->value, epsilon_, relu_, y);
    }
  }

  void backward(const std::vector<const Tensor*>& x, const Tensor& y, const Tensor& dy,
                const std::vector<Tensor*>& dx, const PassContext& ctx) override {
    RESIDUAL_CHECK(ctx.training, where(), "backward needs a training-mode forward");
    Tensor* out = dx[0] ? dx[0] : &scratch_;
    out->resize(x[0]->shape());
    ops::batch_norm_backward(*x[0], y, dy, gamma_->value, batch_mean_, batch_var_, epsilon_,
                             relu_, *out, gamma_->grad, beta_->grad);
  }

 private:
  float momentum_ = 0.99f, epsilon_ = 1e-3f;
  std::string gamma_init_;
  bool relu_ = false;
  Parameter *gamma_ = nullptr, *beta_ = nullptr, *mean_ = nullptr, *var_ = nullptr;
  Tensor batch_mean_, batch_var_, scratch_;
};

}  // namespace

void register_batch_norm_layer(LayerRegistry& registry) {
  registry.add("BatchNormalization", [](const std::string& name, const nlohmann::json& config) {
    return std::make_unique<BatchNormLayer>(name, config);
  });
}

}  // namespace residual
