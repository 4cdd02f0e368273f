// Routes each op to the kernels of its tensors' device. CUDA kernels arrive with the
// CUDA issue; until then a CUDA tensor reaching an op is a clear error, never a
// silent host fallback.
#include "core/error.h"
#include "ops/cpu/cpu_ops.h"
#include "ops/ops.h"

namespace residual::ops {
namespace {

void require_cpu(const char* op, const Tensor& t) {
  RESIDUAL_CHECK(t.device().is_cpu(), op, ": no ", t.device().str(),
                 " kernel in this build (CUDA kernels are not implemented yet)");
}

}  // namespace

void set_num_threads(int threads) { cpu::set_num_threads(threads); }
int num_threads() { return cpu::num_threads(); }

void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                    const Tensor* bias, Tensor& y) {
  require_cpu("conv2d_forward", x);
  cpu::conv2d_forward(g, x, w, bias, y);
}

void conv2d_backward_data(const Conv2dGeometry& g, const Tensor& dy, const Tensor& w,
                          Tensor& dx) {
  require_cpu("conv2d_backward_data", dy);
  cpu::conv2d_backward_data(g, dy, w, dx);
}

void conv2d_backward_weights(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy,
                             Tensor& dw, Tensor* dbias) {
  require_cpu("conv2d_backward_weights", x);
  cpu::conv2d_backward_weights(g, x, dy, dw, dbias);
}

void pool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y, Tensor& workspace,
                    bool training) {
  require_cpu("pool2d_forward", x);
  cpu::pool2d_forward(g, x, y, workspace, training);
}

void pool2d_backward(const Pool2dGeometry& g, const Tensor& dy, const Tensor& workspace,
                     Tensor& dx) {
  require_cpu("pool2d_backward", dy);
  cpu::pool2d_backward(g, dy, workspace, dx);
}

void dense_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y) {
  require_cpu("dense_forward", x);
  cpu::dense_forward(x, w, bias, y);
}

void dense_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx) {
  require_cpu("dense_backward_data", dy);
  cpu::dense_backward_data(dy, w, dx);
}

void dense_backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* dbias) {
  require_cpu("dense_backward_weights", x);
  cpu::dense_backward_weights(x, dy, dw, dbias);
}

void batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                 float epsilon, bool relu, Tensor& y, Tensor& batch_mean,
                                 Tensor& batch_var) {
  require_cpu("batch_norm_forward_training", x);
  cpu::batch_norm_forward_training(x, gamma, beta, epsilon, relu, y, batch_mean, batch_var);
}

void batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                  const Tensor& mean, const Tensor& var, float epsilon,
                                  bool relu, Tensor& y) {
  require_cpu("batch_norm_forward_inference", x);
  cpu::batch_norm_forward_inference(x, gamma, beta, mean, var, epsilon, relu, y);
}

void batch_norm_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                         const Tensor& gamma, const Tensor& batch_mean,
                         const Tensor& batch_var, float epsilon, bool relu, Tensor& dx,
                         Tensor& dgamma, Tensor& dbeta) {
  require_cpu("batch_norm_backward", x);
  cpu::batch_norm_backward(x, y, dy, gamma, batch_mean, batch_var, epsilon, relu, dx, dgamma, dbeta);
}

void batch_norm_update_running(const Tensor& batch_mean, const Tensor& batch_var,
                               int64_t count, float momentum, Tensor& running_mean,
                               Tensor& running_var) {
  require_cpu("batch_norm_update_running", batch_mean);
  cpu::batch_norm_update_running(batch_mean, batch_var, count, momentum, running_mean, running_var);
}

void batch_norm_partial_sums(const Tensor& x, double* sums) {
  require_cpu("batch_norm_partial_sums", x);
  cpu::batch_norm_partial_sums(x, sums);
}

void batch_norm_moments(const double* sums, int64_t count, Tensor& mean, Tensor& var) {
  require_cpu("batch_norm_moments", mean);
  cpu::batch_norm_moments(sums, count, mean, var);
}

void batch_norm_backward_partial_sums(const Tensor& x, const Tensor& y, const Tensor& dy,
                                      const Tensor& mean, const Tensor& var, float epsilon,
                                      bool relu, double* sums) {
  require_cpu("batch_norm_backward_partial_sums", x);
  cpu::batch_norm_backward_partial_sums(x, y, dy, mean, var, epsilon, relu, sums);
}

void batch_norm_backward_apply(const Tensor& x, const Tensor& y, const Tensor& dy,
                               const Tensor& gamma, const Tensor& mean, const Tensor& var,
                               float epsilon, bool relu, const double* sums, int64_t count,
                               Tensor& dx) {
  require_cpu("batch_norm_backward_apply", x);
  cpu::batch_norm_backward_apply(x, y, dy, gamma, mean, var, epsilon, relu, sums, count, dx);
}

