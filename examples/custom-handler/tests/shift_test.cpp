// shift_test reference: the CPU reference on known answers, and input validation.
// shift_test cuda:      the CUDA kernel matches the reference on seeded random texts; exits 77
//                       (skipped) when this build has no CUDA kernel or there is no device.
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

#include "shift.h"
#include "shift_handlers.h"

namespace {

int failures = 0;

void check(bool ok, std::string_view what) {
  if (!ok) {
    ++failures;
    std::printf("FAILED: %.*s\n", static_cast<int>(what.size()), what.data());
  }
}

bool rejects(std::string_view input_json) {
  const auto doc = podworker::json::parse(input_json);
  try {
    shift::parse_input(doc);
  } catch (const std::invalid_argument&) {
    return true;
  }
  return false;
}

void test_reference() {
  check(shift::shift_cpu("Hello, World!", 3) == "Khoor, Zruog!", "shift 3");
  check(shift::shift_cpu("xyz XYZ", 3) == "abc ABC", "wrap-around");
  check(shift::shift_cpu(shift::shift_cpu("Round trip", 13), 13) == "Round trip", "rot13 twice");
  check(shift::shift_cpu("naïve — ü", 1) == "obïwf — ü", "UTF-8 bytes unchanged");
  check(shift::normalize(-1) == 25 && shift::normalize(52) == 0, "normalize");

  const auto ok = podworker::json::parse(R"({"text": "abc", "shift": -27, "chunk_chars": 2})");
  const shift::ShiftInput in = shift::parse_input(ok);
  check(in.text == "abc" && in.shift == 25 && in.chunk_chars == 2, "parse_input");
  check(rejects(R"({"shift": 3})"), "missing text");
  check(rejects(R"({"text": 5})"), "text not a string");
  check(rejects(R"({"text": "a", "shift": 1.5})"), "fractional shift");
  check(rejects(R"({"text": "a", "chunk_chars": 0})"), "chunk_chars 0");
  check(rejects(R"(["text"])"), "input not an object");
}

int test_cuda() {
  if (!shift::cuda_available()) {
    std::printf("skipped: no CUDA kernel in this build or no CUDA device\n");
    return 77;
  }
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> byte(1, 255);
  podworker::kernels::cuda::Stream stream;
  for (std::size_t length : {0u, 1u, 255u, 256u, 257u, 100000u}) {
    std::string text(length, ' ');
    for (char& c : text) c = static_cast<char>(byte(rng));
    for (int s : {0, 1, 13, 25}) {
      check(shift::shift_cuda(text, s, stream) == shift::shift_cpu(text, s),
            "shift_matches_reference length " + std::to_string(length) + " shift " + std::to_string(s));
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string_view mode = argc > 1 ? argv[1] : "reference";
  if (mode == "cuda") {
    if (int rc = test_cuda(); rc != 0) return rc;
  } else {
    test_reference();
  }
  std::printf("%s: %d failure(s)\n", std::string(mode).c_str(), failures);
  return failures == 0 ? 0 : 1;
}
