# Fails the build when an #include goes against the layering (run by the
# residual_layering target on every build: cmake -DSOURCE_DIR=... -P CheckLayering.cmake).
#
#   tensor basics (core/{tensor,shape,dtype,device,device_memory,caching_allocator,error,hash})
#     <- ops/
#     <- core/ (layers, model, zoo, optimisers) <- io/, distributed/ <- launch/
#
# - the tensor basics include only each other;
# - ops/ includes only the tensor basics from core/, and nothing above;
# - core/ never includes distributed/, io/, launch/, MPI, NCCL or CUDA headers (synchronized
#   batch norm asks core/replica_sum.h, which distributed/ implements);
# - io/ never includes distributed/ or launch/; distributed/ never includes io/ or launch/.
set(basics tensor shape dtype device device_memory caching_allocator error hash)
set(violations "")

function(check_file file)
  file(RELATIVE_PATH rel ${SOURCE_DIR} ${file})
  file(STRINGS ${file} lines REGEX "^[ \t]*#[ \t]*include")
  get_filename_component(stem ${file} NAME_WE)
  foreach(line IN LISTS lines)
    string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*[<\"]([^>\"]+)[>\"].*" "\\1" inc "${line}")
    set(bad "")
    if(rel MATCHES "^core/")
      if(inc MATCHES "^(distributed|io|launch)/" OR inc MATCHES "^(mpi|nccl|cuda|cudnn|cuda_runtime)(\\.h|_)")
        set(bad "core must not depend on ${inc}")
      endif()
      list(FIND basics ${stem} is_basic)
      if(is_basic GREATER -1 AND rel MATCHES "^core/[a-z_]+\\.(h|cpp)$" AND inc MATCHES "^(core|ops)/")
        string(REGEX REPLACE "^core/([a-z_]+)\\.h$" "\\1" inc_stem "${inc}")
        list(FIND basics "${inc_stem}" inc_basic)
        if(inc MATCHES "^ops/" OR inc_basic EQUAL -1)
          set(bad "the tensor basics include only each other, not ${inc}")
        endif()
      endif()
    elseif(rel MATCHES "^ops/")
      if(inc MATCHES "^(distributed|io|launch)/")
        set(bad "ops must not depend on ${inc}")
      elseif(inc MATCHES "^core/")
        string(REGEX REPLACE "^core/([a-z_]+)\\.h$" "\\1" inc_stem "${inc}")
        list(FIND basics "${inc_stem}" inc_basic)
        if(inc_basic EQUAL -1)
          set(bad "ops may use only the tensor basics from core, not ${inc}")
        endif()
      endif()
    elseif(rel MATCHES "^io/")
      if(inc MATCHES "^(distributed|launch)/")
        set(bad "io must not depend on ${inc}")
      endif()
    elseif(rel MATCHES "^distributed/")
      if(inc MATCHES "^(io|launch)/")
        set(bad "distributed must not depend on ${inc}")
      endif()
    endif()
    if(bad)
      set(violations "${violations}\n  ${rel}: #include ${inc}: ${bad}" PARENT_SCOPE)
    endif()
  endforeach()
endfunction()

file(GLOB_RECURSE sources ${SOURCE_DIR}/core/*.h ${SOURCE_DIR}/core/*.cpp ${SOURCE_DIR}/ops/*.h
     ${SOURCE_DIR}/ops/*.cpp ${SOURCE_DIR}/ops/*.cu ${SOURCE_DIR}/ops/*.cuh ${SOURCE_DIR}/io/*.h
     ${SOURCE_DIR}/io/*.cpp ${SOURCE_DIR}/distributed/*.h ${SOURCE_DIR}/distributed/*.cpp)
foreach(f IN LISTS sources)
  check_file(${f})
endforeach()
if(violations)
  message(FATAL_ERROR "residual: includes against the layering (cmake/CheckLayering.cmake):${violations}")
endif()