void activation_forward(Activation kind, const Tensor& x, Tensor& y) {
  require_cpu("activation_forward", x);
  cpu::activation_forward(kind, x, y);
}

void activation_backward(Activation kind, const Tensor& y, const Tensor& dy, Tensor& dx) {
  require_cpu("activation_backward", y);
  cpu::activation_backward(kind, y, dy, dx);
}

void add_forward(const std::vector<const Tensor*>& xs, Tensor& y) {
  require_cpu("add_forward", *xs[0]);
  cpu::add_forward(xs, y);
}

void channel_scale_forward(const Tensor& x, const Tensor& s, Tensor& y) {
  require_cpu("channel_scale_forward", x);
  cpu::channel_scale_forward(x, s, y);
}

void channel_scale_backward(const Tensor& x, const Tensor& s, const Tensor& dy, Tensor* dx,
                            Tensor* ds) {
  require_cpu("channel_scale_backward", x);
  cpu::channel_scale_backward(x, s, dy, dx, ds);
}

void global_avg_pool_forward(const Tensor& x, Tensor& y) {
  require_cpu("global_avg_pool_forward", x);
  cpu::global_avg_pool_forward(x, y);
}

void global_avg_pool_backward(const Tensor& dy, Tensor& dx) {
  require_cpu("global_avg_pool_backward", dy);
  cpu::global_avg_pool_backward(dy, dx);
}

void zero_pad2d_forward(const Padding2d& p, const Tensor& x, Tensor& y) {
  require_cpu("zero_pad2d_forward", x);
  cpu::zero_pad2d_forward(p, x, y);
}

void zero_pad2d_backward(const Padding2d& p, const Tensor& dy, Tensor& dx) {
  require_cpu("zero_pad2d_backward", dy);
  cpu::zero_pad2d_backward(p, dy, dx);
}

void shortcut_pad_forward(int64_t stride, int64_t pad_before, int64_t pad_after,
                          const Tensor& x, Tensor& y) {
  require_cpu("shortcut_pad_forward", x);
  cpu::shortcut_pad_forward(stride, pad_before, pad_after, x, y);
}

void shortcut_pad_backward(int64_t stride, int64_t pad_before, int64_t pad_after,
                           const Tensor& dy, Tensor& dx) {
  require_cpu("shortcut_pad_backward", dy);
  cpu::shortcut_pad_backward(stride, pad_before, pad_after, dy, dx);
}

void concat_forward(const std::vector<const Tensor*>& xs, Tensor& y) {
  require_cpu("concat_forward", *xs[0]);
  cpu::concat_forward(xs, y);
}

void concat_backward(const Tensor& dy, const std::vector<Tensor*>& dxs) {
  require_cpu("concat_backward", dy);
  cpu::concat_backward(dy, dxs);
}

void dropout_forward(float rate, uint64_t seed, const Tensor& x, Tensor& y, int64_t first_element) {
  require_cpu("dropout_forward", x);
  cpu::dropout_forward(rate, seed, x, y, first_element);
}

void dropout_backward(float rate, uint64_t seed, const Tensor& dy, Tensor& dx, int64_t first_element) {
  require_cpu("dropout_backward", dy);
  cpu::dropout_backward(rate, seed, dy, dx, first_element);
}

double softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                             float label_smoothing, Tensor& dlogits, double grad_scale) {
  require_cpu("softmax_cross_entropy", logits);
  return cpu::softmax_cross_entropy(logits, labels, label_smoothing, dlogits, grad_scale);
}

double sigmoid_binary_cross_entropy(const Tensor& logits, const Tensor& targets,
                                    Tensor& dlogits, double grad_scale) {
  require_cpu("sigmoid_binary_cross_entropy", logits);
  return cpu::sigmoid_binary_cross_entropy(logits, targets, dlogits, grad_scale);
}

void sgd_step(const SgdConfig& c, Tensor& param, const Tensor& grad, Tensor& velocity) {
  require_cpu("sgd_step", param);
  cpu::sgd_step(c, param, grad, velocity);
}

void adam_step(const AdamConfig& c, int64_t step, Tensor& param, const Tensor& grad, Tensor& m,
               Tensor& v) {
  require_cpu("adam_step", param);
  cpu::adam_step(c, step, param, grad, m, v);
}

double squared_norm(const Tensor& x) {
  require_cpu("squared_norm", x);
  return cpu::squared_norm(x);
}

void scale_inplace(Tensor& x, float factor) {
  require_cpu("scale_inplace", x);
  cpu::scale_inplace(x, factor);
}

}  // namespace residual::ops
