// Dropout (inverted). The mask is a function of (run seed, step, layer name, element of
// the global batch), so no mask is stored, a resumed run draws the same masks, and k ranks
// draw the masks one process draws.
#include <nlohmann/json.hpp>

#include "core/hash.h"
#include "core/error.h"
#include "core/layers/builtin_layers.h"
#include "core/layers/config_reader.h"

namespace residual {
namespace {

class DropoutLayer : public Layer {
 public:
  DropoutLayer(const std::string& name, const nlohmann::json& config) : Layer(name) {
    ConfigReader r(name, type(), config);
    if (!r.raw("rate")) r.fail_key("rate", "is required");
    rate_ = static_cast<float>(r.number("rate", 0));
    if (!(rate_ >= 0.f && rate_ < 1.f)) r.fail_key("rate", "must be in [0, 1)");
    r.finish();
  }
  std::string type() const override { return "Dropout"; }
  nlohmann::json config() const override { return {{"rate", rate_}}; }
  Shape build(const std::vector<Shape>& inputs) override {
    RESIDUAL_CHECK(inputs.size() == 1, where(), "expects one input");
    return inputs[0];
  }
  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext& ctx) override {
    y.resize_like(*x[0]);
    if (ctx.training) {
      ops::dropout_forward(rate_, seed(ctx), *x[0], y, first_element(*x[0], ctx));
    } else {
      y.copy_from(*x[0]);
    }
  }
  void backward(const std::vector<const Tensor*>& x, const Tensor&, const Tensor& dy,
                const std::vector<Tensor*>& dx, const PassContext& ctx) override {
    if (!dx[0]) return;
    dx[0]->resize_like(*x[0]);
    ops::dropout_backward(rate_, seed(ctx), dy, *dx[0], first_element(dy, ctx));
  }

 private:
  static int64_t first_element(const Tensor& x, const PassContext& ctx) {
    const int64_t rows = x.dim(0);
    return rows > 0 ? ctx.first_sample * (x.numel() / rows) : 0;
  }
  uint64_t seed(const PassContext& ctx) const {
    return (ctx.seed * 0x9e3779b97f4a7c15ULL) ^ (ctx.step * 0xc2b2ae3d27d4eb4fULL) ^ fnv1a(name());
  }
  float rate_ = 0.f;
};

}  // namespace

void register_dropout_layer(LayerRegistry& registry) {
  registry.add("Dropout", [](const std::string& name, const nlohmann::json& c) {
    return std::make_unique<DropoutLayer>(name, c);
  });
}

}  // namespace residual
