// The leader and the helper as real `canopy-aggregator` processes on loopback
// ports, each with its own SQLite file (DESIGN.md, "Tests"): a Prio3
// collection and a Poplar1 multi-level walk give exactly the plain counts,
// also when one party is killed with SIGKILL at random moments while the
// collection is being driven and restarted on the same database (nothing
// acknowledged is lost, nothing is counted twice), and SIGTERM stops a
// process cleanly.
//
// The kill moments are drawn at random (from a fixed seed, but the processes'
// progress is not deterministic): the property is that every moment is safe.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "idpf/bit_string.h"
#include "poplar/poplar1.h"
#include "tests/aggregator/process_harness.h"

namespace canopy::aggregator {
namespace {

using idpf::BitString;
using testing::AggregatorProcess;
using testing::Collection;
using testing::ProcessDeployment;

dap::CollectionJobReq IntervalCollection(dap::Time start, dap::Duration duration,
                                         dap::Bytes agg_param = {}) {
  dap::CollectionJobReq request;
  request.query = dap::TimeIntervalQuery({start, duration});
  request.agg_param = std::move(agg_param);
  return request;
}

// How a party is disrupted while a collection job is pending.
struct Kills {
  int count = 0;  // SIGKILLs, each after a random delay of 10 to 300 ms.
  // The process stays down for a random time up to this long: short enough
  // for the leader's HTTP retries to hide it, or long enough that its jobs
  // fail and are retried later.
  int max_downtime_ms = 0;
};

// Kills `process` with SIGKILL as `kills` says, restarting it on the same
// database each time, while the collection job at `job_url` is pending (a
// kill after it finished would test nothing; with no job, regardless).
// Returns the kills done.
int KillAndRestart(ProcessDeployment& deployment, AggregatorProcess& process,
                   const std::string& job_url, const Kills& kills, std::mt19937_64& random) {
  int done = 0;
  for (int i = 0; i < kills.count; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10 + random() % 291));
    if (!job_url.empty()) {
      auto pending = deployment.IsPending(job_url);
      EXPECT_TRUE(pending) << pending.error().ToString();
      if (!pending || !*pending) break;
    }
    EXPECT_TRUE(process.Running()) << process.name() << " died on its own";
    process.Kill();
    ++done;
    if (kills.max_downtime_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(random() % kills.max_downtime_ms));
    }
    auto started = process.Start();
    EXPECT_TRUE(started) << started.error().ToString();
    if (!started) break;
  }
  return done;
}

// What to do while a collection job is pending (kill a party, or nothing).
using Disruption = std::function<void(const std::string& job_url)>;

// Creates the collection job, runs `disrupt`, then waits for the result.
Collection CollectWith(ProcessDeployment& deployment, const dap::TaskId& task_id,
                       const dap::CollectionJobReq& request, const Disruption& disrupt) {
  auto created = deployment.CreateCollectionJob(task_id, request);
  EXPECT_TRUE(created) << created.error().ToString();
  if (!created) return {};
  if (created->refused) return *created->refused;
  if (disrupt) disrupt(created->job_url);
  auto collected = deployment.WaitForCollection(task_id, request, created->job_url);
  EXPECT_TRUE(collected) << collected.error().ToString();
  return collected ? *collected : Collection{};
}

// Which party a test kills, and how.
struct Disrupt {
  bool leader = false;  // Else the helper.
  Kills kills;
};

// A Disruption that kills a party of `deployment` as `plan` says.
Disruption Killer(ProcessDeployment& deployment, const std::optional<Disrupt>& plan,
                  std::mt19937_64& random) {
  if (!plan) return nullptr;
  return [&deployment, plan, &random](const std::string& job_url) {
    AggregatorProcess& process = plan->leader ? deployment.leader() : deployment.helper();
    int done = KillAndRestart(deployment, process, job_url, plan->kills, random);
    // For the record (the count depends on timing, so it is not checked).
    ::testing::Test::RecordProperty(process.name() + "_kills", done);
  };
}

// --- Prio3.

// `count` Prio3Histogram measurements over `length` buckets, and their plain
// histogram.
std::vector<poplar::Measurement> HistogramMeasurements(size_t count, size_t length,
                                                       std::mt19937_64& random,
                                                       poplar::AggregateResult& expected) {
  expected.assign(length, 0);
  std::vector<poplar::Measurement> measurements;
  for (size_t i = 0; i < count; ++i) {
    // Skewed towards the low buckets.
    uint64_t bucket = std::min<uint64_t>(random() % length, random() % length);
    ++expected[bucket];
    measurements.push_back(bucket);
  }
  return measurements;
}

