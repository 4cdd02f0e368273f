#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/layer.h"
#include "core/layer_registry.h"

namespace residual {

// One layer in the graph, with the activations and gradients it owns across steps.
struct ModelNode {
  std::string name;
  std::unique_ptr<Layer> layer;
  std::vector<int> inputs;     // node indices
  std::vector<int> consumers;  // node indices
  Shape shape;                 // output shape without the batch dimension
  bool needs_grad = false;     // gradient w.r.t. this node's output is needed
  int alias_of = -1;           // a ReLU fused into its producer: shares that output
};

// A static DAG of layers built from a spec (docs/model-format.md). Forward runs in
// topological order; backward in reverse, calling the gradient-ready callback for
// each trainable parameter as soon as its gradient is final (the distributed reducer
// hangs on it). Buffers are kept and reused from step to step.
class Model {
 public:
  Model(const nlohmann::json& spec, const LayerRegistry& registry);

  const std::string& name() const { return name_; }
  Shape input_shape() const { return nodes_[input_].shape; }
  Shape output_shape() const { return nodes_[output_].shape; }
  // The number of outputs of a classifier: its output must be one vector per sample,
  // [classes] (softmax) or [1] (binary sigmoid). Any other output shape is an Error naming
  // the output layer and its shape. Train, eval, predict and bench call this; summary and
  // export-model do not, they show any graph.
  int64_t classifier_outputs() const;
  const std::vector<ModelNode>& nodes() const { return nodes_; }
  // The nodes in the order they run.
  const std::vector<int>& order() const { return order_; }

  // Deterministic initialisation of every parameter from `seed` (on the host, then
  // moved back to the model's device: the same values on every device).
  void initialize(uint64_t seed);

  // Where the parameters, their gradients and the layers' state live; a model is built
  // on the CPU. forward() and backward() take tensors on this device.
  Device device() const { return device_; }
  // Moves every parameter value and gradient and every layer's state to `device`, all or
  // nothing: on failure (a device this process cannot use, out of memory) an Error names
  // the model and it stays where it was. A no-op on the current device. Activations of
  // the last pass are dropped (the output forward() returned is then invalid), and
  // tensors that hold parameters elsewhere are not followed: move the model before
  // building its Optimizer (or call Optimizer::to) and its Reducer.
  void to(Device device);

  // x: N x H x W x C. The returned output stays valid until the next forward.
  const Tensor& forward(const Tensor& x, const PassContext& ctx);
  // d(loss)/d(output) for the last forward. Overwrites every parameter gradient.
  void backward(const Tensor& doutput, const PassContext& ctx);

  // Every parameter and buffer, in forward order.
  std::vector<Parameter*> parameters();
  std::vector<Parameter*> trainable_parameters();
  // Adds a listener (the gradient reducer, profiling, clipping...); listeners are
  // called in the order they were added and cannot be removed.
  void on_gradient_ready(std::function<void(Parameter&)> callback) {
    gradient_ready_.push_back(std::move(callback));
  }
  // Layers with trainable parameters whose output never reaches the model's output:
  // their gradients are always zero (a branch of a model file left unconnected).
  std::vector<std::string> layers_not_reaching_output() const;

  // The graph written back out, every layer's config with its defaults filled in.
  nlohmann::json to_json() const;

  // Wall time per layer type and phase ("Conv2D/forward" -> ms), summed over the
  // passes since profiling was switched on. Off by default: it costs a clock read.
  void set_profiling(bool on);
  const std::map<std::string, double>& profile() const { return profile_ms_; }
  int64_t macs_per_sample() const;

 private:
  void add_nodes(const nlohmann::json& spec, const LayerRegistry& registry);
  void sort_topologically();
  void fuse_relus();
  // Tells each layer whether every reader of its output reads bf16 (Layer::
  // reads_bf16_input; a fused ReLU's readers stand for it) and the tensor is not the
  // model's input or output, so it may write bf16 under bf16 precision.
  void mark_bf16_consumers();

  std::string name_;
  Device device_ = Device::cpu();
  std::vector<ModelNode> nodes_;
  std::vector<int> order_;
  int input_ = -1, output_ = -1;
  std::vector<Tensor> outputs_, grads_;
  std::vector<std::vector<Tensor>> slot_scratch_;  // per node and input slot
  std::vector<char> written_;
  std::vector<std::function<void(Parameter&)>> gradient_ready_;
  bool profiling_ = false;
  std::map<std::string, double> profile_ms_;
};

}  // namespace residual
