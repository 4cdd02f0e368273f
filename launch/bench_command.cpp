// `residual bench`: synthetic-data training throughput.
#include <cstdio>
#include <iostream>

#include "core/model_spec.h"
#include "launch/all_reduce_benchmark.h"
#include "launch/benchmark.h"
#include "launch/cli_validators.h"
#include "distributed/job.h"
#include "launch/commands.h"
#include "launch/device_option.h"
#include "launch/distributed_options.h"
#include "launch/option_checks.h"
#include "launch/path_checks.h"
#include "launch/precision_option.h"
#include "ops/ops.h"

namespace residual {

void add_threads_option(CLI::App& command, int& threads) {
  command.add_option("--threads", threads, "CPU threads (default: all cores)")
      ->check(kThreadCount);
}

void add_device_option(CLI::App& command, std::string& device) {
  command
      .add_option("--device", device,
                  "where the model runs: cpu | cuda | cuda:N (cuda under mpirun: one GPU per "
                  "rank, from the rank's place on its node)")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            return is_device_spelling(value) ? "" : "'" + value + "' is not cpu, cuda or cuda:N";
          },
          "cpu|cuda|cuda:N"))
      ->capture_default_str();
}

void add_precision_option(CLI::App& command, std::string& precision) {
  command
      .add_option("--precision", precision,
                  "fp32 | bf16 (mixed precision on the CPU: bf16 convolutions and dense layers "
                  "accumulating in fp32; fp32 weights, batch norm and optimizer; needs a CPU "
                  "with AVX512-BF16 or AMX)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
}

void apply_threads(int threads) {
  // Under mpirun, the ranks of a node share its cores unless told otherwise.
  if (threads == 0) threads = default_threads_per_rank();
  if (threads > 0) ops::set_num_threads(threads);
}

void add_bench_command(CLI::App& app) {
  struct Options {
    BenchConfig config;
    std::string input;
    int threads = 0;
    std::vector<double> all_reduce_mb;
  };
  auto o = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand("bench", "time synthetic-data training steps");
  command->add_option("--model", o->config.model, "zoo model name or model JSON file")
      ->capture_default_str();
  command->add_option("--batch-size", o->config.batch_size, "global batch: images per step over all ranks (mpirun: split among them)")
      ->check(kBatchSize)->capture_default_str();
  command->add_option("--steps", o->config.steps, "timed steps")
      ->check(integer_in_range(1, 1000000))->capture_default_str();
  command->add_option("--warmup", o->config.warmup, "untimed steps first")
      ->check(integer_in_range(0, 1000000))->capture_default_str();
  command->add_option("--input", o->input, "input shape CxHxW (default: the model's)");
  command->add_option("--classes", o->config.classes, "output classes (default: the model's)")
      ->check(kClassCount);
  command->add_flag("--profile", o->config.profile, "print time per layer type and phase");
  command->add_flag("--sync-bn", o->config.sync_bn, "synchronized batch norm across the ranks");
  command->add_option("--all-reduce-mb", o->all_reduce_mb,
                      "instead of training steps, time the bucketed gradient all-reduce against "
                      "one plain all-reduce of the same total size, for each size in MB")
      ->delimiter(',')->check(CLI::Range(0.001, 4096.0));
  command->add_option("--bucket-cap-mb", o->config.bucket_cap_mb, "gradient bucket size in MB")
      ->check(CLI::Range(0.001, 4096.0))->capture_default_str();
  add_device_option(*command, o->config.device);
  add_precision_option(*command, o->config.precision);
  add_threads_option(*command, o->threads);
  command->callback([o] {
    resolve_device(o->config.device);  // a device this process cannot use: one line, no work
    resolve_precision(o->config.precision, o->config.device);  // likewise a precision
    check_model_argument(o->config.model);
    if (!o->input.empty()) o->config.input_hwc = parse_input_shape(o->input);
    apply_threads(o->threads);
    Communicator& world = world_communicator();
    if (!o->all_reduce_mb.empty()) {
      const Device device = resolve_device(o->config.device);
      Communicator& gradients = device.is_cpu() ? world : gradient_communicator(device);
      run_all_reduce_benchmark(world, gradients, device, o->all_reduce_mb, o->config.bucket_cap_mb,
                               o->config.steps, rank0_out());
      return;
    }
    const BenchResult r = run_benchmark(o->config, rank0_out(), world);
    if (world.rank() != 0) return;
    std::printf("forward_ms=%.2f loss_ms=%.2f backward_ms=%.2f update_ms=%.2f step_ms=%.2f\n",
                r.forward_ms, r.loss_ms, r.backward_ms, r.update_ms, r.step_ms);
    if (world.size() > 1) {
      std::printf("all_reduce_ms=%.2f exposed_ms=%.2f (rank 0, medians per step)\n", r.all_reduce_ms,
                  r.exposed_ms);
      for (size_t i = 0; i < r.rank_images_per_s.size(); ++i) {
        std::printf("rank %zu images_per_s=%.1f\n", i, r.rank_images_per_s[i]);
      }
    }
    std::printf("train_gflop_per_image=%.6g gflops=%.1f\n", r.train_gflop_per_image,
                r.train_gflop_per_image * r.images_per_s);
    std::printf("images_per_s=%.1f\n", r.images_per_s);
  });
}

}  // namespace residual
