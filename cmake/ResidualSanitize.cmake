# RESIDUAL_SANITIZE=ON: every target of this build directory (libraries, the CLI, the
# tests) is compiled and linked with AddressSanitizer (which brings LeakSanitizer) and
# UndefinedBehaviorSanitizer; a UB finding stops the program like an ASan one does.
# Third-party libraries (oneDNN, libhdf5, libgomp, OpenMPI) are not instrumented, but
# ASan still sees their heap through malloc/free. scripts/sanitize builds build-asan/ with
# it and runs the whole test suite with ASAN_OPTIONS/UBSAN_OPTIONS that fail on any report.
# CUDA is switched off (cmake/ResidualCuda.cmake): the CUDA runtime and ASan's shadow
# memory do not mix, and no device code is instrumented anyway.
if(NOT RESIDUAL_SANITIZE)
  return()
endif()
if(RESIDUAL_FUZZ)
  message(FATAL_ERROR "RESIDUAL_SANITIZE=ON and RESIDUAL_FUZZ=ON: the fuzz build adds its own "
                      "sanitizers; use separate build directories (scripts/fuzz, scripts/sanitize)")
endif()
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  message(FATAL_ERROR "RESIDUAL_SANITIZE=ON needs GCC or clang, not ${CMAKE_CXX_COMPILER_ID}")
endif()
# float-cast-overflow (a float converted to an integer type that cannot hold it) is
# undefined behaviour that GCC's "undefined" group leaves out; clang's includes it.
set(RESIDUAL_SANITIZERS address,undefined,float-cast-overflow)
set(RESIDUAL_SANITIZER_FLAGS -fsanitize=${RESIDUAL_SANITIZERS} -fno-sanitize-recover=all
                             -fno-omit-frame-pointer)
add_compile_options("$<$<COMPILE_LANGUAGE:C,CXX>:${RESIDUAL_SANITIZER_FLAGS}>")
add_link_options(-fsanitize=${RESIDUAL_SANITIZERS})
message(STATUS "residual: AddressSanitizer + UndefinedBehaviorSanitizer ON (${CMAKE_BUILD_TYPE})")
