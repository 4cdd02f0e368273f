#pragma once
// Finite-difference gradient checks for layers and whole models.
//
// The analytic gradient of a scalar loss is compared, element by element, with the central
// difference (L(v + h) - L(v - h)) / 2h. Everything runs in float32 as the library does; the
// loss is summed in double so its own rounding stays below the differences being measured.
//
// ReLU kinks: a perturbation that moves an input across zero makes the central difference
// meaningless there. Such a probe shows as disagreeing one-sided differences; there the
// analytic gradient must match the one-sided difference of one side instead, and only a
// small fraction of the probes may be judged that way, so a wrong gradient cannot hide
// behind "kinks".
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/layer.h"
#include "core/layer_registry.h"
#include "core/tensor.h"

namespace residual::gradcheck {

// Every test seeds its own engine, so a failing test reproduces when run alone.
using Rng = std::mt19937;

inline Tensor uniform(const Shape& shape, Rng& rng, float lo = -1.f, float hi = 1.f) {
  Tensor t = Tensor::empty(shape);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = dist(rng);
  return t;
}

// |v| in [lo, hi] with a random sign: a ReLU applied to these never sits within `lo` of
// its kink, so perturbations smaller than `lo` stay on one side.
inline Tensor away_from_zero(const Shape& shape, Rng& rng, float lo = 0.2f, float hi = 1.f) {
  Tensor t = uniform(shape, rng, lo, hi);
  std::bernoulli_distribution negative(0.5);
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (negative(rng)) t.f32()[i] = -t.f32()[i];
  }
  return t;
}

// Distinct values `step` apart, in random order: a max has no ties, and a perturbation
// below step / 2 cannot change which element wins.
inline Tensor distinct(const Shape& shape, Rng& rng, float step = 0.05f) {
  Tensor t = Tensor::empty(shape);
  const int64_t n = t.numel();
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::shuffle(order.begin(), order.end(), rng);
  for (int64_t i = 0; i < n; ++i) t.f32()[i] = static_cast<float>(order[i] - n / 2) * step;
  return t;
}

inline Tensor nan_tensor(const Shape& shape) {
  Tensor t = Tensor::empty(shape);
  t.fill(std::numeric_limits<float>::quiet_NaN());
  return t;
}

inline bool all_finite(const Tensor& t) {
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (!std::isfinite(t.f32()[i])) return false;
  }
  return true;
}

inline bool bitwise_equal(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  for (int64_t i = 0; i < a.numel(); ++i) {
    // Compare bits, not values: NaN == NaN here and -0 != +0.
    if (std::memcmp(a.f32() + i, b.f32() + i, sizeof(float)) != 0) return false;
  }
  return true;
}

// sum(y * r) in double.
inline double dot(const Tensor& y, const Tensor& r) {
  double sum = 0;
  for (int64_t i = 0; i < y.numel(); ++i) sum += static_cast<double>(y.f32()[i]) * r.f32()[i];
  return sum;
}

struct Options {
  float eps = 1e-2f;               // perturbation; large enough for float32 losses to resolve it
  double rel = 1e-2;               // of max(|analytic|, |numeric|)
  double abs = 2e-3;               // floor for gradients near zero
  int max_probes = 200;            // elements checked per tensor (a random subset if more)
  double max_kink_fraction = 0.2;  // of the probes of one tensor
  PassContext ctx{true, 1234, 7};
};

// The loss as a function of whatever tensors the caller perturbs in place.
using LossFn = std::function<double()>;

// Checks `grad` (the analytic d loss / d value) against central differences, perturbing
// `value` in place and restoring it. `what` names the tensor in the failure message.
inline ::testing::AssertionResult check_tensor(const std::string& what, Tensor& value,
                                               const Tensor& grad, const LossFn& loss,
                                               const Options& options, Rng& rng) {
  if (grad.shape() != value.shape()) {
    return ::testing::AssertionFailure() << what << ": gradient of shape " << grad.shape().str()
                                         << " for a value of shape " << value.shape().str();
  }
  const int64_t n = value.numel();
  std::vector<int64_t> probes(static_cast<size_t>(n));
  std::iota(probes.begin(), probes.end(), int64_t{0});
  if (n > options.max_probes) {
    std::shuffle(probes.begin(), probes.end(), rng);
    probes.resize(static_cast<size_t>(options.max_probes));
  }
  const double l0 = loss();
  int bad = 0, kinks = 0;
  double worst_ratio = 0;
  std::ostringstream worst;
  float* v = value.f32();
  for (int64_t i : probes) {
    const float original = v[i];
    // The steps actually taken after float rounding, not the nominal eps.
    const float up = original + options.eps, down = original - options.eps;
    v[i] = up;
    const double lp = loss();
    v[i] = down;
    const double lm = loss();
    v[i] = original;
    const double hp = static_cast<double>(up) - original, hm = original - static_cast<double>(down);
    const double numeric = (lp - lm) / (hp + hm);
    const double analytic = grad.f32()[i];
    const double tol = options.abs + options.rel * std::max(std::abs(analytic), std::abs(numeric));
    const double err = std::abs(analytic - numeric);
    if (std::isfinite(analytic) && err <= tol) continue;
    // At a kink the analytic gradient is the derivative on one side of it: the one-sided
    // difference on the side without the kink must agree (with room for its O(eps) error).
    const double forward_diff = (lp - l0) / hp, backward_diff = (l0 - lm) / hm;
    const double one_sided_err =
        std::min(std::abs(analytic - forward_diff), std::abs(analytic - backward_diff));
    if (std::abs(forward_diff - backward_diff) > tol && one_sided_err <= 2 * tol) {
      ++kinks;
      continue;
    }
    ++bad;
    const double ratio = std::isfinite(analytic) ? err / tol : HUGE_VAL;
    if (ratio > worst_ratio || bad == 1) {
      worst_ratio = ratio;
      worst.str("");
      worst << "element " << i << ": analytic " << analytic << ", numeric " << numeric
            << " (one-sided " << forward_diff << " / " << backward_diff << ")";
    }
  }
  const int checked = static_cast<int>(probes.size());
  if (bad > 0) {
    return ::testing::AssertionFailure() << what << ": " << bad << " of " << checked
                                         << " elements disagree; worst " << worst.str();
  }
  if (kinks > std::max(1.0, options.max_kink_fraction * checked)) {
    return ::testing::AssertionFailure() << what << ": " << kinks << " of " << checked
                                         << " probes are at kinks: too few left to judge";
  }
  return ::testing::AssertionSuccess();
}

