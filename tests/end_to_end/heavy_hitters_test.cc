// Heavy hitters end to end: a leader and a helper (`canopy-aggregator`) on
// loopback, `canopy-client` uploading a Zipf workload and writing its true
// counts, and `canopy-collector heavy-hitters` walking the prefix tree. For
// each setting the walk must return exactly the strings whose true count
// meets their threshold, each with its exact count.
//
// The settings cover relative and absolute thresholds, a subtree with a lower
// threshold, strides of 1, 4 and 8 bits, a first round of another length,
// both batch modes, a cap on the candidates per round that cuts some, and a
// threshold no string meets (and the command's usage, on request). Each round
// is a collection, which takes a good fraction of a second on a small
// machine, so the strings are short (64 bits, and 16 for the stride of one
// bit) and the strides large.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/end_to_end/end_to_end_fixture.h"

namespace canopy::end_to_end {
namespace {

using canopy::testing::LocalTask;
using canopy::testing::ZipfUpload;

class HeavyHittersTest : public EndToEndTest {
 protected:
  // Adds a Poplar1 task, starts the aggregators, uploads `workload` at the
  // current time and reads the client's true counts. Fails the test (check
  // HasFatalFailure) when any step fails.
  LocalTask StartAndUpload(uint32_t bits, bool leader_selected, ZipfUpload workload) {
    auto task = deployment().AddPoplar1Task(bits, leader_selected, /*min_batch_size=*/100);
    EXPECT_TRUE(task) << task.error().ToString();
    if (!task) return {};
    auto started = deployment().Start();
    EXPECT_TRUE(started) << started.error().ToString();
    if (!started) return {};
    upload_time_ = NowSeconds();
    workload.time_seconds = upload_time_;
    auto uploaded = deployment().UploadZipf(*task, workload, "client");
    EXPECT_TRUE(uploaded) << uploaded.error().ToString();
    if (!uploaded) return {};
    truth_ = ReadCounts(uploaded->true_counts_path);
    EXPECT_EQ(TotalCount(truth_), workload.reports);
    return *task;
  }

  std::string WriteConfig(const LocalTask& task, const config::HeavyHitters& heavy_hitters) {
    return WriteWalkConfig(deployment(), task, upload_time_, heavy_hitters, "collector");
  }

