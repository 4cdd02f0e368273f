#pragma once
// Every op of ops/ops.h once more, as a list for the code that must name them all: each
// backend's kernel declarations (ops/cpu/cpu_ops.h, ops/cuda/cuda_ops.h) and registration
// (ops/cpu/cpu_kernels.cpp, ops/cuda/cuda_kernels.cpp), and all_ops() (ops/op.cpp).
// X(SignatureType, op_name) for each op, in the order of ops/ops.h. A new op goes here
// and in ops.h; a backend that lacks it then fails to link, naming the kernel.
#define RESIDUAL_FOR_EACH_OP(X) \
  X(Conv2dForwardFn, conv2d_forward) \
  X(Conv2dBackwardDataFn, conv2d_backward_data) \
  X(Conv2dBackwardWeightsFn, conv2d_backward_weights) \
  X(Pool2dForwardFn, pool2d_forward) \
  X(Pool2dBackwardFn, pool2d_backward) \
  X(DenseForwardFn, dense_forward) \
  X(DenseBackwardDataFn, dense_backward_data) \
  X(DenseBackwardWeightsFn, dense_backward_weights) \
  X(BatchNormForwardTrainingFn, batch_norm_forward_training) \
  X(BatchNormForwardInferenceFn, batch_norm_forward_inference) \
  X(BatchNormBackwardFn, batch_norm_backward) \
  X(BatchNormUpdateRunningFn, batch_norm_update_running) \
  X(BatchNormPartialSumsFn, batch_norm_partial_sums) \
  X(BatchNormMomentsFn, batch_norm_moments) \
  X(BatchNormBackwardPartialSumsFn, batch_norm_backward_partial_sums) \
  X(BatchNormBackwardApplyFn, batch_norm_backward_apply) \
  X(ActivationForwardFn, activation_forward) \
  X(ActivationBackwardFn, activation_backward) \
  X(AddForwardFn, add_forward) \
  X(ChannelScaleForwardFn, channel_scale_forward) \
  X(ChannelScaleBackwardFn, channel_scale_backward) \
  X(GlobalAvgPoolForwardFn, global_avg_pool_forward) \
  X(GlobalAvgPoolBackwardFn, global_avg_pool_backward) \
  X(ZeroPad2dForwardFn, zero_pad2d_forward) \
  X(ZeroPad2dBackwardFn, zero_pad2d_backward) \
  X(ShortcutPadForwardFn, shortcut_pad_forward) \
  X(ShortcutPadBackwardFn, shortcut_pad_backward) \
  X(ConcatForwardFn, concat_forward) \
  X(ConcatBackwardFn, concat_backward) \
  X(DropoutForwardFn, dropout_forward) \
  X(DropoutBackwardFn, dropout_backward) \
  X(SoftmaxCrossEntropyFn, softmax_cross_entropy) \
  X(SigmoidBinaryCrossEntropyFn, sigmoid_binary_cross_entropy) \
  X(SgdStepFn, sgd_step) \
  X(AdamStepFn, adam_step) \
  X(SquaredNormFn, squared_norm) \
  X(ScaleInplaceFn, scale_inplace) \
  X(CastFn, cast)
