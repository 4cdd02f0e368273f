#include "launch/option_checks.h"

#include "core/error.h"
#include "core/image_limits.h"
#include "core/model_spec.h"
#include "launch/path_checks.h"

namespace residual {

std::vector<int64_t> parse_input_shape(const std::string& text) {
  const std::vector<int64_t> hwc = parse_chw(text);
  check_image_dims({hwc[2], hwc[0], hwc[1]}, "--input '" + text + "'");
  return hwc;
}

void check_train_config(const TrainConfig& c) {
  check_model_argument(c.model);
  check_checkpoint_argument(c.resume);
  if (!c.input.empty()) parse_input_shape(c.input);
  RESIDUAL_CHECK(
      c.schedule.warmup_epochs < static_cast<double>(c.epochs) || c.schedule.warmup_epochs == 0,
      "--warmup-epochs ", c.schedule.warmup_epochs, " must be less than --epochs ", c.epochs,
      ": the warm-up has to end before the run does");
  if (!c.metrics_file.empty()) check_output_file(c.metrics_file, "--metrics-file", true);
  if (!c.checkpoint.dir.empty()) check_output_dir(c.checkpoint.dir, "--checkpoint-dir");
}

}  // namespace residual
