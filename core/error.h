#pragma once
// Errors are exceptions whose message names what is wrong and where (file, layer,
// option); the CLI prints the message as one line and exits non-zero.
#include <sstream>
#include <stdexcept>
#include <string>

namespace residual {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}

template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(str_cat(args...));
}

}  // namespace residual

// Checks an invariant that bad input can break; the message is built only on failure.
#define RESIDUAL_CHECK(cond, ...)        \
  do {                                   \
    if (!(cond)) ::residual::fail(__VA_ARGS__); \
  } while (0)
