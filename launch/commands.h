#pragma once
// Each CLI subcommand: parses its options into a plain config struct and calls library
// code. No logic of its own.
#include <string>

#include <CLI/CLI.hpp>

#include "io/dataset.h"

namespace residual {

void add_summary_command(CLI::App& app);
void add_export_model_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_predict_command(CLI::App& app);
void add_plot_command(CLI::App& app);

// --threads N (default: all cores), shared by the subcommands that compute.
void add_threads_option(CLI::App& command, int& threads);
void apply_threads(int threads);
// --data and the HDF5 dataset options.
void add_data_options(CLI::App& command, std::string& data, DataOptions& options);

}  // namespace residual
