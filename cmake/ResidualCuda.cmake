# CUDA is optional: where a toolkit is found (every machine here has one at
# /usr/local/cuda) the CUDA backend is compiled; elsewhere a CPU-only build.
set(RESIDUAL_HAVE_CUDA OFF)
if(NOT RESIDUAL_ENABLE_CUDA)
  message(STATUS "residual: CUDA backend OFF: RESIDUAL_ENABLE_CUDA=OFF")
elseif(RESIDUAL_SANITIZE)
  message(STATUS "residual: CUDA backend OFF: RESIDUAL_SANITIZE=ON (ASan does not run with the CUDA runtime)")
else()
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc)
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "CUDA architectures (default sm_90: H100/H200)")
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    # cuDNN 9 (the convolutions): beside the toolkit, or where CUDNN_ROOT (a cache or
    # environment variable) says, e.g. the nvidia/cudnn folder of PyTorch's pip
    # environment, which has libcudnn.so.9 but no libcudnn.so. Linked by soname, so at run
    # time the first libcudnn.so.9 on the library path serves (scripts/gpu-check).
    find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9
                 HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_LIBRARY_DIR}
                       ${CUDAToolkit_LIBRARY_ROOT}/lib64 /usr/local/cuda/lib64
                 PATH_SUFFIXES lib lib64)
    find_path(CUDNN_INCLUDE_DIR cudnn.h
              HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include
              PATH_SUFFIXES include)
    if(CUDNN_LIBRARY AND CUDNN_INCLUDE_DIR)
      set(RESIDUAL_HAVE_CUDA ON)
      message(STATUS "residual: CUDA backend ON (${CMAKE_CUDA_COMPILER}, arch ${CMAKE_CUDA_ARCHITECTURES}; cuDNN ${CUDNN_LIBRARY})")
    else()
      # A toolkit without cuDNN builds CPU-only rather than not at all.
      message(STATUS "residual: CUDA backend OFF: the CUDA toolkit has no cuDNN 9 (no libcudnn.so / cudnn.h beside ${CUDAToolkit_LIBRARY_DIR}); pass -DCUDNN_ROOT=<dir with lib/ and include/> to build it; building CPU-only")
    endif()
  else()
    message(STATUS "residual: CUDA backend OFF: no CUDA compiler (looked for /usr/local/cuda/bin/nvcc and nvcc on PATH); building CPU-only")
  endif()
endif()
