#pragma once
// The CPU kernels of the ops in ops/ops.h, declared through the ops' own signatures (so a
// kernel whose parameters drift from its op does not compile into the registration).
// Defined in ops/cpu/<op>.cpp, registered in ops/cpu/cpu_kernels.cpp.
#include "ops/ops.h"

namespace residual::ops::cpu {

Conv2dForwardFn conv2d_forward;
Conv2dBackwardDataFn conv2d_backward_data;
Conv2dBackwardWeightsFn conv2d_backward_weights;
Pool2dForwardFn pool2d_forward;
Pool2dBackwardFn pool2d_backward;
DenseForwardFn dense_forward;
DenseBackwardDataFn dense_backward_data;
DenseBackwardWeightsFn dense_backward_weights;
BatchNormForwardTrainingFn batch_norm_forward_training;
BatchNormForwardInferenceFn batch_norm_forward_inference;
BatchNormBackwardFn batch_norm_backward;
BatchNormUpdateRunningFn batch_norm_update_running;
BatchNormPartialSumsFn batch_norm_partial_sums;
BatchNormMomentsFn batch_norm_moments;
BatchNormBackwardPartialSumsFn batch_norm_backward_partial_sums;
BatchNormBackwardApplyFn batch_norm_backward_apply;
ActivationForwardFn activation_forward;
ActivationBackwardFn activation_backward;
AddForwardFn add_forward;
ChannelScaleForwardFn channel_scale_forward;
ChannelScaleBackwardFn channel_scale_backward;
GlobalAvgPoolForwardFn global_avg_pool_forward;
GlobalAvgPoolBackwardFn global_avg_pool_backward;
ZeroPad2dForwardFn zero_pad2d_forward;
ZeroPad2dBackwardFn zero_pad2d_backward;
ShortcutPadForwardFn shortcut_pad_forward;
ShortcutPadBackwardFn shortcut_pad_backward;
ConcatForwardFn concat_forward;
ConcatBackwardFn concat_backward;
DropoutForwardFn dropout_forward;
DropoutBackwardFn dropout_backward;
SoftmaxCrossEntropyFn softmax_cross_entropy;
SigmoidBinaryCrossEntropyFn sigmoid_binary_cross_entropy;
SgdStepFn sgd_step;
AdamStepFn adam_step;
SquaredNormFn squared_norm;
ScaleInplaceFn scale_inplace;

}  // namespace residual::ops::cpu
