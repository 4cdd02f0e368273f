#pragma once
// Small helpers shared by the core tests: error messages and source-tree paths.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/layer_registry.h"

namespace residual::test {

// The message of the residual::Error that `body` throws; a test failure (and "") if it
// throws nothing. Another exception type escapes and fails the test with its own message.
template <typename Body>
std::string error_of(Body body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no residual::Error thrown";
  return "";
}

// EXPECT_TRUE(has(message, "...")) prints the whole message when the part is missing.
inline ::testing::AssertionResult has(const std::string& message, const std::string& part) {
  if (message.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << part << "' is missing from: " << message;
}

// The built-in layers, made once per test process.
inline const LayerRegistry& builtin_registry() {
  static const LayerRegistry registry = LayerRegistry::with_builtins();
  return registry;
}

// The repository root: CTest sets RESIDUAL_SOURCE_DIR; by hand, the build's own source
// directory is the fallback.
inline std::string source_dir() {
  if (const char* dir = std::getenv("RESIDUAL_SOURCE_DIR")) return dir;
  return RESIDUAL_TEST_SOURCE_DIR;
}

}  // namespace residual::test
