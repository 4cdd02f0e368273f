#pragma once
// Squeeze-and-excitation (Hu et al. 2018) as used by the SE-ResNets of the zoo.
#include <cstdint>
#include <string>

#include "core/zoo/graph_builder.h"

namespace residual::zoo {

// Reweights the `channels` channels of `input`: GlobalAveragePooling2D -> Dense(C / 16, relu)
// -> Dense(C, sigmoid) -> ChannelScale(input, excitation). Layers are named
// `<prefix>_se_squeeze`, `_se_reduce`, `_se_expand`, `_se_scale`; returns the scaled tensor.
std::string squeeze_excitation(GraphBuilder& b, const std::string& input, int64_t channels,
                               const std::string& prefix);

}  // namespace residual::zoo
