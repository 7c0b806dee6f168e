// The CUDA backend module's one entry point (the interface and its assumptions: llm/cuda/module.h).
#include "llm/cuda/module.h"

#include <cstring>
#include <string>

#include "llm/cuda/cuda_backend.h"
#include "podworker/log.h"

extern "C" __attribute__((visibility("default"))) podworker::llm::Backend*
podworker_cuda_create_backend(const podworker::llm::CudaModuleRequest* request) {
  using namespace podworker;
  if (request == nullptr || request->abi != llm::kCudaModuleAbi) {
    throw llm::BackendUnavailable("the CUDA backend module speaks module ABI " +
                                  std::to_string(llm::kCudaModuleAbi) +
                                  ", the program another one: install both from one build");
  }
  if (std::strcmp(request->build_stamp, PODWORKER_BUILD_STAMP) != 0 ||
      !(request->layout == llm::CudaModuleLayout{})) {
    throw llm::BackendUnavailable(std::string("the CUDA backend module was built as \"") +
                                  PODWORKER_BUILD_STAMP + "\", the program as \"" +
                                  request->build_stamp + "\": install both from one build");
  }
  log::set_level(static_cast<log::Level>(request->log_level));
  log::set_json(request->log_json);
  return llm::make_cuda_backend(*request->weights, *request->options).release();
}
