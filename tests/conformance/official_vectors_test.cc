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
    "IdpfBBCGGI21_0.json",
    "XofTurboShake128.json",
    "XofFixedKeyAes128.json",
    "Poplar1_0.json",
    "Poplar1_1.json",
    "Poplar1_2.json",
    "Poplar1_3.json",
    "Poplar1_4.json",
    "Poplar1_5.json",
    "Poplar1_bad_corr_inner.json",
    "Prio3Count_0.json",
    "Prio3Count_1.json",
    "Prio3Count_2.json",
    "Prio3Count_bad_gadget_poly.json",
    "Prio3Count_bad_helper_seed.json",
    "Prio3Count_bad_meas_share.json",
    "Prio3Count_bad_wire_seed.json",
    "Prio3HigherDegree_0.json",
    "Prio3Histogram_0.json",
    "Prio3Histogram_1.json",
    "Prio3Histogram_2.json",
    "Prio3Histogram_bad_helper_jr_blind.json",
    "Prio3Histogram_bad_leader_jr_blind.json",
    "Prio3Histogram_bad_public_share.json",
    "Prio3Histogram_bad_verifier_message.json",
    "Prio3MultihotCountVec_0.json",
    "Prio3MultihotCountVec_1.json",
    "Prio3MultihotCountVec_2.json",
    "Prio3SumVecWithMultiproof_0.json",
    "Prio3SumVecWithMultiproof_1.json",
    "Prio3SumVec_0.json",
    "Prio3SumVec_1.json",
    "Prio3Sum_0.json",
    "Prio3Sum_1.json",
    "Prio3Sum_2.json",
};

class OfficialVector : public ::testing::TestWithParam<const char*> {};

TEST_P(OfficialVector, IsReproducedByteForByte) {
  const std::string file = GetParam();
  CANOPY_LOAD_VECTOR(vector, "vdaf/" + file);
  VectorReport report = CheckVector(KindFromFileName(file), boost::json::serialize(vector));
  EXPECT_EQ(report.status, VectorReport::Status::kPassed)
      << StatusName(report.status) << ": " << report.error;
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
