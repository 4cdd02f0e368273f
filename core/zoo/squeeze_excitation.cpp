#include "core/zoo/squeeze_excitation.h"

#include <algorithm>

namespace residual::zoo {

namespace {
// The paper's reduction ratio r; its ablation finds 16 the best accuracy/size balance.
constexpr int64_t kReduction = 16;
}  // namespace

std::string squeeze_excitation(GraphBuilder& b, const std::string& input, int64_t channels,
                               const std::string& prefix) {
  // CIFAR's first stage has 16 channels: 16 / 16 = 1 is still a (narrow) bottleneck, and a
  // smaller stage would round to 0 units, hence the floor of 1.
  const int64_t squeezed = std::max<int64_t>(1, channels / kReduction);
  std::string s = b.add("GlobalAveragePooling2D", prefix + "_se_squeeze", {input});
  s = b.dense(prefix + "_se_reduce", s, {{"units", squeezed}, {"activation", "relu"}});
  s = b.dense(prefix + "_se_expand", s, {{"units", channels}, {"activation", "sigmoid"}});
  return b.add("ChannelScale", prefix + "_se_scale", {input, s});
}

}  // namespace residual::zoo
