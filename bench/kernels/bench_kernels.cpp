// Kernel benchmark: each kernel at the model's shapes (SmolLM2-135M: hidden 576, KV 192, FFN 1536,
// vocab 49152) and at one large size, with the limits measured in the same run.
//
// GPU mode (a CUDA device present): warm up, then per repetition flush L2 (write a buffer twice its
// size), time one call with CUDA events and keep the median ("cold"); also time 50 back-to-back calls
// ("hot", per call), which for the small shapes is mostly launch latency. Limits: device-to-device
// copy bandwidth (cudaMemcpy of 1 GiB, read + write counted) and cuBLAS BF16 GEMM at 8192^3.
// CPU mode (no device, or --cpu): times the CPU references (single-threaded, written for clarity, not
// speed) against a measured memcpy bandwidth.
//
// Usage: bench_kernels [--csv PATH] [--cpu] [--quick]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "bench_table.h"
#include "kernels/add.h"
#include "kernels/attention.h"
#include "kernels/dequantize.h"
#include "kernels/device.h"
#include "kernels/gemm.h"
#include "kernels/get_rows.h"
#include "kernels/matvec.h"
#include "kernels/matvec_kquant.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/sampling.h"
#include "kernels/softmax.h"
#include "kernels/swiglu.h"

namespace k = podworker::kernels;
namespace kc = podworker::kernels::cuda;

namespace {

enum class Bound { memory, compute, latency };

struct Row {
  std::string kernel, shape;
  double bytes = 0, flops = 0;
  double us_cold = 0, us_hot = 0;
  Bound bound = Bound::memory;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<std::byte> quantized(k::GgmlType type, std::int64_t n, std::uint32_t seed) {
  const auto x = random_floats(static_cast<std::size_t>(n), seed);
  std::vector<std::byte> q(k::tensor_bytes(type, n));
  k::cpu::quantize(type, x.data(), q.data(), n);
  return q;
}

template <class T>
kc::DeviceBuffer<T> upload(const std::vector<T>& host) {
  kc::DeviceBuffer<T> d(host.size());
  d.upload(host, kc::StreamView{});
  // The copy runs on the legacy default stream and the kernels on the bench's non-blocking stream,
  // which are not ordered with each other: finish the copy before anything reads the buffer.
  kc::device_synchronize();
  return d;
}

class Bench {
 public:
  Bench(bool gpu, bool quick, podworker::bench::Table& table)
      : gpu_(gpu), quick_(quick), table_(table) {
    if (gpu_) {
      info_ = kc::device_info(0);
      stream_ = std::make_unique<kc::Stream>();
      flush_ = kc::DeviceBuffer<std::byte>(std::max<std::size_t>(2 * info_.l2_bytes, 128u << 20));
      cublas_ = std::make_unique<kc::CublasHandle>();
    }
  }

  bool gpu() const { return gpu_; }
  bool quick() const { return quick_; }
  kc::StreamView stream() const { return stream_->view(); }
  kc::CublasHandle& cublas() { return *cublas_; }
  const kc::DeviceInfo& info() const { return info_; }

  void time(const std::string& kernel, const std::string& shape, double bytes, double flops, Bound bound,
            const std::function<void()>& fn) {
    Row row{kernel, shape, bytes, flops, 0, 0, bound};
    if (gpu_) {
      time_gpu(row, fn);
    } else {
      time_cpu(row, fn);
    }
    print(row);
    rows_.push_back(row);
  }

