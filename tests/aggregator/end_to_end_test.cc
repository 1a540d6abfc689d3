// A real leader and helper (in one process, each with its own SQLite file
// and HTTP server on loopback): uploads, aggregation with both rounds,
// collection, decryption and unsharding give exactly the plain counts.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "dap/task.h"
#include "idpf/bit_string.h"
#include "poplar/poplar1.h"
#include "tests/aggregator/deployment.h"

namespace canopy::aggregator {
namespace {

using idpf::BitString;
using testing::Deployment;

dap::CollectionJobReq IntervalCollection(dap::Time start, dap::Duration duration,
                                         dap::Bytes agg_param = {}) {
  dap::CollectionJobReq request;
  request.query = dap::TimeIntervalQuery({start, duration});
  request.agg_param = std::move(agg_param);
  return request;
}

TEST(EndToEnd, Prio3CountCollectsThePlainCount) {
  Deployment deployment;
  config::TaskDefinition definition = deployment.NewTaskDefinition(10);
  definition.mutable_prio3_count();
  dap::TaskId task_id = deployment.AddTask(definition);
  dap::Time now = deployment.NowUnits(task_id);
  std::vector<poplar::Measurement> measurements;
  uint64_t ones = 0;
  std::mt19937_64 random(1);
  for (int i = 0; i < 60; ++i) {
    uint64_t value = random() % 3 == 0;
    ones += value;
    measurements.push_back(value);
  }
  auto uploaded = deployment.Upload(task_id, measurements, now);
  ASSERT_TRUE(uploaded) << uploaded.error().ToString();
  EXPECT_EQ(uploaded->status, 200);
  EXPECT_TRUE(uploaded->body.empty());
  auto collected = deployment.Collect(task_id, IntervalCollection(now - 1, 3));
  ASSERT_TRUE(collected) << collected.error().ToString();
  ASSERT_EQ(collected->status, 200) << collected->problem_type;
  EXPECT_EQ(collected->report_count, 60u);
  EXPECT_EQ(collected->result[0], ones);
}

TEST(EndToEnd, EveryPrio3TypeCollectsThePlainSum) {
  Deployment deployment;
  std::mt19937_64 random(2);
  for (int type = 0; type < 4; ++type) {
    config::TaskDefinition definition = deployment.NewTaskDefinition(5);
    size_t length = 1;
    switch (type) {
      case 0:
        definition.mutable_prio3_sum()->set_max_measurement(1000);
        break;
      case 1:
        definition.mutable_prio3_sum_vec()->set_length(length = 5);
        definition.mutable_prio3_sum_vec()->set_max_measurement(3);
        definition.mutable_prio3_sum_vec()->set_chunk_length(2);
        break;
      case 2:
        definition.mutable_prio3_histogram()->set_length(length = 7);
        definition.mutable_prio3_histogram()->set_chunk_length(3);
        break;
      case 3:
        definition.mutable_prio3_multihot_count_vec()->set_length(length = 6);
        definition.mutable_prio3_multihot_count_vec()->set_chunk_length(2);
        definition.mutable_prio3_multihot_count_vec()->set_max_weight(2);
        break;
    }
    dap::TaskId task_id = deployment.AddTask(definition);
    dap::Time now = deployment.NowUnits(task_id);
    std::vector<poplar::Measurement> measurements;
    std::vector<unsigned __int128> expected(length, 0);
    for (int i = 0; i < 12; ++i) {
      if (type == 0) {
        uint64_t value = random() % 1001;
        expected[0] += value;
        measurements.push_back(value);
      } else if (type == 1) {
        std::vector<uint64_t> vector(length);
        for (size_t j = 0; j < length; ++j) expected[j] += vector[j] = random() % 4;
        measurements.push_back(vector);
      } else if (type == 2) {
        uint64_t bucket = random() % length;
        ++expected[bucket];
        measurements.push_back(bucket);
      } else {
        std::vector<uint64_t> vector(length, 0);
        vector[random() % length] = 1;
        for (size_t j = 0; j < length; ++j) expected[j] += vector[j];
        measurements.push_back(vector);
      }
    }
    auto uploaded = deployment.Upload(task_id, measurements, now);
    ASSERT_TRUE(uploaded);
    ASSERT_EQ(uploaded->status, 200);
    auto collected = deployment.Collect(task_id, IntervalCollection(now, 1));
    ASSERT_TRUE(collected) << collected.error().ToString();
    ASSERT_EQ(collected->status, 200) << "type " << type << ": " << collected->problem_type;
    EXPECT_EQ(collected->result, expected) << "type " << type;
  }
}

TEST(EndToEnd, Prio3LeaderSelectedBatches) {
  Deployment deployment;
  config::TaskDefinition definition = deployment.NewTaskDefinition(20);
  definition.mutable_prio3_count();
  definition.set_batch_mode(config::TaskDefinition::LEADER_SELECTED);
  dap::TaskId task_id = deployment.AddTask(definition);
  dap::Time now = deployment.NowUnits(task_id);
  std::vector<poplar::Measurement> measurements(25, uint64_t{1});
  ASSERT_TRUE(deployment.Upload(task_id, measurements, now));
  dap::CollectionJobReq request;
  request.query = dap::LeaderSelectedQuery();
  auto collected = deployment.Collect(task_id, request);
  ASSERT_TRUE(collected) << collected.error().ToString();
  ASSERT_EQ(collected->status, 200) << collected->problem_type;
  // The first batch holds min_batch_size reports; the rest wait for more.
  EXPECT_EQ(collected->report_count, 20u);
  EXPECT_EQ(collected->result[0], 20u);
}

// The plain count of `strings` starting with each prefix.
poplar::AggregateResult PlainCounts(const std::vector<BitString>& strings,
                                    const std::vector<BitString>& prefixes) {
  poplar::AggregateResult counts;
  for (const BitString& prefix : prefixes) {
    unsigned __int128 count = 0;
    for (const BitString& string : strings) count += string.StartsWith(prefix);
    counts.push_back(count);
  }
  return counts;
}

TEST(EndToEnd, Poplar1MultiLevelWalkCountsEveryLevel) {
  Deployment deployment;
  config::TaskDefinition definition = deployment.NewTaskDefinition(5);
  definition.mutable_poplar1()->set_bits(8);
  definition.mutable_multi_level_collection()->set_max_collections_per_batch(8);
  dap::TaskId task_id = deployment.AddTask(definition);
  auto task = deployment.leader().tasks.Find(task_id);
  const auto& poplar1 = static_cast<const poplar::Poplar1&>(*task->vdaf);
  dap::Time now = deployment.NowUnits(task_id);

  // A skewed workload: a few strings many times.
  std::mt19937_64 random(3);
  std::vector<BitString> strings;
  std::vector<poplar::Measurement> measurements;
  const char* popular[] = {"01100001", "01100010", "11110000"};
  for (int i = 0; i < 40; ++i) {
    BitString string = *BitString::Parse(i < 30 ? popular[i % 3] : "00000000");
    if (i >= 30) {
      string = BitString();
      for (int b = 0; b < 8; ++b) string = string.Extended(random() & 1);
    }
    strings.push_back(string);
    measurements.push_back(string);
  }
  ASSERT_TRUE(deployment.Upload(task_id, measurements, now));

  // Walk levels 0, 2, 4 and 7 (skipping some), keeping prefixes with count >= 2.
  std::vector<BitString> candidates = {*BitString::Parse("0"), *BitString::Parse("1")};
  std::shared_ptr<const poplar::Poplar1AggParam> previous;
  const size_t levels[] = {0, 2, 4, 7};
  for (size_t step = 0; step < std::size(levels); ++step) {
    size_t level = levels[step];
    auto agg_param = poplar1.MakeAggParam(level, candidates, previous.get());
    ASSERT_TRUE(agg_param);
    auto request = IntervalCollection(now, 1, poplar1.EncodeAggParam(**agg_param));
    auto collected = deployment.Collect(task_id, request);
    ASSERT_TRUE(collected) << collected.error().ToString();
    ASSERT_EQ(collected->status, 200) << "level " << level << ": " << collected->problem_type;
    EXPECT_EQ(collected->result, PlainCounts(strings, candidates)) << "level " << level;
    EXPECT_EQ(collected->report_count, 40u);
    if (step + 1 == std::size(levels)) break;
    // Survivors, extended to the next walked level.
    std::set<BitString> next;
    size_t extend = levels[step + 1] - level;
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (collected->result[i] < 2) continue;
      std::vector<BitString> grown = {candidates[i]};
      for (size_t e = 0; e < extend; ++e) {
        std::vector<BitString> longer;
        for (const BitString& prefix : grown) {
          longer.push_back(prefix.Extended(false));
          longer.push_back(prefix.Extended(true));
        }
        grown = std::move(longer);
      }
      next.insert(grown.begin(), grown.end());
    }
    candidates.assign(next.begin(), next.end());
    previous = *agg_param;
  }
  // The walk ended at the full strings: the three popular ones at least.
  size_t found = 0;
  for (size_t i = 0; i < candidates.size(); ++i) {
    for (const char* string : popular) found += candidates[i] == *BitString::Parse(string);
  }
  EXPECT_EQ(found, 3u);
  // Each aggregator decrypted each input share once for the whole walk: the
  // later levels used the held shares (the helper got placeholders).
  EXPECT_EQ(deployment.helper().metrics.input_shares_opened(), 40u);
  EXPECT_EQ(deployment.leader().metrics.input_shares_opened(), 40u);

  // A repeated level is refused.
  auto again = poplar1.MakeAggParam(2, {*BitString::Parse("011")}, nullptr);
  ASSERT_TRUE(again);
  auto refused =
      deployment.Collect(task_id, IntervalCollection(now, 1, poplar1.EncodeAggParam(**again)));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  EXPECT_EQ(refused->problem_type, "invalidAggregationParameter");
}

}  // namespace
}  // namespace canopy::aggregator
