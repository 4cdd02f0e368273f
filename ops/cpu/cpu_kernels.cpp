// Registers every CPU kernel with its op: the CPU backend's one list.
#include "ops/cpu/cpu_ops.h"
#include "ops/kernel_registration.h"

namespace residual::ops {

void register_cpu_kernels() {
  constexpr DeviceType kCpu = DeviceType::kCpu;
  conv2d_forward.implement(kCpu, cpu::conv2d_forward);
  conv2d_backward_data.implement(kCpu, cpu::conv2d_backward_data);
  conv2d_backward_weights.implement(kCpu, cpu::conv2d_backward_weights);
  pool2d_forward.implement(kCpu, cpu::pool2d_forward);
  pool2d_backward.implement(kCpu, cpu::pool2d_backward);
  dense_forward.implement(kCpu, cpu::dense_forward);
  dense_backward_data.implement(kCpu, cpu::dense_backward_data);
  dense_backward_weights.implement(kCpu, cpu::dense_backward_weights);
  batch_norm_forward_training.implement(kCpu, cpu::batch_norm_forward_training);
  batch_norm_forward_inference.implement(kCpu, cpu::batch_norm_forward_inference);
  batch_norm_backward.implement(kCpu, cpu::batch_norm_backward);
  batch_norm_update_running.implement(kCpu, cpu::batch_norm_update_running);
  batch_norm_partial_sums.implement(kCpu, cpu::batch_norm_partial_sums);
  batch_norm_moments.implement(kCpu, cpu::batch_norm_moments);
  batch_norm_backward_partial_sums.implement(kCpu, cpu::batch_norm_backward_partial_sums);
  batch_norm_backward_apply.implement(kCpu, cpu::batch_norm_backward_apply);
  activation_forward.implement(kCpu, cpu::activation_forward);
  activation_backward.implement(kCpu, cpu::activation_backward);
  add_forward.implement(kCpu, cpu::add_forward);
  channel_scale_forward.implement(kCpu, cpu::channel_scale_forward);
  channel_scale_backward.implement(kCpu, cpu::channel_scale_backward);
  global_avg_pool_forward.implement(kCpu, cpu::global_avg_pool_forward);
  global_avg_pool_backward.implement(kCpu, cpu::global_avg_pool_backward);
  zero_pad2d_forward.implement(kCpu, cpu::zero_pad2d_forward);
  zero_pad2d_backward.implement(kCpu, cpu::zero_pad2d_backward);
  shortcut_pad_forward.implement(kCpu, cpu::shortcut_pad_forward);
  shortcut_pad_backward.implement(kCpu, cpu::shortcut_pad_backward);
  concat_forward.implement(kCpu, cpu::concat_forward);
  concat_backward.implement(kCpu, cpu::concat_backward);
  dropout_forward.implement(kCpu, cpu::dropout_forward);
  dropout_backward.implement(kCpu, cpu::dropout_backward);
  softmax_cross_entropy.implement(kCpu, cpu::softmax_cross_entropy);
  sigmoid_binary_cross_entropy.implement(kCpu, cpu::sigmoid_binary_cross_entropy);
  sgd_step.implement(kCpu, cpu::sgd_step);
  adam_step.implement(kCpu, cpu::adam_step);
  squared_norm.implement(kCpu, cpu::squared_norm);
  scale_inplace.implement(kCpu, cpu::scale_inplace);
}

}  // namespace residual::ops
