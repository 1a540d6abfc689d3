#include "collector_app/walk_output.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "tests/collector_app/fake_batch.h"

namespace canopy::collector {
namespace {

idpf::BitString Padded(const std::string& text, size_t bytes) {
  std::vector<uint8_t> data(text.begin(), text.end());
  data.resize(bytes, 0);
  return idpf::BitString::FromAllBytes(data);
}

// A small finished walk over 4-byte strings, stride 16: two rounds.
WalkResult SmallWalk() {
  config::HeavyHitters config;
  config.set_bits(32);
  config.set_default_threshold(2);
  config.set_bits_per_round(16);
  Result<WalkSettings> settings = WalkSettings::FromConfig(config);
  EXPECT_TRUE(settings.has_value());
  testing::FakeBatch batch(32);
  batch.AddText("ab", 5);
  batch.AddText("a,\"b", 3);
  batch.AddText("\\\n\xff", 2);
  batch.AddText("zz", 1);
  Result<WalkResult> result = RunWalk(*settings, batch.Runner());
  EXPECT_TRUE(result.has_value());
  result->elapsed = std::chrono::milliseconds(1300);
  return *result;
}

TEST(WalkOutputTest, DisplaysStringsDecoded) {
  EXPECT_EQ(DisplayString(Padded("example.com", 32), 256), "example.com");
  EXPECT_EQ(DisplayString(Padded("a\nb\x01", 8), 64), "a\\x0ab\\x01");
  EXPECT_EQ(DisplayString(Padded("C:\\x", 8), 64), "C:\\\\x");
  EXPECT_EQ(DisplayString(Padded("\x7f\x80\xff", 4), 32), "\\x7f\\x80\\xff");
  EXPECT_EQ(DisplayString(Padded(std::string("a\0b", 3), 4), 32), "a\\x00b");
  EXPECT_EQ(DisplayString(Padded("", 4), 32), "");
  EXPECT_EQ(DisplayString(idpf::BitString::FromUint64(0x5a3, 12), 12), "010110100011");
  EXPECT_EQ(DisplayPrefix(idpf::BitString::FromUint64(0x61, 8)), "a");
  EXPECT_EQ(DisplayPrefix(Padded("a", 2)), "a\\x00");  // A prefix is not padding.
  EXPECT_EQ(DisplayPrefix(idpf::BitString::FromUint64(0x6, 4)), "0110");
}

TEST(WalkOutputTest, QuotesCsvFields) {
  EXPECT_EQ(CsvField("plain text"), "plain text");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("two\nlines"), "\"two\nlines\"");
}

TEST(WalkOutputTest, Text) {
  const WalkResult result = SmallWalk();
  EXPECT_EQ(FormatWalkResult(result, {}),
            "Heavy hitters: 3 (32-bit strings; batch of 11 reports; 2 rounds, 1.3 s)\n"
            "rank  count  string\n"
            "   1      5  ab\n"
            "   2      3  a,\"b\n"
            "   3      2  \\\\\\x0a\\xff\n");
  const std::string tree = FormatWalkResult(result, {OutputFormat::kText, true});
  EXPECT_NE(tree.find("\n\nPrefix tree:\n"
                      "round 1, level 15 (16-bit prefixes), 11 reports: 65536 candidates, 3 kept "
                      "(65532 with count 0 not shown)\n"
                      "  prefix  count  threshold  status\n"
                      "  \\\\\\x0a      2          2  kept\n"
                      "  a,          3          2  kept\n"
                      "  ab          5          2  kept\n"
                      "  zz          1          2  below threshold\n"
                      "round 2, level 31 (32-bit prefixes), 11 reports: 196608 candidates, 3 kept "
                      "(196605 with count 0 not shown)\n"
                      "  prefix      count  threshold  status\n"
                      "  \\\\\\x0a\\xff      2          2  kept\n"
                      "  a,\"b            3          2  kept\n"
                      "  ab              5          2  kept\n"),
            std::string::npos)
      << tree;
}

TEST(WalkOutputTest, TextOfAWalkThatStoppedEarly) {
  WalkResult result;
  result.bits = 16;
  result.report_count = 4;
  result.stopped_early = true;
  result.resumed_rounds = 1;
  result.rounds.resize(2);
  result.rounds[1].level = 1;
  EXPECT_EQ(FormatWalkResult(result, {}),
            "Heavy hitters: 0 (16-bit strings; batch of 4 reports; 2 rounds, 1 of them resumed, "
            "0.0 s)\n"
            "The walk stopped at level 1: no candidate met its threshold.\n");
}

TEST(WalkOutputTest, Csv) {
  const WalkResult result = SmallWalk();
  EXPECT_EQ(FormatWalkResult(result, {OutputFormat::kCsv, false}),
            "count,string\n"
            "5,ab\n"
            "3,\"a,\"\"b\"\n"
            "2,\\\\\\x0a\\xff\n");
  const std::string tree = FormatWalkResult(result, {OutputFormat::kCsv, true});
  EXPECT_NE(tree.find("\n\nround,level,prefix,count,threshold,status\n"
                      "1,15,\\\\\\x0a,2,2,kept\n"
                      "1,15,\"a,\",3,2,kept\n"),
            std::string::npos)
      << tree.substr(0, 400);
}

TEST(WalkOutputTest, JsonParsesBack) {
  const WalkResult result = SmallWalk();
  for (bool tree : {false, true}) {
    const std::string text = FormatWalkResult(result, {OutputFormat::kJson, tree});
    boost::system::error_code error;
    boost::json::value document = boost::json::parse(text, error);
    ASSERT_FALSE(error) << text;
    const boost::json::object& root = document.as_object();
    EXPECT_EQ(root.at("bits").to_number<uint64_t>(), 32u);
    EXPECT_EQ(root.at("report_count").to_number<uint64_t>(), 11u);
    EXPECT_EQ(root.at("rounds").to_number<uint64_t>(), 2u);
    EXPECT_DOUBLE_EQ(root.at("seconds").to_number<double>(), 1.3);
    EXPECT_FALSE(root.at("stopped_early").as_bool());
    const boost::json::array& hitters = root.at("heavy_hitters").as_array();
    ASSERT_EQ(hitters.size(), 3u);
    EXPECT_EQ(hitters[1].at("rank").to_number<uint64_t>(), 2u);
    EXPECT_EQ(hitters[1].at("count").to_number<uint64_t>(), 3u);
    EXPECT_EQ(hitters[1].at("string").as_string(), "a,\"b");
    EXPECT_EQ(hitters[1].at("hex").as_string(), "612c2262");
    EXPECT_EQ(hitters[2].at("string").as_string(), "\\\\\\x0a\\xff");
    EXPECT_EQ(root.contains("tree"), tree);
    if (tree) {
      const boost::json::array& rounds = root.at("tree").as_array();
      ASSERT_EQ(rounds.size(), 2u);
      EXPECT_EQ(rounds[0].at("level").to_number<uint64_t>(), 15u);
      const boost::json::array& candidates = rounds[0].at("candidates").as_array();
      ASSERT_EQ(candidates.size(), 4u);
      EXPECT_EQ(candidates[3].at("prefix").as_string(), "zz");
      EXPECT_EQ(candidates[3].at("status").as_string(), "below threshold");
    }
  }
}

TEST(WalkOutputTest, ProgressLines) {
  WalkProgress progress;
  progress.round = 3;
  progress.planned_rounds = 17;
  progress.level = 9;
  progress.candidates = 40;
  EXPECT_EQ(FormatProgress(progress), "round 3/17: level 9, 40 candidates, collecting");
  progress.stage = WalkProgress::Stage::kRoundFinished;
  progress.survivors = 12;
  progress.report_count = 1000;
  progress.round_time = std::chrono::milliseconds(1234);
  progress.total_time = std::chrono::milliseconds(5000);
  EXPECT_EQ(FormatProgress(progress),
            "round 3/17: level 9, 40 candidates, 12 survivors, 1000 reports, 1.2 s (total 5.0 s)");
  progress.stage = WalkProgress::Stage::kResumed;
  progress.round = 4;
  EXPECT_EQ(FormatProgress(progress),
            "resumed 4 rounds from the state file (last: level 9, 12 survivors)");
}

}  // namespace
}  // namespace canopy::collector
