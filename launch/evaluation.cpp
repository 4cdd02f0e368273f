#include "launch/evaluation.h"

#include <algorithm>

#include "core/error.h"
#include "ops/ops.h"

namespace residual {

void check_labels_fit(int64_t model_outputs, int64_t data_classes, const std::string& data) {
  if (model_outputs == 1) {
    RESIDUAL_CHECK(data_classes <= 2, data, " has ", data_classes,
                   " classes, but the model has one output (binary: labels 0 and 1)");
  } else {
    RESIDUAL_CHECK(data_classes <= model_outputs, data, " has ", data_classes,
                   " classes, but the model has only ", model_outputs, " outputs");
  }
}

LossOutcome compute_loss(const Tensor& logits, const Tensor& labels, float label_smoothing,
                         LossBuffers& buffers) {
  Tensor& dlogits = buffers.dlogits;
  // The loss kernels read N x K values and N labels: anything else would read past them.
  RESIDUAL_CHECK(logits.rank() == 2 && logits.dim(0) == labels.numel() && logits.dim(1) >= 1,
                 "logits of shape ", logits.shape().str(), " for ", labels.numel(),
                 " labels: a classifier gives N x classes");
  RESIDUAL_CHECK(labels.dtype() == DType::kInt32, "labels must be int32, got ",
                 dtype_name(labels.dtype()));
  RESIDUAL_CHECK(labels.device().is_cpu() || labels.device() == logits.device(), "labels on ",
                 labels.device().str(), " for logits on ", logits.device().str());
  const int64_t n = logits.dim(0), k = logits.dim(1);
  const Device device = logits.device();
  const int32_t* y = on_host(labels, buffers.host_labels).data<int32_t>();
  const float* z = on_host(logits, buffers.host_logits).f32();
  dlogits.resize_like(logits);
  LossOutcome out;
  if (k == 1) {
    Tensor& targets = buffers.targets;
    targets.resize(Shape{n, 1}, Device::cpu());  // filled on the host
    for (int64_t i = 0; i < n; ++i) {
      RESIDUAL_CHECK(y[i] == 0 || y[i] == 1, "label ", y[i], " of a binary model must be 0 or 1");
      targets.f32()[i] = static_cast<float>(y[i]);
      out.correct += (z[i] > 0.f) == (y[i] == 1);
    }
    out.loss = ops::sigmoid_binary_cross_entropy(
        logits, on_device(targets, device, buffers.device_targets), dlogits, ops::kGradOfMean);
    return out;
  }
  out.loss = ops::softmax_cross_entropy(logits, on_device(labels, device, buffers.device_labels),
                                        label_smoothing, dlogits, ops::kGradOfMean);
  for (int64_t i = 0; i < n; ++i) {
    const float* zi = z + i * k;
    const float target = zi[y[i]];
    // Rank of the true class: how many logits beat it (ties count against us).
    int64_t better = 0;
    for (int64_t j = 0; j < k; ++j) better += (zi[j] > target) || (zi[j] == target && j < y[i]);
    out.correct += better == 0;
    out.correct5 += better < 5;
  }
  return out;
}

EvalResult evaluate(Model& model, DataLoader& loader, Precision precision) {
  PassContext ctx;
  ctx.training = false;
  ctx.precision = precision;
  loader.start_epoch(0);
  LossBuffers buffers;
  Tensor device_images;
  EvalResult r;
  double loss_sum = 0;
  int64_t top1 = 0, top5 = 0;
  while (const Batch* batch = loader.next()) {
    const Tensor& logits =
        model.forward(on_device(batch->images, model.device(), device_images), ctx);
    const LossOutcome o = compute_loss(logits, batch->labels, 0.f, buffers);
    const int64_t n = batch->labels.numel();
    loss_sum += o.loss * n;
    top1 += o.correct;
    top5 += o.correct5;
    r.samples += n;
  }
  if (r.samples > 0) {
    r.loss = loss_sum / r.samples;
    r.top1 = static_cast<double>(top1) / r.samples;
    r.top5 = static_cast<double>(top5) / r.samples;
  }
  return r;
}

}  // namespace residual
