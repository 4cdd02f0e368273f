#pragma once
// Progress of an epoch: on a terminal a live bar (step, images/s, loss, ETA) redrawn in
// place; otherwise plain log lines every `log_every` steps (0: none).
#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>

namespace residual {

class Progress {
 public:
  Progress(std::ostream& out, bool terminal, int64_t log_every);
  void start_epoch(int64_t epoch, int64_t epochs, int64_t steps);
  void step(int64_t done, int64_t images, double loss, double lr);
  void end_epoch();

 private:
  std::ostream& out_;
  bool terminal_;
  int64_t log_every_, epoch_ = 0, epochs_ = 0, steps_ = 0, images_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// True when standard output is an interactive terminal.
bool stdout_is_terminal();
// 75 -> "1:15"
std::string format_duration(double seconds);

}  // namespace residual
