// The CPU reference for the shift kernel, and the stub of the CUDA path for builds without CUDA.
#include "shift.h"

namespace shift {

int normalize(long long shift) { return static_cast<int>(((shift % 26) + 26) % 26); }

std::string shift_cpu(std::string_view text, int shift) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>('a' + (c - 'a' + shift) % 26);
    if (c >= 'A' && c <= 'Z') c = static_cast<char>('A' + (c - 'A' + shift) % 26);
  }
  return out;
}

#ifndef SHIFT_WITH_CUDA
bool cuda_available() { return false; }

std::string shift_cuda(std::string_view, int, podworker::kernels::cuda::StreamView) {
  throw podworker::kernels::cuda::NotCompiled("shift_cuda");
}
#endif

}  // namespace shift
