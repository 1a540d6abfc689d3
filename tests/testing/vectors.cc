#include "tests/testing/vectors.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace canopy::testing {
namespace {

constexpr std::string_view kVariable = "CANOPY_VECTORS_DIR";

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

const boost::json::value* Field(const boost::json::value& object, std::string_view key) {
  if (!object.is_object()) {
    ADD_FAILURE() << "expected a JSON object when reading \"" << key << "\"";
    return nullptr;
  }
  const boost::json::value* field = object.as_object().if_contains(key);
  if (field == nullptr) ADD_FAILURE() << "JSON field \"" << key << "\" is missing";
  return field;
}

}  // namespace

std::optional<std::string> VectorsDir(bool* required) {
  const char* configured = std::getenv(std::string(kVariable).c_str());
  if (configured != nullptr && *configured != '\0') {
    if (required != nullptr) *required = true;
    return std::string(configured);
  }
  if (required != nullptr) *required = false;
  std::filesystem::path fallback(CANOPY_DEFAULT_VECTORS_DIR);
  if (std::filesystem::is_directory(fallback)) return fallback.lexically_normal().string();
  return std::nullopt;
}

VectorLoad LoadVectorFile(std::string_view relative_path) {
  VectorLoad load;
  bool required = false;
  std::optional<std::string> dir = VectorsDir(&required);
  if (!dir) {
    load.status = VectorLoad::Status::kSkip;
    load.message = "official test vectors not found: set " + std::string(kVariable) +
                   " to the vectors folder (it holds vdaf/, hpke/ and turboshake/)";
    return load;
  }
  load.path = (std::filesystem::path(*dir) / relative_path).string();
  std::ifstream file(load.path, std::ios::binary);
  if (!file) {
    load.status = VectorLoad::Status::kFail;
    load.message = "vector file " + load.path + " is missing" +
                   (required ? " (" + std::string(kVariable) + " is set, so it must exist)" : "");
    return load;
  }
  std::stringstream contents;
  contents << file.rdbuf();
  boost::system::error_code error;
  load.json = boost::json::parse(contents.str(), error);
  if (error) {
    load.status = VectorLoad::Status::kFail;
    load.message = "vector file " + load.path + " is not valid JSON: " + error.message();
    return load;
  }
  load.status = VectorLoad::Status::kLoaded;
  return load;
}

std::vector<std::string> ListVectorFiles(std::string_view subdir, std::string_view prefix) {
  std::vector<std::string> names;
  std::optional<std::string> dir = VectorsDir();
  if (!dir) return names;
  std::error_code error;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::path(*dir) / subdir, error)) {
    std::string name = entry.path().filename().string();
    if (name.starts_with(prefix) && name.ends_with(".json")) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<uint8_t> HexToBytes(std::string_view hex) {
  std::vector<uint8_t> bytes;
  if (hex.size() % 2 != 0) {
    ADD_FAILURE() << "hex string of odd length " << hex.size();
    return bytes;
  }
  bytes.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    int high = HexDigit(hex[i]);
    int low = HexDigit(hex[i + 1]);
    if (high < 0 || low < 0) {
      ADD_FAILURE() << "not a hex digit at offset " << i;
      return {};
    }
    bytes.push_back(static_cast<uint8_t>(high * 16 + low));
  }
  return bytes;
}

std::string BytesToHex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (uint8_t byte : bytes) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 15]);
  }
  return hex;
}

std::string JsonString(const boost::json::value& object, std::string_view key) {
  const boost::json::value* field = Field(object, key);
  if (field == nullptr) return {};
  if (!field->is_string()) {
    ADD_FAILURE() << "JSON field \"" << key << "\" is not a string";
    return {};
  }
  return std::string(field->as_string());
}

std::vector<uint8_t> JsonHex(const boost::json::value& object, std::string_view key) {
  return HexToBytes(JsonString(object, key));
}

uint64_t JsonUint(const boost::json::value& object, std::string_view key) {
  const boost::json::value* field = Field(object, key);
  if (field == nullptr) return 0;
  if (field->is_uint64()) return field->as_uint64();
  if (field->is_int64() && field->as_int64() >= 0) return static_cast<uint64_t>(field->as_int64());
  ADD_FAILURE() << "JSON field \"" << key << "\" is not a non-negative integer";
  return 0;
}

}  // namespace canopy::testing
