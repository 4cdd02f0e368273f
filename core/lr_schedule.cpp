#include "core/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace residual {
namespace {

constexpr double kPi = 3.14159265358979323846;

double cosine_between(double from, double to, double t) {
  return to + (from - to) * 0.5 * (1.0 + std::cos(kPi * std::clamp(t, 0.0, 1.0)));
}

double scheduled(const LrScheduleConfig& c, double epoch) {
  const double t = c.total_epochs > 0 ? epoch / c.total_epochs : 1.0;
  if (c.kind == "constant") return c.base_lr;
  if (c.kind == "step") return c.base_lr * std::pow(c.gamma, std::floor(epoch / c.step_size));
  if (c.kind == "multistep") {
    const auto passed = std::count_if(c.milestones.begin(), c.milestones.end(),
                                      [&](double m) { return epoch >= m; });
    return c.base_lr * std::pow(c.gamma, static_cast<double>(passed));
  }
  if (c.kind == "cosine") return cosine_between(c.base_lr, c.final_lr, t);
  if (c.kind == "polynomial") {
    return c.final_lr + (c.base_lr - c.final_lr) * std::pow(1.0 - std::clamp(t, 0.0, 1.0), c.power);
  }
  // onecycle (PyTorch's OneCycleLR, cosine): up from base/div to base, then down to
  // base/(div*final_div).
  const double start = c.base_lr / c.onecycle_div_factor;
  const double end = start / c.onecycle_final_div_factor;
  if (t < c.onecycle_pct_start) return cosine_between(start, c.base_lr, t / c.onecycle_pct_start);
  return cosine_between(c.base_lr, end, (t - c.onecycle_pct_start) / (1.0 - c.onecycle_pct_start));
}

}  // namespace

void validate(const LrScheduleConfig& c) {
  static const char* kKinds[] = {"constant", "step", "multistep", "cosine", "polynomial", "onecycle"};
  RESIDUAL_CHECK(std::find(std::begin(kKinds), std::end(kKinds), c.kind) != std::end(kKinds),
                 "unknown --lr-schedule '", c.kind,
                 "' (known: constant, step, multistep, cosine, polynomial, onecycle)");
  RESIDUAL_CHECK(c.base_lr > 0 && std::isfinite(c.base_lr), "--lr must be a positive number");
  RESIDUAL_CHECK(c.warmup_epochs >= 0, "--warmup-epochs must be >= 0");
  RESIDUAL_CHECK(c.kind != "step" || c.step_size > 0, "--lr-step-size must be > 0");
  RESIDUAL_CHECK(c.kind != "multistep" || !c.milestones.empty(),
                 "--lr-schedule multistep needs --lr-milestones");
  RESIDUAL_CHECK(c.onecycle_pct_start > 0 && c.onecycle_pct_start < 1,
                 "one-cycle warm-up fraction must be in (0, 1)");
}

double learning_rate(const LrScheduleConfig& c, double epoch, double step_epochs) {
  const double lr = scheduled(c, epoch);
  const double done = epoch + step_epochs;
  if (c.warmup_epochs > 0 && done < c.warmup_epochs) return lr * (done / c.warmup_epochs);
  return lr;
}

}  // namespace residual
