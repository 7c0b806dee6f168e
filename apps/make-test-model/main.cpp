// make_test_model: generated GGUF models on demand, plus two inspection modes used by the
// reference checks (scripts/check_gguf_reader.py, scripts/check_tokenizer.py).
#include <charconv>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/dequantize.h"
#include "model/gguf.h"
#include "model/test_model.h"
#include "model/tokenizer.h"
#include "podworker/json.h"

namespace {

using namespace podworker::model;
using podworker::kernels::GgmlType;

constexpr const char* kUsage =
    "usage:\n"
    "  make_test_model write OUT.gguf [--smollm2] [--hidden N] [--layers N] [--heads N]\n"
    "      [--kv-heads N] [--ffn N] [--vocab N] [--context N] [--seed N]\n"
    "      [--weight-type T] [--embedding-type T] [--untied]\n"
    "      T is one of F32 F16 Q4_0 Q4_1 Q5_0 Q8_0 Q4_K Q5_K Q6_K (K-quants need sizes\n"
    "      that are multiples of 256); defaults: a small model, Q4_1 weights,\n"
    "      Q8_0 embedding. --smollm2 starts from SmolLM2-135M's exact shapes.\n"
    "  make_test_model dump MODEL.gguf\n"
    "      prints the header, metadata and tensor infos as JSON\n"
    "  make_test_model tokenize MODEL.gguf STRINGS.json [--no-special]\n"
    "      encodes each string of a JSON array; prints a JSON array of id arrays\n"
    "  make_test_model dequantize TYPE BLOCKS.bin OUT.f32\n"
    "      our CPU dequantization of raw blocks of TYPE (any ggml type we read) to f32\n"
    "  make_test_model quantize TYPE IN.f32 OUT.bin\n"
    "      our quantization of raw f32 values into blocks of TYPE\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::int32_t parse_int(std::string_view flag, std::string_view text) {
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0 || v > 1'000'000'000) {
    throw UsageError(std::string(flag) + " needs a non-negative integer, got '" + std::string(text) + "'");
  }
  return static_cast<std::int32_t>(v);
}

GgmlType parse_type(std::string_view flag, std::string_view text) {
  for (auto t : {GgmlType::f32, GgmlType::f16, GgmlType::q4_0, GgmlType::q4_1, GgmlType::q5_0, GgmlType::q8_0,
                 GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k}) {
    if (podworker::kernels::type_name(t) == text) return t;
  }
  throw UsageError(std::string(flag) + ": unknown type '" + std::string(text) + "'");
}

int write_model(const std::vector<std::string_view>& args) {
  if (args.empty()) throw UsageError("write needs an output path");
  TestModelSpec spec;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--smollm2") {
      spec = TestModelSpec::smollm2_135m();
    }
  }
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    if (flag == "--smollm2") continue;
    if (flag == "--untied") {
      spec.tied_output = false;
      continue;
    }
    if (i + 1 >= args.size()) throw UsageError(std::string(flag) + " needs a value");
    const std::string_view value = args[++i];
    if (flag == "--hidden") spec.hidden = parse_int(flag, value);
    else if (flag == "--layers") spec.layers = parse_int(flag, value);
    else if (flag == "--heads") spec.heads = parse_int(flag, value);
    else if (flag == "--kv-heads") spec.kv_heads = parse_int(flag, value);
    else if (flag == "--ffn") spec.ffn = parse_int(flag, value);
    else if (flag == "--vocab") spec.vocab = parse_int(flag, value);
    else if (flag == "--context") spec.context = parse_int(flag, value);
    else if (flag == "--seed") spec.seed = static_cast<std::uint64_t>(parse_int(flag, value));
    else if (flag == "--weight-type") spec.weight_type = parse_type(flag, value);
    else if (flag == "--embedding-type") spec.embedding_type = parse_type(flag, value);
    else throw UsageError("unknown option " + std::string(flag));
  }
  const std::string path(args[0]);
  write_test_model(path, spec);
  const GgufFile check = GgufFile::open(path);  // the file must read back
  std::cerr << "wrote " << path << ": " << check.tensors().size() << " tensors, " << check.file_size()
            << " bytes\n";
  return 0;
}

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_value(Writer& w, const MetaValue& v) {
  switch (v.type()) {
    case MetaType::float32:
    case MetaType::float64: w.Double(v.as_float()); break;
    case MetaType::boolean: w.Bool(v.as_bool()); break;
    case MetaType::string: w.String(v.as_string().data(), static_cast<rapidjson::SizeType>(v.as_string().size())); break;
    case MetaType::array:
      w.StartArray();
      for (const auto& item : v.items()) write_value(w, item);
      w.EndArray();
      break;
    case MetaType::int8:
    case MetaType::int16:
    case MetaType::int32:
    case MetaType::int64: w.Int64(v.as_int()); break;
    default: w.Uint64(v.as_uint()); break;
  }
}

