// sgd_step against PyTorch's torch.optim.SGD update (dampening 0), run in double for
// three steps with a new gradient each step, so momentum and Nesterov terms both matter.
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
using ops::SgdConfig;
using ref::Expected;

SgdConfig config(float lr, float momentum, float weight_decay, bool nesterov) {
  SgdConfig c;
  c.lr = lr;
  c.momentum = momentum;
  c.weight_decay = weight_decay;
  c.nesterov = nesterov;
  return c;
}

struct SgdCase {
  std::string name;
  SgdConfig c;
};

void PrintTo(const SgdCase& c, std::ostream* out) { *out << c.name; }

// 257 elements run on one thread; 40000 pass the kernel's single-thread cutoff.
void check_three_steps(Device device, const SgdConfig& c, int64_t size) {
  SKIP_WITHOUT_KERNEL(ops::sgd_step, device);
  constexpr int kSteps = 3;
  ref::Rng rng(123);
  Tensor host_param = ref::uniform_tensor(Shape{size}, rng);
  Tensor param = on(device, host_param);
  Tensor velocity = Tensor::zeros(Shape{size}, device);  // what a fresh optimizer starts from

  // PyTorch in double; the a* vectors carry the sum of |terms| for the tolerance.
  std::vector<double> p = ref::to_double(host_param), buf(size, 0.0);
  std::vector<double> ap(size), abuf(size, 0.0);
  for (int64_t i = 0; i < size; ++i) ap[i] = std::abs(p[i]);
  const double lr = c.lr, mu = c.momentum, wd = c.weight_decay;
  for (int step = 0; step < kSteps; ++step) {
    const Tensor grad = ref::uniform_tensor(Shape{size}, rng);
    ops::sgd_step(c, param, on(device, grad), velocity);
    for (int64_t i = 0; i < size; ++i) {
      double d = grad.f32()[i] + wd * p[i];
      double ad = std::abs(grad.f32()[i]) + wd * ap[i];
      if (mu != 0) {
        // torch: buf = d on the first step, then buf = momentum * buf + d.
        buf[i] = step == 0 ? d : mu * buf[i] + d;
        abuf[i] = step == 0 ? ad : mu * abuf[i] + ad;
        d = c.nesterov ? d + mu * buf[i] : buf[i];
        ad = c.nesterov ? ad + mu * abuf[i] : abuf[i];
      } else {
        buf[i] = d;  // the kernel's velocity with zero momentum is the plain gradient
        abuf[i] = ad;
      }
      p[i] -= lr * d;
      ap[i] += lr * ad;
    }
  }
  Expected want_p(p), want_v(buf);
  want_p.scale = ap;
  want_v.scale = abuf;
  EXPECT_TRUE(ref::matches(param, want_p)) << "param";
  EXPECT_TRUE(ref::matches(velocity, want_v)) << "velocity";
}

// Param: (config, device).
class SgdTest : public ::testing::TestWithParam<WithDevice<SgdCase>> {
 protected:
  const SgdConfig& c() const { return std::get<0>(GetParam()).c; }
  Device device() const { return std::get<1>(GetParam()); }
};

TEST_P(SgdTest, ThreeStepsMatchPyTorch) { check_three_steps(device(), c(), 257); }

TEST_P(SgdTest, ThreeStepsMatchPyTorchLarge) { check_three_steps(device(), c(), 40000); }

std::string sgd_case_name(const ::testing::TestParamInfo<SgdCase>& info) { return info.param.name; }

std::string sgd_case_device_name(const ::testing::TestParamInfo<WithDevice<SgdCase>>& info) {
  return op_test::with_device_name(info, sgd_case_name);
}

INSTANTIATE_TEST_SUITE_P(Configs, SgdTest,
                         op_test::with_every_device(::testing::Values(
                             SgdCase{"Plain", config(0.1f, 0.f, 0.f, false)},
                             SgdCase{"Momentum", config(0.1f, 0.9f, 0.f, false)},
                             SgdCase{"MomentumWeightDecay", config(0.05f, 0.9f, 0.05f, false)},
                             SgdCase{"Nesterov", config(0.1f, 0.9f, 0.f, true)},
                             SgdCase{"NesterovWeightDecay", config(0.2f, 0.8f, 0.1f, true)})),
                         sgd_case_device_name);

}  // namespace
}  // namespace residual
