// Losses and their logit gradients against double references written from the textbook
// definitions (-sum q log p, -t log s - (1 - t) log(1 - s)), not the kernels' stable
// rewrites, so the rewrite itself is what gets checked. Every case runs on every device
// (logits and labels built on the host, copied there).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "ops/ops.h"
#include "tests/ops/devices.h"
#include "tests/ops/reference.h"

namespace residual {
namespace {

using op_test::on;
using op_test::WithDevice;
using ref::Expected;

Tensor labels_tensor(const std::vector<int32_t>& labels) {
  Tensor t =
      Tensor::empty(Shape{static_cast<int64_t>(labels.size())}, Device::cpu(), DType::kInt32);
  std::copy(labels.begin(), labels.end(), t.data<int32_t>());
  return t;
}

struct SoftmaxCase {
  const char* name;
  float label_smoothing;
  double grad_scale;  // 0: the op's default, 1 / N
  float logit_offset;
  int64_t batch = 7;
};

void PrintTo(const SoftmaxCase& c, std::ostream* out) { *out << c.name; }

std::string loss_case_name(const ::testing::TestParamInfo<SoftmaxCase>& info) {
  return info.param.name;
}

std::string loss_case_device_name(const ::testing::TestParamInfo<WithDevice<SoftmaxCase>>& info) {
  return op_test::with_device_name(info, loss_case_name);
}

class SoftmaxCrossEntropyTest : public ::testing::TestWithParam<WithDevice<SoftmaxCase>> {};

TEST_P(SoftmaxCrossEntropyTest, LossAndGradient) {
  const auto& [sc, device] = GetParam();
  SKIP_WITHOUT_KERNEL(ops::softmax_cross_entropy, device);
  const int64_t kN = sc.batch, kK = 10;
  ref::Rng rng(17);
  Tensor logits = ref::uniform_tensor(Shape{kN, kK}, rng, -4.f, 4.f);
  // A large common offset overflows a naive exp in float32; the loss must not change.
  for (int64_t i = 0; i < logits.numel(); ++i) logits.f32()[i] += sc.logit_offset;
  std::vector<int32_t> labels(static_cast<size_t>(kN));
  std::uniform_int_distribution<int32_t> label_dist(0, kK - 1);
  for (int32_t& label : labels) label = label_dist(rng);
  labels[0] = 0;  // both ends of the label range
  labels[1] = kK - 1;
  Tensor dlogits = on(device, ref::nan_tensor(logits.shape()));
  const double loss =
      ops::softmax_cross_entropy(on(device, logits), on(device, labels_tensor(labels)),
                                 sc.label_smoothing, dlogits, sc.grad_scale);

  const double scale = sc.grad_scale == 0 ? 1.0 / kN : sc.grad_scale;
  double want_loss = 0, loss_scale = 0;
  Expected want_d(kN * kK);
  for (int64_t n = 0; n < kN; ++n) {
    const float* z = logits.f32() + n * kK;
    const double top = *std::max_element(z, z + kK);
    double total = 0;
    for (int64_t k = 0; k < kK; ++k) total += std::exp(z[k] - top);
    for (int64_t k = 0; k < kK; ++k) {
      // Smoothed target: (1 - ls) on the label plus ls / K everywhere.
      const double q = (k == labels[n] ? 1.0 - sc.label_smoothing : 0.0) +
                       sc.label_smoothing / static_cast<double>(kK);
      const double p = std::exp(z[k] - top) / total;
      want_loss -= q * std::log(p) / kN;
      loss_scale += q * (std::abs(z[k] - top) + std::log(total)) / kN;
      want_d.add(n * kK + k, p * scale);
      want_d.add(n * kK + k, -q * scale);
    }
  }
  EXPECT_TRUE(ref::matches(loss, want_loss, loss_scale)) << "loss";
  EXPECT_TRUE(ref::matches(dlogits, want_d)) << "dlogits";
}

const SoftmaxCase kSoftmaxCases[] = {
    SoftmaxCase{"Plain", 0.f, 0, 0.f},
    SoftmaxCase{"Smoothed", 0.1f, 0, 0.f},
    SoftmaxCase{"SmoothedGradScale", 0.1f, 0.5, 0.f},
    SoftmaxCase{"LargeLogits", 0.f, 0, 150.f},
    SoftmaxCase{"NegativeLogits", 0.2f, 3.0, -150.f},
    // Past the kernel's single-thread cutoff.
    SoftmaxCase{"LargeBatch", 0.1f, 0, 0.f, 4096},
};

INSTANTIATE_TEST_SUITE_P(Cases, SoftmaxCrossEntropyTest,
                         op_test::with_every_device(::testing::ValuesIn(kSoftmaxCases)),
                         loss_case_device_name);

// Suites of single cases, run on every device.
class SoftmaxCrossEntropyDeviceTest : public ::testing::TestWithParam<Device> {};
class SigmoidBinaryCrossEntropyTest : public ::testing::TestWithParam<Device> {};

TEST_P(SoftmaxCrossEntropyDeviceTest, OutOfRangeLabelThrows) {
  const Device device = GetParam();
  SKIP_WITHOUT_KERNEL(ops::softmax_cross_entropy, device);
  ref::Rng rng(18);
  const Tensor logits = on(device, ref::uniform_tensor(Shape{3, 4}, rng));
  Tensor dlogits = Tensor::empty(logits.shape(), device);
  auto labels = [&](const std::vector<int32_t>& host) { return on(device, labels_tensor(host)); };
  EXPECT_THROW(
      ops::softmax_cross_entropy(logits, labels({0, 4, 1}), 0.f, dlogits, ops::kGradOfMean),
      Error);
  EXPECT_THROW(ops::softmax_cross_entropy(logits, labels({0, 1, -1}), 0.1f, dlogits,
                                          ops::kGradOfMean),
               Error);
  // The boundary label K - 1 is valid.
  EXPECT_NO_THROW(
      ops::softmax_cross_entropy(logits, labels({3, 0, 2}), 0.f, dlogits, ops::kGradOfMean));
}

// -log(sigmoid(z)) = softplus(-z), evaluated without overflow for any z.
double softplus(double a) { return a > 0 ? a + std::log1p(std::exp(-a)) : std::log1p(std::exp(a)); }

// logits and targets on the host; the op runs on `device`.
void check_binary_cross_entropy(Device device, const Tensor& logits, const Tensor& targets,
                                double grad_scale) {
  Tensor d = on(device, ref::nan_tensor(logits.shape()));
  const double loss = ops::sigmoid_binary_cross_entropy(on(device, logits), on(device, targets),
                                                        d, grad_scale);
  const int64_t count = logits.numel();
  const double scale = grad_scale == 0 ? 1.0 / count : grad_scale;
  double want_loss = 0, loss_scale = 0;
  Expected want_d(count);
  for (int64_t i = 0; i < count; ++i) {
    const double z = logits.f32()[i], t = targets.f32()[i];
    // -t log s - (1 - t) log(1 - s) with -log s = softplus(-z), -log(1 - s) = softplus(z).
    const double term = t * softplus(-z) + (1 - t) * softplus(z);
    want_loss += term / count;
    loss_scale += std::abs(term) / count;
    const double s = 1.0 / (1.0 + std::exp(-z));
    want_d.add(i, s * scale);
    want_d.add(i, -t * scale);
  }
  EXPECT_TRUE(ref::matches(loss, want_loss, loss_scale)) << "loss";
  EXPECT_TRUE(ref::matches(d, want_d)) << "dlogits";
}

TEST_P(SigmoidBinaryCrossEntropyTest, SoftTargets) {
  SKIP_WITHOUT_KERNEL(ops::sigmoid_binary_cross_entropy, GetParam());
  ref::Rng rng(19);
  Tensor logits = ref::uniform_tensor(Shape{6, 5}, rng, -6.f, 6.f);
  Tensor targets = ref::uniform_tensor(logits.shape(), rng, 0.f, 1.f);
  // Hard 0 / 1 targets too: the edges of the allowed range.
  targets.f32()[0] = 0.f;
  targets.f32()[1] = 1.f;
  check_binary_cross_entropy(GetParam(), logits, targets, 0);
  check_binary_cross_entropy(GetParam(), logits, targets, 0.25);
}

// |z| = 60 saturates float32 sigmoid: a log(sigmoid) formulation returns inf or NaN.
TEST_P(SigmoidBinaryCrossEntropyTest, SaturatedLogitsStayFinite) {
  SKIP_WITHOUT_KERNEL(ops::sigmoid_binary_cross_entropy, GetParam());
  Tensor logits = Tensor::empty(Shape{4, 1}), targets = Tensor::empty(Shape{4, 1});
  const float z[] = {60.f, -60.f, 60.f, -60.f}, t[] = {1.f, 0.f, 0.f, 1.f};
  std::copy(z, z + 4, logits.f32());
  std::copy(t, t + 4, targets.f32());
  check_binary_cross_entropy(GetParam(), logits, targets, 0);
}

INSTANTIATE_ON_OP_TEST_DEVICES(SoftmaxCrossEntropyDeviceTest);
INSTANTIATE_ON_OP_TEST_DEVICES(SigmoidBinaryCrossEntropyTest);

}  // namespace
}  // namespace residual
