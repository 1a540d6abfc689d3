#include "collector_app/heavy_hitters_walk.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "tests/collector_app/fake_batch.h"

namespace canopy::collector {
namespace {

using testing::FakeBatch;

idpf::BitString Bits(const std::string& text) { return *idpf::BitString::Parse(text); }

config::HeavyHitters Config(uint32_t bits, uint64_t threshold, uint32_t bits_per_round = 1,
                            uint32_t first_round_bits = 0, uint32_t cap = 0) {
  config::HeavyHitters config;
  config.set_bits(bits);
  config.set_default_threshold(threshold);
  config.set_bits_per_round(bits_per_round);
  config.set_first_round_bits(first_round_bits);
  config.set_max_candidates_per_level(cap);
  return config;
}

WalkSettings Settings(const config::HeavyHitters& config) {
  Result<WalkSettings> settings = WalkSettings::FromConfig(config);
  EXPECT_TRUE(settings.has_value()) << settings.error().ToString();
  return settings.value_or(WalkSettings{});
}

// Runs a walk over `batch` and checks what every walk must satisfy: the
// runner saw valid candidates, never more than the cap, and the heavy hitters
// are exactly the expected ones when the cap does not bind.
WalkResult RunAndCheck(FakeBatch& batch, const WalkSettings& settings) {
  Result<WalkResult> result = RunWalk(settings, batch.Runner());
  EXPECT_TRUE(result.has_value()) << result.error().ToString();
  if (!result) return {};
  if (settings.max_candidates_per_level != 0) {
    EXPECT_LE(batch.most_candidates(), settings.max_candidates_per_level);
  }
  EXPECT_EQ(result->rounds.size(), batch.levels_asked().size());
  EXPECT_EQ(result->report_count, batch.report_count());
  if (!result->stopped_early) {
    EXPECT_EQ(result->rounds.size(), settings.PlannedRounds());
  }
  return *result;
}

TEST(ThresholdTest, ResolvesCountsAndFractions) {
  EXPECT_EQ(Threshold::Count(7).Resolve(1000), 7u);
  EXPECT_EQ(Threshold::Fraction(0.07).Resolve(100), 7u);
  EXPECT_EQ(Threshold::Fraction(0.3).Resolve(10), 3u);
  EXPECT_EQ(Threshold::Fraction(0.001).Resolve(1000), 1u);
  EXPECT_EQ(Threshold::Fraction(0.5).Resolve(3), 2u);
  EXPECT_EQ(Threshold::Fraction(0.1).Resolve(1001), 101u);
  EXPECT_EQ(Threshold::Fraction(1.0).Resolve(12345), 12345u);
  // A count of zero is never a heavy hitter, even in an empty batch.
  EXPECT_EQ(Threshold::Fraction(0.5).Resolve(0), 1u);
  EXPECT_EQ(Threshold::Fraction(1e-9).Resolve(10), 1u);
  EXPECT_EQ(Threshold::Fraction(0.001).ToString(), "0.001 of the reports");
}

TEST(WalkSettingsTest, AppliesDefaults) {
  config::HeavyHitters config;
  config.set_bits(12);
  config.set_relative_threshold(0.25);
  WalkSettings settings = Settings(config);
  EXPECT_EQ(settings.bits_per_round, 3u);
  EXPECT_EQ(settings.first_round_bits, 3u);
  EXPECT_EQ(settings.default_threshold, Threshold::Fraction(0.25));
  EXPECT_EQ(settings.PlannedRounds(), 4u);

  config.set_bits_per_round(5);
  settings = Settings(config);
  EXPECT_EQ(settings.first_round_bits, 5u);
  EXPECT_EQ(settings.PlannedRounds(), 3u);  // 5, 10, 12 bits.
  EXPECT_EQ(settings.RoundPrefixBits(2), 12u);
}

TEST(WalkSettingsTest, SortsPrefixThresholds) {
  config::HeavyHitters config = Config(16, 10);
  config::PrefixThreshold* text = config.add_prefix_thresholds();
  text->set_text("a");  // 01100001
  text->set_threshold(3);
  config::PrefixThreshold* bits = config.add_prefix_thresholds();
  bits->set_bits("0110");
  bits->set_relative_threshold(0.5);
  WalkSettings settings = Settings(config);
  ASSERT_EQ(settings.prefix_thresholds.size(), 2u);
  EXPECT_EQ(settings.prefix_thresholds[0].prefix, Bits("0110"));
  EXPECT_EQ(settings.prefix_thresholds[0].threshold, Threshold::Fraction(0.5));
  EXPECT_EQ(settings.prefix_thresholds[1].prefix, Bits("01100001"));
  EXPECT_EQ(settings.prefix_thresholds[1].threshold, Threshold::Count(3));
}

TEST(WalkSettingsTest, RefusesBadSettingsNamingTheField) {
  struct Case {
    std::string field;
    config::HeavyHitters config;
  };
  std::vector<Case> cases;
  cases.push_back({"heavy_hitters.bits", Config(0, 1)});
  cases.push_back({"heavy_hitters.bits_per_round", Config(64, 1, 17)});
  cases.push_back({"heavy_hitters.first_round_bits", Config(8, 1, 1, 9)});
  cases.push_back({"heavy_hitters.first_round_bits", Config(64, 1, 1, 17)});
  cases.push_back({"heavy_hitters.default_threshold", Config(8, 0)});
  cases.push_back({"heavy_hitters.max_candidates_per_level", Config(64, 1, 4, 6, 32)});
  cases.push_back({"heavy_hitters.max_candidates_per_level", Config(64, 1, 1, 1, 1u << 30)});
  {
    config::HeavyHitters config = Config(8, 1);
    config.clear_default_threshold();
    cases.push_back({"heavy_hitters.threshold", config});
    config.set_relative_threshold(1.5);
    cases.push_back({"heavy_hitters.relative_threshold", config});
  }
  {
    config::HeavyHitters config = Config(8, 1);
    config.add_prefix_thresholds()->set_bits("012");
    config.mutable_prefix_thresholds(0)->set_threshold(1);
    cases.push_back({"heavy_hitters.prefix_thresholds[0].bits", config});
  }
  {
    config::HeavyHitters config = Config(8, 1);
    config.add_prefix_thresholds()->set_text("ab");
    config.mutable_prefix_thresholds(0)->set_threshold(1);
    cases.push_back({"heavy_hitters.prefix_thresholds[0].text", config});
  }
  {
    config::HeavyHitters config = Config(16, 1);
    config.add_prefix_thresholds()->set_text("a");
    config.mutable_prefix_thresholds(0)->set_threshold(1);
    config.add_prefix_thresholds()->set_bits("01100001");
    config.mutable_prefix_thresholds(1)->set_threshold(2);
    cases.push_back({"heavy_hitters.prefix_thresholds[1].bits", config});
  }
  {
    config::HeavyHitters config = Config(16, 1);
    config.add_prefix_thresholds()->set_bits("1");
    config.mutable_prefix_thresholds(0)->set_relative_threshold(0.0);
    cases.push_back({"heavy_hitters.prefix_thresholds[0].relative_threshold", config});
  }
  {
    config::HeavyHitters config = Config(16, 1);
    config.add_prefix_thresholds()->set_bits("1");
    cases.push_back({"heavy_hitters.prefix_thresholds[0].value", config});
  }
  for (const Case& c : cases) {
    Result<WalkSettings> settings = WalkSettings::FromConfig(c.config);
    ASSERT_FALSE(settings.has_value()) << c.field;
    EXPECT_EQ(settings.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(settings.error().message().find(c.field + ":"), std::string::npos)
        << c.field << " not in: " << settings.error().message();
  }
}

TEST(HeavyHittersWalkTest, FirstRoundAsksForAllPrefixes) {
  HeavyHittersWalk walk(Settings(Config(16, 1, 2, 3)));
  ASSERT_FALSE(walk.finished());
  EXPECT_EQ(walk.next_level(), 2u);
  ASSERT_EQ(walk.next_candidates().size(), 8u);
  for (uint64_t i = 0; i < 8; ++i) {
    EXPECT_EQ(walk.next_candidates()[i], idpf::BitString::FromUint64(i, 3));
  }
}

TEST(HeavyHittersWalkTest, ExtendsSurvivorsByTheStrideAndTheRemainderLast) {
  // 10 bits, stride 4: rounds of 4, 8 and 10 bits.
  HeavyHittersWalk walk(Settings(Config(10, 5, 4)));
  std::vector<uint64_t> counts(16, 0);
  counts[3] = 9;   // 0011
  counts[12] = 5;  // 1100
  counts[13] = 4;  // 1101: below.
  ASSERT_TRUE(walk.AddRound({counts, 18}).has_value());
  EXPECT_EQ(walk.next_level(), 7u);
  ASSERT_EQ(walk.next_candidates().size(), 32u);
  EXPECT_EQ(walk.next_candidates()[0], Bits("00110000"));
  EXPECT_EQ(walk.next_candidates()[15], Bits("00111111"));
  EXPECT_EQ(walk.next_candidates()[16], Bits("11000000"));
  EXPECT_EQ(walk.rounds()[0].Survivors(), 2u);
  EXPECT_EQ(walk.rounds()[0].candidates[13].status, CandidateStatus::kBelowThreshold);

  counts.assign(32, 0);
  counts[5] = 9;   // 00110101
  counts[20] = 5;  // 11000100
  ASSERT_TRUE(walk.AddRound({counts, 18}).has_value());
  EXPECT_EQ(walk.next_level(), 9u);
  ASSERT_EQ(walk.next_candidates().size(), 8u);
  EXPECT_EQ(walk.next_candidates()[0], Bits("0011010100"));
  EXPECT_EQ(walk.next_candidates()[7], Bits("1100010011"));

  counts.assign(8, 0);
  counts[2] = 9;  // 0011010110
  counts[7] = 5;  // 1100010011
  ASSERT_TRUE(walk.AddRound({counts, 18}).has_value());
  ASSERT_TRUE(walk.finished());
  WalkResult result = walk.Outcome();
  EXPECT_FALSE(result.stopped_early);
  ASSERT_EQ(result.heavy_hitters.size(), 2u);
  EXPECT_EQ(result.heavy_hitters[0], (HeavyHitter{Bits("0011010110"), 9}));
  EXPECT_EQ(result.heavy_hitters[1], (HeavyHitter{Bits("1100010011"), 5}));
}

TEST(HeavyHittersWalkTest, StopsEarlyWhenNothingSurvives) {
  HeavyHittersWalk walk(Settings(Config(8, 3)));
  ASSERT_TRUE(walk.AddRound({{2, 2}, 4}).has_value());
  EXPECT_TRUE(walk.finished());
  WalkResult result = walk.Outcome();
  EXPECT_TRUE(result.stopped_early);
  EXPECT_TRUE(result.heavy_hitters.empty());
  EXPECT_EQ(result.rounds.size(), 1u);
  EXPECT_FALSE(walk.AddRound({{}, 4}).has_value());
}

TEST(HeavyHittersWalkTest, RefusesInconsistentRounds) {
  HeavyHittersWalk walk(Settings(Config(8, 1)));
  Result<void> added = walk.AddRound({{1, 2, 3}, 10});
  ASSERT_FALSE(added.has_value());
  EXPECT_NE(added.error().message().find("asked for 2 counts, got 3"), std::string::npos);
  added = walk.AddRound({{11, 0}, 10});
  ASSERT_FALSE(added.has_value());
  EXPECT_NE(added.error().message().find("more than the 10 reports"), std::string::npos);
  EXPECT_TRUE(walk.rounds().empty());

  ASSERT_TRUE(walk.AddRound({{6, 4}, 10}).has_value());
  // The batch is frozen: more reports at a deeper level cannot be.
  added = walk.AddRound({{3, 3, 2, 2}, 11});
  ASSERT_FALSE(added.has_value());
  EXPECT_NE(added.error().message().find("frozen"), std::string::npos);
  EXPECT_EQ(walk.rounds().size(), 1u);
  // Fewer can: reports rejected at a deeper level leave the walk.
  ASSERT_TRUE(walk.AddRound({{3, 2, 2, 2}, 9}).has_value());
  EXPECT_EQ(walk.report_count(), 10u);
}

TEST(HeavyHittersWalkTest, CapKeepsTheHighestCountsThenTheSmallerPrefix) {
  // Cap 8 with stride 2 leaves room for 2 survivors' extensions.
  HeavyHittersWalk walk(Settings(Config(6, 2, 2, 2, 8)));
  ASSERT_TRUE(walk.AddRound({{5, 7, 5, 1}, 18}).has_value());
  const WalkRound& round = walk.rounds()[0];
  EXPECT_EQ(round.candidates[0].status, CandidateStatus::kKept);      // 5, the smaller.
  EXPECT_EQ(round.candidates[1].status, CandidateStatus::kKept);      // 7.
  EXPECT_EQ(round.candidates[2].status, CandidateStatus::kCutByCap);  // 5, the larger.
  EXPECT_EQ(round.candidates[3].status, CandidateStatus::kBelowThreshold);
  ASSERT_EQ(walk.next_candidates().size(), 8u);
  EXPECT_EQ(walk.next_candidates()[0], Bits("0000"));
  EXPECT_EQ(walk.next_candidates()[7], Bits("0111"));
}

TEST(HeavyHittersWalkTest, LowerThresholdsBelowACandidateKeepIt) {
  // Default 50, but the subtree "xa" needs only 2: the prefix "x" (count 3)
  // must survive on the entry below it, and "0110" strings need 500.
  config::HeavyHitters config = Config(24, 50);
  config.add_prefix_thresholds()->set_text("xa");
  config.mutable_prefix_thresholds(0)->set_threshold(2);
  config.add_prefix_thresholds()->set_bits("0110");
  config.mutable_prefix_thresholds(1)->set_threshold(500);
  const WalkSettings settings = Settings(config);
  FakeBatch batch(24);
  batch.AddText("xaa", 3);
  batch.AddText("xab", 1);
  batch.AddText("xbb", 40);
  batch.AddText("yyy", 60);
  batch.AddText("abc", 499);  // 'a' is 0x61: under 0110.
  batch.AddText("bcd", 500);
  const WalkResult result = RunAndCheck(batch, settings);
  const std::vector<HeavyHitter> expected = testing::ExpectedHeavyHitters(batch, settings);
  ASSERT_EQ(expected.size(), 3u);  // bcd, yyy, xaa.
  EXPECT_EQ(result.heavy_hitters, expected);

  HeavyHittersWalk walk(settings);
  EXPECT_EQ(walk.KeepThreshold(Bits("0"), 1000), 2u);
  EXPECT_EQ(walk.KeepThreshold(Bits("011"), 1000), 2u);
  EXPECT_EQ(walk.KeepThreshold(Bits("0110"), 1000), 500u);
  EXPECT_EQ(walk.KeepThreshold(Bits("01111000"), 1000), 2u);    // "x", above "xa".
  EXPECT_EQ(walk.KeepThreshold(Bits("011110000"), 1000), 2u);   // Still above "xa".
  EXPECT_EQ(walk.KeepThreshold(Bits("011110001"), 1000), 50u);  // Beside it.
  EXPECT_EQ(walk.KeepThreshold(Bits("1"), 1000), 50u);
}

// Runs a workload under many settings and checks that the walk finds exactly
// the strings whose count meets their threshold, with their exact counts.
void CheckWorkload(const std::string& name, FakeBatch& batch, const WalkSettings& settings) {
  SCOPED_TRACE(name + ", bits " + std::to_string(settings.bits) + ", stride " +
               std::to_string(settings.bits_per_round) + ", first " +
               std::to_string(settings.first_round_bits) + ", default " +
               settings.default_threshold.ToString());
  FakeBatch fresh = batch;
  const WalkResult result = RunAndCheck(fresh, settings);
  const std::vector<HeavyHitter> expected = testing::ExpectedHeavyHitters(batch, settings);
  EXPECT_EQ(result.heavy_hitters, expected);
  // Every non-empty workload has heavy hitters at these thresholds, so the
  // comparison above is never between two empty lists only.
  EXPECT_EQ(expected.empty(), batch.report_count() == 0);
}

TEST(HeavyHittersWalkTest, FindsExactlyTheHeavyHittersOfManyWorkloads) {
  std::mt19937_64 random(20260101);
  for (uint32_t bits : {8u, 13u, 16u, 64u, 256u}) {
    std::vector<std::pair<std::string, FakeBatch>> workloads;
    const std::vector<idpf::BitString> strings = testing::RandomStrings(bits, 60, random);
    FakeBatch zipf(bits);
    testing::AddZipf(zipf, strings, 400, 1.1);
    workloads.emplace_back("zipf", zipf);
    FakeBatch uniform(bits);
    testing::AddUniform(uniform, strings, 12, random);
    workloads.emplace_back("uniform", uniform);
    FakeBatch equal(bits);
    equal.Add(strings[0], 37);
    workloads.emplace_back("all equal", equal);
    workloads.emplace_back("empty", FakeBatch(bits));

    for (auto& [name, batch] : workloads) {
      for (uint32_t stride = 1; stride <= 8; ++stride) {
        // bits 256 with stride 1 takes 256 rounds: the same stride again
        // with other first rounds would add little but time.
        const std::vector<uint32_t> firsts =
            stride == 1 && bits > 16 ? std::vector<uint32_t>{1}
                                     : std::vector<uint32_t>{1, stride, std::min(bits, 11u)};
        for (uint32_t first : firsts) {
          CheckWorkload(name, batch, Settings(Config(bits, 5, stride, first)));
        }
      }
      config::HeavyHitters relative = Config(bits, 1, 3);
      relative.set_relative_threshold(0.02);
      CheckWorkload(name, batch, Settings(relative));
      CheckWorkload(name, batch, Settings(Config(bits, 1, 4)));
    }
  }
}

TEST(HeavyHittersWalkTest, PerPrefixAndRelativeThresholdsOnRandomWorkloads) {
  std::mt19937_64 random(7);
  for (uint32_t bits : {16u, 64u}) {
    const std::vector<idpf::BitString> strings = testing::RandomStrings(bits, 80, random);
    FakeBatch batch(bits);
    testing::AddZipf(batch, strings, 300, 0.9);
    for (int trial = 0; trial < 20; ++trial) {
      config::HeavyHitters config = Config(bits, 1 + random() % 40, 1 + random() % 4);
      if (trial % 2 == 1)
        config.set_relative_threshold(0.001 * static_cast<double>(random() % 50 + 1));
      // Thresholds on prefixes of real strings (so that they matter) and on
      // random ones, absolute and relative.
      std::vector<idpf::BitString> used;
      for (int i = 0; i < 4; ++i) {
        const idpf::BitString& string = strings[random() % strings.size()];
        idpf::BitString prefix = i % 2 == 0
                                     ? string.Prefix(1 + random() % bits)
                                     : idpf::BitString::FromUint64(random(), 1 + random() % 12);
        if (std::find(used.begin(), used.end(), prefix) != used.end()) continue;
        used.push_back(prefix);
        config::PrefixThreshold* entry = config.add_prefix_thresholds();
        entry->set_bits(prefix.ToString());
        if (i == 3) {
          entry->set_relative_threshold(0.01);
        } else {
          entry->set_threshold(1 + random() % 100);
        }
      }
      CheckWorkload("trial " + std::to_string(trial), batch, Settings(config));
    }
  }
}

TEST(HeavyHittersWalkTest, CapBehavesAsDocumentedOnRandomWorkloads) {
  std::mt19937_64 random(99);
  for (uint32_t bits : {16u, 64u}) {
    const std::vector<idpf::BitString> strings = testing::RandomStrings(bits, 200, random);
    FakeBatch batch(bits);
    testing::AddUniform(batch, strings, 20, random);
    for (uint32_t stride : {1u, 2u, 3u}) {
      for (uint32_t cap : {16u, 40u, 100u, 100000u}) {
        SCOPED_TRACE("bits " + std::to_string(bits) + ", stride " + std::to_string(stride) +
                     ", cap " + std::to_string(cap));
        const WalkSettings settings = Settings(Config(bits, 3, stride, 0, cap));
        FakeBatch fresh = batch;
        const WalkResult result = RunAndCheck(fresh, settings);
        const std::vector<HeavyHitter> expected = testing::ExpectedHeavyHitters(batch, settings);
        bool cut = false;
        for (const WalkRound& round : result.rounds) {
          std::vector<const CandidateOutcome*> kept;
          std::vector<const CandidateOutcome*> cut_here;
          for (const CandidateOutcome& candidate : round.candidates) {
            EXPECT_EQ(candidate.status == CandidateStatus::kBelowThreshold,
                      candidate.count < candidate.threshold);
            if (candidate.status == CandidateStatus::kKept) kept.push_back(&candidate);
            if (candidate.status == CandidateStatus::kCutByCap) cut_here.push_back(&candidate);
          }
          if (cut_here.empty()) continue;
          cut = true;
          // The kept ones fill the cap and each outranks every cut one.
          const size_t extra = std::min<size_t>(stride, bits - round.level - 1);
          EXPECT_EQ(kept.size(), cap >> extra);
          for (const CandidateOutcome* a : kept) {
            for (const CandidateOutcome* b : cut_here) {
              EXPECT_TRUE(a->count > b->count || (a->count == b->count && a->prefix < b->prefix));
            }
          }
        }
        // Whatever is found is a true heavy hitter with its exact count; with
        // no cut, all of them are found.
        for (const HeavyHitter& hitter : result.heavy_hitters) {
          EXPECT_NE(std::find(expected.begin(), expected.end(), hitter), expected.end());
        }
        if (!cut) {
          EXPECT_EQ(result.heavy_hitters, expected);
        }
        if (cap == 100000u) {
          EXPECT_FALSE(cut);
        }
        if (cap == 16u && stride == 1) {
          EXPECT_TRUE(cut);
        }
      }
    }
  }
}

TEST(HeavyHittersWalkTest, RunWalkReportsProgressAndPassesRunnerErrorsOn) {
  FakeBatch batch(8);
  batch.AddText("a", 10);
  batch.AddText("b", 3);
  const WalkSettings settings = Settings(Config(8, 5, 4));
  std::vector<WalkProgress> events;
  Result<WalkResult> result =
      RunWalk(settings, batch.Runner(), [&events](const WalkProgress& p) { events.push_back(p); });
  ASSERT_TRUE(result.has_value());
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].stage, WalkProgress::Stage::kRoundStarted);
  EXPECT_EQ(events[0].round, 1u);
  EXPECT_EQ(events[0].planned_rounds, 2u);
  EXPECT_EQ(events[0].level, 3u);
  EXPECT_EQ(events[0].candidates, 16u);
  EXPECT_EQ(events[1].stage, WalkProgress::Stage::kRoundFinished);
  EXPECT_EQ(events[1].survivors, 1u);  // 0110.
  EXPECT_EQ(events[1].report_count, 13u);
  EXPECT_EQ(events[3].round, 2u);
  EXPECT_EQ(events[3].level, 7u);
  ASSERT_EQ(result->heavy_hitters.size(), 1u);
  EXPECT_EQ(result->heavy_hitters[0].count, 10u);

  int calls = 0;
  RoundRunner failing = [&calls](size_t, std::span<const idpf::BitString>) -> Result<RoundResult> {
    ++calls;
    return MakeError(ErrorCode::kIoError, "leader unreachable");
  };
  result = RunWalk(settings, failing);
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().code(), ErrorCode::kIoError);
  EXPECT_EQ(result.error().message(), "leader unreachable");
  EXPECT_EQ(calls, 1);
}

}  // namespace
}  // namespace canopy::collector
