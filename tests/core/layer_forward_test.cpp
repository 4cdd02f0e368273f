// Forward values of the layers whose geometry the layer itself decides (padding resolution,
// groups, channel placement), against direct loops. Finite differences cannot see these:
// a wrong padding split gives a different but self-consistent function.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/core/gradient_check.h"

namespace residual {
namespace {

using nlohmann::json;

// x at (n, h, w, c) of an N x H x W x C tensor, or `outside` beyond the borders.
float at(const Tensor& x, int64_t n, int64_t h, int64_t w, int64_t c, float outside = 0.f) {
  if (h < 0 || w < 0 || h >= x.dim(1) || w >= x.dim(2)) return outside;
  return x.f32()[((n * x.dim(1) + h) * x.dim(2) + w) * x.dim(3) + c];
}

struct Geometry {
  int64_t kernel_h, kernel_w, stride, dilation, pad_top, pad_left;
};

Tensor forward(Layer& layer, const Tensor& x) {
  Tensor y;
  layer.forward({&x}, y, PassContext{true, 0, 0});
  return y;
}

::testing::AssertionResult near(const Tensor& got, const Tensor& want, double tol) {
  if (got.shape() != want.shape()) {
    return ::testing::AssertionFailure()
           << "shape " << got.shape().str() << ", expected " << want.shape().str();
  }
  for (int64_t i = 0; i < got.numel(); ++i) {
    if (!(std::abs(got.f32()[i] - want.f32()[i]) <= tol)) {
      return ::testing::AssertionFailure()
             << "element " << i << ": " << got.f32()[i] << ", expected " << want.f32()[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// Direct convolution with the layer's own parameters (kernel O x I/g x kH x kW, bias O).
Tensor reference_conv(const Tensor& x, Layer& layer, const Geometry& g, const Shape& out) {
  const Tensor& w = layer.parameters()[0].value;
  const Tensor* b = layer.parameters().size() > 1 ? &layer.parameters()[1].value : nullptr;
  const int64_t cout = out[3], cin_g = w.dim(1), groups = x.dim(3) / cin_g;
  Tensor y = Tensor::empty(out);
  for (int64_t n = 0; n < out[0]; ++n) {
    for (int64_t oh = 0; oh < out[1]; ++oh) {
      for (int64_t ow = 0; ow < out[2]; ++ow) {
        for (int64_t o = 0; o < cout; ++o) {
          const int64_t group = o / (cout / groups);
          double sum = b ? b->f32()[o] : 0.0;
          for (int64_t i = 0; i < cin_g; ++i) {
            for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
              for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
                const float v = at(x, n, oh * g.stride - g.pad_top + kh * g.dilation,
                                   ow * g.stride - g.pad_left + kw * g.dilation, group * cin_g + i);
                sum += v * w.f32()[((o * cin_g + i) * g.kernel_h + kh) * g.kernel_w + kw];
              }
            }
          }
          y.f32()[((n * out[1] + oh) * out[2] + ow) * cout + o] = static_cast<float>(sum);
        }
      }
    }
  }
  return y;
}

struct ConvCase {
  std::string type;
  json config;
  Shape input;        // with the batch dimension
  Geometry geometry;  // what the config must resolve to
  Shape output;
};

TEST(LayerForwardTest, ConvolutionPaddingGroupsAndDilation) {
  const std::vector<ConvCase> cases = {
      // TensorFlow "same" on an even size at stride 2: total padding 1, all of it after.
      {"Conv2D",
       {{"filters", 3}, {"kernel_size", 3}, {"strides", 2}, {"padding", "same"}},
       {1, 6, 6, 2},
       {3, 3, 2, 1, 0, 0},
       {1, 3, 3, 3}},
      // ... and on an odd size: total 2, split evenly.
      {"Conv2D",
       {{"filters", 3}, {"kernel_size", 3}, {"strides", 2}, {"padding", "same"}},
       {1, 7, 7, 2},
       {3, 3, 2, 1, 1, 1},
       {1, 4, 4, 3}},
      {"Conv2D",
       {{"filters", 2}, {"kernel_size", 3}, {"dilation_rate", 2}, {"padding", "same"}},
       {2, 5, 5, 1},
       {3, 3, 1, 2, 2, 2},
       {2, 5, 5, 2}},
      {"Conv2D",
       {{"filters", 4}, {"kernel_size", 1}, {"groups", 2}},
       {1, 3, 3, 4},
       {1, 1, 1, 1, 0, 0},
       {1, 3, 3, 4}},
      {"Conv2D",
       {{"filters", 2},
        {"kernel_size", json::array({2, 3})},
        {"padding", json::array({json::array({1, 0}), json::array({2, 0})})}},
       {1, 4, 4, 1},
       {2, 3, 1, 1, 1, 2},
       {1, 4, 4, 2}},
      {"DepthwiseConv2D",
       {{"kernel_size", 3}, {"depth_multiplier", 2}, {"padding", 1}},
       {1, 4, 4, 3},
       {3, 3, 1, 1, 1, 1},
       {1, 4, 4, 6}},
  };
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(c.type + " " + c.config.dump());
    gradcheck::Rng rng(21);
    const std::vector<Tensor> in{gradcheck::uniform(c.input, rng)};
    auto layer = gradcheck::make_layer(c.type, c.config, in, 3);
    const Tensor y = forward(*layer, in[0]);
    EXPECT_TRUE(near(y, reference_conv(in[0], *layer, c.geometry, c.output), 1e-5));
  }
}

// Pools over in-bounds elements only: padding never wins a max and is not averaged in.
TEST(LayerForwardTest, PoolingExcludesPadding) {
  struct PoolCase {
    std::string type;
    json config;
    Shape input;
    Geometry geometry;
    Shape output;
  };
  const std::vector<PoolCase> cases = {
      {"MaxPooling2D",
       {{"pool_size", 3}, {"strides", 2}, {"padding", 1}},
       {1, 5, 5, 2},
       {3, 3, 2, 1, 1, 1},
       {1, 3, 3, 2}},
      {"MaxPooling2D",
       {{"pool_size", 3}, {"strides", 2}, {"padding", "same"}},
       {1, 6, 6, 2},
       {3, 3, 2, 1, 0, 0},
       {1, 3, 3, 2}},
      {"AveragePooling2D",
       {{"pool_size", 3}, {"strides", 2}, {"padding", "same"}},
       {1, 6, 6, 2},
       {3, 3, 2, 1, 0, 0},
       {1, 3, 3, 2}},
      {"AveragePooling2D",
       {{"pool_size", 3}, {"strides", 1}, {"padding", "same"}},
       {2, 4, 4, 1},
       {3, 3, 1, 1, 1, 1},
       {2, 4, 4, 1}},
  };
  for (const PoolCase& c : cases) {
    SCOPED_TRACE(c.type + " " + c.config.dump());
    gradcheck::Rng rng(22);
    // All negative: a zero taken from the padding would win every border max.
    const std::vector<Tensor> in{gradcheck::uniform(c.input, rng, -2.f, -1.f)};
    auto layer = gradcheck::make_layer(c.type, c.config, in, 1);
    const Tensor y = forward(*layer, in[0]);
    const bool is_max = c.type == "MaxPooling2D";
    const Geometry& g = c.geometry;
    Tensor want = Tensor::empty(c.output);
    const float kOutside = std::numeric_limits<float>::quiet_NaN();
    for (int64_t n = 0; n < c.output[0]; ++n) {
      for (int64_t oh = 0; oh < c.output[1]; ++oh) {
        for (int64_t ow = 0; ow < c.output[2]; ++ow) {
          for (int64_t ch = 0; ch < c.output[3]; ++ch) {
            double best = -HUGE_VAL, sum = 0;
            int count = 0;
            for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
              for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
                const float v = at(in[0], n, oh * g.stride - g.pad_top + kh,
                                   ow * g.stride - g.pad_left + kw, ch, kOutside);
                if (std::isnan(v)) continue;
                best = std::max<double>(best, v);
                sum += v;
                ++count;
              }
            }
            want.f32()[((n * c.output[1] + oh) * c.output[2] + ow) * c.output[3] + ch] =
                static_cast<float>(is_max ? best : sum / count);
          }
        }
      }
    }
    EXPECT_TRUE(near(y, want, 1e-6));
  }
}

// x[::2, ::2] with (filters - C) / 2 zero channels before and the rest after.
TEST(LayerForwardTest, ZeroPaddedShortcutPlacesChannels) {
  gradcheck::Rng rng(23);
  const std::vector<Tensor> in{gradcheck::uniform({2, 5, 5, 3}, rng, 1.f, 2.f)};
  auto layer = gradcheck::make_layer("ZeroPaddedShortcut", {{"strides", 2}, {"filters", 8}}, in, 1);
  const Tensor y = forward(*layer, in[0]);
  ASSERT_EQ(y.shape(), Shape({2, 3, 3, 8}));
  for (int64_t n = 0; n < 2; ++n) {
    for (int64_t h = 0; h < 3; ++h) {
      for (int64_t w = 0; w < 3; ++w) {
        for (int64_t c = 0; c < 8; ++c) {
          const float want = c >= 2 && c < 5 ? at(in[0], n, 2 * h, 2 * w, c - 2) : 0.f;
          EXPECT_EQ(at(y, n, h, w, c), want) << n << "," << h << "," << w << "," << c;
        }
      }
    }
  }
}

TEST(LayerForwardTest, ZeroPaddingPlacesTheInput) {
  gradcheck::Rng rng(24);
  const std::vector<Tensor> in{gradcheck::uniform({1, 2, 3, 2}, rng, 1.f, 2.f)};
  auto layer = gradcheck::make_layer(
      "ZeroPadding2D", {{"padding", json::array({json::array({1, 2}), json::array({0, 3})})}}, in,
      1);
  const Tensor y = forward(*layer, in[0]);
  ASSERT_EQ(y.shape(), Shape({1, 5, 6, 2}));
  for (int64_t h = 0; h < 5; ++h) {
    for (int64_t w = 0; w < 6; ++w) {
      for (int64_t c = 0; c < 2; ++c) EXPECT_EQ(at(y, 0, h, w, c), at(in[0], 0, h - 1, w, c));
    }
  }
}

}  // namespace
}  // namespace residual