  void measure_limits() {
    if (gpu_) {
      const std::size_t bytes = std::size_t{1} << 30;
      kc::DeviceBuffer<std::byte> a(bytes), b(bytes);
      kc::memset_device(a.get(), 1, bytes, stream());
      Row row{"limit:copy", "cudaMemcpy D2D 1 GiB", 2.0 * bytes, 0, 0, 0, Bound::memory};
      time_gpu(row, [&] { kc::copy_device_to_device(b.get(), a.get(), bytes, stream()); });
      copy_gbps_ = row.bytes / row.us_cold / 1e3;
      print(row);
      rows_.push_back(row);

      const std::int64_t n = 8192;
      kc::DeviceBuffer<k::bf16_bits> wa(static_cast<std::size_t>(n * n)), xb(static_cast<std::size_t>(n * n));
      kc::DeviceBuffer<float> y(static_cast<std::size_t>(n * n));
      kc::memset_device(wa.get(), 0x3c, wa.bytes(), stream());  // ~0.0115 in BF16: finite, no overflow
      kc::memset_device(xb.get(), 0x3c, xb.bytes(), stream());
      Row g{"limit:gemm_bf16", "cuBLAS 8192^3", 3.0 * n * n * 2, 2.0 * n * n * n, 0, 0, Bound::compute};
      time_gpu(g, [&] {
        kc::gemm(cublas(), k::GgmlType::bf16, wa.get(), n, n, xb.get(), n, y.get(), 0.0f, stream());
      });
      gemm_tflops_ = g.flops / g.us_cold / 1e6;
      print(g);
      rows_.push_back(g);
    } else {
      const std::size_t bytes = std::size_t{256} << 20;
      std::vector<std::byte> a(bytes, std::byte{1}), b(bytes);
      Row row{"limit:memcpy", "std::memcpy 256 MiB", 2.0 * bytes, 0, 0, 0, Bound::memory};
      time_cpu(row, [&] { std::memcpy(b.data(), a.data(), bytes); });
      copy_gbps_ = row.bytes / row.us_cold / 1e3;
      print(row);
      rows_.push_back(row);
    }
  }

  void write_csv(const std::string& path) const {
    std::ofstream out(path);
    out << "mode,kernel,shape,bytes,flops,us_cold,us_hot,gbps,tflops,pct_of_limit,limit\n";
    for (const Row& r : rows_) {
      out << (gpu_ ? "gpu" : "cpu") << ',' << r.kernel << ",\"" << r.shape << "\"," << r.bytes << ',' << r.flops << ','
          << r.us_cold << ',' << r.us_hot << ',' << gbps(r) << ',' << tflops(r) << ',' << pct(r) << ','
          << limit_name(r) << '\n';
    }
  }

  void print_header() const {
    table_.header("%-22s %-34s %10s %10s %9s %8s %7s %s\n", "kernel", "shape", "us(cold)",
                  "us(hot)", "GB/s", "TFLOP/s", "%limit", "limit");
  }

 private:
  static double gbps(const Row& r) { return r.us_cold > 0 ? r.bytes / r.us_cold / 1e3 : 0; }
  static double tflops(const Row& r) { return r.us_cold > 0 ? r.flops / r.us_cold / 1e6 : 0; }
  double pct(const Row& r) const {
    if (r.bound == Bound::compute) return gemm_tflops_ > 0 ? 100.0 * tflops(r) / gemm_tflops_ : 0;
    if (r.bound == Bound::memory) return copy_gbps_ > 0 ? 100.0 * gbps(r) / copy_gbps_ : 0;
    return 0;
  }
  std::string limit_name(const Row& r) const {
    if (r.bound == Bound::compute) return "gemm_bf16";
    if (r.bound == Bound::memory) return gpu_ ? "copy" : "memcpy";
    return "-";
  }
  void print(const Row& r) const {
    table_.row("%-22s %-34s %10.2f %10.2f %9.1f %8.2f %6.1f%% %s\n", r.kernel, r.shape, r.us_cold,
               r.us_hot, gbps(r), tflops(r), pct(r), limit_name(r));
    std::fflush(stdout);
  }