// Uploads a histogram workload to a fresh deployment and collects it while
// a party is killed as `disrupt` says.
void RunPrio3Histogram(uint64_t seed, const std::optional<Disrupt>& disrupt) {
  std::mt19937_64 random(seed);
  testing::ProcessDeploymentOptions options;
  // Small jobs: more round trips to the helper, more moments to be killed in.
  options.max_reports_per_aggregation_job = 10;
  ProcessDeployment deployment(options);
  config::TaskDefinition definition = deployment.NewTaskDefinition(20);
  definition.mutable_prio3_histogram()->set_length(24);
  definition.mutable_prio3_histogram()->set_chunk_length(5);
  auto task_id = deployment.AddTask(definition);
  ASSERT_TRUE(task_id) << task_id.error().ToString();
  auto started = deployment.Start();
  ASSERT_TRUE(started) << started.error().ToString();
  const dap::Time now = deployment.NowUnits(*task_id);
  poplar::AggregateResult expected;
  auto measurements = HistogramMeasurements(480, 24, random, expected);
  auto uploaded = deployment.Upload(*task_id, measurements, now);
  ASSERT_TRUE(uploaded) << uploaded.error().ToString();

  // The leader aggregates as reports arrive: the disruption starts at once,
  // and goes on while the collection job is pending.
  Disruption killer = Killer(deployment, disrupt, random);
  if (killer) killer("");
  Collection collection = CollectWith(deployment, *task_id, IntervalCollection(now, 1), killer);
  ASSERT_EQ(collection.status, 200) << collection.problem_type;
  EXPECT_EQ(collection.report_count, measurements.size());
  EXPECT_EQ(collection.result, expected);
  EXPECT_TRUE(deployment.leader().Running());
  EXPECT_TRUE(deployment.helper().Running());
}

TEST(ProcessTest, Prio3CountAcrossProcesses) {
  std::mt19937_64 random(11);
  ProcessDeployment deployment;
  config::TaskDefinition definition = deployment.NewTaskDefinition(10);
  definition.mutable_prio3_count();
  auto task_id = deployment.AddTask(definition);
  ASSERT_TRUE(task_id) << task_id.error().ToString();
  auto started = deployment.Start();
  ASSERT_TRUE(started) << started.error().ToString();
  const dap::Time now = deployment.NowUnits(*task_id);
  std::vector<poplar::Measurement> measurements;
  uint64_t ones = 0;
  for (int i = 0; i < 150; ++i) {
    uint64_t value = random() % 3 == 0;
    ones += value;
    measurements.push_back(value);
  }
  auto uploaded = deployment.Upload(*task_id, measurements, now);
  ASSERT_TRUE(uploaded) << uploaded.error().ToString();
  auto collected = deployment.Collect(*task_id, IntervalCollection(now, 1));
  ASSERT_TRUE(collected) << collected.error().ToString();
  ASSERT_EQ(collected->status, 200) << collected->problem_type;
  EXPECT_EQ(collected->report_count, 150u);
  ASSERT_EQ(collected->result.size(), 1u);
  EXPECT_EQ(collected->result[0], ones);

  // The batch is collected: collecting it again names the same job
  // (idempotent), an overlapping batch is refused.
  auto again = deployment.Collect(*task_id, IntervalCollection(now, 1));
  ASSERT_TRUE(again) << again.error().ToString();
  EXPECT_EQ(again->status, 200);
  EXPECT_EQ(again->result, collected->result);
  auto overlap = deployment.Collect(*task_id, IntervalCollection(now - 1, 2));
  ASSERT_TRUE(overlap) << overlap.error().ToString();
  EXPECT_EQ(overlap->status, 400);
  EXPECT_EQ(overlap->problem_type, "batchOverlap");
}

TEST(ProcessTest, Prio3HistogramSurvivesLeaderKills) {
  RunPrio3Histogram(21, Disrupt{true, {5, 100}});
}

TEST(ProcessTest, Prio3HistogramSurvivesHelperKills) {
  RunPrio3Histogram(31, Disrupt{false, {5, 1500}});
}

