// Generated test models: layout like the real file, determinism, SmolLM2 shapes, bad specs.
#include <doctest/doctest.h>

#include <cmath>
#include <set>

#include "model/test_model.h"
#include "model/tokenizer.h"
#include "test_files.h"

using namespace podworker::model;
using podworker::kernels::GgmlType;

TEST_CASE("generated model has the llama layout") {
  TestModelSpec spec;
  spec.layers = 3;
  podworker::model::testing::TempFile file;
  write_test_model(file.path(), spec);
  const GgufFile f = GgufFile::open(file.path());
  CHECK_NOTHROW(f.require_architecture("llama"));
  CHECK(f.get_int("llama.block_count") == 3);
  CHECK(f.get_int("llama.embedding_length") == 64);
  CHECK(f.get_int("llama.attention.head_count") == 4);
  CHECK(f.get_int("llama.attention.head_count_kv") == 2);
  CHECK(f.get_int("llama.rope.dimension_count") == 16);
  CHECK(f.get_int("llama.vocab_size") == 459);
  CHECK(f.tensors().size() == 1 + 3 * 9 + 1);
  CHECK(f.tensors().front().name == "token_embd.weight");
  CHECK(f.tensors().back().name == "output_norm.weight");
  CHECK(f.tensor("token_embd.weight").type == GgmlType::q8_0);
  CHECK(f.tensor("token_embd.weight").shape == std::vector<std::int64_t>{64, 459});
  CHECK(f.tensor("blk.2.attn_q.weight").type == GgmlType::q4_1);
  CHECK(f.tensor("blk.2.attn_q.weight").shape == std::vector<std::int64_t>{64, 64});
  CHECK(f.tensor("blk.2.attn_k.weight").shape == std::vector<std::int64_t>{64, 32});
  CHECK(f.tensor("blk.2.attn_v.weight").shape == std::vector<std::int64_t>{64, 32});
  CHECK(f.tensor("blk.2.attn_output.weight").shape == std::vector<std::int64_t>{64, 64});
  CHECK(f.tensor("blk.2.ffn_gate.weight").shape == std::vector<std::int64_t>{64, 128});
  CHECK(f.tensor("blk.2.ffn_up.weight").shape == std::vector<std::int64_t>{64, 128});
  CHECK(f.tensor("blk.2.ffn_down.weight").shape == std::vector<std::int64_t>{128, 64});
  CHECK(f.tensor("blk.2.attn_norm.weight").type == GgmlType::f32);
  CHECK(f.find_tensor("output.weight") == nullptr);
  // Norm weights are near 1, as a trained model's are.
  const auto& norm = f.tensor("output_norm.weight");
  const auto* w = reinterpret_cast<const float*>(norm.data);
  for (std::int64_t i = 0; i < norm.elements(); ++i) CHECK(std::abs(w[i] - 1.0f) <= 0.1f);
}

TEST_CASE("generated models are deterministic per seed") {
  TestModelSpec spec;
  const auto a = build_test_model(spec).to_bytes();
  const auto b = build_test_model(spec).to_bytes();
  CHECK(a == b);
  spec.seed = 2;
  CHECK(build_test_model(spec).to_bytes() != a);
}

TEST_CASE("generated model options: types, untied output, padded vocabulary") {
  TestModelSpec spec;
  spec.weight_type = GgmlType::q4_0;
  spec.embedding_type = GgmlType::f16;
  spec.tied_output = false;
  spec.vocab = 600;
  const GgufFile f = GgufFile::from_bytes(build_test_model(spec).to_bytes());
  CHECK(f.tensor("blk.0.ffn_up.weight").type == GgmlType::q4_0);
  CHECK(f.tensor("token_embd.weight").type == GgmlType::f16);
  CHECK(f.tensor("output.weight").shape == std::vector<std::int64_t>{64, 600});
  CHECK(f.get_int("llama.vocab_size") == 600);
  const Tokenizer tok = Tokenizer::from_gguf(f);
  CHECK(tok.vocab_size() == 600);
  CHECK(tok.decode(tok.encode("Hello there")) == "Hello there");

  for (GgmlType t : {GgmlType::f32, GgmlType::q8_0, GgmlType::q6_k}) {
    TestModelSpec s;
    s.hidden = 256;
    s.ffn = 512;
    s.layers = 1;
    s.weight_type = t;
    CHECK_NOTHROW(build_test_model(s));
  }
}

TEST_CASE("impossible specs are refused") {
  TestModelSpec s;
  s.heads = 5;
  CHECK_THROWS_AS(build_test_model(s), std::invalid_argument);
  s = {};
  s.kv_heads = 3;
  CHECK_THROWS_AS(build_test_model(s), std::invalid_argument);
  s = {};
  s.hidden = 48;  // head dim 12 is fine, but 48 is not a multiple of the Q4_1 block of 32
  s.heads = 4;
  CHECK_THROWS_WITH_AS(build_test_model(s), doctest::Contains("block size"), GgufError);
  s = {};
  s.vocab = 100;
  CHECK_THROWS_AS(build_test_model(s), std::invalid_argument);
  s = {};
  s.layers = 0;
  CHECK_THROWS_AS(build_test_model(s), std::invalid_argument);
}

TEST_CASE("SmolLM2 spec has the real shapes, and the same keys as the real file") {
  const TestModelSpec s = TestModelSpec::smollm2_135m();
  CHECK(s.hidden == 576);
  CHECK(s.layers == 30);
  CHECK(s.heads == 9);
  CHECK(s.kv_heads == 3);
  CHECK(s.ffn == 1536);
  CHECK(s.vocab == 49152);
  CHECK(s.context == 8192);
  // One layer is enough to check shapes without generating 100 MB here.
  TestModelSpec one = s;
  one.layers = 1;
  const GgufFile gen = GgufFile::from_bytes(build_test_model(one).to_bytes());
  CHECK(gen.tensor("token_embd.weight").shape == std::vector<std::int64_t>{576, 49152});
  CHECK(gen.tensor("blk.0.attn_k.weight").shape == std::vector<std::int64_t>{576, 192});
  CHECK(gen.get_int("llama.rope.dimension_count") == 64);

  const auto path = podworker::model::testing::real_model_path();
  if (!path) {
    MESSAGE("skipped comparison with the real file: SmolLM2-135M-Instruct.Q4_1.gguf is absent");
    return;
  }
  const GgufFile real = GgufFile::open(*path);
  for (const auto& [key, value] : real.metadata()) {
    if (key.rfind("llama.", 0) != 0 && key.rfind("tokenizer.", 0) != 0) continue;
    CAPTURE(key);
    const MetaValue* mine = gen.find(key);
    REQUIRE(mine != nullptr);
    CHECK(mine->type() == value.type());
    if (key.rfind("llama.", 0) == 0 && key != "llama.block_count") CHECK(*mine == value);
  }
  std::set<std::string> real_names;
  for (const auto& t : real.tensors()) {
    if (t.name.rfind("blk.", 0) == 0 && t.name.rfind("blk.0.", 0) != 0) continue;
    real_names.insert(t.name);
    const TensorInfo& g = gen.tensor(t.name);
    CHECK(g.type == t.type);
    CHECK(g.shape == t.shape);
  }
  CHECK(real_names.size() == gen.tensors().size());
}
