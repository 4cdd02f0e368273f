#pragma once
// Axis ranges and ticks for the learning-curve plots: 1-2-5 steps, whole-number steps
// for epochs and steps, optional bounds (accuracy stays within 0-100 %).
#include <vector>

namespace residual::plot {

struct Axis {
  double lo = 0, hi = 1, step = 1;
  int decimals = 0;  // digits after the point that the tick labels need
};

// A 1-2-5 step giving about `target` intervals over `span`.
double nice_step(double span, int target);
// The range [lo, hi] widened to whole tick steps. `integer`: steps of at least 1.
// floor_bound / ceiling_bound (NaN: none) bound the widened range unless the data lie
// outside them.
Axis nice_axis(double lo, double hi, int target, bool integer, double floor_bound,
               double ceiling_bound);
std::vector<double> ticks(const Axis& a);

}  // namespace residual::plot
