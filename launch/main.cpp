// residual: the command-line entry point. Errors become one line on stderr and a
// non-zero exit status.
#include <unistd.h>

#include <cstdio>
#include <string>
#include <exception>
#include <new>

#include "core/error.h"
#include "distributed/job.h"
#include "distributed/mpi_communicator.h"
#include "launch/commands.h"
#include "launch/distributed_options.h"

namespace {

// One line per failure. Once a job runs on several ranks, a failing rank names itself
// and ends at once (another rank may be inside a collective it will never complete; the
// launcher ends the rest). An error every rank raises together is told by rank 0 alone.
int report(const char* message, bool job_wide) {
  const residual::JobInfo& job = residual::job_info();
  if (job.size <= 1) {
    std::fprintf(stderr, "residual: error: %s\n", message);
    return 1;
  }
  if (job_wide && job.rank != 0) {
    std::fflush(stdout);
    ::_exit(1);
  }
  residual::end_job((job_wide ? std::string() : "rank " + std::to_string(job.rank) + ": ") + message, 1);
}

}  // namespace

int main(int argc, char** argv) {
  residual::prefer_passive_openmp_under_mpi(argv);
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
  } catch (const residual::ExitRequest& e) {
    residual::finalize_mpi();
    return e.status;
  } catch (const residual::JobWideError& e) {
    return report(e.what(), true);
  } catch (const residual::Error& e) {
    return report(e.what(), false);
  } catch (const std::bad_alloc&) {
    return report("out of memory", false);
  } catch (const std::exception& e) {
    return report(e.what(), false);
  }
  residual::finalize_mpi();
  return 0;
}