  void time_gpu(Row& row, const std::function<void()>& fn) {
    const int warmup = 3, reps = quick_ ? 5 : 15, hot = 50;
    for (int i = 0; i < warmup; ++i) fn();
    kc::Event start, stop;
    std::vector<double> cold;
    for (int i = 0; i < reps; ++i) {
      kc::memset_device(flush_.get(), i & 0xff, flush_.bytes(), stream());  // evicts the operands from L2
      start.record(stream());
      fn();
      stop.record(stream());
      stop.synchronize();
      cold.push_back(1e3 * kc::elapsed_ms(start, stop));
    }
    row.us_cold = median(cold);
    if (row.kernel.rfind("limit:", 0) == 0) return;  // limits are big; a hot loop adds nothing
    start.record(stream());
    for (int i = 0; i < hot; ++i) fn();
    stop.record(stream());
    stop.synchronize();
    row.us_hot = 1e3 * kc::elapsed_ms(start, stop) / hot;
  }

  void time_cpu(Row& row, const std::function<void()>& fn) {
    using clock = std::chrono::steady_clock;
    fn();  // warm-up (page faults, caches)
    std::vector<double> us;
    const auto begin = clock::now();
    // At least 3 runs, up to ~0.2 s per case (0.05 s with --quick).
    const double budget = quick_ ? 0.05 : 0.2;
    while (us.size() < 3 || (us.size() < 50 && std::chrono::duration<double>(clock::now() - begin).count() < budget)) {
      const auto t0 = clock::now();
      fn();
      us.push_back(std::chrono::duration<double, std::micro>(clock::now() - t0).count());
    }
    row.us_cold = median(us);
    row.us_hot = *std::min_element(us.begin(), us.end());
  }

