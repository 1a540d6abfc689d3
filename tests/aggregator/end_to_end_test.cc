// A real leader and helper (in one process, each with its own SQLite file
// and HTTP server on loopback): uploads, aggregation with both rounds,
// collection, decryption and unsharding give exactly the plain counts.
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "aggregator/garbage_collector.h"
#include "aggregator/internal/common.h"
#include "dap/base64url.h"
#include "dap/task.h"
#include "idpf/bit_string.h"
#include "poplar/poplar1.h"
#include "tests/aggregator/deployment.h"

namespace canopy::aggregator {
namespace {

using idpf::BitString;
using testing::Deployment;
using testing::DeploymentOptions;

dap::CollectionJobReq IntervalCollection(dap::Time start, dap::Duration duration,
                                         dap::Bytes agg_param = {}) {
  dap::CollectionJobReq request;
  request.query = dap::TimeIntervalQuery({start, duration});
  request.agg_param = std::move(agg_param);
  return request;
}

// A multi-level Poplar1 task of `bits`-bit strings on both aggregators.
struct Poplar1Task {
  dap::TaskId id;
  std::shared_ptr<const Task> task;  // Keeps `vdaf` alive.
  const poplar::Poplar1& vdaf() const { return static_cast<const poplar::Poplar1&>(*task->vdaf); }
};

Poplar1Task AddPoplar1Task(Deployment& deployment, uint64_t min_batch_size, uint32_t bits,
                           uint32_t max_collections) {
  config::TaskDefinition definition = deployment.NewTaskDefinition(min_batch_size);
  definition.mutable_poplar1()->set_bits(bits);
  definition.mutable_multi_level_collection()->set_max_collections_per_batch(max_collections);
  Poplar1Task added;
  added.id = deployment.AddTask(definition);
  added.task = deployment.leader().tasks.Find(added.id);
  return added;
}

// Adds a task to the leader only: the helper refuses its jobs (unknown
// task), so the leader abandons them, until the test adds it there too.
// Returns the task's ID (zero when it could not be added: the test fails).
dap::TaskId AddToLeaderOnly(Deployment& deployment, const config::TaskDefinition& definition) {
  auto added = deployment.leader().service->AddTask(definition, "test");
  EXPECT_TRUE(added) << added.error().ToString();
  dap::TaskId task_id{};
  auto id = dap::Base64UrlDecode(definition.task_id());
  EXPECT_TRUE(id && id->size() == task_id.size());
  if (id && id->size() == task_id.size()) std::copy(id->begin(), id->end(), task_id.begin());
  return task_id;
}

// Whether the leader's metrics count exactly `count` abandoned aggregation
// jobs.
::testing::AssertionResult LeaderAbandonedJobs(Deployment& deployment, int count) {
  auto metrics = deployment.http().Send(dap::HttpMethod::kGet,
                                        dap::JoinUrl(deployment.leader().url, "metrics"), {}, {});
  if (!metrics || metrics->status != 200) return ::testing::AssertionFailure() << "no metrics";
  const std::string text(metrics->body.begin(), metrics->body.end());
  const std::string line =
      "canopy_aggregation_jobs_total{event=\"abandoned\"} " + std::to_string(count) + "\n";
  if (text.find(line) == std::string::npos) return ::testing::AssertionFailure() << text;
  return ::testing::AssertionSuccess();
}

// Runs the leader's passes until the collection job at `location` (its
// Location answer) finishes, at most 20 passes, and returns the job's
// answer; fails the test when it does not finish with 200.
std::optional<dap::CollectionJobResp> DriveUntilCollected(Deployment& deployment,
                                                          const std::string& location) {
  const std::string job_url = dap::JoinUrl(deployment.leader().url, location.substr(1));
  for (int pass = 0; pass < 20; ++pass) {
    deployment.DriveLeader();
    auto polled =
        deployment.http().Send(dap::HttpMethod::kGet, job_url, {}, {}, testing::kCollectorToken);
    if (!polled) {
      ADD_FAILURE() << "poll: " << polled.error().ToString();
      return std::nullopt;
    }
    if (polled->status == 202) continue;
    EXPECT_EQ(polled->status, 200) << std::string(polled->body.begin(), polled->body.end());
    auto response = dap::Decode<dap::CollectionJobResp>(polled->body);
    EXPECT_TRUE(response);
    if (polled->status != 200 || !response) return std::nullopt;
    return std::move(*response);
  }
  ADD_FAILURE() << "the collection job did not finish";
  return std::nullopt;
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

// A job the helper refuses is abandoned, and its reports go into a new job
// (DAP-19): the leader releases them, so none is lost or counted twice.
TEST(EndToEnd, ReportsOfAnAbandonedJobAreAggregatedInANewJob) {
  Deployment deployment;
  config::TaskDefinition definition = deployment.NewTaskDefinition(10);
  definition.mutable_prio3_count();
  // The helper does not know the task yet: it refuses the first job.
  const dap::TaskId task_id = AddToLeaderOnly(deployment, definition);
  const dap::Time now = deployment.NowUnits(task_id);
  std::vector<poplar::Measurement> measurements;
  uint64_t ones = 0;
  for (int i = 0; i < 30; ++i) {
    measurements.push_back(uint64_t(i % 3 == 0));
    ones += i % 3 == 0;
  }
  auto uploaded = deployment.Upload(task_id, measurements, now);
  ASSERT_TRUE(uploaded && uploaded->status == 200);
  deployment.DriveLeader();
  EXPECT_TRUE(LeaderAbandonedJobs(deployment, 1));

  auto added = deployment.helper().service->AddTask(definition, "test");
  ASSERT_TRUE(added) << added.error().ToString();
  auto collected = deployment.Collect(task_id, IntervalCollection(now - 1, 3));
  ASSERT_TRUE(collected) << collected.error().ToString();
  ASSERT_EQ(collected->status, 200) << collected->problem_type;
  EXPECT_EQ(collected->report_count, 30u);
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

  // The same request again asks for the next batch, not the first job.
  // It holds the 5 ones left over and 15 zeros.
  std::vector<poplar::Measurement> zeros(15, uint64_t{0});
  ASSERT_TRUE(deployment.Upload(task_id, zeros, now));
  auto second = deployment.Collect(task_id, request);
  ASSERT_TRUE(second) << second.error().ToString();
  ASSERT_EQ(second->status, 200) << second->problem_type;
  EXPECT_EQ(second->report_count, 20u);
  EXPECT_EQ(second->result[0], 5u);
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
  const Poplar1Task added = AddPoplar1Task(deployment, 5, 8, 8);
  const dap::TaskId task_id = added.id;
  const poplar::Poplar1& poplar1 = added.vdaf();
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
  // Between levels, both kept the reports' per-level data in level files.
  for (testing::Party* party : {&deployment.leader(), &deployment.helper()}) {
    const LevelFiles* files = party->service->report_cache().level_files();
    ASSERT_NE(files, nullptr);
    EXPECT_EQ(files->usage().slots, 40u);
  }

  // A repeated level is refused.
  auto again = poplar1.MakeAggParam(2, {*BitString::Parse("011")}, nullptr);
  ASSERT_TRUE(again);
  auto refused =
      deployment.Collect(task_id, IntervalCollection(now, 1, poplar1.EncodeAggParam(**again)));
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400);
  EXPECT_EQ(refused->problem_type, "invalidAggregationParameter");
}

// `count` strings of 4 bits, the i-th spelling i's low bits (least
// significant first), so that both halves of every level are populated.
std::vector<BitString> NumberedStrings(int count) {
  std::vector<BitString> strings;
  for (int i = 0; i < count; ++i) {
    BitString string;
    for (int b = 0; b < 4; ++b) string = string.Extended(((i >> b) & 1) != 0);
    strings.push_back(string);
  }
  return strings;
}

// `count` random strings of 4 bits, each bit 1 with probability 1/3, from
// `seed`.
std::vector<BitString> RandomStrings(size_t count, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::vector<BitString> strings;
  for (size_t i = 0; i < count; ++i) {
    BitString string;
    for (int b = 0; b < 4; ++b) string = string.Extended(random() % 3 == 0);
    strings.push_back(string);
  }
  return strings;
}

std::vector<poplar::Measurement> AsMeasurements(const std::vector<BitString>& strings) {
  return {strings.begin(), strings.end()};
}

// Bit strings spelled out ("0110").
std::vector<BitString> Parsed(std::initializer_list<const char*> spellings) {
  std::vector<BitString> strings;
  for (const char* spelling : spellings) strings.push_back(*BitString::Parse(spelling));
  return strings;
}

// The first level's candidates: both one-bit prefixes.
std::vector<BitString> OneBitPrefixes() { return {*BitString::Parse("0"), *BitString::Parse("1")}; }

// A level whose only job is abandoned while its collection job waits: the
// collection's readiness check, in the same pass, must see the released
// reports (behind where the creator's listing ended) and wait for the new
// job, not collect a batch without them.
TEST(EndToEnd, LevelWhoseJobIsAbandonedWaitsForItsReports) {
  Deployment deployment;
  config::TaskDefinition definition = deployment.NewTaskDefinition(5);
  definition.mutable_poplar1()->set_bits(4);
  definition.mutable_multi_level_collection()->set_max_collections_per_batch(4);
  // The helper does not know the task yet: it refuses the first job.
  const dap::TaskId task_id = AddToLeaderOnly(deployment, definition);
  const auto task = deployment.leader().tasks.Find(task_id);
  const auto& poplar1 = static_cast<const poplar::Poplar1&>(*task->vdaf);
  const dap::Time now = deployment.NowUnits(task_id);
  const std::vector<BitString> strings = NumberedStrings(20);
  ASSERT_TRUE(deployment.Upload(task_id, AsMeasurements(strings), now));
  const std::vector<BitString> candidates = OneBitPrefixes();
  auto param = poplar1.MakeAggParam(0, candidates, nullptr);
  ASSERT_TRUE(param);
  const dap::CollectionJobReq request = IntervalCollection(now, 1, poplar1.EncodeAggParam(**param));
  auto created = deployment.CreateCollectionJob(task_id, request);
  ASSERT_TRUE(created && created->status == 201);
  deployment.DriveLeader();  // Lists every report; the helper refuses the job.
  ASSERT_TRUE(LeaderAbandonedJobs(deployment, 1));

  auto added = deployment.helper().service->AddTask(definition, "test");
  ASSERT_TRUE(added) << added.error().ToString();
  auto response = DriveUntilCollected(deployment, created->location);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->report_count, strings.size());
  auto result = deployment.Unshard(task_id, request, *response);
  ASSERT_TRUE(result);
  EXPECT_EQ(*result, PlainCounts(strings, candidates));
}

// A level created in several passes: each pass lists from where the last
// ended, so the creator's position moves on and holds between passes (a
// position lost between passes makes every pass list from the start).
TEST(EndToEnd, ListingGoesOnWhereTheLastPassEnded) {
  DeploymentOptions options;
  options.max_reports_per_job = 1;  // 64 reports a pass.
  Deployment deployment(options);
  const Poplar1Task added = AddPoplar1Task(deployment, 5, 4, 4);
  const poplar::Poplar1& poplar1 = added.vdaf();
  const dap::Time now = deployment.NowUnits(added.id);
  ASSERT_TRUE(deployment.Upload(added.id, AsMeasurements(NumberedStrings(150)), now));
  auto param = poplar1.MakeAggParam(0, OneBitPrefixes(), nullptr);
  ASSERT_TRUE(param);
  const Bytes encoded = poplar1.EncodeAggParam(**param);
  auto created = deployment.CreateCollectionJob(added.id, IntervalCollection(now, 1, encoded));
  ASSERT_TRUE(created && created->status == 201);

  uint64_t last = 0;
  for (int pass = 0; pass < 3; ++pass) {  // 64, 64 and 22 reports.
    deployment.DriveLeader();
    auto position = deployment.leader_drivers().ListingPosition(added.id, encoded);
    ASSERT_TRUE(position.has_value()) << "pass " << pass;
    EXPECT_GT(*position, last) << "pass " << pass;
    last = *position;
  }
}

// Garbage collection at the helper too: its held shares and finished jobs
// go once expired (the helper has no drivers to run it), not before.
TEST(EndToEnd, HelperCollectsItsExpiredSharesAndJobs) {
  Deployment deployment;
  const Poplar1Task added = AddPoplar1Task(deployment, 5, 4, 4);
  const poplar::Poplar1& poplar1 = added.vdaf();
  const dap::Time now = deployment.NowUnits(added.id);
  ASSERT_TRUE(deployment.Upload(added.id, AsMeasurements(NumberedStrings(20)), now));
  auto param = poplar1.MakeAggParam(0, OneBitPrefixes(), nullptr);
  ASSERT_TRUE(param);
  auto collected =
      deployment.Collect(added.id, IntervalCollection(now, 1, poplar1.EncodeAggParam(**param)));
  ASSERT_TRUE(collected && collected->status == 200);

  testing::Party& helper = deployment.helper();
  const uint64_t seconds = internal::NowSeconds();
  const uint64_t week = 7 * 24 * 3600;
  auto kept = CollectExpired(*helper.datastore, helper.tasks, seconds, week);
  ASSERT_TRUE(kept);
  EXPECT_EQ(*kept, 0u);  // Nothing has expired yet.
  // A week and a day later: the 20 held shares and the finished job go.
  auto deleted = CollectExpired(*helper.datastore, helper.tasks, seconds + week + 86400, week);
  ASSERT_TRUE(deleted);
  EXPECT_GE(*deleted, 21u);
  auto again = CollectExpired(*helper.datastore, helper.tasks, seconds + week + 86400, week);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0u);
}