int dump(const std::vector<std::string_view>& args) {
  if (args.size() != 1) throw UsageError("dump needs exactly one model path");
  const GgufFile f = GgufFile::open(std::string(args[0]));
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("version");
  w.Uint(f.version());
  w.Key("alignment");
  w.Uint64(f.alignment());
  w.Key("data_offset");
  w.Uint64(f.data_offset());
  w.Key("file_size");
  w.Uint64(f.file_size());
  w.Key("metadata");
  w.StartArray();
  for (const auto& [key, value] : f.metadata()) {
    w.StartObject();
    w.Key("key");
    w.String(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    w.Key("type");
    w.String(std::string(meta_type_name(value.type())));
    if (value.is_array()) {
      w.Key("element_type");
      w.String(std::string(meta_type_name(value.array_type())));
    }
    w.Key("value");
    write_value(w, value);
    w.EndObject();
  }
  w.EndArray();
  w.Key("tensors");
  w.StartArray();
  for (const auto& t : f.tensors()) {
    w.StartObject();
    w.Key("name");
    w.String(t.name);
    w.Key("type");
    w.String(std::string(podworker::kernels::type_name(t.type)));
    w.Key("type_id");
    w.Uint(static_cast<unsigned>(t.type));
    w.Key("shape");
    w.StartArray();
    for (auto d : t.shape) w.Int64(d);
    w.EndArray();
    w.Key("offset");
    w.Uint64(t.offset);
    w.Key("bytes");
    w.Uint64(t.bytes);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  std::cout << buf.GetString() << '\n';
  return 0;
}

int tokenize(const std::vector<std::string_view>& args) {
  if (args.size() < 2 || args.size() > 3) throw UsageError("tokenize needs a model path and a JSON file");
  const bool special = !(args.size() == 3 && args[2] == "--no-special");
  const GgufFile f = GgufFile::open(std::string(args[0]));
  const Tokenizer tok = Tokenizer::from_gguf(f);
  std::ifstream in{std::string(args[1]), std::ios::binary};
  if (!in) throw std::runtime_error("cannot read " + std::string(args[1]));
  std::stringstream text;
  text << in.rdbuf();
  const auto doc = podworker::json::parse(text.str());
  if (!doc.IsArray()) throw std::runtime_error("the strings file must hold a JSON array of strings");
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartArray();
  for (const auto& s : doc.GetArray()) {
    if (!s.IsString()) throw std::runtime_error("the strings file must hold a JSON array of strings");
    const auto ids = tok.encode(std::string_view(s.GetString(), s.GetStringLength()), special);
    w.StartArray();
    for (auto id : ids) w.Int(id);
    w.EndArray();
  }
  w.EndArray();
  std::cout << buf.GetString() << '\n';
  return 0;
}

std::vector<char> read_all(std::string_view path) {
  std::ifstream in{std::string(path), std::ios::binary};
  if (!in) throw std::runtime_error("cannot read " + std::string(path));
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_all(std::string_view path, const void* data, std::size_t bytes) {
  std::ofstream out{std::string(path), std::ios::binary};
  out.write(static_cast<const char*>(data), static_cast<std::streamsize>(bytes));
  if (!out) throw std::runtime_error("cannot write " + std::string(path));
}

GgmlType any_type(std::string_view text) {
  for (std::uint32_t raw = 0; raw < 64; ++raw) {
    if (podworker::kernels::is_supported(raw) && podworker::kernels::type_name(static_cast<GgmlType>(raw)) == text) {
      return static_cast<GgmlType>(raw);
    }
  }
  throw UsageError("unknown type '" + std::string(text) + "'");
}

// Raw blocks in, f32 out (and back): what the layout checks compare with gguf-py.
int convert_blocks(bool to_f32, const std::vector<std::string_view>& args) {
  if (args.size() != 3) throw UsageError("dequantize/quantize need a type, an input and an output path");
  const GgmlType type = any_type(args[0]);
  const std::vector<char> in = read_all(args[1]);
  const std::size_t bb = podworker::kernels::block_bytes(type);
  const auto be = static_cast<std::size_t>(podworker::kernels::block_elements(type));
  if (to_f32) {
    if (in.size() % bb != 0) throw std::runtime_error("input is not a whole number of blocks");
    std::vector<float> out(in.size() / bb * be);
    podworker::kernels::cpu::dequantize(type, in.data(), out.data(), static_cast<std::int64_t>(out.size()));
    write_all(args[2], out.data(), out.size() * sizeof(float));
  } else {
    if (in.size() % (be * sizeof(float)) != 0) throw std::runtime_error("input is not a whole number of blocks");
    std::vector<float> x(in.size() / sizeof(float));
    std::memcpy(x.data(), in.data(), in.size());
    std::vector<std::byte> out(x.size() / be * bb);
    podworker::kernels::cpu::quantize(type, x.data(), out.data(), static_cast<std::int64_t>(x.size()));
    write_all(args[2], out.data(), out.size());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string_view mode = args[0];
  args.erase(args.begin());
  try {
    if (mode == "write") return write_model(args);
    if (mode == "dump") return dump(args);
    if (mode == "tokenize") return tokenize(args);
    if (mode == "dequantize") return convert_blocks(true, args);
    if (mode == "quantize") return convert_blocks(false, args);
    throw UsageError("unknown mode '" + std::string(mode) + "'");
  } catch (const UsageError& e) {
    std::cerr << "make_test_model: " << e.what() << "\n" << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "make_test_model: " << e.what() << '\n';
    return 1;
  }
}
