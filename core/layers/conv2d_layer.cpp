// Conv2D and DepthwiseConv2D (Keras arguments), with an optional fused activation.
#include <cmath>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/layers/bf16_operands.h"
#include "core/layers/builtin_layers.h"
#include "core/layers/config_reader.h"

namespace residual {
namespace {

class Conv2DLayer : public Layer {
 public:
  Conv2DLayer(const std::string& name, const nlohmann::json& config, bool depthwise)
      : Layer(name), depthwise_(depthwise) {
    ConfigReader r(name, type(), config);
    if (depthwise_) {
      depth_multiplier_ = r.integer("depth_multiplier", 1);
      if (depth_multiplier_ < 1) r.fail_key("depth_multiplier", "must be >= 1");
    } else {
      filters_ = r.integer("filters");
      groups_ = r.integer("groups", 1);
      if (filters_ < 1) r.fail_key("filters", "must be >= 1");
      if (groups_ < 1) r.fail_key("groups", "must be >= 1");
    }
    kernel_ = r.pair("kernel_size");
    strides_ = r.pair("strides", {1, 1});
    dilation_ = r.pair("dilation_rate", {1, 1});
    for (auto [key, p] : {std::pair{"kernel_size", kernel_}, {"strides", strides_},
                          {"dilation_rate", dilation_}}) {
      if (p[0] < 1 || p[1] < 1) r.fail_key(key, "must be >= 1");
    }
    padding_ = read_padding(r, "valid");
    use_bias_ = r.boolean("use_bias", true);
    activation_ = parse_activation(where(), r.text("activation", "linear"));
    r.finish();
  }

  std::string type() const override { return depthwise_ ? "DepthwiseConv2D" : "Conv2D"; }

  nlohmann::json config() const override {
    nlohmann::json c{{"kernel_size", pair_to_json(kernel_)},
                     {"strides", pair_to_json(strides_)},
                     {"padding", padding_.to_json()},
                     {"dilation_rate", pair_to_json(dilation_)},
                     {"use_bias", use_bias_},
                     {"activation", activation_name(activation_)}};
    if (depthwise_) {
      c["depth_multiplier"] = depth_multiplier_;
    } else {
      c["filters"] = filters_;
      c["groups"] = groups_;
    }
    return c;
  }

  Shape build(const std::vector<Shape>& inputs) override {
    expect_inputs(where(), inputs, 1, 3);
    const Shape& in = inputs[0];
    g_.in_h = in[0];
    g_.in_w = in[1];
    g_.in_c = in[2];
    if (depthwise_) {
      groups_ = in[2];
      filters_ = in[2] * depth_multiplier_;
    }
    RESIDUAL_CHECK(g_.in_c % groups_ == 0 && filters_ % groups_ == 0, where(), "groups ",
                   groups_, " must divide both the input channels (", g_.in_c,
                   ") and the filters (", filters_, ")");
    const auto pad = padding_.resolve(in[0], in[1], kernel_, strides_, dilation_);
    g_.pad_top = pad[0];
    g_.pad_bottom = pad[1];
    g_.pad_left = pad[2];
    g_.pad_right = pad[3];
    g_.kernel_h = kernel_[0];
    g_.kernel_w = kernel_[1];
    g_.stride_h = strides_[0];
    g_.stride_w = strides_[1];
    g_.dilation_h = dilation_[0];
    g_.dilation_w = dilation_[1];
    g_.groups = groups_;
    g_.out_c = filters_;
    const int64_t span_h = (kernel_[0] - 1) * dilation_[0] + 1;
    const int64_t span_w = (kernel_[1] - 1) * dilation_[1] + 1;
    const int64_t padded_h = in[0] + pad[0] + pad[1], padded_w = in[1] + pad[2] + pad[3];
    RESIDUAL_CHECK(padded_h >= span_h && padded_w >= span_w, where(), "input ", in.str(),
                   " is too small: the output size reaches 0 (kernel ", kernel_[0], "x",
                   kernel_[1], ", padded input ", padded_h, "x", padded_w, ")");
    g_.out_h = (padded_h - span_h) / strides_[0] + 1;
    g_.out_w = (padded_w - span_w) / strides_[1] + 1;
    kernel_param_ = &add_parameter("kernel", Shape{filters_, g_.in_c / groups_, kernel_[0], kernel_[1]},
                                   true, false);
    if (use_bias_) bias_param_ = &add_parameter("bias", Shape{filters_}, true, true);
    return Shape{g_.out_h, g_.out_w, g_.out_c};
  }