// One report per job: a level needs more jobs than one pass of the job
// creator makes (64), so later passes go on listing from where the last one
// ended. Every report must still be counted exactly once, at each level.
// The helper refused no report as a replay.
void ExpectNoReplays(Deployment& deployment) {
  const std::string helper_metrics = deployment.helper().metrics.Render();
  EXPECT_NE(helper_metrics.find("canopy_reports_rejected_total{reason=\"report_replayed\"} 0\n"),
            std::string::npos)
      << helper_metrics;
}

// 150 numbered 4-bit strings uploaded to a new Poplar1 task, and a
// collection job of their first level, not driven yet.
class PendingFirstLevel {
 public:
  explicit PendingFirstLevel(Deployment& deployment)
      : deployment_(deployment), task_(AddPoplar1Task(deployment, 5, 4, 4)) {
    const poplar::Poplar1& poplar1 = task_.vdaf();
    const dap::Time now = deployment.NowUnits(task_.id);
    EXPECT_TRUE(deployment.Upload(task_.id, AsMeasurements(strings_), now));
    auto param = poplar1.MakeAggParam(0, candidates_, nullptr);
    EXPECT_TRUE(param);
    if (!param) return;
    request_ = IntervalCollection(now, 1, poplar1.EncodeAggParam(**param));
    auto created = deployment.CreateCollectionJob(task_.id, request_);
    EXPECT_TRUE(created && created->status == 201);
    if (created) location_ = created->location;
  }

