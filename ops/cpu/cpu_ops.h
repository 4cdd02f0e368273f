#pragma once
// CPU implementations of the ops in ops/ops.h (same signatures); ops/dispatch.cpp
// routes CPU tensors here.
#include "ops/ops.h"

namespace residual::ops::cpu {

void set_num_threads(int threads);
int num_threads();

void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w,
                    const Tensor* bias, Tensor& y);
void conv2d_backward_data(const Conv2dGeometry& g, const Tensor& dy, const Tensor& w,
                          Tensor& dx);
void conv2d_backward_weights(const Conv2dGeometry& g, const Tensor& x, const Tensor& dy,
                             Tensor& dw, Tensor* dbias);
void pool2d_forward(const Pool2dGeometry& g, const Tensor& x, Tensor& y, Tensor& workspace,
                    bool training);
void pool2d_backward(const Pool2dGeometry& g, const Tensor& dy, const Tensor& workspace,
                     Tensor& dx);
void dense_forward(const Tensor& x, const Tensor& w, const Tensor* bias, Tensor& y);
void dense_backward_data(const Tensor& dy, const Tensor& w, Tensor& dx);
void dense_backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw, Tensor* dbias);
void batch_norm_forward_training(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                 float epsilon, bool relu, Tensor& y, Tensor& batch_mean,
                                 Tensor& batch_var);
void batch_norm_forward_inference(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                  const Tensor& mean, const Tensor& var, float epsilon,
                                  bool relu, Tensor& y);
void batch_norm_backward(const Tensor& x, const Tensor& y, const Tensor& dy,
                         const Tensor& gamma, const Tensor& batch_mean,
                         const Tensor& batch_var, float epsilon, bool relu, Tensor& dx,
                         Tensor& dgamma, Tensor& dbeta);
void batch_norm_update_running(const Tensor& batch_mean, const Tensor& batch_var,
                               int64_t count, float momentum, Tensor& running_mean,
                               Tensor& running_var);
void batch_norm_partial_sums(const Tensor& x, double* sums);
void batch_norm_moments(const double* sums, int64_t count, Tensor& mean, Tensor& var);
void batch_norm_backward_partial_sums(const Tensor& x, const Tensor& y, const Tensor& dy,
                                      const Tensor& mean, const Tensor& var, float epsilon,
                                      bool relu, double* sums);
void batch_norm_backward_apply(const Tensor& x, const Tensor& y, const Tensor& dy,
                               const Tensor& gamma, const Tensor& mean, const Tensor& var,
                               float epsilon, bool relu, const double* sums, int64_t count,
                               Tensor& dx);
void activation_forward(Activation kind, const Tensor& x, Tensor& y);
void activation_backward(Activation kind, const Tensor& y, const Tensor& dy, Tensor& dx);
void add_forward(const std::vector<const Tensor*>& xs, Tensor& y);
void channel_scale_forward(const Tensor& x, const Tensor& s, Tensor& y);
void channel_scale_backward(const Tensor& x, const Tensor& s, const Tensor& dy, Tensor* dx,
                            Tensor* ds);
void global_avg_pool_forward(const Tensor& x, Tensor& y);
void global_avg_pool_backward(const Tensor& dy, Tensor& dx);
void zero_pad2d_forward(const Padding2d& p, const Tensor& x, Tensor& y);
void zero_pad2d_backward(const Padding2d& p, const Tensor& dy, Tensor& dx);
void shortcut_pad_forward(int64_t stride, int64_t pad_before, int64_t pad_after,
                          const Tensor& x, Tensor& y);
void shortcut_pad_backward(int64_t stride, int64_t pad_before, int64_t pad_after,
                           const Tensor& dy, Tensor& dx);
void concat_forward(const std::vector<const Tensor*>& xs, Tensor& y);
void concat_backward(const Tensor& dy, const std::vector<Tensor*>& dxs);
void dropout_forward(float rate, uint64_t seed, const Tensor& x, Tensor& y, int64_t first_element);
void dropout_backward(float rate, uint64_t seed, const Tensor& dy, Tensor& dx, int64_t first_element);
double softmax_cross_entropy(const Tensor& logits, const Tensor& labels,
                             float label_smoothing, Tensor& dlogits, double grad_scale);
double sigmoid_binary_cross_entropy(const Tensor& logits, const Tensor& targets,
                                    Tensor& dlogits, double grad_scale);
void sgd_step(const SgdConfig& c, Tensor& param, const Tensor& grad, Tensor& velocity);
void adam_step(const AdamConfig& c, int64_t step, Tensor& param, const Tensor& grad, Tensor& m,
               Tensor& v);
double squared_norm(const Tensor& x);
void scale_inplace(Tensor& x, float factor);

}  // namespace residual::ops::cpu
