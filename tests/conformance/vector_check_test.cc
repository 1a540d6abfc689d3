// The conformance checker itself: it must notice every kind of difference,
// not just pass the official files.
#include "conformance/vector_check.h"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>
#include <functional>

#include "tests/testing/vectors.h"

namespace canopy::conformance {
namespace {

namespace json = boost::json;

// Flips the last hex digit of a hex string value.
void FlipHexDigit(json::value& value) {
  std::string text(value.as_string());
  ASSERT_FALSE(text.empty());
  text.back() = text.back() == '0' ? '1' : '0';
  value = json::string(text);
}

TEST(VectorCheck, KindComesFromTheFileName) {
  EXPECT_EQ(KindFromFileName("vectors/Poplar1_bad_corr_inner.json"), "Poplar1");
  EXPECT_EQ(KindFromFileName("Prio3SumVecWithMultiproof_0.json"), "Prio3SumVecWithMultiproof");
  EXPECT_EQ(KindFromFileName("XofTurboShake128.json"), "XofTurboShake128");
}

TEST(VectorCheck, NoticesEveryAlteredValue) {
  CANOPY_LOAD_VECTOR(original, "vdaf/Poplar1_0.json");
  ASSERT_EQ(CheckVector("Poplar1", json::serialize(original)).status,
            VectorReport::Status::kPassed);
  // Each of these paths names a value the checker must compare.
  auto report_field = [](json::value& v, const char* key) -> json::value& {
    return v.as_object()["reports"].as_array()[0].as_object()[key];
  };
  std::vector<std::function<json::value&(json::value&)>> targets = {
      [&](json::value& v) -> json::value& { return report_field(v, "public_share"); },
      [&](json::value& v) -> json::value& { return report_field(v, "input_shares").as_array()[1]; },
      [&](json::value& v) -> json::value& {
        return report_field(v, "verifier_shares").as_array()[0].as_array()[0];
      },
      [&](json::value& v) -> json::value& {
        return report_field(v, "verifier_shares").as_array()[1].as_array()[1];
      },
      [&](json::value& v) -> json::value& {
        return report_field(v, "verifier_messages").as_array()[0];
      },
      [&](json::value& v) -> json::value& { return report_field(v, "out_shares").as_array()[0]; },
      [&](json::value& v) -> json::value& { return v.as_object()["agg_shares"].as_array()[1]; },
  };
  for (size_t i = 0; i < targets.size(); ++i) {
    json::value altered = original;
    FlipHexDigit(targets[i](altered));
    VectorReport report = CheckVector("Poplar1", json::serialize(altered));
    EXPECT_NE(report.status, VectorReport::Status::kPassed) << "alteration " << i;
  }
  // A different aggregate result.
  json::value altered = original;
  altered.as_object()["agg_result"].as_array()[1] = 2;
  EXPECT_EQ(CheckVector("Poplar1", json::serialize(altered)).status, VectorReport::Status::kFailed);
  // A step that should succeed marked as a refusal.
  altered = original;
  altered.as_object()["operations"].as_array()[1].as_object()["success"] = false;
  EXPECT_EQ(CheckVector("Poplar1", json::serialize(altered)).status, VectorReport::Status::kFailed);
}

TEST(VectorCheck, NegativeVectorMustBeRefusedAtTheRightStep) {
  CANOPY_LOAD_VECTOR(original, "vdaf/Poplar1_bad_corr_inner.json");
  ASSERT_EQ(CheckVector("Poplar1", json::serialize(original)).status,
            VectorReport::Status::kPassed);
  json::value altered = original;
  json::array& operations = altered.as_object()["operations"].as_array();
  operations.back().as_object()["success"] = true;  // Claim the bad report is accepted.
  EXPECT_EQ(CheckVector("Poplar1", json::serialize(altered)).status, VectorReport::Status::kFailed);
}

TEST(VectorCheck, ReportsMalformedAndUnsupportedFiles) {
  EXPECT_EQ(CheckVector("Poplar1", "{not json").status, VectorReport::Status::kMalformed);
  EXPECT_EQ(CheckVector("Poplar1", "{}").status, VectorReport::Status::kMalformed);
  EXPECT_EQ(CheckVector("Poplar1", R"({"bits": 0})").status, VectorReport::Status::kMalformed);
  EXPECT_EQ(CheckVector("Mastic", "{}").status, VectorReport::Status::kUnsupported);
  CANOPY_LOAD_VECTOR(original, "vdaf/Poplar1_0.json");
  json::value altered = original;
  altered.as_object()["reports"].as_array()[0].as_object()["public_share"] = "zz";
  VectorReport report = CheckVector("Poplar1", json::serialize(altered));
  EXPECT_EQ(report.status, VectorReport::Status::kMalformed);
  EXPECT_NE(report.error.find("public_share"), std::string::npos) << report.error;
}

TEST(VectorCheck, IllTypedOperationsAreMalformedNotPassed) {
  CANOPY_LOAD_VECTOR(original, "vdaf/Poplar1_0.json");
  json::value altered = original;
  altered.as_object()["operations"].as_array()[1].as_object()["success"] = "yes";
  EXPECT_EQ(CheckVector("Poplar1", json::serialize(altered)).status,
            VectorReport::Status::kMalformed);
  altered = original;
  altered.as_object()["operations"].as_array()[1].as_object()["aggregator_id"] = 7;
  EXPECT_EQ(CheckVector("Poplar1", json::serialize(altered)).status,
            VectorReport::Status::kMalformed);
  altered = original;
  altered.as_object()["reports"].as_array()[0].as_object()["verifier_shares"].as_array()[0] = 5;
  EXPECT_EQ(CheckVector("Poplar1", json::serialize(altered)).status,
            VectorReport::Status::kMalformed);
}

TEST(VectorCheck, XofAndIdpfVectorsAreCompared) {
  CANOPY_LOAD_VECTOR(xof, "vdaf/XofTurboShake128.json");
  json::value altered = xof;
  FlipHexDigit(altered.as_object()["derived_seed"]);
  EXPECT_EQ(CheckVector("XofTurboShake128", json::serialize(altered)).status,
            VectorReport::Status::kFailed);
  CANOPY_LOAD_VECTOR(idpf, "vdaf/IdpfBBCGGI21_0.json");
  altered = idpf;
  FlipHexDigit(altered.as_object()["public_share"]);
  EXPECT_EQ(CheckVector("IdpfBBCGGI21", json::serialize(altered)).status,
            VectorReport::Status::kFailed);
}

}  // namespace
}  // namespace canopy::conformance