  // Drives the leader until the job is collected, and checks the counts.
  void ExpectCollectedExactly() {
    ASSERT_FALSE(location_.empty());
    auto response = DriveUntilCollected(deployment_, location_);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->report_count, strings_.size());
    auto result = deployment_.Unshard(task_.id, request_, *response);
    ASSERT_TRUE(result);
    EXPECT_EQ(*result, PlainCounts(strings_, candidates_));
  }

 private:
  Deployment& deployment_;
  Poplar1Task task_;  // Keeps its VDAF alive.
  const std::vector<BitString> strings_ = NumberedStrings(150);
  const std::vector<BitString> candidates_ = OneBitPrefixes();
  dap::CollectionJobReq request_;
  std::string location_;
};

// Collects the first and the last level of a 4-bit walk over 150 reports
// on `deployment`, each against the plain counts.
void CollectFirstAndLastLevel(Deployment& deployment) {
  const Poplar1Task added = AddPoplar1Task(deployment, 5, 4, 4);
  const dap::TaskId task_id = added.id;
  const poplar::Poplar1& poplar1 = added.vdaf();
  dap::Time now = deployment.NowUnits(task_id);
  const size_t kReports = 150;
  const std::vector<BitString> strings = RandomStrings(kReports, 5);
  ASSERT_TRUE(deployment.Upload(task_id, AsMeasurements(strings), now));

  std::vector<BitString> candidates = {*BitString::Parse("0"), *BitString::Parse("1")};
  auto first = poplar1.MakeAggParam(0, candidates, nullptr);
  ASSERT_TRUE(first);
  auto collected =
      deployment.Collect(task_id, IntervalCollection(now, 1, poplar1.EncodeAggParam(**first)));
  ASSERT_TRUE(collected) << collected.error().ToString();
  ASSERT_EQ(collected->status, 200) << collected->problem_type;
  EXPECT_EQ(collected->report_count, kReports);
  EXPECT_EQ(collected->result, PlainCounts(strings, candidates));

  // The leaves, all sixteen (held reports this time).
  std::vector<BitString> leaves;
  for (int value = 0; value < 16; ++value) {
    BitString leaf;
    for (int b = 3; b >= 0; --b) leaf = leaf.Extended((value >> b) & 1);
    leaves.push_back(leaf);
  }
  auto last = poplar1.MakeAggParam(3, leaves, first->get());
  ASSERT_TRUE(last);
  collected =
      deployment.Collect(task_id, IntervalCollection(now, 1, poplar1.EncodeAggParam(**last)));
  ASSERT_TRUE(collected) << collected.error().ToString();
  ASSERT_EQ(collected->status, 200) << collected->problem_type;
  EXPECT_EQ(collected->report_count, kReports);
  EXPECT_EQ(collected->result, PlainCounts(strings, leaves));
  ExpectNoReplays(deployment);
}

