include(GoogleTest)
# residual_add_test(NAME [LIBS lib...] SOURCES src...): one GoogleTest binary whose tests
# CTest lists one by one. LIBS defaults to the whole library (residual).
function(residual_add_test name)
  cmake_parse_arguments(ARG "" "" "LIBS;SOURCES" ${ARGN})
  if(NOT ARG_LIBS)
    set(ARG_LIBS residual)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR})
  residual_warnings(${name})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
    PROPERTIES ENVIRONMENT "OMP_NUM_THREADS=2;RESIDUAL_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
endfunction()

# residual_add_mpi_test(NAME [LIBS lib...] SOURCES src...): a GoogleTest binary with its
# own main (it initialises MPI), run by CTest under mpiexec with 2 and with 3 ranks (an odd
# size catches uneven-shard bugs). --oversubscribe: more ranks than cores is the point.
function(residual_add_mpi_test name)
  cmake_parse_arguments(ARG "" "" "LIBS;SOURCES" ${ARGN})
  find_package(MPI REQUIRED COMPONENTS C)
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR})
  residual_warnings(${name})
  foreach(ranks 2 3)
    add_test(NAME ${name}.np${ranks}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks} --oversubscribe
                     --allow-run-as-root --bind-to none $<TARGET_FILE:${name}>)
    set_tests_properties(${name}.np${ranks} PROPERTIES TIMEOUT 180
                         ENVIRONMENT "OMP_NUM_THREADS=1;RESIDUAL_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
  endforeach()
endfunction()
