// Problem documents and base64url.
#include "dap/problem.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "dap/base64url.h"

namespace canopy::dap {
namespace {

TEST(Base64Url, KnownAnswersAndRoundTrips) {
  // RFC 4648 section 10, without padding, in the URL-safe alphabet.
  const std::pair<std::string, std::string> cases[] = {
      {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},         {"foo", "Zm9v"},
      {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : cases) {
    std::vector<uint8_t> bytes(plain.begin(), plain.end());
    EXPECT_EQ(Base64UrlEncode(bytes), encoded);
    EXPECT_EQ(Base64UrlDecode(encoded).value(), bytes);
  }
  const std::vector<uint8_t> high = {0xfb, 0xff};
  EXPECT_EQ(Base64UrlEncode(high), "-_8");
  EXPECT_FALSE(Base64UrlDecode("Zm9v="));  // Padding.
  EXPECT_FALSE(Base64UrlDecode("Zm+v"));   // Standard alphabet.
  EXPECT_FALSE(Base64UrlDecode("Z"));      // Impossible length.
  EXPECT_FALSE(Base64UrlDecode("Zh"));     // Non-zero trailing bits.
}

TEST(ProblemDocument, EveryTypeHasItsUriAndStatus) {
  EXPECT_EQ(ProblemTypeUri(ProblemType::kInvalidMessage),
            "urn:ietf:params:ppm:dap:error:invalidMessage");
  EXPECT_EQ(ProblemTypeUri(ProblemType::kInvalidAggregationParameter),
            "urn:ietf:params:ppm:dap:error:invalidAggregationParameter");
  EXPECT_EQ(ProblemStatus(ProblemType::kUnrecognizedTask), 404);
  EXPECT_EQ(ProblemStatus(ProblemType::kBatchOverlap), 400);
  EXPECT_EQ(ProblemTypeUri(ProblemType::kUnauthorized), "about:blank");
  EXPECT_EQ(ProblemStatus(ProblemType::kUnauthorized), 403);
  EXPECT_EQ(ProblemTypeUri(ProblemType::kNotFound), "about:blank");
  EXPECT_EQ(ProblemStatus(ProblemType::kNotFound), 404);
  EXPECT_EQ(ProblemTypeUri(ProblemType::kMethodNotAllowed), "about:blank");
  EXPECT_EQ(ProblemStatus(ProblemType::kMethodNotAllowed), 405);
  // Every type parses back as itself (the about:blank ones by their status).
  for (int i = 0; i <= static_cast<int>(ProblemType::kMethodNotAllowed); ++i) {
    ProblemDocument document{static_cast<ProblemType>(i), "detail " + std::to_string(i), {}};
    TaskId task{};
    task[0] = static_cast<uint8_t>(i);
    document.task_id = task;
    Result<ProblemDocument> parsed = ProblemDocument::FromJson(document.ToJson());
    ASSERT_TRUE(parsed) << document.ToJson();
    EXPECT_EQ(parsed->type, document.type);
    EXPECT_EQ(parsed->detail, document.detail);
    EXPECT_EQ(parsed->task_id, document.task_id);
  }
}

TEST(ProblemDocument, JsonCarriesTheDraftsMembers) {
  TaskId task{};
  ProblemDocument document{ProblemType::kStepMismatch, "step 3 after step 1", task};
  boost::json::value json = boost::json::parse(document.ToJson());
  EXPECT_EQ(json.at("type").as_string(), "urn:ietf:params:ppm:dap:error:stepMismatch");
  EXPECT_EQ(json.at("status").as_int64(), 400);
  EXPECT_EQ(json.at("detail").as_string(), "step 3 after step 1");
  EXPECT_EQ(json.at("taskid").as_string(), Base64UrlEncode(task));
  EXPECT_FALSE(ProblemDocument::FromJson("not json"));
  EXPECT_FALSE(ProblemDocument::FromJson(R"({"status": 400})"));
  EXPECT_FALSE(ProblemDocument::FromJson(R"({"type": "urn:ietf:params:ppm:dap:error:madeUp"})"));
}

}  // namespace
}  // namespace canopy::dap
