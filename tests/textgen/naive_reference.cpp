#include "naive_reference.h"

#include <cmath>

namespace podworker::testing {

namespace {

std::vector<float> dequant(const llm::TensorView& t) {
  std::vector<float> out(static_cast<std::size_t>(t.rows * t.cols));
  for (std::int64_t r = 0; r < t.rows; ++r) llm::dequantize_row(t, r, out.data() + r * t.cols);
  return out;
}

// y = W x for W with `rows` rows of x.size() columns.
std::vector<float> matvec(const std::vector<float>& w, const std::vector<float>& x, std::size_t rows) {
  std::vector<float> y(rows, 0.0f);
  for (std::size_t r = 0; r < rows; ++r) {
    double s = 0;
    for (std::size_t c = 0; c < x.size(); ++c) s += static_cast<double>(w[r * x.size() + c]) * x[c];
    y[r] = static_cast<float>(s);
  }
  return y;
}

std::vector<float> rmsnorm(const std::vector<float>& x, const llm::TensorView& g, float eps) {
  double ss = 0;
  for (float v : x) ss += static_cast<double>(v) * v;
  const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(x.size()) + eps));
  const auto* gw = reinterpret_cast<const float*>(g.data);
  std::vector<float> y(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) y[i] = x[i] * scale * gw[i];
  return y;
}

void rope(std::vector<float>& v, int heads, int head_dim, int pos, float base) {
  for (int h = 0; h < heads; ++h) {
    for (int j = 0; j < head_dim / 2; ++j) {
      const double theta = pos * std::pow(static_cast<double>(base), -2.0 * j / head_dim);
      float& a = v[static_cast<std::size_t>(h * head_dim + 2 * j)];
      float& b = v[static_cast<std::size_t>(h * head_dim + 2 * j + 1)];
      const double x0 = a, x1 = b;
      a = static_cast<float>(x0 * std::cos(theta) - x1 * std::sin(theta));
      b = static_cast<float>(x0 * std::sin(theta) + x1 * std::cos(theta));
    }
  }
}

}  // namespace

std::vector<float> naive_forward(const llm::LlamaWeights& w, std::span<const std::int32_t> tokens) {
  const llm::LlamaConfig& c = w.config();
  const auto d = static_cast<std::size_t>(c.n_embd), kvd = static_cast<std::size_t>(c.kv_dim());
  const auto hd = static_cast<std::size_t>(c.head_dim);
  struct Layer {
    std::vector<float> wq, wk, wv, wo, gate, up, down;
  };
  std::vector<Layer> layers;
  for (const auto& l : w.layers()) {
    layers.push_back({dequant(l.wq), dequant(l.wk), dequant(l.wv), dequant(l.wo), dequant(l.w_gate), dequant(l.w_up),
                      dequant(l.w_down)});
  }
  const std::vector<float> embd = dequant(w.token_embd());
  const std::vector<float> head = dequant(w.output());
  std::vector<std::vector<std::vector<float>>> kcache(layers.size()), vcache(layers.size());
  std::vector<float> logits;
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    std::vector<float> x(embd.begin() + static_cast<std::ptrdiff_t>(tokens[t] * d),
                         embd.begin() + static_cast<std::ptrdiff_t>((tokens[t] + 1) * d));
    for (std::size_t li = 0; li < layers.size(); ++li) {
      const Layer& L = layers[li];
      const auto& lw = w.layers()[li];
      const std::vector<float> xn = rmsnorm(x, lw.attn_norm, c.rms_eps);
      std::vector<float> q = matvec(L.wq, xn, d), k = matvec(L.wk, xn, kvd), v = matvec(L.wv, xn, kvd);
      rope(q, c.n_head, c.head_dim, static_cast<int>(t), c.rope_freq_base);
      rope(k, c.n_head_kv, c.head_dim, static_cast<int>(t), c.rope_freq_base);
      kcache[li].push_back(k);
      vcache[li].push_back(v);
      std::vector<float> att(d, 0.0f);
      for (int h = 0; h < c.n_head; ++h) {
        const std::size_t g = static_cast<std::size_t>(h / c.group_size());
        std::vector<double> s(t + 1);
        double mx = -1e300;
        for (std::size_t p = 0; p <= t; ++p) {
          double dot = 0;
          for (std::size_t e = 0; e < hd; ++e) dot += static_cast<double>(q[h * hd + e]) * kcache[li][p][g * hd + e];
          s[p] = dot / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[p]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (std::size_t p = 0; p <= t; ++p) {
          for (std::size_t e = 0; e < hd; ++e) att[h * hd + e] += static_cast<float>(s[p] / sum * vcache[li][p][g * hd + e]);
        }
      }
      const std::vector<float> o = matvec(L.wo, att, d);
      for (std::size_t e = 0; e < d; ++e) x[e] += o[e];
      const std::vector<float> xf = rmsnorm(x, lw.ffn_norm, c.rms_eps);
      std::vector<float> gt = matvec(L.gate, xf, static_cast<std::size_t>(c.n_ff));
      const std::vector<float> up = matvec(L.up, xf, static_cast<std::size_t>(c.n_ff));
      for (std::size_t e = 0; e < gt.size(); ++e) gt[e] = gt[e] / (1.0f + std::exp(-gt[e])) * up[e];
      const std::vector<float> dn = matvec(L.down, gt, d);
      for (std::size_t e = 0; e < d; ++e) x[e] += dn[e];
    }
    const std::vector<float> out = matvec(head, rmsnorm(x, w.output_norm(), c.rms_eps), static_cast<std::size_t>(c.n_vocab));
    logits.insert(logits.end(), out.begin(), out.end());
  }
  return logits;
}

}  // namespace podworker::testing