// A layer of `type` made through the registry, built for `inputs` (tensors with the batch
// dimension) and initialised, with its biases and normalisation parameters randomised:
// the defaults (zero bias, gamma 1, beta 0) would hide terms of the gradient.
inline std::unique_ptr<Layer> make_layer(const std::string& type, const nlohmann::json& config,
                                         const std::vector<Tensor>& inputs, uint64_t seed) {
  std::unique_ptr<Layer> layer =
      LayerRegistry::with_builtins().create(type, "layer_under_test", config);
  std::vector<Shape> shapes;
  std::vector<std::string> names;
  for (const Tensor& x : inputs) {
    shapes.push_back(x.shape().without_batch());
    names.push_back("in" + std::to_string(names.size()));
  }
  layer->set_input_names(names);
  layer->build(shapes);
  std::mt19937_64 init_rng(seed);
  layer->initialize(init_rng);
  Rng rng(static_cast<uint32_t>(seed));
  for (Parameter& p : layer->parameters()) {
    if (!p.trainable || !p.is_bias_or_norm) continue;
    const bool gamma = p.name.size() >= 6 && p.name.compare(p.name.size() - 6, 6, "/gamma") == 0;
    p.value.copy_from(gamma ? uniform(p.value.shape(), rng, 0.5f, 1.5f)
                            : uniform(p.value.shape(), rng, -0.5f, 0.5f));
  }
  return layer;
}

inline std::vector<const Tensor*> pointers(const std::vector<Tensor>& tensors) {
  std::vector<const Tensor*> out;
  for (const Tensor& t : tensors) out.push_back(&t);
  return out;
}

// Checks d/dx and d/dparameter of loss = sum(y * R) for a fixed random R, for every input
// and every trainable parameter of `layer`. Also checks the backward contract: it
// overwrites dx and parameter gradients (they start as NaN), and skipping every dx
// (null) leaves the parameter gradients bit for bit the same.
inline ::testing::AssertionResult check_layer(Layer& layer, std::vector<Tensor>& inputs,
                                              const Options& options = {}) {
  Rng rng(99);
  const std::vector<const Tensor*> x = pointers(inputs);
  Tensor y;
  layer.forward(x, y, options.ctx);
  const Tensor r = uniform(y.shape(), rng);

  std::vector<Tensor> dx_storage;
  std::vector<Tensor*> dx;
  for (const Tensor& in : inputs) dx_storage.push_back(nan_tensor(in.shape()));
  for (Tensor& d : dx_storage) dx.push_back(&d);
  for (Parameter& p : layer.parameters()) {
    if (p.trainable) p.grad.fill(std::numeric_limits<float>::quiet_NaN());
  }
  layer.backward(x, y, r, dx, options.ctx);
  std::vector<Tensor> param_grads;
  for (Parameter& p : layer.parameters()) {
    if (p.trainable) param_grads.push_back(p.grad.clone());
  }

  // The finite differences run their own forwards; `y` above stays the one backward saw.
  Tensor y_probe;
  const LossFn loss = [&] {
    layer.forward(x, y_probe, options.ctx);
    return dot(y_probe, r);
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto result = check_tensor("d/d input " + std::to_string(i), inputs[i], dx_storage[i], loss,
                               options, rng);
    if (!result) return result;
  }
  size_t k = 0;
  for (Parameter& p : layer.parameters()) {
    if (!p.trainable) continue;
    auto result = check_tensor("d/d " + p.name, p.value, param_grads[k++], loss, options, rng);
    if (!result) return result;
  }

  // Parameter gradients without any dx (a first layer after the model input).
  layer.forward(x, y, options.ctx);
  std::vector<Tensor*> no_dx(inputs.size(), nullptr);
  layer.backward(x, y, r, no_dx, options.ctx);
  k = 0;
  for (Parameter& p : layer.parameters()) {
    if (!p.trainable) continue;
    if (!bitwise_equal(p.grad, param_grads[k++])) {
      return ::testing::AssertionFailure()
             << p.name << ": the gradient changes when backward is asked for no dx";
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace residual::gradcheck
