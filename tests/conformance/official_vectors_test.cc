// Every official vector of a kind Canopy implements passes the conformance
// checker byte for byte, negative vectors included.
#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include "conformance/vector_check.h"
#include "tests/testing/vectors.h"

namespace canopy::conformance {
namespace {

// The official draft-20 files for the kinds Canopy implements. Listed by name
// so that a missing file fails (when CANOPY_VECTORS_DIR is set) instead of
// silently shrinking the suite.
const char* const kOfficialFiles[] = {
    "IdpfBBCGGI21_0.json", "XofTurboShake128.json", "XofFixedKeyAes128.json",
    "Poplar1_0.json",      "Poplar1_1.json",        "Poplar1_2.json",
    "Poplar1_3.json",      "Poplar1_4.json",        "Poplar1_5.json",
    "Poplar1_bad_corr_inner.json",
};

class OfficialVector : public ::testing::TestWithParam<const char*> {};

TEST_P(OfficialVector, IsReproducedByteForByte) {
  const std::string file = GetParam();
  CANOPY_LOAD_VECTOR(vector, "vdaf/" + file);
  VectorReport report = CheckVector(KindFromFileName(file), boost::json::serialize(vector));
  EXPECT_EQ(report.status, VectorReport::Status::kPassed) << StatusName(report.status) << ": "
                                                          << report.error;
  for (const std::string& mismatch : report.mismatches) ADD_FAILURE() << mismatch;
  EXPECT_GT(report.checks, 0u);
}

INSTANTIATE_TEST_SUITE_P(Draft20, OfficialVector, ::testing::ValuesIn(kOfficialFiles),
                         [](const auto& test_param) {
                           std::string name = test_param.param;
                           name = name.substr(0, name.find('.'));
                           return name;
                         });

}  // namespace
}  // namespace canopy::conformance
