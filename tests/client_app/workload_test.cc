// The synthetic workload: the generator, the Zipf sampler against its law,
// the strings, the true counts and the files.
#include "client_app/workload.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/testing/temp_folder.h"

namespace canopy::client {
namespace {

std::string ReadAll(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

TEST(Xoshiro256, MatchesTheReferenceAlgorithm) {
  // xoshiro256** seeded with four splitmix64 outputs of seed 1, computed by
  // an independent implementation of the published algorithms.
  Xoshiro256 random(1);
  EXPECT_EQ(random.Next(), 0xb3f2af6d0fc710c5u);
  EXPECT_EQ(random.Next(), 0x853b559647364ceau);
  EXPECT_EQ(random.Next(), 0x92f89756082a4514u);
}

TEST(Xoshiro256, BelowAndNextDoubleStayInRange) {
  Xoshiro256 random(7);
  std::vector<int> seen(3, 0);
  for (int i = 0; i < 3000; ++i) {
    const uint64_t value = random.Below(3);
    ASSERT_LT(value, 3u);
    ++seen[value];
    const double unit = random.NextDouble();
    ASSERT_GE(unit, 0.0);
    ASSERT_LT(unit, 1.0);
  }
  for (int count : seen) EXPECT_GT(count, 800);
  EXPECT_EQ(random.Below(1), 0u);
}

TEST(ZipfSampler, ProbabilitiesFollowTheLaw) {
  auto sampler = ZipfSampler::Create(1000, 1.03);
  ASSERT_TRUE(sampler);
  double harmonic = 0;
  for (int k = 1; k <= 1000; ++k) harmonic += std::pow(k, -1.03);
  for (size_t rank : {0, 1, 2, 9, 99, 999}) {
    const double expected = std::pow(rank + 1.0, -1.03) / harmonic;
    EXPECT_NEAR(sampler->Probability(rank), expected, expected * 1e-12) << "rank " << rank;
  }
}

TEST(ZipfSampler, IsReproducibleForASeed) {
  auto sampler = ZipfSampler::Create(500, 1.2);
  ASSERT_TRUE(sampler);
  Xoshiro256 a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    const size_t x = sampler->Sample(a);
    EXPECT_EQ(x, sampler->Sample(b));
    differs |= x != sampler->Sample(c);
  }
  EXPECT_TRUE(differs);
}

TEST(ZipfSampler, FrequenciesFollowTheLaw) {
  // A fixed seed: the outcome is the same on every run, so the bounds below
  // cannot flake; they are loose enough for any reasonable seed.
  constexpr size_t kRanks = 50;
  constexpr int kDraws = 200000;
  auto sampler = ZipfSampler::Create(kRanks, 1.03);
  ASSERT_TRUE(sampler);
  Xoshiro256 random(2024);
  std::vector<double> counts(kRanks, 0);
  for (int i = 0; i < kDraws; ++i) ++counts[sampler->Sample(random)];
  double chi_square = 0;
  for (size_t k = 0; k < kRanks; ++k) {
    const double expected = sampler->Probability(k) * kDraws;
    chi_square += (counts[k] - expected) * (counts[k] - expected) / expected;
  }
  // 49 degrees of freedom: the 99.9th percentile is about 85.
  EXPECT_LT(chi_square, 85) << "chi-square " << chi_square;
  // Rank 1 against rank 2: 2^1.03.
  EXPECT_NEAR(counts[0] / counts[1], std::pow(2.0, 1.03), 0.05);
}

TEST(ZipfSampler, ExponentZeroIsUniform) {
  auto sampler = ZipfSampler::Create(4, 0);
  ASSERT_TRUE(sampler);
  for (size_t k = 0; k < 4; ++k) EXPECT_DOUBLE_EQ(sampler->Probability(k), 0.25);
}

TEST(ZipfSampler, RefusesBadParameters) {
  EXPECT_FALSE(ZipfSampler::Create(0, 1.0));
  EXPECT_FALSE(ZipfSampler::Create(10, -0.5));
  EXPECT_FALSE(ZipfSampler::Create(10, std::nan("")));
  EXPECT_FALSE(ZipfSampler::Create(10, 1e9));
}

TEST(GenerateDistinctStrings, AreDistinctShortEnoughAndPrintable) {
  for (size_t max_length : {1, 2, 3, 8, 16, 32, 64}) {
    const size_t count = max_length == 1 ? 36 : 1000;
    auto strings = GenerateDistinctStrings(count, max_length, 9);
    ASSERT_TRUE(strings) << max_length << ": " << strings.error().ToString();
    ASSERT_EQ(strings->size(), count);
    std::set<std::string> unique(strings->begin(), strings->end());
    EXPECT_EQ(unique.size(), count) << "max_length " << max_length;
    for (const std::string& text : *strings) {
      EXPECT_FALSE(text.empty());
      EXPECT_LE(text.size(), max_length) << text;
      for (char c : text) {
        EXPECT_TRUE(c > 0x20 && c < 0x7f && c != ',' && c != '"') << text;
      }
    }
  }
}

TEST(GenerateDistinctStrings, LookLikeUrlsWhenThereIsRoom) {
  auto strings = GenerateDistinctStrings(100, 32, 1);
  ASSERT_TRUE(strings);
  size_t with_dot = 0;
  for (const std::string& text : *strings) with_dot += text.find('.') != std::string::npos;
  EXPECT_EQ(with_dot, 100u);
}

TEST(GenerateDistinctStrings, AreReproducible) {
  EXPECT_EQ(*GenerateDistinctStrings(200, 32, 5), *GenerateDistinctStrings(200, 32, 5));
  EXPECT_NE(*GenerateDistinctStrings(200, 32, 5), *GenerateDistinctStrings(200, 32, 6));
}

TEST(GenerateDistinctStrings, RefusesImpossibleRequests) {
  auto too_many = GenerateDistinctStrings(37, 1, 1);
  ASSERT_FALSE(too_many);
  EXPECT_NE(too_many.error().message().find("37 distinct strings of at most 1 bytes"),
            std::string::npos)
      << too_many.error().message();
  EXPECT_FALSE(GenerateDistinctStrings(0, 32, 1));
  EXPECT_FALSE(GenerateDistinctStrings(10, 0, 1));
}

TEST(Workload, TrueCountsEqualCountingTheReports) {
  WorkloadOptions options;
  options.reports = 20000;
  options.distinct = 300;
  options.max_length = 16;
  options.seed = 3;
  auto workload = GenerateWorkload(options);
  ASSERT_TRUE(workload);
  ASSERT_EQ(workload->draws.size(), 20000u);
  std::vector<std::string_view> reports;
  for (size_t i = 0; i < workload->draws.size(); ++i) reports.push_back(workload->Report(i));
  const std::vector<TrueCount> counts = workload->TrueCounts();
  EXPECT_EQ(counts, CountStrings(reports));
  uint64_t total = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    total += counts[i].count;
    if (i > 0) {
      EXPECT_TRUE(
          counts[i - 1].count > counts[i].count ||
          (counts[i - 1].count == counts[i].count && counts[i - 1].string < counts[i].string));
    }
  }
  EXPECT_EQ(total, 20000u);
  // The most probable string is the most frequent.
  EXPECT_EQ(counts[0].string, workload->strings[0]);
}

TEST(Workload, IsReproducibleAndItsStringsDoNotDependOnTheReportCount) {
  WorkloadOptions options;
  options.reports = 1000;
  auto a = GenerateWorkload(options);
  auto b = GenerateWorkload(options);
  options.reports = 5000;
  auto c = GenerateWorkload(options);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->strings, b->strings);
  EXPECT_EQ(a->draws, b->draws);
  EXPECT_EQ(a->strings, c->strings);
  options.seed = 2;
  auto d = GenerateWorkload(options);
  ASSERT_TRUE(d);
  EXPECT_NE(a->strings, d->strings);
}

