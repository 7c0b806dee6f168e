# Applies the project's warning policy to one target: warnings are errors in our own code.
# Third-party headers (Boost, RapidJSON, doctest, CUDA) come in as SYSTEM includes and stay quiet.
function(podworker_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Werror>
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Werror --Werror=all-warnings>)
endfunction()