TEST(EndToEnd, LevelsCreatedInSeveralPassesCountEveryReportOnce) {
  DeploymentOptions options;
  options.max_reports_per_job = 1;
  Deployment deployment(options);
  CollectFirstAndLastLevel(deployment);
}

// The service's loop creates jobs pass after pass while drivers on other
// threads lease and drive them as they become free: each level still takes
// every report exactly once, over many passes of a few small jobs.
TEST(EndToEnd, JobsCreatedBesideTheDriversCountEveryReportOnce) {
  DeploymentOptions options;
  options.max_reports_per_job = 5;
  options.jobs_per_pass = 4;
  options.create_beside_drivers = true;
  Deployment deployment(options);
  CollectFirstAndLastLevel(deployment);
}

// The drivers also take the jobs that the creator makes in the same call:
// one call creates a level's 30 jobs, pass after pass, and drives them all.
TEST(EndToEnd, DriversTakeTheJobsCreatedInTheSameCall) {
  DeploymentOptions options;
  options.max_reports_per_job = 5;
  options.jobs_per_pass = 4;
  options.first_pass_jobs = 2;
  Deployment deployment(options);
  PendingFirstLevel level(deployment);
  auto created_and_driven = deployment.leader_drivers().CreateAndDriveAggregationJobs();
  ASSERT_TRUE(created_and_driven);
  EXPECT_EQ(*created_and_driven, 30u + 30u);

  level.ExpectCollectedExactly();
}

// Leader drivers of a test's own on `deployment`'s leader, with `options`
// and an HTTP client that tries each request once (so that a failure shows
// at once).
class DriversTryingOnce {
 public:
  DriversTryingOnce(Deployment& deployment, const LeaderDriverOptions& options)
      : http_(ClientTryingOnce()),
        drivers_(options, *deployment.leader().datastore, deployment.leader().tasks,
                 deployment.leader().service->hpke_keys(), http_, deployment.leader().metrics,
                 deployment.leader().service->report_cache(),
                 deployment.leader().service->level_claims()) {}
  LeaderDrivers& get() { return drivers_; }

 private:
  static dap::HttpClient ClientTryingOnce() {
    dap::HttpClientOptions once;
    once.max_attempts = 1;
    auto client = dap::HttpClient::Create(once);
    if (!client) std::abort();  // Only when the system has no resources left.
    return std::move(*client);
  }

  dap::HttpClient http_;
  LeaderDrivers drivers_;
};

// A pass drives a job at most once, even when the job's retry is due again
// before the pass ends (no retry delay): with the helper down, drivers try
// each job once (one logged failure each) and return, and the jobs stay
// for the next pass.
TEST(EndToEnd, APassDrivesAFailingJobOnce) {
  DeploymentOptions options;
  options.max_reports_per_job = 5;
  Deployment deployment(options);
  PendingFirstLevel level(deployment);
  LeaderDriverOptions failing_options;
  failing_options.peer_token = testing::kPeerToken;
  failing_options.max_reports_per_job = options.max_reports_per_job;
  failing_options.retry_delay = std::chrono::milliseconds(0);
  DriversTryingOnce drivers(deployment, failing_options);
  LeaderDrivers& failing = drivers.get();
  auto created = failing.CreateAggregationJobs();
  ASSERT_TRUE(created);
  EXPECT_EQ(*created, 30u);
  deployment.helper().server->Stop();
  ::testing::internal::CaptureStderr();
  auto driven = failing.DriveAggregationJobs();
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(driven);
  EXPECT_EQ(*driven, 0u);
  size_t failures = 0;
  for (size_t at = log.find("aggregation job "); at != std::string::npos;
       at = log.find("aggregation job ", at + 1)) {
    ++failures;
  }
  EXPECT_EQ(failures, 30u) << log;

  deployment.RestartHelper();
  level.ExpectCollectedExactly();
}

// A helper that refuses the leader's token (403, not a DAP problem type:
// say, a token rotated on one side first) leaves the jobs to be tried again,
// not abandoned: once the tokens agree, every report counts.
TEST(EndToEnd, ARefusedTokenLeavesTheJobsToBeTriedAgain) {
  DeploymentOptions options;
  options.max_reports_per_job = 5;
  Deployment deployment(options);
  PendingFirstLevel level(deployment);
  LeaderDriverOptions wrong_token;
  wrong_token.peer_token = "not-the-peer-token";
  wrong_token.max_reports_per_job = options.max_reports_per_job;
  DriversTryingOnce drivers(deployment, wrong_token);
  LeaderDrivers& refused = drivers.get();
  auto created = refused.CreateAggregationJobs();
  ASSERT_TRUE(created);
  EXPECT_EQ(*created, 30u);
  ::testing::internal::CaptureStderr();
  auto driven = refused.DriveAggregationJobs();
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(driven);
  EXPECT_EQ(*driven, 0u);
  EXPECT_EQ(log.find("abandoning"), std::string::npos) << log;
  EXPECT_NE(log.find("helper answered 403"), std::string::npos) << log;
  // The same jobs, driven with the right token once their retry is due.
  std::this_thread::sleep_for(LeaderDriverOptions().retry_delay);
  level.ExpectCollectedExactly();
}

