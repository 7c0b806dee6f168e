# podworker_add_doctest(<name> [GPU] SOURCES ... LIBS ...): one doctest executable, registered with
# CTest as `<name>` (label "cpu": every case outside the `gpu` suite). With GPU the executable has a
# `gpu` suite and its main() is tests/gpu_suite_main.cpp (leave main.cpp out of SOURCES): a second
# entry `<name>_gpu` (label "gpu") runs that suite, and without a CUDA device (or in a build without
# CUDA) it exits with PODWORKER_SKIP_RETURN_CODE, which CTest reports as "Skipped", not "Passed".
set(PODWORKER_SKIP_RETURN_CODE 77)

function(podworker_add_doctest name)
  cmake_parse_arguments(ARG "GPU" "" "SOURCES;LIBS" ${ARGN})
  set(sources ${ARG_SOURCES})
  if(ARG_GPU)
    list(APPEND sources ${PROJECT_SOURCE_DIR}/tests/gpu_suite_main.cpp)
  endif()
  add_executable(${name} ${sources})
  target_include_directories(${name} SYSTEM PRIVATE ${PODWORKER_DOCTEST_INCLUDE})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS})
  podworker_warnings(${name})
  add_test(NAME ${name} COMMAND ${name} --test-suite-exclude=gpu)
  set_tests_properties(${name} PROPERTIES LABELS cpu TIMEOUT 600)
  if(ARG_GPU)
    target_link_libraries(${name} PRIVATE podworker_kernels_cuda)  # device detection
    target_compile_definitions(${name} PRIVATE PODWORKER_SKIP_RETURN_CODE=${PODWORKER_SKIP_RETURN_CODE})
    add_test(NAME ${name}_gpu COMMAND ${name} --test-suite=gpu --no-skipped-summary)
    set_tests_properties(${name}_gpu PROPERTIES
      LABELS gpu TIMEOUT 600 SKIP_RETURN_CODE ${PODWORKER_SKIP_RETURN_CODE})
  endif()
endfunction()
