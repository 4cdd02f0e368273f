// BatchNormalization over the channel axis (Keras arguments). The model may fuse a
// following ReLU into it (one pass over memory instead of two).
//
// Training statistics come from this replica's batch (the fused kernels), or, when the
// pass context carries a ReplicaSum, from the batch of every replica (synchronised BN):
// forward adds [row count, sum x, sum x^2] across replicas in one call, backward adds
// [sum dy', sum dy' * xhat] in one call. dgamma and dbeta are this replica's own sums:
// the gradient reducer adds them across replicas later, and each replica's loss gradient
// is already divided by the global batch size.
//
// Batch sizes: a replica with no rows passes through (empty output; zero dgamma/dbeta)
// and keeps its running statistics, or, synchronised, still takes part in both sums and
// updates its running statistics with the global ones. A synchronised global batch of no
// rows is an error. One row per channel (a flat batch of one sample) is accepted as by
// the fused kernels: variance 0, output beta, running variance updated without the
// count / (count - 1) factor (PyTorch refuses this case in training; Keras accepts it).
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/replica_sum.h"
#include "core/layers/builtin_layers.h"
#include "core/layers/config_reader.h"

namespace residual {
namespace {

class BatchNormLayer : public Layer {
 public:
  BatchNormLayer(const std::string& name, const nlohmann::json& config) : Layer(name) {
    ConfigReader r(name, "BatchNormalization", config);
    momentum_ = static_cast<float>(r.number("momentum", 0.99));
    epsilon_ = static_cast<float>(r.number("epsilon", 1e-3));
    gamma_init_ = r.text("gamma_initializer", "ones");
    r.raw("axis");  // Keras's axis: channels last is the only layout, so -1/3 are accepted
    if (momentum_ < 0.f || momentum_ > 1.f) r.fail_key("momentum", "must be in [0, 1]");
    if (!(epsilon_ > 0.f)) r.fail_key("epsilon", "must be > 0");
    if (gamma_init_ != "ones" && gamma_init_ != "zeros") {
      r.fail_key("gamma_initializer", "must be \"ones\" or \"zeros\"");
    }
    if (const auto* axis = r.raw("axis")) {
      if (!(*axis == -1 || *axis == 3)) r.fail_key("axis", "must be -1 or 3 (channels last)");
    }
    r.finish();
  }
  std::string type() const override { return "BatchNormalization"; }
  nlohmann::json config() const override {
    return {{"momentum", momentum_}, {"epsilon", epsilon_}, {"gamma_initializer", gamma_init_}};
  }

  Shape build(const std::vector<Shape>& inputs) override {
    RESIDUAL_CHECK(inputs.size() == 1 && inputs[0].rank() >= 1, where(), "expects one input");
    const Shape channels{inputs[0][inputs[0].rank() - 1]};
    gamma_ = &add_parameter("gamma", channels, true, true);
    beta_ = &add_parameter("beta", channels, true, true);
    mean_ = &add_parameter("moving_mean", channels, false, false);
    var_ = &add_parameter("moving_variance", channels, false, false);
    batch_mean_ = Tensor::zeros(channels);
    batch_var_ = Tensor::zeros(channels);
    return inputs[0];
  }

  void initialize(std::mt19937_64&) override {
    gamma_->value.fill(gamma_init_ == "ones" ? 1.f : 0.f);
    beta_->value.zero();
    mean_->value.zero();
    var_->value.fill(1.f);
  }

  bool fuse_following_relu() override { return relu_ = true; }
  bool reads_bf16_input() const override { return true; }

  // Backward reads the statistics of the last forward (after a move too).
  std::vector<Tensor*> state_tensors() override { return {&batch_mean_, &batch_var_}; }

  void forward(const std::vector<const Tensor*>& x, Tensor& y, const PassContext& ctx) override {
    // x and y may be bf16 activations (Layer::reads_bf16_input); dx has x's dtype.
    y.resize(x[0]->shape(), x[0]->device(), output_dtype(ctx));
    mode_ = Mode::kNone;
    if (!ctx.training) {
      ops::batch_norm_forward_inference(*x[0], gamma_->value, beta_->value, mean_->value,
                                        var_->value, epsilon_, relu_, y);
      return;
    }
    if (ctx.sync_batch_norm) {
      forward_synchronized(*x[0], y, *ctx.sync_batch_norm);
      mode_ = Mode::kSynchronized;
      return;
    }
    const int64_t count = x[0]->numel() / batch_mean_.numel();
    if (count == 0) {
      mode_ = Mode::kEmpty;
      return;
    }
    ops::batch_norm_forward_training(*x[0], gamma_->value, beta_->value, epsilon_, relu_, y,
                                     batch_mean_, batch_var_);
    ops::batch_norm_update_running(batch_mean_, batch_var_, count, momentum_, mean_->value,
                                   var_->value);
    mode_ = Mode::kLocal;
  }

