#include "core/layer.h"

#include "core/error.h"

namespace residual {

void Layer::initialize(std::mt19937_64&) {}

Parameter& Layer::add_parameter(const std::string& kind, const Shape& shape, bool trainable,
                                bool is_bias_or_norm) {
  Parameter& p = params_.emplace_back();
  p.name = name_ + "/" + kind;
  p.value = Tensor::zeros(shape);
  if (trainable) p.grad = Tensor::zeros(shape);
  p.trainable = trainable;
  p.is_bias_or_norm = is_bias_or_norm;
  return p;
}

std::vector<Tensor*> Layer::tensors() {
  std::vector<Tensor*> out;
  for (Parameter& p : params_) {
    out.push_back(&p.value);
    if (p.grad.defined()) out.push_back(&p.grad);
  }
  for (Tensor* t : state_tensors()) out.push_back(t);
  return out;
}

std::string Layer::where() const { return str_cat("layer '", name_, "' (", type(), "): "); }

}  // namespace residual
