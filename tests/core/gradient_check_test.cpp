// The gradient checker itself: a check that cannot fail proves nothing, so each kind of
// wrong backward it is meant to catch is planted in a small layer here.
#include "tests/core/gradient_check.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/layer.h"

namespace residual {
namespace {

enum class Fault {
  kNone,
  kScaledDx,      // dx 3% too large
  kOneDxWrong,    // dx zero at one element
  kAccumulates,   // dx += instead of dx =
  kScaledWeight,  // weight gradient 3% too large
  kWeightNeedsDx  // weight gradient only right when dx is requested
};

// y[n, c] = w[c] * x[n, c]^3: smooth, with one parameter per channel.
class CubeLayer : public Layer {
 public:
  explicit CubeLayer(Fault fault) : Layer("cube"), fault_(fault) {}
  std::string type() const override { return "Cube"; }
  nlohmann::json config() const override { return nlohmann::json::object(); }
  Shape build(const std::vector<Shape>& inputs) override {
    w_ = &add_parameter("w", Shape{inputs[0][0]}, true, false);
    w_->value.fill(0.7f);
    return inputs[0];
  }
  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext&) override {
    y.resize_like(*x[0]);
    const int64_t c = w_->value.numel();
    for (int64_t i = 0; i < y.numel(); ++i) {
      const float v = x[0]->f32()[i];
      y.f32()[i] = w_->value.f32()[i % c] * v * v * v;
    }
  }
  void backward(const std::vector<const Tensor*>& x, const Tensor&, const Tensor& dy,
                const std::vector<Tensor*>& dx, const PassContext&) override {
    const int64_t c = w_->value.numel();
    const float dx_scale = fault_ == Fault::kScaledDx ? 1.03f : 1.f;
    const float dw_scale = fault_ == Fault::kScaledWeight              ? 1.03f
                           : fault_ == Fault::kWeightNeedsDx && !dx[0] ? 0.5f
                                                                       : 1.f;
    w_->grad.zero();
    for (int64_t i = 0; i < dy.numel(); ++i) {
      const float v = x[0]->f32()[i];
      w_->grad.f32()[i % c] += dw_scale * dy.f32()[i] * v * v * v;
    }
    if (!dx[0]) return;
    if (fault_ != Fault::kAccumulates) dx[0]->resize_like(*x[0]);
    for (int64_t i = 0; i < dy.numel(); ++i) {
      const float v = x[0]->f32()[i];
      const float g = dx_scale * dy.f32()[i] * 3.f * w_->value.f32()[i % c] * v * v;
      dx[0]->f32()[i] = fault_ == Fault::kAccumulates ? dx[0]->f32()[i] + g : g;
    }
    if (fault_ == Fault::kOneDxWrong) dx[0]->f32()[5] = 0.f;
  }

 private:
  Fault fault_;
  Parameter* w_ = nullptr;
};

::testing::AssertionResult check_cube(Fault fault) {
  CubeLayer layer(fault);
  layer.build({{4}});
  gradcheck::Rng rng(1);
  std::vector<Tensor> inputs{gradcheck::uniform({3, 4}, rng, 0.5f, 1.5f)};
  return gradcheck::check_layer(layer, inputs);
}

TEST(GradientCheckTest, AcceptsACorrectBackward) { EXPECT_TRUE(check_cube(Fault::kNone)); }

TEST(GradientCheckTest, CatchesEachPlantedFault) {
  EXPECT_FALSE(check_cube(Fault::kScaledDx));
  EXPECT_FALSE(check_cube(Fault::kOneDxWrong));
  EXPECT_FALSE(check_cube(Fault::kAccumulates));
  EXPECT_FALSE(check_cube(Fault::kScaledWeight));
  EXPECT_FALSE(check_cube(Fault::kWeightNeedsDx));
}

// Inputs within eps of a ReLU's kink everywhere: each probe alone would pass against a
// one-sided difference, but so many kinks leave nothing to judge, and that must fail.
TEST(GradientCheckTest, RefusesToJudgeWhenEveryProbeIsAtAKink) {
  std::vector<Tensor> inputs{Tensor::empty({2, 8})};
  gradcheck::Rng rng(2);
  inputs[0].copy_from(gradcheck::away_from_zero({2, 8}, rng, 1e-3f, 5e-3f));
  auto relu = gradcheck::make_layer("ReLU", nlohmann::json::object(), inputs, 1);
  const auto result = gradcheck::check_layer(*relu, inputs);
  EXPECT_FALSE(result);
  EXPECT_NE(std::string(result.message()).find("kinks"), std::string::npos) << result.message();
}

// A few kinks are judged on the side without the kink, not waved through: near the kink
// the one-sided slopes are 1 and about 0, and 0.2 matches neither.
TEST(GradientCheckTest, JudgesKinkProbesAgainstOneSide) {
  Tensor x = Tensor::zeros({4});
  Tensor wrong = Tensor::empty({4});
  wrong.fill(0.2f);
  Tensor right = Tensor::zeros({4});
  right.f32()[0] = 1.f;
  x.f32()[0] = 1e-4f;  // within eps of the kink: one kink in four probes
  for (int i = 1; i < 4; ++i) x.f32()[i] = -1.f;
  wrong.f32()[1] = wrong.f32()[2] = wrong.f32()[3] = 0.f;
  const gradcheck::LossFn loss = [&] {
    double sum = 0;
    for (int i = 0; i < 4; ++i) sum += std::max(0.f, x.f32()[i]);
    return sum;
  };
  gradcheck::Rng rng(3);
  EXPECT_TRUE(gradcheck::check_tensor("relu", x, right, loss, {}, rng));
  EXPECT_FALSE(gradcheck::check_tensor("relu", x, wrong, loss, {}, rng));
}

}  // namespace
}  // namespace residual