  bool gpu_;
  bool quick_;
  podworker::bench::Table& table_;  // prints each row and keeps it for --json
  kc::DeviceInfo info_;
  std::unique_ptr<kc::Stream> stream_;
  std::unique_ptr<kc::CublasHandle> cublas_;
  kc::DeviceBuffer<std::byte> flush_;
  double copy_gbps_ = 0, gemm_tflops_ = 0;
  std::vector<Row> rows_;
};

struct MatShape {
  std::int64_t k, rows;  // input features x output features
  const char* what;
};

// Model shapes (input x output) and the large ones.
const MatShape kModelShapes[] = {{576, 576, "q/o proj"},   {576, 192, "k/v proj"}, {576, 1536, "gate/up"},
                                 {1536, 576, "down"},      {576, 49152, "lm head"}};
const MatShape kLargeShapes[] = {{4096, 4096, "large"}, {4096, 14336, "large"}};

std::string shape_name(const MatShape& s, int batch) {
  return std::to_string(s.k) + "x" + std::to_string(s.rows) + " b" + std::to_string(batch) + " (" + s.what + ")";
}

// Times one weight matrix of `type` and shape s at each batch: on the GPU through
// launch(w, x, y, batch), on the CPU through the reference cpu::matvec. A launcher that also takes
// fp16 activations (kc::matvec) is timed with them too on Q4_1 at batch 1.
template <class Launch>
void time_matvec(Bench& b, k::GgmlType type, const MatShape& s, Launch launch) {
  const auto w = quantized(type, s.k * s.rows, 1);
  const std::vector<int> batches = b.gpu() ? std::vector<int>{1, 8, 32} : std::vector<int>{1};
  for (int batch : batches) {
    const auto x = random_floats(static_cast<std::size_t>(batch * s.k), 2);
    std::vector<float> y(static_cast<std::size_t>(batch * s.rows));
    const double bytes = static_cast<double>(w.size()) + 4.0 * (x.size() + y.size());
    const double flops = 2.0 * s.k * s.rows * batch;
    const std::string name = std::string("matvec_") + std::string(k::type_name(type));
    if (b.gpu()) {
      auto dw = upload(w);
      auto dx = upload(x);
      kc::DeviceBuffer<float> dy(y.size());
      b.time(name, shape_name(s, batch), bytes, flops, Bound::memory,
             [&] { launch(dw.get(), dx.get(), dy.get(), batch); });
      if constexpr (std::is_invocable_v<Launch&, const std::byte*, const k::half_bits*, float*,
                                        int>) {
        if (batch == 1 && type == k::GgmlType::q4_1) {
          std::vector<k::half_bits> x16(x.size());
          for (std::size_t i = 0; i < x.size(); ++i) x16[i] = k::fp32_to_fp16(x[i]);
          auto dx16 = upload(x16);
          b.time(name + "_x16", shape_name(s, batch), bytes - 2.0 * x.size(), flops, Bound::memory,
                 [&] { launch(dw.get(), dx16.get(), dy.get(), batch); });
        }
      }
    } else {
      b.time(name, shape_name(s, batch), bytes, flops, Bound::memory, [&] {
        k::cpu::matvec(type, w.data(), s.rows, s.k, x.data(), y.data(), batch, false);
      });
    }
  }
}

void bench_matvec(Bench& b) {
  std::vector<MatShape> shapes(std::begin(kModelShapes), std::end(kModelShapes));
  shapes.insert(shapes.end(), std::begin(kLargeShapes), std::end(kLargeShapes));
  for (auto type : {k::GgmlType::q4_1, k::GgmlType::q8_0}) {
    for (const MatShape& s : shapes) {
      const bool large = s.k >= 4096;
      if (!b.gpu() && large && type == k::GgmlType::q8_0) continue;  // keep the CPU run short
      time_matvec(b, type, s, [&](const std::byte* w, const auto* x, float* y, int batch) {
        kc::matvec(type, w, s.rows, s.k, x, y, batch, false, b.stream());
      });
    }
  }
}

// The K-quant mat-vec (kernels/matvec_kquant.h) on the shapes whose rows hold 256-element
// super-blocks; the CPU mode times the reference (cpu::matvec dequantizes a row at a time) on one.
void bench_matvec_kquant(Bench& b) {
  const MatShape shapes[] = {{1536, 576, "down"}, {4096, 4096, "large"}, {4096, 14336, "large"}};
  for (auto type : {k::GgmlType::q4_k, k::GgmlType::q5_k, k::GgmlType::q6_k}) {
    for (const MatShape& s : shapes) {
      if (!b.gpu() && s.k >= 4096) continue;  // keep the CPU run short
      time_matvec(b, type, s, [&](const std::byte* w, const float* x, float* y, int batch) {
        kc::matvec_kquant(type, w, s.rows, s.k, x, y, batch, false, b.stream());
      });
    }
  }
}

void bench_gemm(Bench& b) {
  if (!b.gpu()) return;  // the CPU reference for GEMM is cpu::matvec with batch = tokens (above)
  const std::int64_t tokens = 512;
  std::vector<MatShape> shapes(std::begin(kModelShapes), std::end(kModelShapes));
  shapes.insert(shapes.end(), std::begin(kLargeShapes), std::end(kLargeShapes));
  for (const MatShape& s : shapes) {
    const auto w = quantized(k::GgmlType::q4_1, s.k * s.rows, 3);
    const auto x = random_floats(static_cast<std::size_t>(tokens * s.k), 4);
    auto dw = upload(w);
    auto dx = upload(x);
    kc::DeviceBuffer<float> dy(static_cast<std::size_t>(tokens * s.rows));
    kc::DeviceBuffer<std::byte> scratch(kc::gemm_scratch_bytes(s.rows, s.k, tokens));
    const double flops = 2.0 * s.k * s.rows * tokens;
    const std::string shape = shape_name(s, static_cast<int>(tokens));
    b.time("gemm_q4_1_dequant", shape, 0, flops, Bound::compute, [&] {
      kc::gemm(b.cublas(), k::GgmlType::q4_1, dw.get(), s.rows, s.k, dx.get(), tokens, dy.get(), 0.0f, scratch.get(),
               scratch.bytes(), b.stream());
    });
    // Weights kept in BF16 (dequantized once at load): the cuBLAS call alone.
    kc::DeviceBuffer<k::bf16_bits> wb(static_cast<std::size_t>(s.k * s.rows));
    kc::dequantize_to_bf16(k::GgmlType::q4_1, dw.get(), wb.get(), s.k * s.rows, b.stream());
    kc::DeviceBuffer<k::bf16_bits> xb(static_cast<std::size_t>(tokens * s.k));
    kc::convert_to_bf16(dx.get(), xb.get(), tokens * s.k, b.stream());
    b.time("gemm_bf16", shape, 0, flops, Bound::compute, [&] {
      kc::gemm(b.cublas(), k::GgmlType::bf16, wb.get(), s.rows, s.k, xb.get(), tokens, dy.get(), 0.0f, b.stream());
    });
  }
}

void bench_rmsnorm(Bench& b) {
  struct S {
    std::int64_t rows, dim;
  };
  const std::vector<S> shapes = b.gpu() ? std::vector<S>{{1, 576}, {32, 576}, {512, 576}, {16384, 4096}}
                                        : std::vector<S>{{1, 576}, {32, 576}, {512, 576}, {2048, 4096}};
  for (S s : shapes) {
    const auto x = random_floats(static_cast<std::size_t>(s.rows * s.dim), 5);
    const auto w = random_floats(static_cast<std::size_t>(s.dim), 6);
    std::vector<float> y(x.size());
    const double bytes = 4.0 * (2.0 * x.size() + w.size());
    const std::string shape = std::to_string(s.rows) + "x" + std::to_string(s.dim);
    if (b.gpu()) {
      auto dx = upload(x);
      auto dw = upload(w);
      kc::DeviceBuffer<float> dy(y.size());
      b.time("rmsnorm", shape, bytes, 0, Bound::memory,
             [&] { kc::rmsnorm(dx.get(), dw.get(), dy.get(), s.rows, s.dim, 1e-5f, b.stream()); });
    } else {
      b.time("rmsnorm", shape, bytes, 0, Bound::memory,
             [&] { k::cpu::rmsnorm(x.data(), w.data(), y.data(), s.rows, s.dim, 1e-5f); });
    }
  }
}

void bench_elementwise(Bench& b) {
  // swiglu over the FFN width, add over the hidden size; batch 1, 32 and a large tensor.
  for (std::int64_t n : {std::int64_t{1536}, std::int64_t{32 * 1536}, std::int64_t{1} << (b.gpu() ? 26 : 22)}) {
    const auto g = random_floats(static_cast<std::size_t>(n), 7);
    const auto u = random_floats(static_cast<std::size_t>(n), 8);
    std::vector<float> o(g.size());
    const double bytes = 12.0 * static_cast<double>(n);
    const std::string shape = "n=" + std::to_string(n);
    if (b.gpu()) {
      auto dg = upload(g);
      auto du = upload(u);
      kc::DeviceBuffer<float> dout(o.size());
      b.time("swiglu", shape, bytes, 0, Bound::memory, [&] { kc::swiglu(dg.get(), du.get(), dout.get(), n, b.stream()); });
      b.time("add", shape, bytes, 0, Bound::memory, [&] { kc::add(dg.get(), du.get(), dout.get(), n, b.stream()); });
    } else {
      b.time("swiglu", shape, bytes, 0, Bound::memory, [&] { k::cpu::swiglu(g.data(), u.data(), o.data(), n); });
      b.time("add", shape, bytes, 0, Bound::memory, [&] { k::cpu::add(g.data(), u.data(), o.data(), n); });
    }
  }
  if (b.gpu()) {
    // The launch floor: a one-element kernel, i.e. what every small kernel pays at least.
    kc::DeviceBuffer<float> one(4);
    kc::memset_device(one.get(), 0, one.bytes(), b.stream());
    b.time("launch_floor(add n=1)", "n=1", 12, 0, Bound::latency,
           [&] { kc::add(one.get(), one.get(), one.get() + 1, 1, b.stream()); });
  }
}

void bench_rope_softmax(Bench& b) {
  for (std::int64_t tokens : {std::int64_t{1}, std::int64_t{32}, std::int64_t{512}}) {
    // q (9 heads) of a fused QKV row of 15 heads.
    const std::int64_t stride = 15 * 64;
    auto x = random_floats(static_cast<std::size_t>(tokens * stride), 9);
    std::vector<int> pos(static_cast<std::size_t>(tokens));
    for (std::int64_t t = 0; t < tokens; ++t) pos[t] = static_cast<int>(100 + t);
    const double bytes = 2.0 * 4.0 * tokens * 9 * 64;
    const std::string shape = std::to_string(tokens) + " tok x 9 heads x 64";
    if (b.gpu()) {
      auto dx = upload(x);
      auto dp = upload(pos);
      b.time("rope", shape, bytes, 0, Bound::memory,
             [&] { kc::rope(dx.get(), tokens, 9, 64, stride, dp.get(), 100000.0f, b.stream()); });
    } else {
      b.time("rope", shape, bytes, 0, Bound::memory,
             [&] { k::cpu::rope(x.data(), tokens, 9, 64, stride, pos.data(), 100000.0f); });
    }
  }
  for (std::int64_t rows : {std::int64_t{1}, std::int64_t{32}}) {
    const std::int64_t cols = 49152;
    auto x = random_floats(static_cast<std::size_t>(rows * cols), 10, -5.0f, 5.0f);
    const double bytes = 2.0 * 4.0 * rows * cols;
    const std::string shape = std::to_string(rows) + "x49152";
    if (b.gpu()) {
      auto dx = upload(x);
      b.time("softmax", shape, bytes, 0, Bound::memory, [&] { kc::softmax(dx.get(), rows, cols, b.stream()); });
    } else {
      b.time("softmax", shape, bytes, 0, Bound::memory, [&] { k::cpu::softmax(x.data(), rows, cols); });
    }
  }
}

void bench_attention(Bench& b) {
  const k::AttentionShape shape{9, 3, 64, 2048, 32};  // up to 32 sequences, one slot each
  struct S {
    int batch, len;
  };
  const std::vector<S> cases = b.gpu() ? std::vector<S>{{1, 128}, {1, 2048}, {32, 512}, {32, 2048}}
                                       : std::vector<S>{{1, 128}, {1, 2048}, {32, 512}};
  for (S c : cases) {
    const std::size_t cache = static_cast<std::size_t>(c.batch) * shape.max_ctx * shape.kv_dim();
    const auto kcache = random_floats(cache, 11);
    const auto vcache = random_floats(cache, 12);
    const auto q = random_floats(static_cast<std::size_t>(c.batch * shape.q_dim()), 13);
    std::vector<int> slots(static_cast<std::size_t>(c.batch)), lens(static_cast<std::size_t>(c.batch), c.len);
    for (int i = 0; i < c.batch; ++i) slots[i] = i;
    std::vector<float> out(q.size());
    // K and V of the visible positions are read once per KV head (the 3 query heads of a group share them).
    const double bytes = 2.0 * 4.0 * c.batch * c.len * shape.kv_dim() + 8.0 * q.size();
    const double flops = 4.0 * c.batch * c.len * shape.q_dim();
    const std::string name = "b" + std::to_string(c.batch) + " ctx " + std::to_string(c.len) + " (9q/3kv x 64)";
    if (b.gpu()) {
      auto dk = upload(kcache);
      auto dv = upload(vcache);
      auto dq = upload(q);
      auto ds = upload(slots);
      auto dl = upload(lens);
      kc::DeviceBuffer<float> dout(out.size());
      b.time("attention_decode", name, bytes, flops, Bound::memory, [&] {
        kc::attention_decode(dq.get(), shape.q_dim(), dk.get(), dv.get(), dout.get(), c.batch, shape, ds.get(),
                             dl.get(), 0.125f, b.stream());
      });
    } else {
      b.time("attention_decode", name, bytes, flops, Bound::memory, [&] {
        k::cpu::attention_decode(q.data(), shape.q_dim(), kcache.data(), vcache.data(), out.data(), c.batch, shape,
                                 slots.data(), lens.data(), 0.125f);
      });
    }
  }
  // Causal prefill of 512 tokens in one slot.
  const std::int64_t tokens = b.gpu() ? 512 : 128;
  const std::size_t cache = static_cast<std::size_t>(shape.max_ctx) * shape.kv_dim();
  const auto kcache = random_floats(cache, 14);
  const auto vcache = random_floats(cache, 15);
  const auto q = random_floats(static_cast<std::size_t>(tokens * shape.q_dim()), 16);
  std::vector<float> out(q.size());
  const double flops = 4.0 * shape.q_dim() * (tokens * (tokens + 1) / 2.0);
  const std::string name = std::to_string(tokens) + " tok causal";
  if (b.gpu()) {
    auto dk = upload(kcache);
    auto dv = upload(vcache);
    auto dq = upload(q);
    kc::DeviceBuffer<float> dout(out.size());
    b.time("attention_prefill", name, 0, flops, Bound::latency, [&] {
      kc::attention_prefill(dq.get(), shape.q_dim(), dk.get(), dv.get(), dout.get(), tokens, shape, 0, 0, 0.125f,
                            b.stream());
    });
  } else {
    b.time("attention_prefill", name, 0, flops, Bound::latency, [&] {
      k::cpu::attention_prefill(q.data(), shape.q_dim(), kcache.data(), vcache.data(), out.data(), tokens, shape, 0, 0,
                                0.125f);
    });
  }
}

void bench_sampling_and_rows(Bench& b) {
  const int vocab = 49152;
  for (int batch : {1, 32}) {
    const auto logits = random_floats(static_cast<std::size_t>(batch) * vocab, 17, -8.0f, 8.0f);
    std::vector<k::SampleParams> params(static_cast<std::size_t>(batch), k::SampleParams{0.8f, 40, 0.95f, 0, 1});
    std::vector<int> counters(static_cast<std::size_t>(batch), 5);
    const double bytes = 4.0 * logits.size();
    const std::string shape = "b" + std::to_string(batch) + " x 49152";
    if (b.gpu()) {
      auto dl = upload(logits);
      auto dp = upload(params);
      auto dc = upload(counters);
      kc::DeviceBuffer<int> dt(static_cast<std::size_t>(batch));
      b.time("argmax", shape, bytes, 0, Bound::memory, [&] { kc::argmax(dl.get(), batch, vocab, dt.get(), b.stream()); });
      b.time("sample(T.8,k40,p.95)", shape, bytes, 0, Bound::latency,
             [&] { kc::sample(dl.get(), batch, vocab, dp.get(), dc.get(), dt.get(), b.stream()); });
      std::vector<k::SampleParams> nucleus(params.size(), k::SampleParams{0.8f, 0, 0.95f, 0, 1});
      auto dn = upload(nucleus);
      b.time("sample(T.8,p.95)", shape, bytes, 0, Bound::latency,
             [&] { kc::sample(dl.get(), batch, vocab, dn.get(), dc.get(), dt.get(), b.stream()); });
    } else {
      b.time("sample(T.8,k40,p.95)", shape, bytes, 0, Bound::latency, [&] {
        for (int i = 0; i < batch; ++i) k::cpu::sample(logits.data() + static_cast<std::size_t>(i) * vocab, vocab, params[i], 5);
      });
    }
  }
  // Embedding lookup from the Q8_0 table.
  const auto table = quantized(k::GgmlType::q8_0, std::int64_t{49152} * 576, 18);
  for (int n : {1, 32, 512}) {
    std::vector<int> ids(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) ids[i] = (i * 7919) % 49152;
    std::vector<float> out(static_cast<std::size_t>(n) * 576);
    const double bytes = n * (k::tensor_bytes(k::GgmlType::q8_0, 576) + 4.0 * 576);
    const std::string shape = std::to_string(n) + " ids x 576 (Q8_0)";
    if (b.gpu()) {
      auto dt = upload(table);
      auto di = upload(ids);
      kc::DeviceBuffer<float> dout(out.size());
      b.time("get_rows", shape, bytes, 0, Bound::memory,
             [&] { kc::get_rows(k::GgmlType::q8_0, dt.get(), 49152, 576, di.get(), n, dout.get(), b.stream()); });
    } else {
      b.time("get_rows", shape, bytes, 0, Bound::memory,
             [&] { k::cpu::get_rows(k::GgmlType::q8_0, table.data(), 49152, 576, ids.data(), n, out.data()); });
    }
  }
  // Dequantize the large matrix (load-time cost).
  const std::int64_t n = b.gpu() ? std::int64_t{4096} * 14336 : std::int64_t{4096} * 1024;
  for (auto type : {k::GgmlType::q4_1, k::GgmlType::q8_0}) {
    const auto q = quantized(type, n, 19);
    const double bytes = static_cast<double>(q.size()) + 2.0 * n;
    const std::string shape = std::to_string(n) + " -> F16";
    const std::string name = "dequantize_" + std::string(k::type_name(type));
    if (b.gpu()) {
      auto dq = upload(q);
      kc::DeviceBuffer<k::half_bits> out(static_cast<std::size_t>(n));
      b.time(name, shape, bytes, 0, Bound::memory,
             [&] { kc::dequantize_to_f16(type, dq.get(), out.get(), n, b.stream()); });
    } else {
      std::vector<float> out(static_cast<std::size_t>(n));
      b.time(name, std::to_string(n) + " -> F32", static_cast<double>(q.size()) + 4.0 * n, 0, Bound::memory,
             [&] { k::cpu::dequantize(type, q.data(), out.data(), n); });
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string json;
  try {
    json = podworker::bench::take_json_option(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  std::string csv;
  bool force_cpu = false, quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--csv" && i + 1 < argc) {
      csv = argv[++i];
    } else if (arg == "--cpu") {
      force_cpu = true;
    } else if (arg == "--quick") {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: %s [--csv PATH] [--json PATH] [--cpu] [--quick]\n", argv[0]);
      return 2;
    }
  }
  try {
    const bool gpu = !force_cpu && kc::device_count() > 0;
    podworker::bench::Report report("bench_kernels");
    Bench bench(gpu, quick, report.table(gpu ? "kernels gpu" : "kernels cpu"));
    if (gpu) {
      const auto& info = bench.info();
      std::printf("GPU mode: %s (sm_%d%d, %d SMs, L2 %.0f MiB, driver %d, runtime %d)\n", info.name.c_str(),
                  info.compute_major, info.compute_minor, info.sm_count, info.l2_bytes / 1048576.0,
                  info.driver_version, info.runtime_version);
      std::printf("cold = median of single calls after an L2 flush; hot = per call over 50 back-to-back calls\n");
    } else {
      std::printf("CPU mode: single-threaded CPU references (the source of truth, not tuned)\n");
      std::printf("cold = median; hot = fastest run\n");
    }
    bench.print_header();
    bench.measure_limits();
    bench_matvec(bench);
    bench_matvec_kquant(bench);
    bench_gemm(bench);
    bench_rmsnorm(bench);
    bench_elementwise(bench);
    bench_rope_softmax(bench);
    bench_attention(bench);
    bench_sampling_and_rows(bench);
    if (!csv.empty()) {
      bench.write_csv(csv);
      std::printf("wrote %s\n", csv.c_str());
    }
    report.write(json);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_kernels: %s\n", e.what());
    return 1;
  }
  return 0;
}
