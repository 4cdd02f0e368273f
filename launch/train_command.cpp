// `residual train`: every option is also settable from a config file (--config FILE,
// TOML or INI, keys named as the long options); the effective configuration is echoed
// at start.
#include <iostream>

#include "launch/commands.h"
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
  command.add_option("--hdf5-layout", options.hdf5_layout, "HDF5 image layout: nhwc | nchw")
      ->check(CLI::IsMember({"nhwc", "nchw"}))
      ->capture_default_str();
}

void add_train_command(CLI::App& app) {
  struct Options {
    TrainConfig c;
    int threads = 0;
    bool no_bar = false, no_decay_bias_norm = false;
  };
  auto o = std::make_shared<Options>();
  TrainConfig& c = o->c;
  CLI::App* cmd = app.add_subcommand("train", "train a model");
  cmd->set_config("--config", "", "read options from a TOML or INI file");
  cmd->add_option("--model", c.model, "zoo model name or model JSON file")->capture_default_str();
  cmd->add_option("--classes", c.classes, "output classes (zoo default: the data's)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--input", c.input, "input shape CxHxW (zoo default: the data's)");
  cmd->add_flag("--zero-init-residual", c.zero_init_residual,
                "zoo models: last BN gamma of each residual block starts at 0");
  add_data_options(*cmd, c.data, c.data_options);
  cmd->add_option("--val-data", c.val_data, "held-out data (default: the test split of --data)");
  cmd->add_option("--batch-size", c.batch_size, "images per step")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--epochs", c.epochs, "epochs")->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--workers", c.workers, "data loader threads")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--crop-padding", c.crop_padding,
                  "random crop padding in pixels (-1: auto, 0: off)")->capture_default_str();
  cmd->add_option("--flip", c.flip, "random horizontal flip: auto | on | off")
      ->check(CLI::IsMember({"auto", "on", "off"}))->capture_default_str();
  cmd->add_option("--normalize", c.normalize,
                  "per-channel mean/std: auto (from the training set) | none")
      ->check(CLI::IsMember({"auto", "none"}))->capture_default_str();
  cmd->add_option("--optimizer", c.optimizer.kind, "sgd | adam | adamw")
      ->check(CLI::IsMember({"sgd", "adam", "adamw"}))->capture_default_str();
  cmd->add_option("--lr", c.schedule.base_lr, "base learning rate")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--momentum", c.optimizer.momentum, "SGD momentum")->capture_default_str();
  cmd->add_flag("--nesterov", c.optimizer.nesterov, "SGD with Nesterov momentum");
  cmd->add_option("--weight-decay", c.optimizer.weight_decay, "weight decay")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_flag("--no-decay-bias-norm", o->no_decay_bias_norm,
                "exempt biases and BN gamma/beta from weight decay");
  cmd->add_option("--beta1", c.optimizer.beta1, "Adam beta1")->capture_default_str();
  cmd->add_option("--beta2", c.optimizer.beta2, "Adam beta2")->capture_default_str();
  cmd->add_option("--adam-epsilon", c.optimizer.epsilon, "Adam epsilon")->capture_default_str();
  cmd->add_option("--lr-schedule", c.schedule.kind,
                  "constant | step | multistep | cosine | polynomial | onecycle")
      ->check(CLI::IsMember({"constant", "step", "multistep", "cosine", "polynomial", "onecycle"}))
      ->capture_default_str();
  cmd->add_option("--warmup-epochs", c.schedule.warmup_epochs, "linear warm-up (epochs)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--lr-step-size", c.schedule.step_size, "step: epochs between decays")
      ->capture_default_str();
  cmd->add_option("--lr-milestones", c.schedule.milestones, "multistep: epochs of the decays")
      ->delimiter(',');
  cmd->add_option("--lr-gamma", c.schedule.gamma, "step/multistep decay factor")
      ->capture_default_str();
  cmd->add_option("--lr-power", c.schedule.power, "polynomial power")->capture_default_str();
  cmd->add_option("--final-lr", c.schedule.final_lr, "cosine/polynomial final rate")
      ->capture_default_str();
  cmd->add_option("--lr-scaling", c.lr_scaling, "none | linear (lr x batch / 256)")
      ->check(CLI::IsMember({"none", "linear"}))->capture_default_str();
  cmd->add_option("--label-smoothing", c.label_smoothing, "label smoothing")
      ->capture_default_str();
  cmd->add_option("--clip-grad-norm", c.clip_grad_norm, "clip the global gradient norm (0: off)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--seed", c.seed, "seed of every random stream")->capture_default_str();
  cmd->add_option("--metrics-file", c.metrics_file, "metrics file, .csv or .jsonl");
  cmd->add_option("--log-every", c.log_every, "steps between log lines and step rows (0: off)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_flag("--no-progress", o->no_bar, "no live progress bar on a terminal");
  add_threads_option(*cmd, o->threads);
  cmd->callback([o, cmd] {
    apply_threads(o->threads);
    o->c.progress_bar = !o->no_bar;
    o->c.optimizer.decay_bias_and_norm = !o->no_decay_bias_norm;
    std::cout << "# residual train configuration\n" << cmd->config_to_str(true, false) << std::flush;
    Trainer trainer(o->c, std::cout);
    trainer.run();
  });
}

}  // namespace residual
