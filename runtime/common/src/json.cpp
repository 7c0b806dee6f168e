#include "podworker/json.h"

#include <cmath>
#include <cstdint>

namespace podworker::json {

Document parse(std::string_view text, std::size_t max_bytes) {
  if (text.size() > max_bytes) {
    throw JsonError("JSON body of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                    std::to_string(max_bytes) + " bytes");
  }
  Document doc;
  // kParseStopWhenDoneFlag is not used: trailing garbage after the value is an error.
  doc.Parse<rapidjson::kParseDefaultFlags>(text.data(), text.size());
  if (doc.HasParseError()) {
    throw JsonError(std::string("malformed JSON at offset ") + std::to_string(doc.GetErrorOffset()) +
                    ": " + rapidjson::GetParseError_En(doc.GetParseError()));
  }
  return doc;
}

Document parse_object(std::string_view text, std::size_t max_bytes) {
  Document doc = parse(text, max_bytes);
  if (!doc.IsObject()) throw JsonError("JSON body must be an object");
  return doc;
}

std::string to_string(const Value& value) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  value.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

Document copy(const Value& value) {
  Document doc;
  Value v = clone(value, doc.GetAllocator());
  static_cast<Value&>(doc) = v;  // moves: RapidJSON assignment transfers ownership
  return doc;
}

Value clone(const Value& value, Document::AllocatorType& alloc) {
  if (value.IsString()) return Value(value.GetString(), value.GetStringLength(), alloc);
  if (value.IsArray()) {
    Value out(rapidjson::kArrayType);
    out.Reserve(value.Size(), alloc);
    for (const auto& item : value.GetArray()) out.PushBack(clone(item, alloc), alloc);
    return out;
  }
  if (value.IsObject()) {
    Value out(rapidjson::kObjectType);
    for (const auto& m : value.GetObject()) {
      out.AddMember(clone(m.name, alloc), clone(m.value, alloc), alloc);
    }
    return out;
  }
  return Value(value, alloc);  // null, bool, number: nothing to share
}

const Value* find(const Value& object, std::string_view key) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(Value(rapidjson::StringRef(key.data(), key.size())));
  return it == object.MemberEnd() ? nullptr : &it->value;
}

namespace {
[[noreturn]] void wrong_type(std::string_view key, const char* expected) {
  throw JsonError("\"" + std::string(key) + "\" must be " + expected);
}
}  // namespace

std::string get_string(const Value& object, std::string_view key, std::string fallback) {
  const Value* v = find(object, key);
  if (v == nullptr || v->IsNull()) return fallback;
  if (!v->IsString()) wrong_type(key, "a string");
  return std::string(v->GetString(), v->GetStringLength());
}

double get_number(const Value& object, std::string_view key, double fallback) {
  const Value* v = find(object, key);
  if (v == nullptr || v->IsNull()) return fallback;
  if (!v->IsNumber()) wrong_type(key, "a number");
  return v->GetDouble();
}

std::int64_t get_int(const Value& object, std::string_view key, std::int64_t fallback) {
  const Value* v = find(object, key);
  if (v == nullptr || v->IsNull()) return fallback;
  if (v->IsInt64()) return v->GetInt64();
  if (v->IsDouble()) {
    const double d = v->GetDouble();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
      return static_cast<std::int64_t>(d);
    }
  }
  wrong_type(key, "an integer");
}

bool get_bool(const Value& object, std::string_view key, bool fallback) {
  const Value* v = find(object, key);
  if (v == nullptr || v->IsNull()) return fallback;
  if (!v->IsBool()) wrong_type(key, "a boolean");
  return v->GetBool();
}

}  // namespace podworker::json
