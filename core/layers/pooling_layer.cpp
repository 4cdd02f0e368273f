// MaxPooling2D and AveragePooling2D (Keras arguments; average excludes padding).
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/layers/builtin_layers.h"
#include "core/layers/config_reader.h"

namespace residual {
namespace {

class PoolingLayer : public Layer {
 public:
  PoolingLayer(const std::string& name, const nlohmann::json& config, ops::PoolKind kind)
      : Layer(name) {
    g_.kind = kind;
    ConfigReader r(name, type(), config);
    pool_ = r.pair("pool_size", {2, 2});
    strides_ = r.pair("strides", pool_);
    if (pool_[0] < 1 || pool_[1] < 1) r.fail_key("pool_size", "must be >= 1");
    if (strides_[0] < 1 || strides_[1] < 1) r.fail_key("strides", "must be >= 1");
    padding_ = read_padding(r, "valid");
    r.finish();
  }
  std::string type() const override {
    return g_.kind == ops::PoolKind::kMax ? "MaxPooling2D" : "AveragePooling2D";
  }
  nlohmann::json config() const override {
    return {{"pool_size", pair_to_json(pool_)},
            {"strides", pair_to_json(strides_)},
            {"padding", padding_.to_json()}};
  }

  Shape build(const std::vector<Shape>& inputs) override {
    expect_inputs(where(), inputs, 1, 3);
    const Shape& in = inputs[0];
    const auto pad = padding_.resolve(in[0], in[1], pool_, strides_, {1, 1});
    g_.in_h = in[0];
    g_.in_w = in[1];
    g_.channels = in[2];
    g_.kernel_h = pool_[0];
    g_.kernel_w = pool_[1];
    g_.stride_h = strides_[0];
    g_.stride_w = strides_[1];
    g_.pad_top = pad[0];
    g_.pad_bottom = pad[1];
    g_.pad_left = pad[2];
    g_.pad_right = pad[3];
    const int64_t padded_h = in[0] + pad[0] + pad[1], padded_w = in[1] + pad[2] + pad[3];
    RESIDUAL_CHECK(padded_h >= pool_[0] && padded_w >= pool_[1], where(), "input ", in.str(),
                   " is too small: the output size reaches 0 (pool ", pool_[0], "x", pool_[1],
                   ")");
    g_.out_h = (padded_h - pool_[0]) / strides_[0] + 1;
    g_.out_w = (padded_w - pool_[1]) / strides_[1] + 1;
    return Shape{g_.out_h, g_.out_w, g_.channels};
  }

  bool reads_bf16_input() const override { return true; }

  // The kernel pools x and y of one dtype: y's (bf16 where every reader takes bf16). An x
  // of the other dtype is cast first, and the backward casts dx back, a pass each that
  // only a model mixing bf16 and float32 readers around a pooling layer pays.
  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext& ctx) override {
    ops::Pool2dGeometry g = g_;
    g.batch = x[0]->dim(0);
    y.resize(Shape{g.batch, g.out_h, g.out_w, g.channels}, x[0]->device(), output_dtype(ctx));
    // The kernel sizes the workspace itself, so after Model::to it starts afresh on x's device.
    if (workspace_.defined() && workspace_.device() != x[0]->device()) workspace_ = Tensor();
    const Tensor* in = x[0];
    if (in->dtype() != y.dtype()) {
      ops::cast_to(y.dtype(), *in, converted_);
      in = &converted_;
    }
    ops::pool2d_forward(g, *in, y, workspace_, ctx.training);
  }
  void backward(const std::vector<const Tensor*>& x, const Tensor&, const Tensor& dy,
                const std::vector<Tensor*>& dx, const PassContext&) override {
    if (!dx[0]) return;
    ops::Pool2dGeometry g = g_;
    g.batch = x[0]->dim(0);
    dx[0]->resize_like(*x[0]);
    if (dx[0]->dtype() == dy.dtype()) {
      ops::pool2d_backward(g, dy, workspace_, *dx[0]);
      return;
    }
    converted_.resize(x[0]->shape(), x[0]->device(), dy.dtype());
    ops::pool2d_backward(g, dy, workspace_, converted_);
    ops::cast(converted_, *dx[0]);
  }

 private:
  std::array<int64_t, 2> pool_{}, strides_{};
  PaddingSpec padding_;
  ops::Pool2dGeometry g_;
  Tensor workspace_;
  Tensor converted_;  // x, or dx, in y's dtype where they differ
};

}  // namespace

void register_pooling_layers(LayerRegistry& registry) {
  registry.add("MaxPooling2D", [](const std::string& name, const nlohmann::json& config) {
    return std::make_unique<PoolingLayer>(name, config, ops::PoolKind::kMax);
  });
  registry.add("AveragePooling2D", [](const std::string& name, const nlohmann::json& config) {
    return std::make_unique<PoolingLayer>(name, config, ops::PoolKind::kAverage);
  });
}

}  // namespace residual
