// `residual eval` and `residual predict`: everything comes from the checkpoint.
#include <cstdio>
#include <iostream>

#include "launch/cli_validators.h"
#include "launch/commands.h"
#include "launch/device_option.h"
#include "launch/evaluation.h"
#include "launch/inference.h"
#include "launch/path_checks.h"
#include "launch/precision_option.h"

namespace residual {
namespace {

void add_inference_options(CLI::App& command, InferenceConfig& c, int& threads) {
  command.add_option("--checkpoint", c.checkpoint, "checkpoint file, or directory (its latest)")
      ->required();
  command.add_option("--data", c.data, "data spec (default: the data the checkpoint trained on)");
  command.add_option("--split", c.split, "test | train")
      ->check(CLI::IsMember({"test", "train"}))->capture_default_str();
  command.add_option("--batch-size", c.batch_size, "images per batch")
      ->check(kBatchSize)->capture_default_str();
  add_device_option(command, c.device);
  add_precision_option(command, c.precision);
  add_threads_option(command, threads);
}

}  // namespace

void add_eval_command(CLI::App& app) {
  struct Options {
    InferenceConfig c;
    int threads = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand("eval", "evaluate a checkpoint: loss, top-1, top-5");
  add_inference_options(*cmd, o->c, o->threads);
  cmd->callback([o] {
    resolve_device(o->c.device);  // a device this process cannot use: one line, no work
    resolve_precision(o->c.precision, o->c.device);
    check_checkpoint_argument(o->c.checkpoint);
    apply_threads(o->threads);
    InferenceSetup s = load_for_inference(o->c);
    const EvalResult r = evaluate(*s.model, *s.loader, s.precision);
    std::printf("eval %s\n  checkpoint %s\n  loss %.4f  top1 %.4f  top5 %.4f  (%lld images)\n",
                s.data->description().c_str(), s.checkpoint_path.c_str(), r.loss, r.top1, r.top5,
                static_cast<long long>(r.samples));
  });
}

void add_predict_command(CLI::App& app) {
  struct Options {
    InferenceConfig c;
    std::string output;
    int threads = 0;
  };
  auto o = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "predict", "class probabilities and arg-max per input, to CSV or HDF5 (.h5)");
  add_inference_options(*cmd, o->c, o->threads);
  cmd->add_option("-o,--output", o->output, "output file: .csv or .h5")->required();
  cmd->callback([o] {
    resolve_device(o->c.device);  // before the output is checked (or anything written)
    resolve_precision(o->c.precision, o->c.device);
    check_checkpoint_argument(o->c.checkpoint);
    check_output_file(o->output, "-o");  // never a checkpoint, the one read included
    apply_threads(o->threads);
    InferenceSetup s = load_for_inference(o->c);
    const int64_t n = write_predictions(s, o->output);
    std::printf("wrote %lld predictions to %s\n", static_cast<long long>(n), o->output.c_str());
  });
}

}  // namespace residual
