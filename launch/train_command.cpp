// `residual train`: every option is also settable from a config file (--config FILE,
// TOML or INI, keys named as the long options); the effective configuration is echoed
// at start.
#include <csignal>
#include <filesystem>
#include <iostream>
#include <set>

#include "core/error.h"
#include "io/checkpoint.h"
#include "io/checkpoint_store.h"

#include "distributed/job.h"
#include "launch/cli_validators.h"
#include "launch/commands.h"
#include "launch/config_file.h"
#include "launch/device_option.h"
#include "launch/precision_option.h"
#include "launch/distributed_options.h"
#include "launch/option_checks.h"
#include "launch/trainer.h"

namespace residual {

void add_data_options(CLI::App& command, std::string& data, DataOptions& options) {
  command.add_option("--data", data,
                     "training data: mnist:DIR | cifar10:DIR | cifar100:DIR | hdf5:FILE | "
                     "synthetic:CxHxW:CLASSES")
      ->capture_default_str();
  command.add_option("--hdf5-images", options.hdf5_images,
                     "HDF5 dataset of images ({split} -> train/test)")
      ->capture_default_str();
  command.add_option("--hdf5-labels", options.hdf5_labels, "HDF5 dataset of labels")
      ->capture_default_str();
  command.add_option("--synthetic-size", options.synthetic_size,
                     "samples per split of synthetic: data")
      ->check(integer_in_range(1, int64_t{1} << 30))->capture_default_str();
  command.add_option("--hdf5-layout", options.hdf5_layout, "HDF5 image layout: nhwc | nchw")
      ->check(CLI::IsMember({"nhwc", "nchw"}))
      ->capture_default_str();
}

namespace {

// --resume continues a run with its saved configuration; only these options may be
// given with it (they change how long it runs and what it writes, not what it computes).
std::unique_ptr<Checkpoint> resumed_run(const CLI::App& command, TrainConfig& config) {
  if (config.resume.empty()) return nullptr;
  static const std::set<std::string> kMayChange = {
      "--resume", "--epochs", "--checkpoint-dir", "--checkpoint-every-epochs",
      "--checkpoint-every-steps", "--keep-last", "--metrics-file", "--metrics-timing",
      "--log-every", "--no-progress", "--threads", "--workers", "--config", "--comm-timeout",
      "--device", "--precision"};
  // (--mean/--std are part of what the run computes: they are saved and not changeable.)
  for (const CLI::Option* option : command.get_options()) {
    if (option->count() > 0 && kMayChange.count(option->get_name()) == 0) {
      fail(option->get_name(), " cannot be changed when resuming: the run continues with the "
           "configuration saved in its checkpoint");
    }
  }
  const std::string path = CheckpointStore::resolve(config.resume);
  auto checkpoint = std::make_unique<Checkpoint>(read_checkpoint(path));
  TrainConfig saved = train_config_from_json(checkpoint->config);
  if (command.get_option("--epochs")->count() > 0) saved.epochs = config.epochs;
  // Checkpoints keep going where the resumed one lives unless told otherwise: a resumed
  // run that silently saved nothing would lose its work at the next interruption.
  saved.checkpoint.dir = config.checkpoint.dir.empty()
                             ? std::filesystem::path(path).parent_path().string()
                             : config.checkpoint.dir;
  if (saved.checkpoint.dir.empty()) saved.checkpoint.dir = ".";
  if (command.get_option("--checkpoint-every-epochs")->count() > 0) {
    saved.checkpoint.every_epochs = config.checkpoint.every_epochs;
  }
  if (command.get_option("--checkpoint-every-steps")->count() > 0) {
    saved.checkpoint.every_steps = config.checkpoint.every_steps;
  }
  if (command.get_option("--keep-last")->count() > 0) saved.checkpoint.keep_last = config.checkpoint.keep_last;
  if (command.get_option("--comm-timeout")->count() > 0) saved.comm_timeout_s = config.comm_timeout_s;
  saved.metrics_file = config.metrics_file;
  saved.metrics_timing = config.metrics_timing;
  if (command.get_option("--log-every")->count() > 0) saved.log_every = config.log_every;
  saved.workers = config.workers;
  saved.device = config.device;  // never saved: a run continues on the device it is given
  if (command.get_option("--precision")->count() > 0) {
    saved.precision = config.precision;  // checked with the other options already
  } else {
    // A bf16 run resumed where bf16 cannot run: say where the bf16 came from.
    try {
      resolve_precision(saved.precision, saved.device);
    } catch (const Error& e) {
      fail("checkpoint '", path, "' was trained with --precision ", saved.precision,
           ", which cannot run here (", e.what(), "); give --precision fp32 to resume in fp32");
    }
  }
  saved.progress_bar = config.progress_bar;
  saved.resume = path;
  RESIDUAL_CHECK(checkpoint->epoch < saved.epochs || checkpoint->batch_in_epoch > 0, "checkpoint '",
                 path, "' already finished ", checkpoint->epoch, " epochs: give --epochs N with N > ",
                 checkpoint->epoch, " to train further");
  config = saved;
  rank0_out() << "resuming from " << path << " (epoch " << checkpoint->epoch << ", step "
            << checkpoint->global_step << "), checkpoints to " << config.checkpoint.dir << "\n";
  return checkpoint;
}

// Where the training options mean something.
constexpr int64_t kMaxEpochs = 1000000;
const CLI::Validator kLearningRate = number_in_range(0, 100, Ends::kOpenLow);
const CLI::Validator kFraction = number_in_range(0, 1, Ends::kOpenHigh);  // momentum, betas
const CLI::Validator kEpochSpan = number_in_range(0, kMaxEpochs, Ends::kOpenLow);
const CLI::Validator kStepCount = integer_in_range(0, 1000000000);

}  // namespace

void add_train_command(CLI::App& app) {
  struct Options {
    TrainConfig c;
    std::string config_file;
    int threads = 0;
    bool no_bar = false, no_decay_bias_norm = false;
  };
  auto o = std::make_shared<Options>();
  TrainConfig& c = o->c;
  CLI::App* cmd = app.add_subcommand("train", "train a model");
  cmd->add_option("--config", o->config_file,
                  "read options from a TOML or INI file (keys: the long option names, at the "
                  "top or under [train]); the command line overrides it")
      ->configurable(false);
  cmd->add_option("--model", c.model, "zoo model name or model JSON file")->capture_default_str();
  cmd->add_option("--classes", c.classes, "output classes (zoo default: the data's)")
      ->check(kClassCount);
  cmd->add_option("--input", c.input, "input shape CxHxW (zoo default: the data's)");
  cmd->add_flag("--zero-init-residual", c.zero_init_residual,
                "zoo models: last BN gamma of each residual block starts at 0");
  add_data_options(*cmd, c.data, c.data_options);
  cmd->add_option("--val-data", c.val_data, "held-out data (default: the test split of --data)");
  cmd->add_option("--batch-size", c.batch_size,
                  "global batch: images per step over all ranks (under mpirun each rank "
                  "takes its share; see docs/distributed.md)")
      ->check(kBatchSize)->capture_default_str();
  cmd->add_option("--epochs", c.epochs, "epochs")
      ->check(integer_in_range(1, kMaxEpochs))->capture_default_str();
  cmd->add_option("--workers", c.workers, "data loader threads")
      ->check(integer_in_range(1, 256))->capture_default_str();
  cmd->add_option("--crop-padding", c.crop_padding,
                  "random crop padding in pixels (-1: auto, 0: off)")
      ->check(integer_in_range(-1, 256))->capture_default_str();
  cmd->add_option("--flip", c.flip, "random horizontal flip: auto | on | off")
      ->check(CLI::IsMember({"auto", "on", "off"}))->capture_default_str();
  cmd->add_option("--normalize", c.normalize,
                  "per-channel mean/std: auto (from the training set) | none")
      ->check(CLI::IsMember({"auto", "none"}))->capture_default_str();
  cmd->add_option("--mean", c.normalization.mean,
                  "per-channel means to subtract (0..255 units), instead of computing them")
      ->delimiter(',')->check(number_in_range(-1e6, 1e6));
  cmd->add_option("--std", c.normalization.std, "per-channel standard deviations, with --mean")
      ->delimiter(',')->check(number_in_range(0, 1e6, Ends::kOpenLow));
  cmd->add_option("--optimizer", c.optimizer.kind, "sgd | adam | adamw")
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}))->capture_default_str();
  cmd->add_option("--lr", c.schedule.base_lr, "base learning rate")
      ->check(kLearningRate)->capture_default_str();
  cmd->add_option("--momentum", c.optimizer.momentum, "SGD momentum")
      ->check(kFraction)->capture_default_str();
  cmd->add_flag("--nesterov", c.optimizer.nesterov, "SGD with Nesterov momentum");
  cmd->add_option("--weight-decay", c.optimizer.weight_decay, "weight decay")
      ->check(number_in_range(0, 1))->capture_default_str();
  cmd->add_flag("--no-decay-bias-norm", o->no_decay_bias_norm,
                "exempt biases and BN gamma/beta from weight decay");
  cmd->add_option("--beta1", c.optimizer.beta1, "Adam beta1")
      ->check(kFraction)->capture_default_str();
  cmd->add_option("--beta2", c.optimizer.beta2, "Adam beta2")
      ->check(kFraction)->capture_default_str();
  cmd->add_option("--adam-epsilon", c.optimizer.epsilon, "Adam epsilon")
      ->check(number_in_range(0, 1, Ends::kOpenLow))->capture_default_str();
  cmd->add_option("--lr-schedule", c.schedule.kind,
                  "constant | step | multistep | cosine | polynomial | onecycle")
      ->check(CLI::IsMember({"constant", "step", "multistep", "cosine", "polynomial", "onecycle"}))
      ->capture_default_str();
  cmd->add_option("--warmup-epochs", c.schedule.warmup_epochs,
                  "linear warm-up (epochs, fewer than --epochs)")
      ->check(number_in_range(0, kMaxEpochs))->capture_default_str();
  cmd->add_option("--lr-step-size", c.schedule.step_size, "step: epochs between decays")
      ->check(kEpochSpan)->capture_default_str();
  cmd->add_option("--lr-milestones", c.schedule.milestones, "multistep: epochs of the decays")
      ->delimiter(',')->check(kEpochSpan);
  cmd->add_option("--lr-gamma", c.schedule.gamma, "step/multistep decay factor")
      ->check(number_in_range(0, 1, Ends::kOpenLow))->capture_default_str();
  cmd->add_option("--lr-power", c.schedule.power, "polynomial power")
      ->check(number_in_range(0, 100, Ends::kOpenLow))->capture_default_str();
  cmd->add_option("--final-lr", c.schedule.final_lr, "cosine/polynomial final rate")
      ->check(number_in_range(0, 100))->capture_default_str();
  cmd->add_option("--lr-scaling", c.lr_scaling, "none | linear (lr x batch / 256)")
      ->check(CLI::IsMember({"none", "linear"}))->capture_default_str();
  cmd->add_option("--label-smoothing", c.label_smoothing, "label smoothing")
      ->check(kFraction)->capture_default_str();
  cmd->add_option("--clip-grad-norm", c.clip_grad_norm, "clip the global gradient norm (0: off)")
      ->check(number_in_range(0, 1e6))->capture_default_str();
  cmd->add_option("--seed", c.seed, "seed of every random stream")
      ->check(integer_in_range(0, INT64_MAX))->capture_default_str();
  cmd->add_option("--checkpoint-dir", c.checkpoint.dir, "write checkpoints into this directory");
  cmd->add_option("--checkpoint-every-epochs", c.checkpoint.every_epochs,
                  "epochs between checkpoints (0: only the last)")
      ->check(integer_in_range(0, kMaxEpochs))->capture_default_str();
  cmd->add_option("--checkpoint-every-steps", c.checkpoint.every_steps,
                  "steps between mid-epoch checkpoints (0: none)")
      ->check(kStepCount)->capture_default_str();
  cmd->add_option("--keep-last", c.checkpoint.keep_last, "regular checkpoints kept")
      ->check(integer_in_range(1, 1000))->capture_default_str();
  cmd->add_option("--best-metric", c.checkpoint.best_metric, "best.h5 tracks: val_top1 | val_loss")
      ->check(CLI::IsMember({"val_top1", "val_loss"}))->capture_default_str();
  cmd->add_option("--resume", c.resume, "continue the run of a checkpoint (file, or directory)");
  cmd->add_option("--init-from", c.init_from, "initialise weights from a checkpoint file");
  cmd->add_flag("--non-strict", c.non_strict, "--init-from: load what matches, list the rest");
  cmd->add_option("--metrics-file", c.metrics_file, "metrics file, .csv or .jsonl");
  cmd->add_flag("--metrics-timing", c.metrics_timing,
                "add images_per_s and seconds columns (they vary from run to run)");
  cmd->add_option("--log-every", c.log_every, "steps between log lines and step rows (0: off)")
      ->check(kStepCount)->capture_default_str();
  cmd->add_flag("--no-progress", o->no_bar, "no live progress bar on a terminal");
  add_distributed_options(*cmd, c);
  add_device_option(*cmd, c.device);
  add_precision_option(*cmd, c.precision);
  add_threads_option(*cmd, o->threads);
  cmd->callback([o, cmd] {
    if (!o->config_file.empty()) apply_config_file(*cmd, o->config_file);
    // First: a device this process cannot use is one line before anything is made
    // (check_train_config creates the checkpoint directory).
    resolve_device(o->c.device);
    resolve_precision(o->c.precision, o->c.device);
    check_train_config(o->c);
    apply_threads(o->threads);
    o->c.progress_bar = !o->no_bar;
    o->c.optimizer.decay_bias_and_norm = !o->no_decay_bias_norm;
    // Under mpirun every rank runs this; rank 0 alone prints (rank0_out).
    Communicator& world = world_communicator();
    install_stop_handlers();
    std::unique_ptr<Checkpoint> resumed = resumed_run(*cmd, o->c);
    rank0_out() << "# residual train configuration\n" << cmd->config_to_str(true, false) << std::flush;
    Trainer trainer(o->c, rank0_out(), std::move(resumed), world);
    trainer.run();
    if (const int signal = trainer.stopped_by()) {
      rank0_out() << "stopped by " << (signal == SIGINT ? "SIGINT" : "SIGTERM") << " after a complete step; "
                  << (trainer.checkpoint_dir().empty()
                          ? std::string("no --checkpoint-dir was given, so there is nothing to resume")
                          : "resume with: residual train --resume " + trainer.checkpoint_dir())
                  << "\n" << std::flush;
      throw ExitRequest{128 + signal};
    }
  });
}

}  // namespace residual
