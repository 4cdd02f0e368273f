#pragma once
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
};

struct SgdOptions {
  float momentum = 0.9f;
  float weight_decay = 0.f;
  bool nesterov = false;
  bool decay_bias_and_norm = true;  // false: no weight decay on biases and BN gamma/beta
};

// SGD with momentum (PyTorch's formulation), Nesterov and weight decay.
class Sgd : public Optimizer {
 public:
  Sgd(std::vector<Parameter*> params, SgdOptions options);
  void step(float lr) override;
  std::vector<std::pair<std::string, Tensor*>> state() override;

 private:
  std::vector<Parameter*> params_;
  std::vector<Tensor> velocity_;
  SgdOptions options_;
};

}  // namespace residual