// A level's first pass makes only first_pass_jobs jobs, so that the drivers
// start at once; the next pass makes the rest, and the level counts every
// report once.
TEST(EndToEnd, ALevelsFirstPassMakesFewJobs) {
  DeploymentOptions options;
  options.max_reports_per_job = 5;
  options.first_pass_jobs = 2;
  Deployment deployment(options);
  PendingFirstLevel level(deployment);
  // Two jobs of 5 reports first, then the other 140 reports' 28 jobs.
  auto first_pass = deployment.leader_drivers().CreateAggregationJobs();
  ASSERT_TRUE(first_pass);
  EXPECT_EQ(*first_pass, 2u);
  auto second_pass = deployment.leader_drivers().CreateAggregationJobs();
  ASSERT_TRUE(second_pass);
  EXPECT_EQ(*second_pass, 28u);

  level.ExpectCollectedExactly();
}

// A walk on a deployment whose leader makes jobs of at most 40 reports, and
// held_reports jobs of at most 100: uploads `count` random 4-bit strings and
// collects levels, checking each against the plain counts.
class JobSizeWalk {
 public:
  explicit JobSizeWalk(size_t count) : deployment_(Options()) {
    task_ = AddPoplar1Task(deployment_, 5, 4, 4);
    task_id_ = task_.id;
    now_ = deployment_.NowUnits(task_id_);
    strings_ = RandomStrings(count, 7);
    EXPECT_TRUE(deployment_.Upload(task_id_, AsMeasurements(strings_), now_));
  }

  // Collects the counts of every prefix of `level` + 1 bits; returns the
  // sizes of the jobs that aggregated it, smallest first.
  std::vector<size_t> Collect(uint32_t level) {
    std::vector<BitString> candidates;
    for (uint32_t value = 0; value < (2u << level); ++value) {
      BitString prefix;
      for (int b = static_cast<int>(level); b >= 0; --b) prefix = prefix.Extended((value >> b) & 1);
      candidates.push_back(prefix);
    }
    const poplar::Poplar1& poplar1 = task_.vdaf();
    auto agg_param = poplar1.MakeAggParam(level, candidates, last_.get());
    EXPECT_TRUE(agg_param);
    if (!agg_param) return {};
    last_ = std::move(*agg_param);
    const Bytes encoded = poplar1.EncodeAggParam(*last_);
    auto collected = deployment_.Collect(task_id_, IntervalCollection(now_, 1, encoded));
    EXPECT_TRUE(collected) << collected.error().ToString();
    if (!collected) return {};
    EXPECT_EQ(collected->status, 200) << collected->problem_type;
    EXPECT_EQ(collected->report_count, strings_.size());
    EXPECT_EQ(collected->result, PlainCounts(strings_, candidates));
    std::vector<size_t> sizes;
    auto read = deployment_.leader().datastore->Run([&](Transaction& tx) -> Result<void> {
      auto jobs = tx.JobsWithParam(task_id_, encoded);
      if (!jobs) return std::unexpected(jobs.error());
      for (const JobId& job_id : *jobs) {
        auto rows = tx.GetJobReports(task_id_, job_id);
        if (!rows) return std::unexpected(rows.error());
        sizes.push_back(rows->size());
      }
      return {};
    });
    EXPECT_TRUE(read) << read.error().ToString();
    std::sort(sizes.begin(), sizes.end());
    return sizes;
  }

  Deployment& deployment() { return deployment_; }

 private:
  static DeploymentOptions Options() {
    DeploymentOptions options;
    options.max_reports_per_job = 40;
    options.max_reports_per_held_job = 100;
    return options;
  }

  Deployment deployment_;
  Poplar1Task task_;  // Keeps its VDAF alive.
  dap::TaskId task_id_;
  dap::Time now_ = 0;
  std::vector<BitString> strings_;
  std::shared_ptr<const poplar::Poplar1AggParam> last_;  // The last level collected.
};

