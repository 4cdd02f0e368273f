#pragma once
// Evaluation and prediction from a checkpoint alone: the checkpoint carries the model,
// the weights and the training configuration (data spec, HDF5 names, normalisation).
#include <memory>
#include <ostream>
#include <string>

#include "core/model.h"
#include "io/data_loader.h"
#include "io/dataset.h"

namespace residual {

struct InferenceConfig {
  std::string checkpoint;  // file or directory (its latest)
  std::string data;        // empty: the data the checkpoint was trained on
  std::string split = "test";  // test | train
  int64_t batch_size = 256;
  std::string device = "cpu";  // cpu | cuda | cuda:N (launch/device_option.h)
  std::string precision = "fp32";  // fp32 | bf16 (launch/precision_option.h)
};

struct InferenceSetup {
  std::unique_ptr<Model> model;
  std::unique_ptr<Dataset> data;
  std::unique_ptr<DataLoader> loader;  // in order, no augmentation, every sample
  std::string checkpoint_path;
  Precision precision = Precision::kFloat32;
};

// The model is read on the host and then moved to config.device.
InferenceSetup load_for_inference(const InferenceConfig& config);

// Writes class probabilities (softmax; sigmoid for one output) and the arg-max for each
// sample, streaming batch by batch: CSV (index,label,predicted,p0..pK-1) or HDF5 (.h5:
// datasets probabilities N x K float32, predicted N int32, labels N int32). Atomic.
// Returns the number of samples written.
int64_t write_predictions(InferenceSetup& setup, const std::string& output);

}  // namespace residual
