#include "launch/trainer.h"

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>

#include "core/error.h"
#include "core/hash.h"
#include "core/model_spec.h"
#include "core/model_summary.h"
#include "core/zoo/zoo.h"
#include "distributed/consistency.h"
#include "distributed/job.h"
#include "distributed/sync_batch_norm.h"
#include "io/metrics_writer.h"
#include "launch/device_option.h"
#include "launch/precision_option.h"
#include "launch/evaluation.h"
#include "launch/model_state.h"
#include "launch/progress.h"
#include "ops/ops.h"

namespace residual {
namespace {

using Clock = std::chrono::steady_clock;


// Zoo models adapt to the data (its image shape and classes) unless told otherwise;
// a model file must already match it.
nlohmann::json model_spec_for(const TrainConfig& c, const Dataset& data) {
  SpecOverrides o;
  o.classes = c.classes;
  o.zero_init_residual = c.zero_init_residual;
  if (!c.input.empty()) o.input_hwc = parse_chw(c.input);
  if (is_zoo_model(c.model)) {
    if (o.input_hwc.empty()) o.input_hwc = data.sample_shape().dims();
    if (o.classes == 0 && data.num_classes() > 2) o.classes = data.num_classes();
  }
  return resolve_model_spec(c.model, o);
}

AugmentConfig augment_for(const TrainConfig& c, const Dataset& data) {
  const Shape s = data.sample_shape();
  const bool digits = c.data.rfind("mnist:", 0) == 0;
  AugmentConfig a;
  a.seed = c.seed;
  // Defaults: CIFAR-style crop (pad 4 for 32x32, ~1/8 of the side) and flips for natural
  // images; a small shift and no flip for digits (a flipped 2 is not a 2).
  a.crop_padding = c.crop_padding >= 0 ? c.crop_padding : (digits ? 2 : std::max<int64_t>(s[0] / 8, 0));
  RESIDUAL_CHECK(c.flip == "auto" || c.flip == "on" || c.flip == "off",
                 "--flip must be auto, on or off");
  a.horizontal_flip = c.flip == "on" || (c.flip == "auto" && !digits);
  return a;
}

}  // namespace

Trainer::Trainer(const TrainConfig& config, std::ostream& out,
                 std::unique_ptr<Checkpoint> resumed, Communicator& world)
    : config_(config), out_(out), world_(world), device_(resolve_device(config.device)),
      precision_(resolve_precision(config.precision, config.device)) {
  // A resumed run continues the saved one: the caller (the train command) has read the
  // checkpoint and merged its configuration; its model and state are restored here.
  // Everything is built and restored on the host, then moved to the device at once.
  RESIDUAL_CHECK(config_.epochs > 0, "--epochs must be positive");
  RESIDUAL_CHECK(config_.label_smoothing >= 0 && config_.label_smoothing < 1,
                 "--label-smoothing must be in [0, 1)");
  RESIDUAL_CHECK(config_.lr_scaling == "none" || config_.lr_scaling == "linear",
                 "--lr-scaling must be none or linear");
  train_data_ = open_dataset(config_.data, Split::kTrain, config_.data_options);
  val_data_ = config_.val_data.empty()
                  ? open_dataset(config_.data, Split::kTest, config_.data_options)
                  : open_dataset(config_.val_data, Split::kTest, config_.data_options);
  RESIDUAL_CHECK(val_data_->sample_shape() == train_data_->sample_shape(), "held-out data ",
                 val_data_->description(), " has images of ", val_data_->sample_shape().str(),
                 " but the training data ", train_data_->sample_shape().str());
  model_ = std::make_unique<Model>(resumed ? resumed->model : model_spec_for(config_, *train_data_),
                                   LayerRegistry::with_builtins());
  RESIDUAL_CHECK(model_->input_shape() == train_data_->sample_shape(), "model '",
                 model_->name(), "' takes images of ", model_->input_shape().str(), " but ",
                 train_data_->description(), " has images of ", train_data_->sample_shape().str());
  const int64_t outputs = model_->classifier_outputs();
  check_labels_fit(outputs, train_data_->num_classes(), train_data_->description());
  check_labels_fit(outputs, val_data_->num_classes(), val_data_->description());
  binary_ = outputs == 1;
  model_->initialize(config_.seed);

  LoaderConfig lc;
  lc.batch_size = config_.batch_size;  // global: the loader gives this rank its share
  lc.rank = world_.rank();
  lc.world_size = world_.size();
  lc.seed = config_.seed;
  lc.workers = config_.workers;
  RESIDUAL_CHECK(config_.normalization.mean.size() == config_.normalization.std.size(),
                 "--mean and --std need one value per channel each");
  if (!config_.normalization.mean.empty()) {
    const size_t channels = static_cast<size_t>(train_data_->sample_shape()[2]);
    RESIDUAL_CHECK(config_.normalization.mean.size() == channels, "--mean/--std give ",
                   config_.normalization.mean.size(), " values for images of ", channels,
                   " channel(s)");
    for (float s : config_.normalization.std) RESIDUAL_CHECK(s > 0, "--std values must be > 0");
  }
  if (config_.normalize == "auto") {
    // A resumed run (or an evaluation) must normalise exactly as the run began.
    if (config_.normalization.mean.empty()) config_.normalization = compute_normalization(*train_data_);
    lc.normalization = config_.normalization;
  } else {
    RESIDUAL_CHECK(config_.normalize == "none", "--normalize must be auto or none");
  }
  LoaderConfig eval_lc = lc;
  eval_lc.shuffle = false;
  eval_lc.drop_last = false;
  lc.augment = augment_for(config_, *train_data_);
  train_loader_ = std::make_unique<DataLoader>(*train_data_, lc);
  val_loader_ = std::make_unique<DataLoader>(*val_data_, eval_lc);

  params_ = model_->trainable_parameters();
  for (Parameter* p : model_->parameters()) {
    if (!p->trainable) buffers_.push_back(p);
  }
  optimizer_ = make_optimizer(params_, config_.optimizer);
  schedule_ = config_.schedule;
  if (config_.lr_scaling == "linear") schedule_.base_lr *= config_.batch_size / 256.0;
  schedule_.total_epochs = static_cast<double>(config_.epochs);
  validate(schedule_);
  if (!config_.init_from.empty()) {
    RESIDUAL_CHECK(!resumed, "--init-from and --resume exclude each other");
    load_weights(*model_, read_checkpoint(config_.init_from), !config_.non_strict, out_,
                 config_.init_from);
  }
  if (resumed) restore(*resumed);
  check_ranks_agree_at_start();
  // One replica: whatever each rank initialised or read, rank 0's weights win.
  broadcast_parameters(world_, model_->parameters());
  // Before the TrainStep: its reducer lays the gradients out on their device.
  model_->to(device_);
  optimizer_->to(device_);
  world_.set_timeout(std::chrono::milliseconds(static_cast<int64_t>(config_.comm_timeout_s * 1000)));
  if (config_.sync_bn) {
    bn_group_ = make_batch_norm_group(world_, config_.sync_bn_group_size);
    sync_bn_ = std::make_unique<CommunicatorReplicaSum>(*bn_group_);
  }
  TrainStepConfig sc;
  sc.label_smoothing = config_.label_smoothing;
  sc.clip_grad_norm = config_.clip_grad_norm;
  sc.accumulate = config_.accumulate;
  sc.reducer.bucket_cap_bytes = static_cast<int64_t>(config_.bucket_cap_mb * (1 << 20));
  // Gradients are summed where they are: over `world` on the CPU, through NCCL on GPUs
  // (gradient_communicator is a collective made once, over the job's world communicator,
  // which under the CLI is `world`).
  Communicator& gradients = device_.is_cpu() ? world_ : gradient_communicator(device_);
  step_ = std::make_unique<TrainStep>(*model_, *optimizer_, gradients, sync_bn_.get(), sc);
  for (const std::string& layer : model_->layers_not_reaching_output()) {
    out_ << "warning: layer '" << layer << "' does not reach the model's output: its "
         << "parameters always get zero gradients\n";
  }
  const bool rank0 = world_.rank() == 0;
  if (!config_.checkpoint.dir.empty() && rank0) {
    store_ = std::make_unique<CheckpointStore>(config_.checkpoint);
  }
  if (!config_.metrics_file.empty() && rank0) {
    // Rewritten from the history a resume restored, so rows written after the last
    // checkpoint by the interrupted run do not appear twice.
    metrics_ = std::make_unique<MetricsWriter>(config_.metrics_file, false);
    for (const EpochRecord& r : history_) write_metrics(r, "epoch");
  }
  show_bar_ = config_.progress_bar && stdout_is_terminal();
  out_ << "model " << model_->name() << ": " << with_commas(count_parameters(*model_).trainable)
       << " trainable parameters, input " << model_->input_shape().str() << ", " << outputs
       << " outputs\n"
       << "train " << train_data_->description() << ", global batch " << config_.batch_size
       << " over " << world_.size() << (world_.size() == 1 ? " rank" : " ranks")
       << (config_.sync_bn ? ", synchronized batch norm" : "")
       << (device_.is_cpu() ? std::string()
                            : ", on " + (world_.size() == 1 ? device_.str() : "one GPU per rank"))
       << "\n"
       << "eval  " << val_data_->description() << "\n";
}

Trainer::~Trainer() = default;

void Trainer::run() {
  for (int64_t epoch = static_cast<int64_t>(history_.size()); epoch < config_.epochs; ++epoch) {
    EpochRecord r;
    r.epoch = epoch + 1;
    const auto start = Clock::now();
    if (!train_epoch(epoch, r)) {
      save_checkpoint(batch_in_epoch_);  // a stop signal: the step is done, save and leave
      return;
    }
    check_parameters_identical(world_, params_, ("after epoch " + std::to_string(epoch + 1)).c_str());
    average_running_statistics();
    world_.set_phase("held-out evaluation after epoch " + std::to_string(epoch + 1));
    const EvalResult e = evaluate_all_ranks();
    r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    r.val_loss = e.loss;
    r.val_top1 = e.top1;
    r.val_top5 = e.top5;
    r.step = global_step_;
    history_.push_back(r);
    char line[256];
    std::snprintf(line, sizeof(line),
                  "epoch %ld/%ld  train loss %.4f acc %.4f | held-out loss %.4f top1 %.4f%s | "
                  "%.0f img/s  lr %.5g  %.1f s",
                  static_cast<long>(r.epoch), static_cast<long>(config_.epochs), r.train_loss,
                  r.train_top1, r.val_loss, r.val_top1,
                  model_->output_shape()[0] >= 100
                      ? (" top5 " + std::to_string(r.val_top5).substr(0, 6)).c_str()
                      : "",
                  r.images_per_s, r.lr, r.seconds);
    out_ << line << "\n" << std::flush;
    const double value = config_.checkpoint.best_metric == "val_loss" ? -r.val_loss : r.val_top1;
    if (best_epoch_ == 0 || value > best_value_) {
      best_value_ = value;
      best_epoch_ = r.epoch;
    }
    write_metrics(r, "epoch");
    const bool last = r.epoch == config_.epochs;
    if (!config_.checkpoint.dir.empty() &&
        (last || (config_.checkpoint.every_epochs > 0 && r.epoch % config_.checkpoint.every_epochs == 0))) {
      save_checkpoint(0);
    }
  }
}

bool Trainer::train_epoch(int64_t epoch, EpochRecord& record) {
  const int64_t steps = train_loader_->batches_per_epoch();
  Progress progress(out_, show_bar_, show_bar_ ? 0 : config_.log_every);
  progress.start_epoch(epoch, config_.epochs, steps);
  // batch_in_epoch_ > 0 only on the first epoch of a run resumed mid-epoch.
  train_loader_->start_epoch(static_cast<uint64_t>(epoch), batch_in_epoch_);
  PassContext ctx;
  ctx.training = true;
  ctx.seed = config_.seed;
  ctx.precision = precision_;
  double& loss_sum = loss_sum_in_epoch_;
  int64_t& correct = correct_in_epoch_;
  int64_t& samples = samples_in_epoch_;
  int64_t& done = batch_in_epoch_;
  const auto epoch_start = Clock::now();
  while (const Batch* batch = train_loader_->next()) {
    const double progress_epochs = epoch + static_cast<double>(done) / steps;
    const double lr = learning_rate(schedule_, progress_epochs, 1.0 / steps);
    ctx.step = static_cast<uint64_t>(global_step_);
    world_.set_phase("step " + std::to_string(global_step_ + 1) + " (epoch " + std::to_string(epoch + 1) +
                     ", batch " + std::to_string(done + 1) + ")");
    const StepResult result = step_->run(batch->images, batch->labels, batch->global_size,
                                         batch->first_sample, static_cast<float>(lr), ctx);
    const double before = loss_sum;
    const bool stop = synchronize_step(result);
    const double step_loss = (loss_sum - before) / static_cast<double>(batch->global_size);
    if (!std::isfinite(step_loss)) {
      throw JobWideError("the loss became " + std::to_string(step_loss) + " at step " +
                         std::to_string(global_step_ + 1) + " (epoch " + std::to_string(epoch + 1) +
                         ", batch " + std::to_string(done + 1) + "): training stopped");
    }
    ++done;
    ++global_step_;
    record.lr = last_lr_ = lr;
    progress.step(done, batch->global_size, loss_sum / samples, lr);
    if (stop) {
      progress.end_epoch();
      return false;
    }
    if (config_.checkpoint.every_steps > 0 &&
        global_step_ % config_.checkpoint.every_steps == 0 && done < steps) {
      save_checkpoint(done);
    }
    if (config_.log_every > 0 && done % config_.log_every == 0 && metrics_) {
      EpochRecord s;
      s.epoch = epoch + 1;
      s.step = global_step_;
      s.lr = lr;
      s.train_loss = loss_sum / samples;
      s.train_top1 = static_cast<double>(correct) / samples;
      s.val_loss = s.val_top1 = s.val_top5 = std::nan("");
      write_metrics(s, "step");
    }
  }
  progress.end_epoch();
  record.train_loss = loss_sum / samples;
  record.train_top1 = static_cast<double>(correct) / samples;
  // Wall time of the loop, waits for data included: the rate a user actually gets.
  const double seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
  record.images_per_s = seconds > 0 ? samples / seconds : 0;
  loss_sum = 0;
  correct = samples = done = 0;
  return true;
}

bool Trainer::synchronize_step(const StepResult& step) {
  const uint32_t fingerprint = world_.log().take_fingerprint();
  const double f = fingerprint;
  double sums[6] = {step.loss_sum, static_cast<double>(step.correct), static_cast<double>(step.samples),
                    stop_signal() != 0 ? 1.0 : 0.0, f, f * f};
  world_.all_reduce(sums, 6, "step statistics");
  const double k = world_.size();
  if (sums[4] != k * f || sums[5] != k * f * f) {
    // Exact: 20-bit fingerprints, squares and sums over < 2^12 ranks fit a double.
    end_job("rank " + std::to_string(world_.rank()) + ": the ranks issued different collectives in " +
                world_.phase() + "; this rank's last collectives: " + world_.log().history(),
            1);
  }
  loss_sum_in_epoch_ += sums[0];
  correct_in_epoch_ += static_cast<int64_t>(sums[1]);
  samples_in_epoch_ += static_cast<int64_t>(sums[2]);
  if (sums[3] > 0 && stopped_by_ == 0) stopped_by_ = stop_signal() != 0 ? stop_signal() : SIGTERM;
  return sums[3] > 0;
}

EvalResult Trainer::evaluate_all_ranks() {
  EvalResult local = evaluate(*model_, *val_loader_, precision_);
  // Each rank saw its share of every held-out batch, once: the sums are the whole set.
  double sums[4] = {local.loss * local.samples, local.top1 * local.samples, local.top5 * local.samples,
                    static_cast<double>(local.samples)};
  world_.all_reduce(sums, 4, "held-out statistics");
  EvalResult all;
  all.samples = static_cast<int64_t>(sums[3]);
  if (all.samples > 0) {
    all.loss = sums[0] / sums[3];
    all.top1 = sums[1] / sums[3];
    all.top5 = sums[2] / sums[3];
  }
  return all;
}

void Trainer::average_running_statistics() {
  // With --sync-bn every rank already holds the same (global) statistics.
  if (!config_.sync_bn) average_across_ranks(world_, buffers_);
}

void Trainer::check_ranks_agree_at_start() {
  nlohmann::json facts = to_json(config_);
  facts.erase("workers");  // how each rank reads its data may differ
  // Each rank's GPU index is its own, but not the kind of device: the gradients of CPU
  // ranks go through MPI and those of GPU ranks through NCCL, which would never meet.
  facts["device_type"] = device_.is_cpu() ? "cpu" : "cuda";
  facts["model_hash"] = std::to_string(fnv1a(model_->to_json().dump()));
  facts["train_samples"] = train_data_->size();
  facts["held_out_samples"] = val_data_->size();
  facts["resumed_step"] = global_step_;
  check_ranks_agree(world_, facts);
}

void Trainer::write_metrics(const EpochRecord& r, const char* kind) {
  if (!metrics_) return;
  const bool epoch_row = std::string(kind) == "epoch";
  std::vector<std::pair<std::string, double>> row{{"epoch", static_cast<double>(r.epoch)},
                   {"step", static_cast<double>(r.step)},
                   {"lr", r.lr},
                   {"train_loss", r.train_loss},
                   {"train_top1", r.train_top1},
                   {"val_loss", r.val_loss},
                   {"val_top1", r.val_top1},
                   {"val_top5", r.val_top5}};
  // Timings differ from run to run: only on request, so that the same seed and threads
  // give a bit-identical metrics file.
  if (config_.metrics_timing) {
    row.emplace_back("images_per_s", epoch_row ? r.images_per_s : std::nan(""));
    row.emplace_back("seconds", epoch_row ? r.seconds : std::nan(""));
  }
  metrics_->write(row);
}

}  // namespace residual

