// adam_step against PyTorch's torch.optim.Adam / AdamW update, run in double for three
// steps with a new gradient each step (bias corrections change from step to step).
// Every config runs on every device (the reference reads host copies of the inputs).
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <string>
#include <vector>

#include "ops/ops.h"
#include "tests/ops/devices.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using op_test::on;
using op_test::WithDevice;
using ops::AdamConfig;
using ref::Expected;

struct AdamCase {
  std::string name;
  AdamConfig c;
};

void PrintTo(const AdamCase& c, std::ostream* out) { *out << c.name; }

AdamConfig config(float lr, float weight_decay, bool decoupled) {
  AdamConfig c;
  c.lr = lr;
  c.weight_decay = weight_decay;
  c.decoupled = decoupled;
  return c;
}

void check_three_steps(Device device, const AdamConfig& c, int64_t size) {
  SKIP_WITHOUT_KERNEL(ops::adam_step, device);
  ref::Rng rng(321);
  const Tensor host_param = ref::uniform_tensor(Shape{size}, rng);
  Tensor param = on(device, host_param);
  Tensor m = Tensor::zeros(Shape{size}, device), v = Tensor::zeros(Shape{size}, device);

  // PyTorch in double; ap carries the sum of |terms| of each parameter for the tolerance.
  std::vector<double> p = ref::to_double(host_param), pm(size, 0.0), pv(size, 0.0), ap(size);
  for (int64_t i = 0; i < size; ++i) ap[i] = std::abs(p[i]);
  const double lr = c.lr, b1 = c.beta1, b2 = c.beta2, eps = c.epsilon, wd = c.weight_decay;
  for (int64_t step = 1; step <= 3; ++step) {
    const Tensor grad = ref::uniform_tensor(Shape{size}, rng);
    ops::adam_step(c, step, param, on(device, grad), m, v);
    const double bias1 = 1 - std::pow(b1, step), bias2 = 1 - std::pow(b2, step);
    for (int64_t i = 0; i < size; ++i) {
      double g = grad.f32()[i];
      if (c.decoupled) {
        p[i] *= 1 - lr * wd;
      } else {
        g += wd * p[i];
      }
      pm[i] = b1 * pm[i] + (1 - b1) * g;
      pv[i] = b2 * pv[i] + (1 - b2) * g * g;
      const double update = lr * (pm[i] / bias1) / (std::sqrt(pv[i] / bias2) + eps);
      p[i] -= update;
      ap[i] += std::abs(update);
    }
  }
  Expected want_p(p), want_m(pm), want_v(pv);
  want_p.scale = ap;
  EXPECT_TRUE(ref::matches(param, want_p)) << "param";
  EXPECT_TRUE(ref::matches(m, want_m)) << "m";
  EXPECT_TRUE(ref::matches(v, want_v)) << "v";
}

class AdamTest : public ::testing::TestWithParam<WithDevice<AdamCase>> {
 protected:
  const AdamConfig& c() const { return std::get<0>(GetParam()).c; }
  Device device() const { return std::get<1>(GetParam()); }
};

TEST_P(AdamTest, ThreeStepsMatchPyTorch) { check_three_steps(device(), c(), 257); }

// Past the CPU kernel's single-thread cutoff, and many blocks on a GPU.
TEST_P(AdamTest, ThreeStepsMatchPyTorchLarge) { check_three_steps(device(), c(), 40000); }

std::string adam_case_name(const ::testing::TestParamInfo<AdamCase>& info) {
  return info.param.name;
}

std::string adam_case_device_name(const ::testing::TestParamInfo<WithDevice<AdamCase>>& info) {
  return op_test::with_device_name(info, adam_case_name);
}

INSTANTIATE_TEST_SUITE_P(Configs, AdamTest,
                         op_test::with_every_device(::testing::Values(
                             AdamCase{"Plain", config(1e-2f, 0.f, false)},
                             AdamCase{"L2WeightDecay", config(1e-2f, 0.1f, false)},
                             AdamCase{"AdamW", config(1e-2f, 0.1f, true)})),
                         adam_case_device_name);

}  // namespace
}  // namespace residual
