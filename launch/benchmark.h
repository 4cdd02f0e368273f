#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace residual {

struct BenchConfig {
  std::string model = "resnet20";
  int64_t batch_size = 128;  // global: the ranks split it
  bool sync_bn = false;
  double bucket_cap_mb = 25;
  int steps = 10;
  int warmup = 3;
  std::vector<int64_t> input_hwc;  // empty: the model's own
  int64_t classes = 0;             // 0: the model's own
  uint64_t seed = 0;
  bool profile = false;  // print time per layer type and phase
  std::string device = "cpu";  // cpu | cuda | cuda:N (launch/device_option.h)
  std::string precision = "fp32";  // fp32 | bf16 (launch/precision_option.h)
};

// Medians over the timed steps, in milliseconds. On a GPU the phases are host times
// (kernels run asynchronously: the forward's show up in the loss, which waits for them);
// the step time is exact (it waits for the GPU to finish).
struct BenchResult {
  double forward_ms = 0, loss_ms = 0, backward_ms = 0, update_ms = 0, step_ms = 0;
  double images_per_s = 0;  // of the whole job (global batch / step time)
  // Multiply-adds of a training step per image, as FLOPs: forward, backward-data and
  // backward-weights each cost the forward's MACs, 2 FLOPs each (convolutions and dense
  // layers; the memory-bound layers count nothing). GFLOP/s = this * images_per_s.
  double train_gflop_per_image = 0;
  // Data parallel: the gradient all-reduce per step (first bucket launched to last one
  // done), and of it the part not hidden behind backward.
  double all_reduce_ms = 0, exposed_ms = 0;
  std::vector<double> rank_images_per_s;  // each rank's share / its step time
};

// Synthetic-data training steps through the same TrainStep as `train` (forward, loss,
// backward with the bucketed all-reduce, SGD with momentum 0.9 and weight decay 1e-4, as
// the PyTorch peer does) after `warmup` untimed steps, on every rank of `world`. On a GPU
// the synthetic batch (images and labels) is made on the host and copied to the device
// once, before the first step, as the peer makes its batch there: the steps time the
// training, not the host-to-device copy of a batch.
class Communicator;
BenchResult run_benchmark(const BenchConfig& config, std::ostream& log, Communicator& world);

}  // namespace residual
