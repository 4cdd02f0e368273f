#include "core/optimizer.h"

#include "core/error.h"
#include "ops/ops.h"

namespace residual {
namespace {

float decay_for(const Parameter& p, const OptimizerConfig& c) {
  return (p.is_bias_or_norm && !c.decay_bias_and_norm) ? 0.f : c.weight_decay;
}

std::vector<Tensor> zeros_like(const std::vector<Parameter*>& params) {
  std::vector<Tensor> out;
  for (Parameter* p : params) {
    RESIDUAL_CHECK(p->trainable, "optimizer given the non-trainable parameter ", p->name);
    out.push_back(Tensor::zeros(p->value.shape(), p->value.device()));
  }
  return out;
}

}  // namespace

void Optimizer::to(Device device) {
  std::vector<Tensor*> tensors;
  for (const auto& named : state()) tensors.push_back(named.second);
  try {
    move_all_to(tensors, device);
  } catch (const std::exception& e) {
    fail("the optimizer state cannot move to ", device.str(), " (", e.what(), ")");
  }
}

Sgd::Sgd(std::vector<Parameter*> params, const OptimizerConfig& config)
    : params_(std::move(params)), velocity_(zeros_like(params_)), config_(config) {}

void Sgd::step(float lr) {
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Parameter& p = *params_[i];
    ops::SgdConfig c;
    c.lr = lr;
    c.momentum = config_.momentum;
    c.nesterov = config_.nesterov;
    c.weight_decay = decay_for(p, config_);
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

Adam::Adam(std::vector<Parameter*> params, const OptimizerConfig& config)
    : params_(std::move(params)), m_(zeros_like(params_)), v_(zeros_like(params_)),
      config_(config) {}

void Adam::step(float lr) {
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Parameter& p = *params_[i];
    ops::AdamConfig c;
    c.lr = lr;
    c.beta1 = config_.beta1;
    c.beta2 = config_.beta2;
    c.epsilon = config_.epsilon;
    c.weight_decay = decay_for(p, config_);
    c.decoupled = config_.kind == "adamw";
    ops::adam_step(c, steps_, p.value, p.grad, m_[i], v_[i]);
  }
}

std::vector<std::pair<std::string, Tensor*>> Adam::state() {
  std::vector<std::pair<std::string, Tensor*>> out;
  for (size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back(params_[i]->name + "/adam_m", &m_[i]);
    out.emplace_back(params_[i]->name + "/adam_v", &v_[i]);
  }
  return out;
}

std::unique_ptr<Optimizer> make_optimizer(std::vector<Parameter*> params,
                                          const OptimizerConfig& config) {
  if (config.kind == "sgd") return std::make_unique<Sgd>(std::move(params), config);
  if (config.kind == "adam" || config.kind == "adamw") {
    return std::make_unique<Adam>(std::move(params), config);
  }
  fail("unknown optimizer '", config.kind, "' (known: sgd, adam, adamw)");
}

}  // namespace residual