  uint64_t upload_time_ = 0;
  std::vector<StringCount> truth_;
};

TEST_F(HeavyHittersTest, RelativeThresholdStrideFourTimeIntervalBatch) {
  const LocalTask task = StartAndUpload(64, /*leader_selected=*/false, {.reports = 500});
  ASSERT_FALSE(HasFatalFailure() || HasFailure());
  config::HeavyHitters settings;
  settings.set_bits(64);
  settings.set_relative_threshold(0.05);
  settings.set_bits_per_round(4);
  const std::string output = RunWalk(deployment(), WriteConfig(task, settings), "csv", "walk");

  const std::vector<StringCount> expected =
      ExpectedHeavyHitters(truth_, ResolveFraction(0.05, 500));
  ASSERT_GE(expected.size(), 3u) << "the workload has too few heavy hitters to show anything";
  const std::vector<StringCount> found = ReadCounts(output);
  EXPECT_EQ(found, expected) << "found:\n"
                             << Describe(found) << "expected:\n"
                             << Describe(expected);
}

TEST_F(HeavyHittersTest, AbsoluteThresholdStrideEightFirstRoundFourLeaderSelectedBatch) {
  const LocalTask task = StartAndUpload(64, /*leader_selected=*/true, {.reports = 500, .seed = 5});
  ASSERT_FALSE(HasFatalFailure() || HasFailure());
  config::HeavyHitters settings;
  settings.set_bits(64);
  settings.set_default_threshold(15);
  settings.set_bits_per_round(8);
  settings.set_first_round_bits(4);
  const std::string output = RunWalk(deployment(), WriteConfig(task, settings), "json", "walk");

  const std::vector<StringCount> expected = ExpectedHeavyHitters(truth_, 15);
  ASSERT_GE(expected.size(), 3u);
  const JsonWalkResult result = ReadWalkJson(output);
  EXPECT_EQ(result.heavy_hitters, expected) << "found:\n"
                                            << Describe(result.heavy_hitters) << "expected:\n"
                                            << Describe(expected);
  EXPECT_EQ(result.report_count, 500u);
  // 4 bits, then 8 more per round: 4, 12, ..., 60, and 64.
  EXPECT_EQ(result.rounds, 9u);
  EXPECT_FALSE(result.stopped_early);
}

// The smallest stride, over 2-byte strings (after a first round of 8 bits,
// to keep the rounds few).
TEST_F(HeavyHittersTest, StrideOne) {
  const LocalTask task =
      StartAndUpload(16, /*leader_selected=*/false, {.reports = 1000, .seed = 2, .distinct = 30});
  ASSERT_FALSE(HasFatalFailure() || HasFailure());
  config::HeavyHitters settings;
  settings.set_bits(16);
  settings.set_default_threshold(20);
  settings.set_bits_per_round(1);
  settings.set_first_round_bits(8);
  const std::string output = RunWalk(deployment(), WriteConfig(task, settings), "json", "walk");

  const std::vector<StringCount> expected = ExpectedHeavyHitters(truth_, 20);
  ASSERT_GE(expected.size(), 3u);
  const JsonWalkResult result = ReadWalkJson(output);
  EXPECT_EQ(result.heavy_hitters, expected) << "found:\n"
                                            << Describe(result.heavy_hitters) << "expected:\n"
                                            << Describe(expected);
  EXPECT_EQ(result.rounds, 9u);
}

// A subtree with a lower threshold: its strings with counts between the two
// thresholds are found, those elsewhere are not.
TEST_F(HeavyHittersTest, SubtreeThreshold) {
  const LocalTask task =
      StartAndUpload(64, /*leader_selected=*/false, {.reports = 500, .seed = 3, .distinct = 300});
  ASSERT_FALSE(HasFatalFailure() || HasFailure());
  constexpr uint64_t kHigh = 25;
  constexpr uint64_t kLow = 6;
  // The subtree: the first bytes of the most frequent string that only the
  // lower threshold lets through.
  std::string prefix;
  for (const StringCount& row : truth_) {
    if (row.count >= kLow && row.count < kHigh) {
      prefix = row.string.substr(0, 3);
      break;
    }
  }
  ASSERT_FALSE(prefix.empty()) << "no string has a count in [" << kLow << ", " << kHigh << ")";
  config::HeavyHitters settings;
  settings.set_bits(64);
  settings.set_default_threshold(kHigh);
  settings.set_bits_per_round(8);
  settings.set_first_round_bits(8);
  config::PrefixThreshold* subtree = settings.add_prefix_thresholds();
  subtree->set_text(prefix);
  subtree->set_threshold(kLow);
  const std::string output = RunWalk(deployment(), WriteConfig(task, settings), "csv", "walk");

  const std::vector<StringCount> expected =
      ExpectedHeavyHitters(truth_, kHigh, {{.prefix = prefix, .threshold = kLow}});
  const std::vector<StringCount> found = ReadCounts(output);
  EXPECT_EQ(found, expected) << "subtree \"" << prefix << "\"; found:\n"
                             << Describe(found) << "expected:\n"
                             << Describe(expected);
  size_t below_default = 0;
  for (const StringCount& row : found) {
    if (row.count < kHigh) {
      EXPECT_TRUE(row.string.starts_with(prefix)) << row.string;
      ++below_default;
    }
  }
  EXPECT_GE(below_default, 1u) << "the subtree's threshold let nothing more through";
  EXPECT_LT(below_default, found.size()) << "nothing met the default threshold";
}

// A cap that cuts prefixes meeting the threshold: the walk follows only the
// highest counts, exactly as a plain simulation of the walk on the true
// counts does.
TEST_F(HeavyHittersTest, CapOnCandidatesPerRound) {
  const LocalTask task = StartAndUpload(64, /*leader_selected=*/true, {.reports = 500, .seed = 11});
  ASSERT_FALSE(HasFatalFailure() || HasFailure());
  // Room for two survivors' extensions per round.
  CappedWalk walk{
      .bits = 64, .first_round_bits = 8, .bits_per_round = 8, .threshold = 5, .cap = 512};
  config::HeavyHitters settings;
  settings.set_bits(walk.bits);
  settings.set_default_threshold(walk.threshold);
  settings.set_bits_per_round(walk.bits_per_round);
  settings.set_first_round_bits(walk.first_round_bits);
  settings.set_max_candidates_per_level(walk.cap);
  const std::string output =
      RunWalk(deployment(), WriteConfig(task, settings), "json", "walk", /*tree=*/true);

  size_t cut = 0;
  const std::vector<StringCount> expected = SimulateCappedWalk(truth_, walk, &cut);
  ASSERT_GT(cut, 0u) << "the cap cuts nothing in this workload";
  ASSERT_FALSE(expected.empty());
  // Without the cap more strings would be found: the cap does change the walk.
  EXPECT_LT(expected.size(), ExpectedHeavyHitters(truth_, walk.threshold).size());
  const JsonWalkResult result = ReadWalkJson(output);
  EXPECT_EQ(result.heavy_hitters, expected) << "found:\n"
                                            << Describe(result.heavy_hitters) << "expected:\n"
                                            << Describe(expected);
  EXPECT_LE(result.max_candidates_in_a_round, walk.cap);
  EXPECT_EQ(result.cut_by_cap, cut);
}

// A threshold above the number of reports: nothing survives the first round,
// and the walk stops there with an empty result.
TEST_F(HeavyHittersTest, ThresholdNothingMeetsStopsEarly) {
  const LocalTask task = StartAndUpload(64, /*leader_selected=*/false, {.reports = 500});
  ASSERT_FALSE(HasFatalFailure() || HasFailure());
  config::HeavyHitters settings;
  settings.set_bits(64);
  settings.set_default_threshold(501);
  settings.set_bits_per_round(4);
  const std::string json = RunWalk(deployment(), WriteConfig(task, settings), "json", "walk");
  const JsonWalkResult result = ReadWalkJson(json);
  EXPECT_TRUE(result.heavy_hitters.empty()) << Describe(result.heavy_hitters);
  EXPECT_TRUE(result.stopped_early);
  EXPECT_EQ(result.rounds, 1u);
  EXPECT_EQ(result.report_count, 500u);
}

TEST_F(HeavyHittersTest, HelpAfterTheCommandPrintsTheUsage) {
  for (const char* help : {"--help", "-h"}) {
    auto run = deployment().RunCollector({"heavy-hitters", help}, std::string("help") + help);
    ASSERT_TRUE(run) << run.error().ToString();
    EXPECT_TRUE(run->succeeded()) << run->status_text() << "\n" << run->Stderr();
    EXPECT_TRUE(run->Stdout().starts_with("usage: canopy-collector COMMAND")) << run->Stdout();
  }
  auto top = deployment().RunCollector({"--help"}, "help-top");
  ASSERT_TRUE(top) << top.error().ToString();
  EXPECT_TRUE(top->succeeded()) << top->status_text() << "\n" << top->Stderr();
  EXPECT_TRUE(top->Stdout().starts_with("usage: canopy-collector COMMAND")) << top->Stdout();
}

}  // namespace
}  // namespace canopy::end_to_end
