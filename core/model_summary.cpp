#include "core/model_summary.h"

#include <cstdio>
#include <sstream>

#include "core/error.h"

namespace residual {
namespace {

std::string keras_shape(const Shape& s) {
  std::string out = "(None";
  for (int64_t d : s.dims()) out += ", " + std::to_string(d);
  return out + ")";
}

// a + b, or an Error naming the model and the total: a count past int64 must never be
// printed as a negative number.
int64_t add_checked(int64_t a, int64_t b, const Model& model, const char* total) {
  int64_t sum = 0;
  RESIDUAL_CHECK(!__builtin_add_overflow(a, b, &sum), "model '", model.name(), "': its ", total,
                 " exceed 2^63 (is the input shape sensible?)");
  return sum;
}

std::string pad(const std::string& s, size_t width) {
  return s.size() >= width ? s + " " : s + std::string(width - s.size(), ' ');
}

}  // namespace

std::string with_commas(int64_t value) {
  std::string digits = std::to_string(value < 0 ? -value : value), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return value < 0 ? "-" + out : out;
}

ParameterCounts count_parameters(const Model& model) {
  ParameterCounts counts;
  for (const auto& node : model.nodes()) {
    for (const Parameter& p : node.layer->parameters()) {
      int64_t& count = p.trainable ? counts.trainable : counts.non_trainable;
      count = add_checked(count, p.value.numel(), model, "parameters");
    }
  }
  add_checked(counts.trainable, counts.non_trainable, model, "parameters");  // total()
  return counts;
}

std::string format_summary(const Model& model) {
  std::ostringstream out;
  const size_t w_name = 44, w_shape = 24, w_params = 13;
  const std::string rule(w_name + w_shape + w_params + 30, '_');
  out << "Model: \"" << model.name() << "\"\n" << rule << "\n"
      << pad("Layer (type)", w_name) << pad("Output Shape", w_shape) << pad("Param #", w_params)
      << "Connected to\n" << std::string(rule.size(), '=') << "\n";
  for (int i : model.order()) {
    const ModelNode& node = model.nodes()[i];
    int64_t params = 0;
    for (const Parameter& p : node.layer->parameters()) {
      params = add_checked(params, p.value.numel(), model, "parameters");
    }
    std::string inputs;
    for (int j : node.inputs) inputs += (inputs.empty() ? "" : ", ") + model.nodes()[j].name;
    out << pad(node.name + " (" + node.layer->type() + ")", w_name)
        << pad(keras_shape(node.shape), w_shape) << pad(with_commas(params), w_params) << inputs
        << "\n";
  }
  const ParameterCounts counts = count_parameters(model);
  int64_t macs = 0;  // Model::macs_per_sample() without the overflow
  for (const ModelNode& node : model.nodes()) {
    macs = add_checked(macs, node.layer->macs(), model, "forward MACs per image");
  }
  char gmacs[32];
  std::snprintf(gmacs, sizeof(gmacs), "%.3f", static_cast<double>(macs) / 1e9);
  out << std::string(rule.size(), '=') << "\n"
      << "Total params: " << with_commas(counts.total()) << "\n"
      << "Trainable params: " << with_commas(counts.trainable) << "\n"
      << "Non-trainable params: " << with_commas(counts.non_trainable) << "\n"
      << "Forward MACs per image: " << gmacs << " GMACs (" << with_commas(macs) << ")\n";
  return out.str();
}

}  // namespace residual