// A walk's later levels put the reports the helper holds into larger jobs
// (max_reports_per_held_job) than the first level's, and a level's reports
// are split into jobs of about equal size, not full jobs and a remainder.
// Reports the helper no longer holds (its held shares gone, its cache
// emptied by a restart) are sent again with their shares, in jobs of the
// first level's size: a held job's size of full reports could exceed the
// helper's request size limit.
TEST(EndToEnd, HeldReportsGoIntoLargerJobsAndLostOnesIntoFullSizedJobs) {
  JobSizeWalk walk(250);
  // 250 reports in jobs of at most 40: seven, of 35 or 36.
  EXPECT_EQ(walk.Collect(0), (std::vector<size_t>{35, 35, 36, 36, 36, 36, 36}));
  // Held now: jobs of at most 100, three of 83 or 84.
  EXPECT_EQ(walk.Collect(1), (std::vector<size_t>{83, 83, 84}));

  walk.deployment().RestartHelper();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((walk.deployment().folder() + "/helper.sqlite").c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, "DELETE FROM held_reports", nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  EXPECT_EQ(sqlite3_changes(db), 250);
  sqlite3_close(db);
  const uint64_t opened = walk.deployment().helper().metrics.input_shares_opened();
  // The three held jobs are refused whole (report_dropped), and each one's
  // 83 or 84 reports go again into three jobs of 27 or 28.
  EXPECT_EQ(walk.Collect(2), (std::vector<size_t>{27, 27, 28, 28, 28, 28, 28, 28, 28, 83, 83, 84}));
  EXPECT_EQ(walk.deployment().helper().metrics.input_shares_opened(), opened + 250);
}

// A pass makes at least as many jobs as the leader drives at once (two
// here) while each gets as many reports as a full job may hold.
TEST(EndToEnd, ASmallLevelStillGoesIntoAJobPerParallelDriver) {
  JobSizeWalk walk(60);
  EXPECT_EQ(walk.Collect(0), (std::vector<size_t>{30, 30}));
  EXPECT_EQ(walk.Collect(1), (std::vector<size_t>{30, 30}));
}

// Which reports a level took is kept in memory, and its jobs' records are
// its durable form: a leader restarted after creating part of a level's jobs
// (none driven yet) reads back which reports they took, and puts only the
// others into new jobs. Were it to put a report into a second job, the
// helper would refuse one of the two as a replay.
TEST(EndToEnd, LevelPartlyCreatedBeforeALeaderRestartTakesEachReportOnce) {
  DeploymentOptions options;
  options.max_reports_per_job = 1;  // 64 jobs a pass.
  Deployment deployment(options);
  PendingFirstLevel level(deployment);
  auto first_pass = deployment.leader_drivers().CreateAggregationJobs();
  ASSERT_TRUE(first_pass);
  EXPECT_EQ(*first_pass, 64u);

  deployment.RestartLeader();
  level.ExpectCollectedExactly();
  ExpectNoReplays(deployment);
  // The level's claims, read back from the stored jobs, once.
  EXPECT_EQ(deployment.leader().service->level_claims().levels(), 1u);
}

// The same for Prio3, whose reports are listed over the whole time range,
// with reports arriving between two passes (after the first's position).
TEST(EndToEnd, Prio3JobsCreatedInSeveralPassesCountEveryReportOnce) {
  DeploymentOptions options;
  options.max_reports_per_job = 1;
  Deployment deployment(options);
  config::TaskDefinition definition = deployment.NewTaskDefinition(10);
  definition.mutable_prio3_count();
  dap::TaskId task_id = deployment.AddTask(definition);
  dap::Time now = deployment.NowUnits(task_id);
  uint64_t ones = 0;
  auto upload = [&](int count, int offset) {
    std::vector<poplar::Measurement> measurements;
    for (int i = offset; i < offset + count; ++i) {
      measurements.push_back(uint64_t(i % 4 == 0));
      ones += i % 4 == 0;
    }
    return deployment.Upload(task_id, measurements, now);
  };
  ASSERT_TRUE(upload(100, 0));
  deployment.DriveLeader();  // One pass: 64 of the 100.
  ASSERT_TRUE(upload(50, 100));
  auto collected = deployment.Collect(task_id, IntervalCollection(now - 1, 3));
  ASSERT_TRUE(collected) << collected.error().ToString();
  ASSERT_EQ(collected->status, 200) << collected->problem_type;
  EXPECT_EQ(collected->report_count, 150u);
  EXPECT_EQ(collected->result[0], ones);
}

// Leader-selected batches listed in several passes (by batch, going on).
TEST(EndToEnd, Prio3LeaderSelectedBatchListedInSeveralPasses) {
  DeploymentOptions options;
  options.max_reports_per_job = 1;
  Deployment deployment(options);
  config::TaskDefinition definition = deployment.NewTaskDefinition(150);
  definition.mutable_prio3_count();
  definition.set_batch_mode(config::TaskDefinition::LEADER_SELECTED);
  dap::TaskId task_id = deployment.AddTask(definition);
  dap::Time now = deployment.NowUnits(task_id);
  std::vector<poplar::Measurement> measurements;
  for (int i = 0; i < 150; ++i) measurements.push_back(uint64_t(i % 3 == 0));
  ASSERT_TRUE(deployment.Upload(task_id, measurements, now));
  dap::CollectionJobReq request;
  request.query = dap::LeaderSelectedQuery();
  auto collected = deployment.Collect(task_id, request);
  ASSERT_TRUE(collected) << collected.error().ToString();
  ASSERT_EQ(collected->status, 200) << collected->problem_type;
  EXPECT_EQ(collected->report_count, 150u);
  EXPECT_EQ(collected->result[0], 50u);
}

TEST(EndToEnd, AdminEndpointAddsListsAndRemovesTasksThatSurviveRestarts) {
  Deployment deployment;
  config::TaskDefinition definition = deployment.NewTaskDefinition(1);
  definition.mutable_prio3_count();
  std::string text;
  ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(definition, &text));
  const std::vector<uint8_t> body(text.begin(), text.end());
  const std::string admin = dap::JoinUrl(deployment.leader().url, "admin/tasks");

  auto refused =
      deployment.http().Send(dap::HttpMethod::kPost, admin, "text/plain", body, "wrong-token");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);
  auto added = deployment.http().Send(dap::HttpMethod::kPost, admin, "text/plain", body,
                                      testing::kAdminToken);
  ASSERT_TRUE(added);
  EXPECT_EQ(added->status, 201);
  auto listed = deployment.http().Send(dap::HttpMethod::kGet, admin, {}, {}, testing::kAdminToken);
  ASSERT_TRUE(listed);
  std::string listing(listed->body.begin(), listed->body.end());
  EXPECT_NE(listing.find(definition.task_id()), std::string::npos);
  EXPECT_NE(listing.find("Prio3Count"), std::string::npos);
  // The listing never shows keys.
  EXPECT_EQ(listing.find(definition.verify_keys(0).key()), std::string::npos);

  // The task is in the database: a restarted leader serves it.
  deployment.RestartLeader();
  auto hpke = deployment.http().Send(dap::HttpMethod::kGet,
                                     dap::JoinUrl(deployment.leader().url, "hpke_config"));
  ASSERT_TRUE(hpke);
  EXPECT_EQ(hpke->status, 200);
  auto id = dap::Base64UrlDecode(definition.task_id());
  ASSERT_TRUE(id);
  dap::TaskId task_id;
  std::copy(id->begin(), id->end(), task_id.begin());
  EXPECT_NE(deployment.leader().tasks.Find(task_id), nullptr);

  auto removed = deployment.http().Send(
      dap::HttpMethod::kDelete, admin + "/" + definition.task_id(), {}, {}, testing::kAdminToken);
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->status, 204);
  deployment.RestartLeader();
  EXPECT_EQ(deployment.leader().tasks.Find(task_id), nullptr);
  auto gone = deployment.http().Send(
      dap::HttpMethod::kPost,
      dap::JoinUrl(deployment.leader().url, "tasks/" + definition.task_id() + "/reports"),
      "application/ppm-dap;message=upload-req", {});
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->status, 404);
}

