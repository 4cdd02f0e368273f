// `residual plot`: learning curves of a metrics file (from `train --metrics-file`) as SVG.
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "io/metrics_writer.h"
#include "io/atomic_file.h"
#include "io/svg_plot.h"
#include "launch/commands.h"
#include "launch/path_checks.h"

namespace residual {

void add_plot_command(CLI::App& app) {
  struct Options {
    std::string metrics, output;
    PlotOptions plot;
  };
  auto o = std::make_shared<Options>();
  CLI::App* command =
      app.add_subcommand("plot", "draw the learning curves of a metrics file as SVG");
  command->add_option("--metrics", o->metrics, "metrics file (.csv or .jsonl) from train")
      ->required();
  command->add_option("-o,--output", o->output, "SVG file to write")->required();
  command->add_option("--x", o->plot.x, "x axis: epoch | step (step adds the per-step rows)")
      ->check(CLI::IsMember({"epoch", "step"}))
      ->capture_default_str();
  command->add_option("--title", o->plot.title, "heading (default: the metrics file's name)");
  command->callback([o] {
    namespace fs = std::filesystem;
    std::error_code ec;
    RESIDUAL_CHECK(fs::is_regular_file(o->metrics, ec), "the metrics file '", o->metrics,
                   "' does not exist or is not a file");
    RESIDUAL_CHECK(fs::file_size(o->metrics, ec) > 0 && !ec, "the metrics file '", o->metrics,
                   "' is empty");
    check_output_file(o->output, "-o");
    check_not_input(o->output, "-o", o->metrics, "--metrics");
    const auto metrics = read_metrics(o->metrics);
    if (o->plot.title.empty()) {
      o->plot.title = "Learning curves: " + fs::path(o->metrics).filename().string();
    }
    std::string svg;
    try {
      svg = render_learning_curves_svg(metrics, o->plot);
    } catch (const Error& e) {
      fail(o->metrics, ": ", e.what());
    }
    write_file_atomically(o->output, svg);
    std::printf("wrote %s\n", o->output.c_str());
  });
}

}  // namespace residual
