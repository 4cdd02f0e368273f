// Input: the model's entry point; the model hands the batch to its consumers directly.
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/image_limits.h"
#include "core/layers/builtin_layers.h"
#include "core/layers/config_reader.h"

namespace residual {
namespace {

class InputLayer : public Layer {
 public:
  InputLayer(const std::string& name, const nlohmann::json& config) : Layer(name) {
    ConfigReader r(name, "Input", config);
    const nlohmann::json* shape = r.raw("shape");
    if (!shape) r.fail_key("shape", "is required ([H, W, C] or [features])");
    if (!shape->is_array() || shape->empty()) r.fail_key("shape", "must be a list of sizes");
    std::vector<int64_t> dims;
    for (const auto& d : *shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 1) {
        r.fail_key("shape", "must hold positive integers, got " + shape->dump());
      }
      dims.push_back(d.get<int64_t>());
    }
    check_image_dims(dims, "layer '" + name + "' (Input): shape " + shape->dump());
    shape_ = Shape(dims);
    r.finish();
  }
  std::string type() const override { return "Input"; }
  nlohmann::json config() const override { return {{"shape", shape_.dims()}}; }
  Shape build(const std::vector<Shape>& inputs) override {
    RESIDUAL_CHECK(inputs.empty(), where(), "takes no inputs");
    return shape_;
  }
  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext&) override {
    y = *x[0];
  }
  void backward(const std::vector<const Tensor*>&, const Tensor&, const Tensor&,
                const std::vector<Tensor*>&, const PassContext&) override {}

 private:
  Shape shape_;
};

}  // namespace

void register_input_layer(LayerRegistry& registry) {
  registry.add("Input", [](const std::string& name, const nlohmann::json& config) {
    return std::make_unique<InputLayer>(name, config);
  });
}

}  // namespace residual
