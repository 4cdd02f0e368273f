#pragma once
#include <cstdint>

#include "core/model.h"
#include "io/data_loader.h"

namespace residual {

// The loss a model trains with, chosen from its output: one unit -> sigmoid binary
// cross-entropy on 0/1 labels, K > 1 units -> softmax cross-entropy.
struct LossOutcome {
  double loss = 0;        // mean over the batch
  int64_t correct = 0;    // top-1 hits
  int64_t correct5 = 0;   // top-5 hits (K > 5)
};
// Buffers the loss writes, kept by the caller from step to step.
struct LossBuffers {
  Tensor dlogits;  // d(loss)/d(logits), on the logits' device
  Tensor targets;  // binary models: the labels as float targets (host)
  // Copies for logits on a GPU: the loss runs there, the top-1/top-5 counts on the host.
  Tensor host_logits, host_labels, device_labels, device_targets;
};
// `logits` on any device, `labels` (int32) on the host or on the logits' device: the loss
// op runs on the logits' device (labels are copied there when they are not), and the hit
// counts are made on the host from host copies. On the CPU nothing is copied.
LossOutcome compute_loss(const Tensor& logits, const Tensor& labels, float label_smoothing,
                         LossBuffers& buffers);
// Checks that a data set's labels fit the model's output; names both on failure.
void check_labels_fit(int64_t model_outputs, int64_t data_classes, const std::string& data);

struct EvalResult {
  double loss = 0, top1 = 0, top5 = 0;
  int64_t samples = 0;
};
// Inference-mode pass over one epoch of `loader` (no augmentation, BN running stats),
// each batch copied to the model's device.
EvalResult evaluate(Model& model, DataLoader& loader,
                    Precision precision = Precision::kFloat32);

}  // namespace residual
