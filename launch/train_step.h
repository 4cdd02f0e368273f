#pragma once
// One optimizer step of data-parallel training, the same for `train` and `bench` (so the
// bench measures what training does, communication included):
//   for each micro-batch of this rank's share: forward, loss, backward (the Reducer
//   sums gradient buckets across ranks as backward finishes them) -> wait for the
//   buckets -> finiteness check -> clipping -> optimizer step.
// The loss gradient is divided by the *global* batch size, so the summed gradients are
// exactly one process's gradients for the same global batch, whatever the shares.
#include <cstdint>
#include <memory>

#include "core/model.h"
#include "core/optimizer.h"
#include "core/replica_sum.h"
#include "distributed/communicator.h"
#include "distributed/reducer.h"
#include "launch/evaluation.h"

namespace residual {

struct TrainStepConfig {
  float label_smoothing = 0.f;
  float clip_grad_norm = 0.f;  // > 0: clip the global gradient norm
  int64_t accumulate = 1;      // micro-batches per step
  ReducerConfig reducer;
};

// This rank's part of a step (sums over its own samples).
struct StepResult {
  double loss_sum = 0;
  int64_t correct = 0, samples = 0;
  double grad_norm = 0;  // of the summed (global) gradient
  // Wall time of the phases, milliseconds (backward includes copying gradients into the
  // buckets and starting their all-reduces; wait is what communication added after it).
  double forward_ms = 0, loss_ms = 0, backward_ms = 0, wait_ms = 0, update_ms = 0;
};

class TrainStep {
 public:
  // `gradients`: sums the gradients over the ranks, on their device (the world
  // communicator on the CPU, gradient_communicator(device) on a GPU). `sync_bn`: the
  // batch-norm statistics reduction, or null for per-rank statistics.
  TrainStep(Model& model, Optimizer& optimizer, Communicator& gradients, ReplicaSum* sync_bn,
            TrainStepConfig config);
  // images/labels: this rank's share (possibly empty) of a global batch of
  // `global_size` samples, on the host or on the model's device (images on the host are
  // copied to the device once per step). Every rank must call it for every step.
  // `first_sample`: where this share starts in the global batch.
  StepResult run(const Tensor& images, const Tensor& labels, int64_t global_size,
                 int64_t first_sample, float lr, PassContext ctx);
  const Reducer& reducer() const { return reducer_; }

 private:
  // Throws (identically on every rank: the gradients are the summed ones) naming the
  // first parameter in backward order whose gradient is not finite; returns the norm.
  double check_gradients(int64_t step) const;

  Model& model_;
  Optimizer& optimizer_;
  ReplicaSum* sync_bn_;
  TrainStepConfig config_;
  std::vector<Parameter*> params_;
  Reducer reducer_;
  LossBuffers loss_;
  Tensor device_images_, micro_images_, micro_labels_;
};

}  // namespace residual
