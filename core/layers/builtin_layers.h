#pragma once
// One registration function per built-in layer file; register_builtin_layers calls all.
#include "core/layer_registry.h"
#include "ops/ops.h"

namespace residual {

void register_input_layer(LayerRegistry& registry);
void register_conv2d_layers(LayerRegistry& registry);
void register_batch_norm_layer(LayerRegistry& registry);
void register_activation_layers(LayerRegistry& registry);
void register_pooling_layers(LayerRegistry& registry);
void register_global_average_pooling_layer(LayerRegistry& registry);
void register_zero_padding_layer(LayerRegistry& registry);
void register_flatten_layer(LayerRegistry& registry);
void register_dense_layer(LayerRegistry& registry);
void register_dropout_layer(LayerRegistry& registry);
void register_add_layer(LayerRegistry& registry);
void register_concatenate_layer(LayerRegistry& registry);
void register_channel_scale_layer(LayerRegistry& registry);
void register_zero_padded_shortcut_layer(LayerRegistry& registry);

// Parses "relu" | "sigmoid" | "softmax" | "linear".
ops::Activation parse_activation(const std::string& where, const std::string& name);
const char* activation_name(ops::Activation kind);

// Checks the number and rank of a layer's inputs with a message naming the layer.
void expect_inputs(const std::string& where, const std::vector<Shape>& inputs, size_t count,
                   size_t rank);

}  // namespace residual

namespace residual {
// True for ReLU and Activation(relu) layers (the model fuses them into their producer).
bool is_relu_layer(const Layer& layer);
}  // namespace residual
