#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/layer.h"

namespace residual {

// Updates parameters from their gradients. State is exposed as named tensors so a
// checkpoint can save and restore it.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual void step(float lr) = 0;
  virtual std::vector<std::pair<std::string, Tensor*>> state() = 0;
  // Moves the state (momentum, Adam's moments) to `device`, after Model::to moved the
  // parameters: all or nothing, an Error leaves it where it was.
  void to(Device device);
  // Updates taken so far (Adam's bias correction depends on it; saved in checkpoints).
  int64_t steps_taken() const { return steps_; }
  void set_steps_taken(int64_t steps) { steps_ = steps; }

 protected:
  int64_t steps_ = 0;
};

struct OptimizerConfig {
  std::string kind = "sgd";  // sgd | adam | adamw
  float momentum = 0.9f;     // sgd
  bool nesterov = false;     // sgd
  float beta1 = 0.9f, beta2 = 0.999f, epsilon = 1e-8f;  // adam, adamw
  float weight_decay = 0.f;
  bool decay_bias_and_norm = true;  // false: no weight decay on biases and BN gamma/beta
};

// SGD with momentum (PyTorch's formulation), Nesterov and weight decay.
class Sgd : public Optimizer {
 public:
  Sgd(std::vector<Parameter*> params, const OptimizerConfig& config);
  void step(float lr) override;
  std::vector<std::pair<std::string, Tensor*>> state() override;

 private:
  std::vector<Parameter*> params_;
  std::vector<Tensor> velocity_;
  OptimizerConfig config_;
};

// Adam (L2 weight decay in the gradient) and AdamW (decoupled weight decay).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Parameter*> params, const OptimizerConfig& config);
  void step(float lr) override;
  std::vector<std::pair<std::string, Tensor*>> state() override;

 private:
  std::vector<Parameter*> params_;
  std::vector<Tensor> m_, v_;
  OptimizerConfig config_;
};

std::unique_ptr<Optimizer> make_optimizer(std::vector<Parameter*> params,
                                          const OptimizerConfig& config);

}  // namespace residual