TEST(EndToEnd, HealthAndMetrics) {
  Deployment deployment;
  config::TaskDefinition definition = deployment.NewTaskDefinition(1);
  definition.mutable_prio3_count();
  dap::TaskId task_id = deployment.AddTask(definition);
  dap::Time now = deployment.NowUnits(task_id);
  ASSERT_TRUE(deployment.Upload(task_id, {uint64_t{1}, uint64_t{0}}, now));
  ASSERT_TRUE(deployment.Upload(task_id, {uint64_t{1}}, now + 1000));  // Too early.
  auto health = deployment.http().Send(dap::HttpMethod::kGet,
                                       dap::JoinUrl(deployment.leader().url, "healthz"));
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto metrics = deployment.http().Send(dap::HttpMethod::kGet,
                                        dap::JoinUrl(deployment.leader().url, "metrics"));
  ASSERT_TRUE(metrics);
  std::string text(metrics->body.begin(), metrics->body.end());
  EXPECT_NE(text.find("canopy_reports_uploaded_total 2"), std::string::npos) << text;
  EXPECT_NE(text.find("canopy_reports_rejected_total{reason=\"report_too_early\"} 1"),
            std::string::npos)
      << text;
}

TEST(EndToEnd, Poplar1WalkSurvivesHelperRestartBetweenLevels) {
  Deployment deployment;
  const Poplar1Task added = AddPoplar1Task(deployment, 3, 4, 4);
  const dap::TaskId task_id = added.id;
  const poplar::Poplar1& poplar1 = added.vdaf();
  dap::Time now = deployment.NowUnits(task_id);
  const std::vector<BitString> strings = Parsed({"0110", "0110", "0111", "1000", "0110", "1111"});
  ASSERT_TRUE(deployment.Upload(task_id, AsMeasurements(strings), now));
  // The leader opens its shares at upload, once.
  EXPECT_EQ(deployment.leader().metrics.input_shares_opened(), strings.size());
  std::vector<BitString> level0 = {*BitString::Parse("0"), *BitString::Parse("1")};
  auto param0 = poplar1.MakeAggParam(0, level0, nullptr);
  ASSERT_TRUE(param0);
  auto first =
      deployment.Collect(task_id, IntervalCollection(now, 1, poplar1.EncodeAggParam(**param0)));
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->problem_type;
  EXPECT_EQ(first->result, PlainCounts(strings, level0));
  // None opened again: the first round does no HPKE at the leader.
  EXPECT_EQ(deployment.leader().metrics.input_shares_opened(), strings.size());

  // Both restart: the in-memory caches are gone; the helper's held shares
  // and the leader's stored reports are not.
  deployment.RestartHelper();
  deployment.RestartLeader();
  std::vector<BitString> level2 = {*BitString::Parse("010"), *BitString::Parse("011")};
  auto param2 = poplar1.MakeAggParam(2, level2, param0->get());
  ASSERT_TRUE(param2);
  auto second =
      deployment.Collect(task_id, IntervalCollection(now, 1, poplar1.EncodeAggParam(**param2)));
  ASSERT_TRUE(second);
  ASSERT_EQ(second->status, 200) << second->problem_type;
  EXPECT_EQ(second->result, PlainCounts(strings, level2));
  EXPECT_EQ(deployment.helper().metrics.input_shares_opened(), 0u);  // Held, not re-opened.
  // The leader stored its shares opened at upload: it prepared its reports
  // again from them, with no HPKE (the restarted process's count is 0), and
  // its held rows only mark what the helper holds.
  EXPECT_EQ(deployment.leader().metrics.input_shares_opened(), 0u);
  auto marks = deployment.leader().datastore->Run([&](Transaction& tx) -> Result<void> {
    auto listed = tx.ReportsInBatch(task_id, 0, std::numeric_limits<dap::Time>::max(), {}, 100, 0);
    if (!listed) return std::unexpected(listed.error());
    EXPECT_EQ(listed->size(), strings.size());
    for (const ClientReportRow& report : *listed) {
      EXPECT_TRUE(report.aggregated_before);
      auto held = tx.GetHeldReport(task_id, report.report_id);
      if (!held) return std::unexpected(held.error());
      EXPECT_TRUE(held->has_value() && (*held)->input_share.empty() &&
                  (*held)->public_share.empty());
    }
    return {};
  });
  EXPECT_TRUE(marks) << marks.error().ToString();
}

