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
// --device cpu | cuda | cuda:N (default cpu), shared by train, eval, predict and bench;
// the spelling is checked here, whether the device can be used by resolve_device
// (launch/device_option.h) when the command runs.
void add_device_option(CLI::App& command, std::string& device);
// --precision fp32 | bf16 (default fp32), shared by the same four; whether this machine can
// run it is resolve_precision's check (launch/precision_option.h) when the command runs.
void add_precision_option(CLI::App& command, std::string& precision);
// --data and the HDF5 dataset options.
void add_data_options(CLI::App& command, std::string& data, DataOptions& options);

}  // namespace residual