// --- Poplar1.

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

// A skewed workload: `popular` strings drawn with weights 1/1, 1/2, 1/3, ...
// (Zipf), then `uniform` strings drawn uniformly.
std::vector<BitString> SkewedStrings(size_t bits, size_t popular, size_t zipf_reports,
                                     size_t uniform, std::mt19937_64& random) {
  std::vector<BitString> heads;
  for (size_t i = 0; i < popular; ++i) {
    heads.push_back(BitString::FromUint64(random() & ((uint64_t{1} << bits) - 1), bits));
  }
  std::discrete_distribution<size_t> zipf = [&] {
    std::vector<double> weights;
    for (size_t i = 0; i < popular; ++i) weights.push_back(1.0 / static_cast<double>(i + 1));
    return std::discrete_distribution<size_t>(weights.begin(), weights.end());
  }();
  std::vector<BitString> strings;
  for (size_t i = 0; i < zipf_reports; ++i) strings.push_back(heads[zipf(random)]);
  for (size_t i = 0; i < uniform; ++i) {
    strings.push_back(BitString::FromUint64(random() & ((uint64_t{1} << bits) - 1), bits));
  }
  std::shuffle(strings.begin(), strings.end(), random);
  return strings;
}

// Walks the prefix tree of a Poplar1 task over the levels given, keeping the
// prefixes whose count reaches `threshold`, and checks every level's counts
// against the plain ones. `disrupt` runs while each level's collection job is
// pending. Returns the heavy hitters found at the last level.
std::vector<BitString> Walk(ProcessDeployment& deployment, const dap::TaskId& task_id,
                            dap::Time time, const std::vector<BitString>& strings,
                            const std::vector<size_t>& levels, uint64_t threshold,
                            const Disruption& disrupt) {
  const auto& poplar1 = static_cast<const poplar::Poplar1&>(*deployment.task(task_id)->vdaf);
  // The first level: every prefix of that length.
  std::vector<BitString> candidates;
  for (uint64_t value = 0; value < (uint64_t{1} << (levels[0] + 1)); ++value) {
    candidates.push_back(BitString::FromUint64(value, levels[0] + 1));
  }
  std::shared_ptr<const poplar::Poplar1AggParam> previous;
  std::vector<BitString> survivors;
  for (size_t step = 0; step < levels.size(); ++step) {
    const size_t level = levels[step];
    auto agg_param = poplar1.MakeAggParam(level, candidates, previous.get());
    EXPECT_TRUE(agg_param) << agg_param.error().ToString();
    if (!agg_param) return {};
    auto request = IntervalCollection(time, 1, poplar1.EncodeAggParam(**agg_param));
    Collection collection = CollectWith(deployment, task_id, request, disrupt);
    EXPECT_EQ(collection.status, 200) << "level " << level << ": " << collection.problem_type;
    if (collection.status != 200) return {};
    EXPECT_EQ(collection.report_count, strings.size()) << "level " << level;
    EXPECT_EQ(collection.result, PlainCounts(strings, candidates)) << "level " << level;
    if (collection.result.size() != candidates.size()) return {};
    survivors.clear();
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (collection.result[i] >= threshold) survivors.push_back(candidates[i]);
    }
    if (step + 1 == levels.size()) break;
    // The survivors, extended to the next level.
    std::vector<BitString> next = survivors;
    for (size_t bit = level; bit < levels[step + 1]; ++bit) {
      std::vector<BitString> longer;
      for (const BitString& prefix : next) {
        longer.push_back(prefix.Extended(false));
        longer.push_back(prefix.Extended(true));
      }
      next = std::move(longer);
    }
    candidates = std::move(next);
    previous = *agg_param;
  }
  return survivors;
}

// The strings occurring at least `threshold` times, in order.
std::vector<BitString> HeavyHitters(const std::vector<BitString>& strings, uint64_t threshold) {
  std::map<BitString, uint64_t> counts;
  for (const BitString& string : strings) ++counts[string];
  std::vector<BitString> heavy;
  for (const auto& [string, count] : counts) {
    if (count >= threshold) heavy.push_back(string);
  }
  return heavy;
}

struct Poplar1Workload {
  size_t bits;
  std::vector<size_t> levels;
  uint64_t threshold;
  size_t popular, zipf_reports, uniform;
};

