#pragma once
#include <string>
#include <vector>

namespace residual {

// The learning rate as a function of training progress in epochs (fractional: the
// schedule moves every step). Optional linear warm-up from 0 over `warmup_epochs`.
struct LrScheduleConfig {
  std::string kind = "cosine";  // constant | step | multistep | cosine | polynomial | onecycle
  double base_lr = 0.1;
  double warmup_epochs = 0;
  double total_epochs = 1;        // cosine, polynomial, onecycle
  double step_size = 30;          // step: decay every step_size epochs
  std::vector<double> milestones; // multistep: decay at these epochs
  double gamma = 0.1;             // step, multistep: decay factor
  double power = 1.0;             // polynomial
  double final_lr = 0.0;          // cosine, polynomial: the value at total_epochs
  double onecycle_pct_start = 0.3, onecycle_div_factor = 25, onecycle_final_div_factor = 1e4;
};

// Checks the config; a bad kind or value is an Error naming the option.
void validate(const LrScheduleConfig& config);
// `epoch` is the progress at the start of the step; `step_epochs` the length of one
// step in epochs (warm-up then reaches base_lr at the end of its last step, not after).
double learning_rate(const LrScheduleConfig& config, double epoch, double step_epochs = 0);

}  // namespace residual