// The leader keeps a walked batch's listing in memory between levels, and
// a report rejected at one level must leave it: here the leader's stored
// copy of one report is damaged after two levels (and the report is no
// longer prepared in memory), so the third level rejects it, and the fourth
// level's jobs must not name it again.
TEST(EndToEnd, ReportRejectedMidWalkLeavesTheListingKeptInMemory) {
  Deployment deployment;
  const Poplar1Task added = AddPoplar1Task(deployment, 3, 4, 4);
  const dap::TaskId task_id = added.id;
  const poplar::Poplar1& poplar1 = added.vdaf();
  const dap::Time now = deployment.NowUnits(task_id);
  const std::vector<BitString> strings = Parsed({"0110", "0110", "0111", "1000", "0110", "1111"});
  ASSERT_TRUE(deployment.Upload(task_id, AsMeasurements(strings), now));
  const std::vector<std::vector<BitString>> levels = {
      Parsed({"0", "1"}), Parsed({"01", "10", "11"}), Parsed({"011", "100", "111"}),
      Parsed({"0110", "0111", "1000", "1111"})};
  std::vector<Bytes> params;
  std::shared_ptr<const poplar::Poplar1AggParam> previous;
  auto collect = [&](size_t level, const std::vector<BitString>& counted) {
    auto param = poplar1.MakeAggParam(static_cast<uint32_t>(level), levels[level], previous.get());
    ASSERT_TRUE(param);
    params.push_back(poplar1.EncodeAggParam(**param));
    auto collected = deployment.Collect(task_id, IntervalCollection(now, 1, params.back()));
    ASSERT_TRUE(collected);
    ASSERT_EQ(collected->status, 200) << collected->problem_type;
    EXPECT_EQ(collected->result, PlainCounts(counted, levels[level])) << "level " << level;
    EXPECT_EQ(collected->report_count, counted.size()) << "level " << level;
    previous = std::move(*param);
  };
  collect(0, strings);  // Listed from the datastore: it marks every report held.
  EXPECT_EQ(deployment.leader_drivers().batch_listings_read(), 0u);
  collect(1, strings);  // The listing is read and kept.
  const uint64_t read_before = deployment.leader_drivers().batch_listings_read();
  EXPECT_EQ(read_before, 1u);
  // Passes while the collector has not asked for the next level yet (the
  // leader's loop runs them) keep it.
  deployment.DriveLeader();
  deployment.DriveLeader();

  // The last report ("1111"): its stored bytes damaged, and out of memory.
  std::vector<dap::ReportId> ids;
  ASSERT_TRUE(deployment.leader().datastore->Run([&](Transaction& tx) -> Result<void> {
    auto listed = tx.ReportsInBatch(task_id, 0, std::numeric_limits<dap::Time>::max(), {}, 100, 0);
    if (!listed) return std::unexpected(listed.error());
    for (const ClientReportRow& report : *listed) ids.push_back(report.report_id);
    return {};
  }));
  ASSERT_EQ(ids.size(), strings.size());
  const dap::ReportId damaged = ids.back();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((deployment.folder() + "/leader.sqlite").c_str(), &db), SQLITE_OK);
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* damage = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "UPDATE report_bodies SET encoded_report = x'00' WHERE id = "
                               "(SELECT body FROM client_reports WHERE report_id = ?)",
                               -1, &damage, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_bind_blob(damage, 1, damaged.data(), static_cast<int>(damaged.size()), SQLITE_STATIC);
  EXPECT_EQ(sqlite3_step(damage), SQLITE_DONE) << sqlite3_errmsg(db);
  EXPECT_EQ(sqlite3_changes(db), 1);
  sqlite3_finalize(damage);
  sqlite3_close(db);
  EXPECT_NE(deployment.leader().service->report_cache().Take(task_id, damaged), nullptr);

  std::vector<BitString> kept(strings.begin(), strings.end() - 1);
  const uint64_t pages_before = deployment.leader_drivers().pages_listed_from_memory();
  collect(2, kept);  // Listed from memory; the damaged report is rejected.
  EXPECT_EQ(deployment.leader_drivers().batch_listings_read(), read_before);
  EXPECT_GT(deployment.leader_drivers().pages_listed_from_memory(), pages_before);
  collect(3, kept);  // Listed again: the rejection changed the batch.
  EXPECT_EQ(deployment.leader_drivers().batch_listings_read(), read_before + 1);
  auto named = deployment.leader().datastore->Run([&](Transaction& tx) -> Result<void> {
    auto jobs = tx.JobsWithParam(task_id, params[3]);
    if (!jobs) return std::unexpected(jobs.error());
    EXPECT_FALSE(jobs->empty());
    size_t reports = 0;
    for (const JobId& job_id : *jobs) {
      auto rows = tx.GetJobReports(task_id, job_id);
      if (!rows) return std::unexpected(rows.error());
      for (const ReportAggregationRow& row : *rows) {
        EXPECT_NE(row.report_id, damaged);
        ++reports;
      }
    }
    EXPECT_EQ(reports, kept.size());
    return {};
  });
  EXPECT_TRUE(named) << named.error().ToString();
}

// A collector that asks for two levels of one batch at once gets both: the
// leader aggregates the levels in the order they were asked for.
TEST(EndToEnd, Poplar1LevelsAskedTogetherAreAggregatedInOrder) {
  Deployment deployment;
  const Poplar1Task added = AddPoplar1Task(deployment, 2, 4, 4);
  const dap::TaskId task_id = added.id;
  const poplar::Poplar1& poplar1 = added.vdaf();
  dap::Time now = deployment.NowUnits(task_id);
  std::vector<BitString> strings;
  std::vector<poplar::Measurement> measurements;
  for (const char* string : {"0110", "0110", "0111", "1000", "1111"}) {
    strings.push_back(*BitString::Parse(string));
    measurements.push_back(strings.back());
  }
  ASSERT_TRUE(deployment.Upload(task_id, measurements, now));
  std::vector<BitString> level0 = {*BitString::Parse("0"), *BitString::Parse("1")};
  std::vector<BitString> level2 = {*BitString::Parse("011"), *BitString::Parse("100")};
  auto param0 = poplar1.MakeAggParam(0, level0, nullptr);
  auto param2 = poplar1.MakeAggParam(2, level2, param0->get());
  ASSERT_TRUE(param0 && param2);
  auto request0 = IntervalCollection(now, 1, poplar1.EncodeAggParam(**param0));
  auto request2 = IntervalCollection(now, 1, poplar1.EncodeAggParam(**param2));
  auto created0 = deployment.CreateCollectionJob(task_id, request0);
  auto created2 = deployment.CreateCollectionJob(task_id, request2);
  ASSERT_TRUE(created0 && created2);
  ASSERT_EQ(created0->status, 201);
  ASSERT_EQ(created2->status, 201);
  // Collect (polls and drives) the later level first: it must wait for level 0.
  auto second = deployment.Collect(task_id, request2);
  ASSERT_TRUE(second);
  ASSERT_EQ(second->status, 200) << second->problem_type;
  EXPECT_EQ(second->result, PlainCounts(strings, level2));
  auto first = deployment.Collect(task_id, request0);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200) << first->problem_type;
  EXPECT_EQ(first->result, PlainCounts(strings, level0));
  // No aggregation job was refused and abandoned on the way.
  EXPECT_NE(deployment.leader().metrics.Render().find(
                "canopy_aggregation_jobs_total{event=\"abandoned\"} 0\n"),
            std::string::npos);
}

}  // namespace
}  // namespace canopy::aggregator
