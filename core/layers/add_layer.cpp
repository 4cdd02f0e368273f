// Add: the sum of two or more inputs of one shape (the join of a residual block).
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/layers/builtin_layers.h"
#include "core/layers/config_reader.h"

namespace residual {
namespace {

class AddLayer : public Layer {
 public:
  AddLayer(const std::string& name, const nlohmann::json& config) : Layer(name) {
    ConfigReader(name, type(), config).finish();
  }
  std::string type() const override { return "Add"; }
  nlohmann::json config() const override { return nlohmann::json::object(); }
  Shape build(const std::vector<Shape>& inputs) override {
    RESIDUAL_CHECK(inputs.size() >= 2, where(), "expects at least 2 inputs, got ", inputs.size());
    for (size_t i = 1; i < inputs.size(); ++i) {
      RESIDUAL_CHECK(inputs[i] == inputs[0], where(), "input '", input_name(0), "' has shape ",
                     inputs[0].str(), " but input '", input_name(i), "' has shape ",
                     inputs[i].str());
    }
    return inputs[0];
  }
  // The ReLU closing a residual block runs on the sum while it is still in cache.
  bool fuse_following_relu() override { return relu_ = true; }

  bool reads_bf16_input() const override { return true; }

  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext& ctx) override {
    y.resize(x[0]->shape(), x[0]->device(), output_dtype(ctx));
    ops::add_forward(x, relu_, y);
  }
  void backward(const std::vector<const Tensor*>& x, const Tensor& y, const Tensor& dy,
                const std::vector<Tensor*>& dx, const PassContext&) override {
    // Every input receives the same gradient: compute it once, copy it to the others. It
    // is computed into an input of dy's dtype where there is one, so that a bf16 input
    // next to a float32 one does not round the float32 input's gradient.
    size_t primary = dx.size();
    for (size_t i = 0; i < dx.size(); ++i) {
      if (!dx[i]) continue;
      dx[i]->resize_like(*x[i]);
      const bool better = primary == dx.size() ||
                          (dx[i]->dtype() == dy.dtype() && dx[primary]->dtype() != dy.dtype());
      if (better) primary = i;
    }
    if (primary == dx.size()) return;
    if (relu_) {
      ops::activation_backward(ops::Activation::kRelu, y, dy, *dx[primary]);
    } else {
      copy_converting(dy, *dx[primary]);
    }
    for (size_t i = 0; i < dx.size(); ++i) {
      if (dx[i] && i != primary) copy_converting(*dx[primary], *dx[i]);
    }
  }

 private:
  // Inputs and output may differ in dtype (bf16 activations have bf16 gradients).
  static void copy_converting(const Tensor& src, Tensor& dst) {
    if (src.dtype() == dst.dtype()) {
      dst.copy_from(src);
    } else {
      ops::cast(src, dst);
    }
  }
  std::string input_name(size_t i) const {
    return i < input_names().size() ? input_names()[i] : std::to_string(i);
  }
  bool relu_ = false;
};

}  // namespace

void register_add_layer(LayerRegistry& registry) {
  registry.add("Add", [](const std::string& name, const nlohmann::json& c) {
    return std::make_unique<AddLayer>(name, c);
  });
}

}  // namespace residual
