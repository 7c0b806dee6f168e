# Applies the project's warning policy to one target: warnings are errors in our own code.
# Third-party headers (Boost, RapidJSON, doctest, CUDA) come in as SYSTEM includes and stay quiet.
#
# GCC 12 at -O3 reports -Wrestrict inside libstdc++'s own std::string concatenation (GCC bug
# 105329, fixed in 13): a false positive in system code that -Werror would turn into a failed
# Release build, so that one warning is off for GCC 12 alone.
function(podworker_warnings target)
  set(gcc12 $<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Werror>
    $<$<AND:$<COMPILE_LANGUAGE:CXX>,${gcc12}>:-Wno-restrict>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Werror --Werror=all-warnings>
    $<$<AND:$<COMPILE_LANGUAGE:CUDA>,${gcc12}>:-Xcompiler=-Wno-restrict>)
endfunction()