  // He normal with fan-out, as torchvision initialises ResNet convolutions.
  void initialize(std::mt19937_64& rng) override {
    const Tensor& w = kernel_param_->value;
    const double fan_out = static_cast<double>(w.dim(0)) * w.dim(2) * w.dim(3);
    std::normal_distribution<float> normal(0.f, static_cast<float>(std::sqrt(2.0 / fan_out)));
    for (int64_t i = 0; i < w.numel(); ++i) w.f32()[i] = normal(rng);
    if (bias_param_) bias_param_->value.zero();
  }

  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext& ctx) override {
    ops::Conv2dGeometry g = g_;
    g.batch = x[0]->dim(0);
    const Shape shape{g.batch, g.out_h, g.out_w, g.out_c};
    const Tensor* bias = bias_param_ ? &bias_param_->value : nullptr;
    if (bf16_.begin_forward(ctx, *x[0], kernel_param_->value)) {
      // Consumers that all read bf16 get y in bf16: half the bytes.
      const bool linear = activation_ == ops::Activation::kLinear;
      y.resize(shape, x[0]->device(), linear ? output_dtype(ctx) : DType::kFloat32);
      ops::conv2d_forward(g, bf16_.x(), bf16_.w(), bias, y);
    } else {
      y.resize(shape, x[0]->device(), DType::kFloat32);
      ops::conv2d_forward(g, *x[0], kernel_param_->value, bias, y);
    }
    if (activation_ != ops::Activation::kLinear) ops::activation_forward(activation_, y, y);
  }

  void backward(const std::vector<const Tensor*>& x, const Tensor& y, const Tensor& dy,
                const std::vector<Tensor*>& dx, const PassContext&) override {
    ops::Conv2dGeometry g = g_;
    g.batch = x[0]->dim(0);
    const Tensor* dz = &dy;
    if (activation_ != ops::Activation::kLinear) {
      dz_.resize_like(dy);
      ops::activation_backward(activation_, y, dy, dz_);
      dz = &dz_;
    }
    Tensor* dbias = bias_param_ ? &bias_param_->grad : nullptr;
    const bool bf16 = bf16_.active(*x[0]);
    if (bf16 && dz->dtype() != DType::kBFloat16) dz = &bf16_.cast_grad(*dz);
    ops::conv2d_backward_weights(g, bf16 ? bf16_.x() : *x[0], *dz, kernel_param_->grad, dbias);
    if (dx[0]) {
      dx[0]->resize_like(*x[0]);
      ops::conv2d_backward_data(g, *dz, bf16 ? bf16_.w() : kernel_param_->value, *dx[0]);
    }
  }

  bool reads_bf16_input() const override { return true; }  // see Bf16Operands

  int64_t macs() const override {
    return g_.out_h * g_.out_w * g_.out_c * (g_.in_c / groups_) * g_.kernel_h * g_.kernel_w;
  }

 private:
  bool depthwise_;
  int64_t filters_ = 0, groups_ = 1, depth_multiplier_ = 1;
  std::array<int64_t, 2> kernel_{}, strides_{}, dilation_{};
  PaddingSpec padding_;
  bool use_bias_ = true;
  ops::Activation activation_ = ops::Activation::kLinear;
  ops::Conv2dGeometry g_;
  Parameter* kernel_param_ = nullptr;
  Parameter* bias_param_ = nullptr;
  Tensor dz_;
  Bf16Operands bf16_;
};

}  // namespace

void register_conv2d_layers(LayerRegistry& registry) {
  registry.add("Conv2D", [](const std::string& name, const nlohmann::json& config) {
    return std::make_unique<Conv2DLayer>(name, config, false);
  });
  registry.add("DepthwiseConv2D", [](const std::string& name, const nlohmann::json& config) {
    return std::make_unique<Conv2DLayer>(name, config, true);
  });
}

}  // namespace residual
