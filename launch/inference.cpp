#include "launch/inference.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/checkpoint_store.h"
#include "io/prediction_writer.h"
#include "launch/device_option.h"
#include "launch/evaluation.h"
#include "launch/model_state.h"
#include "launch/precision_option.h"
#include "launch/train_config.h"
#include "ops/ops.h"

namespace residual {

InferenceSetup load_for_inference(const InferenceConfig& config) {
  RESIDUAL_CHECK(config.split == "test" || config.split == "train", "--split must be test or train");
  RESIDUAL_CHECK(config.batch_size > 0, "--batch-size must be positive");
  const Device device = resolve_device(config.device);
  InferenceSetup s;
  s.precision = resolve_precision(config.precision, config.device);
  s.checkpoint_path = CheckpointStore::resolve(config.checkpoint);
  const Checkpoint checkpoint = read_checkpoint(s.checkpoint_path);
  const TrainConfig trained = train_config_from_json(checkpoint.config);
  s.model = std::make_unique<Model>(checkpoint.model, LayerRegistry::with_builtins());
  const int64_t classes = s.model->classifier_outputs();
  std::ostringstream ignored;
  load_weights(*s.model, checkpoint, true, ignored, s.checkpoint_path);
  s.model->to(device);
  const std::string spec = !config.data.empty()       ? config.data
                           : !trained.val_data.empty() && config.split == "test" ? trained.val_data
                                                                                 : trained.data;
  s.data = open_dataset(spec, config.split == "test" ? Split::kTest : Split::kTrain,
                        trained.data_options);
  RESIDUAL_CHECK(s.data->sample_shape() == s.model->input_shape(), s.data->description(),
                 " has images of ", s.data->sample_shape().str(), " but model '",
                 s.model->name(), "' takes ", s.model->input_shape().str());
  check_labels_fit(classes, s.data->num_classes(), s.data->description());
  LoaderConfig lc;
  lc.batch_size = config.batch_size;
  lc.shuffle = false;
  lc.drop_last = false;
  lc.normalization = trained.normalization;
  s.loader = std::make_unique<DataLoader>(*s.data, lc);
  return s;
}

int64_t write_predictions(InferenceSetup& s, const std::string& output) {
  // Checked again here (not only by load_for_inference): the softmax below reads
  // `outputs` values per sample, whatever the model gives.
  const int64_t classes = s.model->classifier_outputs();
  const int64_t outputs = classes == 1 ? 2 : classes;  // a binary model: p(0), p(1)
  PredictionWriter writer(output, s.data->size(), outputs);
  PassContext ctx;
  ctx.precision = s.precision;
  Tensor probabilities, device_images, host_logits;
  s.loader->start_epoch(0);
  while (const Batch* batch = s.loader->next()) {
    const Tensor& x = on_device(batch->images, s.model->device(), device_images);
    // The probabilities are computed and written on the host, from a host copy of the
    // logits: the same kernels whichever device ran the model.
    const Tensor& logits = on_host(s.model->forward(x, ctx), host_logits);
    const int64_t n = batch->labels.numel();
    RESIDUAL_CHECK(logits.shape() == Shape({n, classes}), "model '", s.model->name(),
                   "' gave logits of ", logits.shape().str(), " for a batch of ", n,
                   " images; expected ", n, "x", classes);
    probabilities.resize(Shape{n, outputs}, logits);
    if (classes == 1) {
      Tensor p1 = Tensor::empty(Shape{n, 1}, logits.device());
      ops::activation_forward(ops::Activation::kSigmoid, logits, p1);
      for (int64_t i = 0; i < n; ++i) {
        probabilities.f32()[2 * i] = 1.f - p1.f32()[i];
        probabilities.f32()[2 * i + 1] = p1.f32()[i];
      }
    } else {
      ops::activation_forward(ops::Activation::kSoftmax, logits, probabilities);
    }
    writer.write(probabilities.f32(), batch->labels.data<int32_t>(), n);
  }
  return writer.finish();
}

}  // namespace residual
