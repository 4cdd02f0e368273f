#pragma once
// Validators with readable messages that name the range an option means something in
// ("'5' is not a number in [0, 1)"): CLI11 2.1's own print a bound as a 300-digit number.
// They run on values from the command line and from a --config file alike, before any
// work starts (a --threads of 100000 used to reach OpenMP and crash there).
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace residual {

// Whether each end of a range belongs to it.
enum class Ends { kClosed, kOpenLow, kOpenHigh, kOpen };

namespace detail {

inline std::string format_bound(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.10g", v);
  return text;
}

inline std::string range_text(double low, double high, Ends ends) {
  const bool open_low = ends == Ends::kOpenLow || ends == Ends::kOpen;
  const bool open_high = ends == Ends::kOpenHigh || ends == Ends::kOpen;
  return std::string(open_low ? "(" : "[") + format_bound(low) + ", " + format_bound(high) +
         (open_high ? ")" : "]");
}

}  // namespace detail

// A finite number in the range; "inf", "nan" and "1e400" are not numbers here.
inline CLI::Validator number_in_range(double low, double high, Ends ends = Ends::kClosed) {
  const std::string range = detail::range_text(low, high, ends);
  return CLI::Validator(
      [=](std::string& value) -> std::string {
        char* end = nullptr;
        errno = 0;
        const double v = std::strtod(value.c_str(), &end);
        const bool open_low = ends == Ends::kOpenLow || ends == Ends::kOpen;
        const bool open_high = ends == Ends::kOpenHigh || ends == Ends::kOpen;
        const bool ok = !value.empty() && *end == '\0' && errno != ERANGE && std::isfinite(v) &&
                        (open_low ? v > low : v >= low) && (open_high ? v < high : v <= high);
        return ok ? "" : "'" + value + "' is not a number in " + range;
      },
      "in " + range);
}

// A decimal integer in [low, high]: "2.5", "1e3" and out-of-int64 values are refused, not
// rounded or saturated.
inline CLI::Validator integer_in_range(int64_t low, int64_t high) {
  const std::string range = "[" + std::to_string(low) + ", " + std::to_string(high) + "]";
  return CLI::Validator(
      [=](std::string& value) -> std::string {
        char* end = nullptr;
        errno = 0;
        const long long v = std::strtoll(value.c_str(), &end, 10);
        const bool ok = !value.empty() && *end == '\0' && errno != ERANGE && v >= low && v <= high;
        return ok ? "" : "'" + value + "' is not an integer in " + range;
      },
      "in " + range);
}

// Ranges shared by several commands.
constexpr int64_t kMaxThreads = 1024;
constexpr int64_t kMaxBatchSize = 65536;
constexpr int64_t kMaxClasses = 100000;
inline const CLI::Validator kThreadCount = integer_in_range(1, kMaxThreads);
inline const CLI::Validator kBatchSize = integer_in_range(1, kMaxBatchSize);
inline const CLI::Validator kClassCount = integer_in_range(1, kMaxClasses);

}  // namespace residual