TEST(CountStrings, OrdersByCountThenString) {
  std::vector<std::string_view> strings = {"b", "a", "c", "b", "a", "d"};
  std::vector<TrueCount> expected = {{"a", 2}, {"b", 2}, {"c", 1}, {"d", 1}};
  EXPECT_EQ(CountStrings(strings), expected);
}

TEST(CsvField, QuotesAndEscapesOnlyWhatNeedsIt) {
  EXPECT_EQ(CsvField("example.com/a"), "example.com/a");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("back\\slash"), "\"back\\\\slash\"");
  EXPECT_EQ(CsvField(std::string("nl\nz\x01\xff", 6)), "\"nl\\x0az\\x01\\xff\"");
  EXPECT_EQ(CsvField(" padded"), "\" padded\"");
  EXPECT_EQ(CsvField(""), "\"\"");
}

TEST(WorkloadFiles, AreWrittenAsDocumented) {
  const std::string folder = canopy::testing::MakeTempFolder("canopy-client-workload");
  ASSERT_FALSE(folder.empty());
  Workload workload;
  workload.strings = {"x.example/a", "y,z", "w"};
  workload.draws = {1, 0, 1, 2, 1, 0};
  ASSERT_TRUE(WriteReportStrings(folder + "/strings.txt", workload));
  EXPECT_EQ(ReadAll(folder + "/strings.txt"), "y,z\nx.example/a\ny,z\nw\ny,z\nx.example/a\n");
  ASSERT_TRUE(WriteTrueCounts(folder + "/counts.csv", workload.TrueCounts()));
  EXPECT_EQ(ReadAll(folder + "/counts.csv"), "count,string\n3,\"y,z\"\n2,x.example/a\n1,w\n");
  auto refused = WriteTrueCounts(folder + "/no-such-folder/counts.csv", {});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kIoError);
  EXPECT_NE(refused.error().message().find("no-such-folder/counts.csv"), std::string::npos);
  std::filesystem::remove_all(folder);
}

}  // namespace
}  // namespace canopy::client
