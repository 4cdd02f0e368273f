#include "core/optimizer.h"

#include "core/error.h"
#include "ops/ops.h"

namespace residual {

Sgd::Sgd(std::vector<Parameter*> params, SgdOptions options)
    : params_(std::move(params)), options_(options) {
  for (Parameter* p : params_) {
    RESIDUAL_CHECK(p->trainable, "SGD given the non-trainable parameter ", p->name);
    velocity_.push_back(Tensor::zeros(p->value.shape(), p->value.device()));
  }
}

void Sgd::step(float lr) {
  for (size_t i = 0; i < params_.size(); ++i) {
    Parameter& p = *params_[i];
    ops::SgdConfig c;
    c.lr = lr;
    c.momentum = options_.momentum;
    c.nesterov = options_.nesterov;
    c.weight_decay =
        (p.is_bias_or_norm && !options_.decay_bias_and_norm) ? 0.f : options_.weight_decay;
    ops::sgd_step(c, p.value, p.grad, velocity_[i]);
  }
}

std::vector<std::pair<std::string, Tensor*>> Sgd::state() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back(params_[i]->name + "/momentum", &velocity_[i]);
  }
  return out;
}

}  // namespace residual
