#pragma once
// Validators with readable messages: CLI11 2.1's PositiveNumber prints its range bound
// as a 300-digit number.
#include <cmath>
#include <string>

#include <CLI/CLI.hpp>

namespace residual {

inline CLI::Validator number_at_least(double low, const std::string& what) {
  return CLI::Validator(
      [low, what](std::string& value) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(value.c_str(), &end);
        if (value.empty() || *end != '\0' || !std::isfinite(v) || v < low) {
          return "'" + value + "' is not " + what;
        }
        return "";
      },
      what);
}

inline const CLI::Validator kPositive = number_at_least(1e-300, "a positive number");
inline const CLI::Validator kNonNegative = number_at_least(0, "a number >= 0");

}  // namespace residual
