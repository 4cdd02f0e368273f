// `residual summary` and `residual export-model`.
#include <iostream>

#include "core/error.h"
#include "core/layer_registry.h"
#include "core/model.h"
#include "core/model_spec.h"
#include "core/model_summary.h"
#include "io/atomic_file.h"
#include "launch/cli_validators.h"
#include "launch/commands.h"
#include "launch/option_checks.h"
#include "launch/path_checks.h"

namespace residual {
namespace {

struct ModelOptions {
  std::string model;
  int64_t classes = 0;
  std::string input;
  bool zero_init_residual = false;
};

void add_model_options(CLI::App* command, ModelOptions& o) {
  command->add_option("--model", o.model, "zoo model name or model JSON file")->required();
  command->add_option("--classes", o.classes, "number of classes (output units)")
      ->check(kClassCount);
  command->add_option("--input", o.input, "input shape CxHxW, e.g. 3x32x32");
  command->add_flag("--zero-init-residual", o.zero_init_residual,
                    "zoo models: start the last BN gamma of each residual block at 0");
}

nlohmann::json spec_of(const ModelOptions& o) {
  check_model_argument(o.model);
  SpecOverrides overrides;
  overrides.classes = o.classes;
  if (!o.input.empty()) overrides.input_hwc = parse_input_shape(o.input);
  overrides.zero_init_residual = o.zero_init_residual;
  return resolve_model_spec(o.model, overrides);
}

}  // namespace

void add_summary_command(CLI::App& app) {
  auto options = std::make_shared<ModelOptions>();
  CLI::App* command = app.add_subcommand("summary", "print the layers, shapes, parameters and MACs");
  add_model_options(command, *options);
  command->callback([options] {
    Model model(spec_of(*options), LayerRegistry::with_builtins());
    std::cout << format_summary(model);
  });
}

void add_export_model_command(CLI::App& app) {
  auto options = std::make_shared<ModelOptions>();
  auto output = std::make_shared<std::string>();
  CLI::App* command =
      app.add_subcommand("export-model", "write a model (zoo or file) as a JSON model file");
  add_model_options(command, *options);
  command->add_option("-o,--output", *output, "output file (default: standard output)");
  command->callback([options, output] {
    if (!output->empty()) check_output_file(*output, "-o");
    // Building the model validates it and fills every layer's defaults in.
    Model model(spec_of(*options), LayerRegistry::with_builtins());
    const std::string text = model.to_json().dump(1) + "\n";
    if (output->empty()) {
      std::cout << text;
      return;
    }
    write_file_atomically(*output, text);  // a failure leaves no partial file behind
  });
}

}  // namespace residual