// A Poplar1 multi-level walk on a fresh deployment, with a party killed as
// `disrupt` says during every level's collection.
void RunPoplar1Walk(uint64_t seed, const Poplar1Workload& workload,
                    const std::optional<Disrupt>& disrupt) {
  std::mt19937_64 random(seed);
  testing::ProcessDeploymentOptions options;
  options.max_reports_per_aggregation_job = disrupt ? 10 : 50;
  ProcessDeployment deployment(options);
  config::TaskDefinition definition = deployment.NewTaskDefinition(20);
  definition.mutable_poplar1()->set_bits(static_cast<uint32_t>(workload.bits));
  definition.mutable_multi_level_collection()->set_max_collections_per_batch(
      static_cast<uint32_t>(workload.levels.size()));
  auto task_id = deployment.AddTask(definition);
  ASSERT_TRUE(task_id) << task_id.error().ToString();
  auto started = deployment.Start();
  ASSERT_TRUE(started) << started.error().ToString();
  const dap::Time now = deployment.NowUnits(*task_id);
  std::vector<BitString> strings = SkewedStrings(workload.bits, workload.popular,
                                                 workload.zipf_reports, workload.uniform, random);
  std::vector<poplar::Measurement> measurements(strings.begin(), strings.end());
  auto uploaded = deployment.Upload(*task_id, measurements, now);
  ASSERT_TRUE(uploaded) << uploaded.error().ToString();

  std::vector<BitString> found = Walk(deployment, *task_id, now, strings, workload.levels,
                                      workload.threshold, Killer(deployment, disrupt, random));
  EXPECT_EQ(found, HeavyHitters(strings, workload.threshold));
  EXPECT_FALSE(found.empty());
  EXPECT_TRUE(deployment.leader().Running());
  EXPECT_TRUE(deployment.helper().Running());
}

TEST(ProcessTest, Poplar1WalkOverSixteenBits) {
  // 300 reports; five levels, four bits per round then two.
  RunPoplar1Walk(41, {16, {1, 5, 9, 13, 15}, 12, 6, 180, 120}, std::nullopt);
}

TEST(ProcessTest, Poplar1WalkSurvivesLeaderKills) {
  RunPoplar1Walk(51, {8, {0, 3, 7}, 10, 5, 150, 90}, Disrupt{true, {4, 100}});
}

TEST(ProcessTest, Poplar1WalkSurvivesHelperKills) {
  RunPoplar1Walk(61, {8, {0, 3, 7}, 10, 5, 150, 90}, Disrupt{false, {4, 1500}});
}

// --- Shutdown.

TEST(ProcessTest, SigtermStopsBothPartiesCleanly) {
  ProcessDeployment deployment;
  config::TaskDefinition definition = deployment.NewTaskDefinition(5);
  definition.mutable_prio3_count();
  auto task_id = deployment.AddTask(definition);
  ASSERT_TRUE(task_id) << task_id.error().ToString();
  auto started = deployment.Start();
  ASSERT_TRUE(started) << started.error().ToString();
  const dap::Time now = deployment.NowUnits(*task_id);
  std::vector<poplar::Measurement> measurements(30, uint64_t{1});
  ASSERT_TRUE(deployment.Upload(*task_id, measurements, now));

  // The bound only keeps a hung process from hanging the test.
  constexpr auto kBound = std::chrono::seconds(20);
  for (AggregatorProcess* process : {&deployment.leader(), &deployment.helper()}) {
    auto status = process->Terminate(kBound);
    ASSERT_TRUE(status) << status.error().ToString();
    EXPECT_TRUE(WIFEXITED(*status)) << process->name();
    EXPECT_EQ(WEXITSTATUS(*status), 0) << process->name();
  }

  // Restarted on the same databases, they serve what was acknowledged.
  ASSERT_TRUE(deployment.helper().Start());
  ASSERT_TRUE(deployment.leader().Start());
  auto collected = deployment.Collect(*task_id, IntervalCollection(now, 1));
  ASSERT_TRUE(collected) << collected.error().ToString();
  ASSERT_EQ(collected->status, 200) << collected->problem_type;
  EXPECT_EQ(collected->report_count, 30u);
  EXPECT_EQ(collected->result, poplar::AggregateResult{30});
}

}  // namespace
}  // namespace canopy::aggregator
