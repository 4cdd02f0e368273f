#include "core/layers/builtin_layers.h"

#include "core/error.h"

namespace residual {

void register_builtin_layers(LayerRegistry& registry) {
  register_input_layer(registry);
  register_conv2d_layers(registry);
  register_batch_norm_layer(registry);
  register_activation_layers(registry);
  register_pooling_layers(registry);
  register_global_average_pooling_layer(registry);
  register_zero_padding_layer(registry);
  register_flatten_layer(registry);
  register_dense_layer(registry);
  register_dropout_layer(registry);
  register_add_layer(registry);
  register_concatenate_layer(registry);
  register_channel_scale_layer(registry);
  register_zero_padded_shortcut_layer(registry);
}

ops::Activation parse_activation(const std::string& where, const std::string& name) {
  if (name == "relu") return ops::Activation::kRelu;
  if (name == "sigmoid") return ops::Activation::kSigmoid;
  if (name == "softmax") return ops::Activation::kSoftmax;
  if (name == "linear") return ops::Activation::kLinear;
  fail(where, "unknown activation '", name, "' (known: linear, relu, sigmoid, softmax)");
}

const char* activation_name(ops::Activation kind) {
  switch (kind) {
    case ops::Activation::kRelu: return "relu";
    case ops::Activation::kSigmoid: return "sigmoid";
    case ops::Activation::kSoftmax: return "softmax";
    case ops::Activation::kLinear: return "linear";
  }
  return "?";
}

void expect_inputs(const std::string& where, const std::vector<Shape>& inputs, size_t count,
                   size_t rank) {
  RESIDUAL_CHECK(inputs.size() == count, where, "expects ", count, " input(s), got ",
                 inputs.size());
  for (const Shape& s : inputs) {
    RESIDUAL_CHECK(s.rank() == rank, where, "expects ",
                   rank == 3 ? std::string("an image input (H x W x C)")
                             : str_cat("a rank-", rank, " input"),
                   ", got shape ", s.str());
  }
}

}  // namespace residual
