# podworker_add_doctest(<name> SOURCES ... LIBS ...): one doctest executable, registered with CTest
# twice: the portable cases (label "cpu") and the `gpu` test suite (label "gpu"), which skips its
# cases itself when no CUDA device is present.
function(podworker_add_doctest name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} SYSTEM PRIVATE ${PODWORKER_DOCTEST_INCLUDE})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS})
  podworker_warnings(${name})
  add_test(NAME ${name} COMMAND ${name} --test-suite-exclude=gpu)
  set_tests_properties(${name} PROPERTIES LABELS cpu TIMEOUT 600)
  add_test(NAME ${name}_gpu COMMAND ${name} --test-suite=gpu --no-skipped-summary)
  set_tests_properties(${name}_gpu PROPERTIES LABELS gpu TIMEOUT 600)
endfunction()
