// The known-answer test harness: finds the official test vectors, loads JSON
// files, converts hex, and decides whether a missing file is a failure or a skip.
//
// Rules: if CANOPY_VECTORS_DIR is set, every vector file must exist there
// (a missing file fails the test). If it is unset, the harness falls back to
// `../shared/vectors` beside the repository; if that is absent, vector tests
// are skipped with a message naming the variable.
#ifndef CANOPY_TESTS_TESTING_VECTORS_H_
#define CANOPY_TESTS_TESTING_VECTORS_H_

#include <gtest/gtest.h>

#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace canopy::testing {

// The outcome of looking for a vector file.
struct VectorLoad {
  enum class Status { kLoaded, kSkip, kFail };
  Status status = Status::kFail;
  std::string message;      // Why it was skipped or failed.
  std::string path;         // The file, when found.
  boost::json::value json;  // The parsed file, when loaded.
};

// The vectors directory in force, or nullopt when none is configured or present.
// `required` is set when CANOPY_VECTORS_DIR names it.
std::optional<std::string> VectorsDir(bool* required = nullptr);

// Loads `relative_path` (for example "vdaf/Poplar1_0.json") under the vectors dir.
VectorLoad LoadVectorFile(std::string_view relative_path);

// The file names in `subdir` that start with `prefix` and end in ".json",
// sorted. Empty when no vectors dir is in force.
std::vector<std::string> ListVectorFiles(std::string_view subdir, std::string_view prefix);

// Decodes lowercase or uppercase hex; fails the current test on bad input.
std::vector<uint8_t> HexToBytes(std::string_view hex);

// Encodes bytes as lowercase hex.
std::string BytesToHex(std::span<const uint8_t> bytes);

// Shorthands for reading JSON fields; each fails the current test when the
// field is missing or of the wrong type.
std::string JsonString(const boost::json::value& object, std::string_view key);
std::vector<uint8_t> JsonHex(const boost::json::value& object, std::string_view key);
uint64_t JsonUint(const boost::json::value& object, std::string_view key);

}  // namespace canopy::testing

// Loads a vector file into `var` (a boost::json::value), skipping or failing
// the current test as the rules above say.
#define CANOPY_LOAD_VECTOR(var, relative_path)                                                     \
  boost::json::value var;                                                                          \
  do {                                                                                             \
    ::canopy::testing::VectorLoad canopy_load_ = ::canopy::testing::LoadVectorFile(relative_path); \
    if (canopy_load_.status == ::canopy::testing::VectorLoad::Status::kSkip) {                     \
      GTEST_SKIP() << canopy_load_.message;                                                        \
    }                                                                                              \
    ASSERT_EQ(canopy_load_.status, ::canopy::testing::VectorLoad::Status::kLoaded)                 \
        << canopy_load_.message;                                                                   \
    var = std::move(canopy_load_.json);                                                            \
  } while (0)

#endif  // CANOPY_TESTS_TESTING_VECTORS_H_
