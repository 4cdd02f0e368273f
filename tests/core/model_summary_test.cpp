// The summary's totals cannot overflow silently: a sum past int64 is an error naming the
// model, never a negative count (issue 8 printed -5159526254.407 GMACs).
#include "core/model_summary.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/layer.h"
#include "core/layer_registry.h"
#include "core/model.h"
#include "core/model_spec.h"
#include "tests/core/test_util.h"

namespace {

// An identity layer that claims `macs` multiply-adds per image.
class Costly : public residual::Layer {
 public:
  Costly(const std::string& name, int64_t macs) : Layer(name), macs_(macs) {}
  std::string type() const override { return "Costly"; }
  nlohmann::json config() const override { return {{"macs", macs_}}; }
  residual::Shape build(const std::vector<residual::Shape>& in) override { return in.at(0); }
  void forward(const std::vector<const residual::Tensor*>& x, residual::Tensor& y,
               const residual::PassContext&) override {
    y = *x[0];
  }
  void backward(const std::vector<const residual::Tensor*>&, const residual::Tensor&,
                const residual::Tensor&, const std::vector<residual::Tensor*>&,
                const residual::PassContext&) override {}
  int64_t macs() const override { return macs_; }

 private:
  int64_t macs_;
};

residual::Model costly_model(int64_t macs_each) {
  residual::LayerRegistry registry = residual::LayerRegistry::with_builtins();
  registry.add("Costly", [](const std::string& name, const nlohmann::json& config) {
    return std::make_unique<Costly>(name, config.at("macs").get<int64_t>());
  });
  const nlohmann::json spec = {
      {"format", "residual-model"},
      {"version", 1},
      {"name", "costly"},
      {"layers",
       {{{"name", "input"}, {"type", "Input"}, {"config", {{"shape", {2, 2, 1}}}}},
        {{"name", "a"},
         {"type", "Costly"},
         {"inputs", {"input"}},
         {"config", {{"macs", macs_each}}}},
        {{"name", "b"}, {"type", "Costly"}, {"inputs", {"a"}}, {"config", {{"macs", macs_each}}}}}},
      {"outputs", {"b"}}};
  return residual::Model(spec, registry);
}

TEST(ModelSummaryTest, TotalsAddUp) {
  const std::string summary = residual::format_summary(costly_model(1500000000));
  EXPECT_NE(summary.find("3.000 GMACs (3,000,000,000)"), std::string::npos) << summary;
}

TEST(ModelSummaryTest, MacTotalPastInt64IsAnError) {
  const int64_t half = std::numeric_limits<int64_t>::max() / 2 + 1;
  const residual::Model model = costly_model(half);
  const std::string message = residual::test::error_of([&] { residual::format_summary(model); });
  EXPECT_NE(message.find("'costly'"), std::string::npos) << message;
  EXPECT_NE(message.find("MACs"), std::string::npos) << message;
}

}  // namespace
