// What the CUDA cases of test_ops share (cuda_ops.cpp: the backend's ops; cuda_kernel_ops.cpp: the
// kernels only the model's tooling or other kernels use): one stream, copies to and from the
// device, quantized inputs, and a case bound to that stream. CUDA builds only.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "kernels/dequantize.h"
#include "kernels/device.h"
#include "kernels/half.h"
#include "op_harness.h"

namespace podworker::ops_test {

namespace kc = kernels::cuda;
using kernels::GgmlType;

// One stream for every case: launches, copies and the timing all go through it.
inline kc::Stream& stream() {
  static kc::Stream s;
  return s;
}

template <class T>
std::shared_ptr<kc::DeviceBuffer<T>> to_device(const std::vector<T>& host) {
  auto d = std::make_shared<kc::DeviceBuffer<T>>(host.size());
  d->upload(host, stream());
  stream().synchronize();
  return d;
}

template <class T>
std::vector<T> to_host(const kc::DeviceBuffer<T>& d) {
  std::vector<T> h(d.size());
  d.download(h, stream());
  stream().synchronize();
  return h;
}

inline std::vector<float> halves_to_floats(const std::vector<kernels::half_bits>& h) {
  std::vector<float> f(h.size());
  for (std::size_t i = 0; i < h.size(); ++i) f[i] = kernels::fp16_to_fp32(h[i]);
  return f;
}

inline std::vector<std::byte> quantized(GgmlType type, const std::vector<float>& x) {
  std::vector<std::byte> q(kernels::tensor_bytes(type, static_cast<std::int64_t>(x.size())));
  kernels::cpu::quantize(type, x.data(), q.data(), static_cast<std::int64_t>(x.size()));
  return q;
}

inline Case device_case(const std::string& op, const std::string& shape, double tol) {
  Case c;
  c.op = op;
  c.shape = shape;
  c.nmse_tolerance = tol;
  c.synchronize = [] { stream().synchronize(); };
  return c;
}

}  // namespace podworker::ops_test
