// Axis ranges and ticks for the learning-curve plots (io/svg_plot.cpp).
#include "io/plot_axes.h"

#include <algorithm>
#include <cmath>

namespace residual::plot {

// A 1-2-5 step giving about `target` intervals over `span`.
double nice_step(double span, int target) {
  const double raw = span / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  const double nice = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  return nice * mag;
}

// The range [lo, hi] widened to whole tick steps. `integer`: steps of at least 1 (epochs,
// steps). `floor`/`ceiling` bound the widened range (NaN: unbounded), unless the data lie
// outside them.
Axis nice_axis(double lo, double hi, int target, bool integer, double floor_bound,
               double ceiling_bound) {
  const double data_lo = lo, data_hi = hi;
  if (!(hi > lo)) {
    double pad = lo == 0 ? 1.0 : std::fabs(lo) * 0.1;
    if (integer) pad = std::max(pad, 1.0);
    lo -= pad;
    hi += pad;
  }
  Axis a;
  a.step = nice_step(hi - lo, target);
  if (integer) a.step = std::max(a.step, 1.0);
  a.lo = std::floor(lo / a.step + 1e-9) * a.step;
  a.hi = std::ceil(hi / a.step - 1e-9) * a.step;
  if (std::isfinite(floor_bound) && a.lo < floor_bound && data_lo >= floor_bound) {
    a.lo = std::ceil(floor_bound / a.step - 1e-9) * a.step;
  }
  if (std::isfinite(ceiling_bound) && a.hi > ceiling_bound && data_hi <= ceiling_bound) {
    a.hi = std::floor(ceiling_bound / a.step + 1e-9) * a.step;
  }
  if (!(a.hi > a.lo)) a.hi = a.lo + a.step;
  a.decimals = a.step >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(a.step) - 1e-9));
  return a;
}

std::vector<double> ticks(const Axis& a) {
  std::vector<double> out;
  const int n = static_cast<int>(std::llround((a.hi - a.lo) / a.step));
  for (int i = 0; i <= n; ++i) {
    double v = a.lo + i * a.step;
    if (std::fabs(v) < a.step * 1e-9) v = 0;  // no "-0"
    out.push_back(v);
  }
  return out;
}

}  // namespace residual::plot
