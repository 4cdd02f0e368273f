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