  void backward(const std::vector<const Tensor*>& x, const Tensor& y, const Tensor& dy,
                const std::vector<Tensor*>& dx, const PassContext& ctx) override {
    RESIDUAL_CHECK(ctx.training && mode_ != Mode::kNone, where(),
                   "backward needs a training-mode forward");
    RESIDUAL_CHECK((ctx.sync_batch_norm != nullptr) == (mode_ == Mode::kSynchronized), where(),
                   "the forward was ", mode_ == Mode::kSynchronized ? "" : "not ",
                   "synchronized across replicas but the backward is",
                   ctx.sync_batch_norm ? "" : " not");
    if (mode_ == Mode::kSynchronized) {
      backward_synchronized(*x[0], y, dy, dx[0], *ctx.sync_batch_norm);
      return;
    }
    if (mode_ == Mode::kEmpty) {
      gamma_->grad.zero();
      beta_->grad.zero();
      if (dx[0]) dx[0]->resize_like(*x[0]);
      return;
    }
    Tensor* out = dx[0] ? dx[0] : &scratch_;
    out->resize_like(*x[0]);
    ops::batch_norm_backward(*x[0], y, dy, gamma_->value, batch_mean_, batch_var_, epsilon_,
                             relu_, *out, gamma_->grad, beta_->grad);
  }

 private:
  enum class Mode { kNone, kLocal, kEmpty, kSynchronized };  // of the last forward

  void forward_synchronized(const Tensor& x, Tensor& y, ReplicaSum& replicas) {
    const int64_t c = batch_mean_.numel(), rows = x.numel() / c;
    sums_.resize(static_cast<size_t>(1 + 2 * c));
    sums_[0] = static_cast<double>(rows);
    ops::batch_norm_partial_sums(x, sums_.data() + 1);
    replicas.sum(sums_.data(), static_cast<int64_t>(sums_.size()));
    // `!(>= 1)` also catches a NaN from a broken transport.
    RESIDUAL_CHECK(sums_[0] >= 1, where(), "synchronized batch norm over a global batch of ",
                   sums_[0], " rows: no replica has a sample to take statistics from");
    global_count_ = static_cast<int64_t>(sums_[0]);  // exact below 2^53
    ops::batch_norm_moments(sums_.data() + 1, global_count_, batch_mean_, batch_var_);
    ops::batch_norm_forward_inference(x, gamma_->value, beta_->value, batch_mean_, batch_var_,
                                      epsilon_, relu_, y);
    ops::batch_norm_update_running(batch_mean_, batch_var_, global_count_, momentum_,
                                   mean_->value, var_->value);
  }

  void backward_synchronized(const Tensor& x, const Tensor& y, const Tensor& dy, Tensor* dx,
                             ReplicaSum& replicas) {
    const int64_t c = batch_mean_.numel();
    sums_.resize(static_cast<size_t>(2 * c));
    ops::batch_norm_backward_partial_sums(x, y, dy, batch_mean_, batch_var_, epsilon_, relu_,
                                          sums_.data());
    // This replica's own sums are its parameter gradients (the reducer adds the others'):
    // written on the host, then copied where the gradients live.
    const bool on_host = beta_->grad.device().is_cpu();
    if (!on_host) {
      host_dbeta_.resize(beta_->grad.shape(), Device::cpu());
      host_dgamma_.resize(gamma_->grad.shape(), Device::cpu());
    }
    float* dbeta = on_host ? beta_->grad.f32() : host_dbeta_.f32();
    float* dgamma = on_host ? gamma_->grad.f32() : host_dgamma_.f32();
    for (int64_t i = 0; i < c; ++i) {
      dbeta[i] = static_cast<float>(sums_[i]);
      dgamma[i] = static_cast<float>(sums_[c + i]);
    }
    if (!on_host) {
      beta_->grad.copy_from(host_dbeta_);
      gamma_->grad.copy_from(host_dgamma_);
    }
    replicas.sum(sums_.data(), static_cast<int64_t>(sums_.size()));  // even without a dx
    if (!dx) return;
    dx->resize_like(x);
    ops::batch_norm_backward_apply(x, y, dy, gamma_->value, batch_mean_, batch_var_, epsilon_,
                                   relu_, sums_.data(), global_count_, *dx);
  }

  float momentum_ = 0.99f, epsilon_ = 1e-3f;
  std::string gamma_init_;
  bool relu_ = false;
  Parameter *gamma_ = nullptr, *beta_ = nullptr, *mean_ = nullptr, *var_ = nullptr;
  Tensor batch_mean_, batch_var_, scratch_;
  Tensor host_dbeta_, host_dgamma_;  // synchronized backward with gradients on a GPU
  Mode mode_ = Mode::kNone;
  std::vector<double> sums_;  // packed for one ReplicaSum::sum call
  int64_t global_count_ = 0;  // rows of every replica in the last synchronised forward
};

}  // namespace

void register_batch_norm_layer(LayerRegistry& registry) {
  registry.add("BatchNormalization", [](const std::string& name, const nlohmann::json& config) {
    return std::make_unique<BatchNormLayer>(name, config);
  });
}

}  // namespace residual
