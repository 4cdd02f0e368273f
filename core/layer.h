#pragma once
#include <cstdint>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/precision.h"
#include "core/tensor.h"

namespace residual {

class ReplicaSum;  // core/replica_sum.h

// A learnable tensor or a buffer (BN running statistics) owned by a layer.
struct Parameter {
  std::string name;    // "<layer>/<kind>", e.g. "conv1/kernel"
  Tensor value;
  Tensor grad;         // defined for trainable parameters only
  bool trainable = true;
  bool is_bias_or_norm = false;  // biases and BN gamma/beta (exemptable from weight decay)
};

// What a forward/backward pass needs besides its tensors.
struct PassContext {
  bool training = false;
  uint64_t seed = 0;  // base of the per-layer, per-step random streams (dropout)
  uint64_t step = 0;
  // Set (and training): batch normalisation takes its statistics over the whole batch of
  // every replica, adding per-channel sums through this (synchronised BN). Null: over
  // this replica's batch only, with the fused single-pass kernels.
  ReplicaSum* sync_batch_norm = nullptr;
  // Position of this pass's first sample in the global batch (a rank's share, or a
  // micro-batch, starts past 0): per-sample random streams (dropout) follow the sample,
  // so k ranks draw exactly one process's masks.
  int64_t first_sample = 0;
  // Arithmetic of convolutions and dense layers (core/precision.h); bf16 on the CPU only.
  Precision precision = Precision::kFloat32;
};

// A node's computation. Shapes passed to build() exclude the batch dimension and are
// H x W x C for images. forward/backward get tensors with the batch dimension; backward
// overwrites (never accumulates) parameter gradients and the dx it is given.
class Layer {
 public:
  explicit Layer(std::string name) : name_(std::move(name)) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const std::string& name() const { return name_; }
  virtual std::string type() const = 0;
  // All arguments, defaults filled in: enough to rebuild the layer.
  virtual nlohmann::json config() const = 0;

  // Validates the input shapes, creates the parameters, returns the output shape.
  virtual Shape build(const std::vector<Shape>& inputs) = 0;
  virtual void initialize(std::mt19937_64& rng);
  virtual void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext& ctx) = 0;
  // dx[i] is null where input i needs no gradient. Each dx has its input's dtype
  // (resize_like): a bf16 activation has a bf16 gradient, as under PyTorch's autocast, so
  // a backward pass moves half the bytes too.
  virtual void backward(const std::vector<const Tensor*>& x, const Tensor& y, const Tensor& dy,
                        const std::vector<Tensor*>& dx, const PassContext& ctx) = 0;

  // Forward multiply-accumulates per sample (convolutions and dense layers).
  virtual int64_t macs() const { return 0; }
  // Asks the layer to apply a ReLU to its own output (the model then drops the ReLU
  // node that followed it). Returns false if the layer cannot.
  virtual bool fuse_following_relu() { return false; }

  // Mixed precision (PassContext::precision bf16) keeps activations in bfloat16 between
  // layers that handle it, as PyTorch's autocast does: half the bytes for every pass
  // over them. reads_bf16_input(): this layer reads bfloat16 inputs as it reads float32
  // ones. The model tells each layer whether every consumer of its output does
  // (set_consumers_read_bf16); output_dtype() is then what a layer that can write bf16
  // writes.
  virtual bool reads_bf16_input() const { return false; }
  void set_consumers_read_bf16(bool all) { consumers_read_bf16_ = all; }
  bool consumers_read_bf16() const { return consumers_read_bf16_; }
  DType output_dtype(const PassContext& ctx) const {
    return ctx.precision == Precision::kBFloat16 && consumers_read_bf16_ ? DType::kBFloat16
                                                                         : DType::kFloat32;
  }

  // Names of the nodes feeding this layer (set by the model; used in error messages).
  void set_input_names(std::vector<std::string> names) { input_names_ = std::move(names); }
  const std::vector<std::string>& input_names() const { return input_names_; }

  std::deque<Parameter>& parameters() { return params_; }
  const std::deque<Parameter>& parameters() const { return params_; }
  // Every tensor this layer keeps across calls, for Model::to(): parameter values and
  // gradients, then the layer type's own state_tensors().
  std::vector<Tensor*> tensors();

 protected:
  // Tensors besides the parameters whose contents matter from one call to the next
  // (batch norm's batch statistics, which backward reads). Scratch buffers need not be
  // listed: resize(shape, like) reallocates them on their input's device when it changes
  // (a buffer the kernel sizes itself, like pooling's workspace, the layer drops instead).
  virtual std::vector<Tensor*> state_tensors() { return {}; }
  Parameter& add_parameter(const std::string& kind, const Shape& shape, bool trainable,
                           bool is_bias_or_norm);
  // "layer 'conv1' (Conv2D): " for error messages.
  std::string where() const;

 private:
  std::string name_;
  std::vector<std::string> input_names_;
  std::deque<Parameter> params_;  // a deque keeps Parameter addresses stable
  bool consumers_read_bf16_ = false;
};

}  // namespace residual
