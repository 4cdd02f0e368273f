// residual: the command-line entry point. Errors become one line on stderr and a
// non-zero exit status.
#include <cstdio>
#include <exception>
#include <new>

#include "core/error.h"
#include "launch/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"residual: data-parallel training of residual networks"};
  app.set_version_flag("--version", "residual 0.1.0");
  app.require_subcommand(1);
  residual::add_summary_command(app);
  residual::add_export_model_command(app);
  residual::add_bench_command(app);
  residual::add_train_command(app);
  residual::add_eval_command(app);
  residual::add_predict_command(app);
  residual::add_plot_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const residual::Error& e) {
    std::fprintf(stderr, "residual: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "residual: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "residual: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
