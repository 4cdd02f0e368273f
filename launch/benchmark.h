#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace residual {

struct BenchConfig {
  std::string model = "resnet20";
  int64_t batch_size = 128;
  int steps = 10;
  int warmup = 3;
  std::vector<int64_t> input_hwc;  // empty: the model's own
  int64_t classes = 0;             // 0: the model's own
  uint64_t seed = 0;
  bool profile = false;  // print time per layer type and phase
};

// Medians over the timed steps, in milliseconds.
struct BenchResult {
  double forward_ms = 0, loss_ms = 0, backward_ms = 0, update_ms = 0, step_ms = 0;
  double images_per_s = 0;
};

// Synthetic-data training steps (forward, loss, backward, SGD update with momentum 0.9
// and weight decay 1e-4, as the PyTorch peer does) after `warmup` untimed steps.
BenchResult run_benchmark(const BenchConfig& config, std::ostream& log);

}  // namespace residual
