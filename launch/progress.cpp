#include "launch/progress.h"

#include <unistd.h>

#include <cstdio>

namespace residual {

bool stdout_is_terminal() { return isatty(STDOUT_FILENO) == 1; }

std::string format_duration(double seconds) {
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%ld:%02ld", s / 60, s % 60);
  }
  return buf;
}

Progress::Progress(std::ostream& out, bool terminal, int64_t log_every)
    : out_(out), terminal_(terminal), log_every_(log_every) {}

void Progress::start_epoch(int64_t epoch, int64_t epochs, int64_t steps) {
  epoch_ = epoch;
  epochs_ = epochs;
  steps_ = steps;
  images_ = 0;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

void Progress::step(int64_t done, int64_t images, double loss, double lr) {
  images_ += images;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? images_ / elapsed : 0;
  const double eta = done > 0 ? elapsed * (steps_ - done) / done : 0;
  char line[160];
  if (terminal_) {
    // Redraw at most ten times a second, and always on the last step.
    if (done < steps_ && std::chrono::duration<double>(now - last_draw_).count() < 0.1) return;
    last_draw_ = now;
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(kWidth * done / std::max<int64_t>(steps_, 1));
    std::string bar(filled, '#');
    bar.resize(kWidth, '.');
    std::snprintf(line, sizeof(line), "\repoch %ld/%ld [%s] %ld/%ld %.0f img/s loss %.4f ETA %s ",
                  static_cast<long>(epoch_ + 1), static_cast<long>(epochs_), bar.c_str(),
                  static_cast<long>(done), static_cast<long>(steps_), rate, loss,
                  format_duration(eta).c_str());
    out_ << line << std::flush;
  } else if (log_every_ > 0 && (done % log_every_ == 0 || done == steps_)) {
    std::snprintf(line, sizeof(line), "epoch %ld step %ld/%ld loss %.4f lr %.5g %.0f img/s ETA %s",
                  static_cast<long>(epoch_ + 1), static_cast<long>(done),
                  static_cast<long>(steps_), loss, lr, rate, format_duration(eta).c_str());
    out_ << line << "\n" << std::flush;
  }
}

void Progress::end_epoch() {
  if (terminal_) out_ << "\r" << std::string(100, ' ') << "\r" << std::flush;
}

}  // namespace residual
