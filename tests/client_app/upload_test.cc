// Bulk uploads to a real leader and helper (in process, on loopback), then
// collected: the counts equal plain counting of what was uploaded.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>

#include "client_app/bulk_upload.h"
#include "client_app/measurement_input.h"
#include "client_app/task_file.h"
#include "client_app/workload.h"
#include "dap/task.h"
#include "poplar/poplar1.h"
#include "tests/aggregator/deployment.h"

namespace canopy::client {
namespace {

using aggregator::testing::Deployment;
using idpf::BitString;

constexpr uint64_t kTimePrecision = 3600;  // Deployment's tasks use it.

dap::CollectionJobReq IntervalCollection(dap::Time start, dap::Duration duration,
                                         dap::Bytes agg_param = {}) {
  dap::CollectionJobReq request;
  request.query = dap::TimeIntervalQuery({start, duration});
  request.agg_param = std::move(agg_param);
  return request;
}

dap::UploadTask UploadTaskOf(const config::TaskDefinition& definition) {
  auto task = MakeClientTask(definition);
  EXPECT_TRUE(task) << task.error().ToString();
  return task->upload;
}

TEST(BulkUpload, ZipfWorkloadToPoplar1CollectsTheTrueCounts) {
  Deployment deployment;
  config::TaskDefinition definition = deployment.NewTaskDefinition(10);
  definition.mutable_poplar1()->set_bits(64);
  const dap::TaskId task_id = deployment.AddTask(definition);
  const dap::Time now = deployment.NowUnits(task_id);
  const dap::UploadTask task = UploadTaskOf(definition);

  WorkloadOptions workload_options;
  workload_options.reports = 400;
  workload_options.distinct = 30;
  workload_options.max_length = 8;
  workload_options.seed = 5;
  auto workload = GenerateWorkload(workload_options);
  ASSERT_TRUE(workload);
  auto parser = MeasurementParser::Create(task.task_configuration);
  ASSERT_TRUE(parser);
  std::vector<poplar::Measurement> distinct;
  for (const std::string& text : workload->strings) {
    auto measurement = parser->Parse(text, "workload");
    ASSERT_TRUE(measurement) << measurement.error().ToString();
    distinct.push_back(std::move(*measurement));
  }

  BulkUploadOptions options;
  options.threads = 3;
  options.reports_per_request = 25;
  options.time_seconds = now * kTimePrecision;
  uint64_t last_sent = 0;
  int calls = 0;
  options.on_progress = [&](const BulkProgress& progress) {
    EXPECT_EQ(progress.total, 400u);
    EXPECT_GE(progress.sent, last_sent);
    last_sent = progress.sent;
    ++calls;
  };
  auto summary = BulkUpload(
      task, workload->draws.size(), [&](size_t index) { return distinct[workload->draws[index]]; },
      options);
  ASSERT_TRUE(summary) << summary.error().ToString();
  EXPECT_TRUE(summary->all_accepted()) << DescribeSummary(*summary);
  EXPECT_EQ(summary->accepted, 400u);
  EXPECT_EQ(summary->requests, 16u);
  EXPECT_GE(calls, 1);
  EXPECT_EQ(last_sent, 400u);

  // Collect every distinct string at the last level.
  std::vector<BitString> candidates;
  for (const poplar::Measurement& measurement : distinct) {
    candidates.push_back(std::get<BitString>(measurement));
  }
  std::sort(candidates.begin(), candidates.end());
  auto vdaf =
      dap::MakeVdaf(task.task_configuration.vdaf_type, task.task_configuration.vdaf_configuration);
  ASSERT_TRUE(vdaf);
  const auto& poplar1 = static_cast<const poplar::Poplar1&>(**vdaf);
  auto agg_param = poplar1.MakeAggParam(63, candidates, nullptr);
  ASSERT_TRUE(agg_param) << agg_param.error().ToString();
  auto collected =
      deployment.Collect(task_id, IntervalCollection(now, 1, poplar1.EncodeAggParam(**agg_param)));
  ASSERT_TRUE(collected) << collected.error().ToString();
  ASSERT_EQ(collected->status, 200) << collected->problem_type;
  EXPECT_EQ(collected->report_count, 400u);

  std::map<std::string, uint64_t> expected;
  for (const TrueCount& entry : workload->TrueCounts()) expected[entry.string] = entry.count;
  ASSERT_EQ(collected->result.size(), candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    const std::string text = DecodeString(candidates[i]);
    EXPECT_EQ(static_cast<uint64_t>(collected->result[i]), expected[text]) << text;
  }
}

TEST(BulkUpload, Prio3SumOfParsedNumbers) {
  Deployment deployment;
  config::TaskDefinition definition = deployment.NewTaskDefinition(5);
  definition.mutable_prio3_sum()->set_max_measurement(100);
  const dap::TaskId task_id = deployment.AddTask(definition);
  const dap::Time now = deployment.NowUnits(task_id);
  const dap::UploadTask task = UploadTaskOf(definition);
  auto parser = MeasurementParser::Create(task.task_configuration);
  ASSERT_TRUE(parser);
  std::vector<poplar::Measurement> measurements;
  uint64_t sum = 0;
  for (uint64_t i = 0; i < 50; ++i) {
    const uint64_t value = (i * 37) % 101;
    sum += value;
    auto measurement = parser->Parse(std::to_string(value), "test");
    ASSERT_TRUE(measurement) << measurement.error().ToString();
    measurements.push_back(std::move(*measurement));
  }
  BulkUploadOptions options;
  options.threads = 2;
  options.reports_per_request = 7;
  options.time_seconds = now * kTimePrecision;
  auto summary = BulkUpload(task, measurements, options);
  ASSERT_TRUE(summary) << summary.error().ToString();
  EXPECT_TRUE(summary->all_accepted()) << DescribeSummary(*summary);
  EXPECT_EQ(summary->requests, 8u);
  auto collected = deployment.Collect(task_id, IntervalCollection(now, 1));
  ASSERT_TRUE(collected) << collected.error().ToString();
  ASSERT_EQ(collected->status, 200) << collected->problem_type;
  EXPECT_EQ(collected->report_count, 50u);
  EXPECT_EQ(static_cast<uint64_t>(collected->result[0]), sum);
}

TEST(BulkUpload, CountsRefusedReportsByReason) {
  Deployment deployment;
  config::TaskDefinition definition = deployment.NewTaskDefinition(1);
  definition.mutable_prio3_count();
  const dap::TaskId task_id = deployment.AddTask(definition);
  const dap::Time now = deployment.NowUnits(task_id);
  std::vector<poplar::Measurement> measurements(12, uint64_t{1});
  BulkUploadOptions options;
  options.threads = 2;
  options.reports_per_request = 5;
  options.time_seconds = (now + 1000) * kTimePrecision;  // Far beyond the clock skew.
  auto summary = BulkUpload(UploadTaskOf(definition), measurements, options);
  ASSERT_TRUE(summary) << summary.error().ToString();
  EXPECT_FALSE(summary->all_accepted());
  EXPECT_FALSE(summary->failure);
  EXPECT_EQ(summary->accepted, 0u);
  EXPECT_EQ(summary->refused, 12u);
  EXPECT_EQ(summary->refused_by_reason[dap::ReportError::kReportTooEarly], 12u);
  ASSERT_EQ(summary->refused_reports.size(), 12u);
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(summary->refused_reports[i].measurement_index, i);
  const std::string described = DescribeSummary(*summary);
  EXPECT_TRUE(described.starts_with("sent 12 of 12 reports in ")) << described;
  EXPECT_NE(described.find("requests): 0 accepted, 12 refused\n"), std::string::npos) << described;
  EXPECT_NE(described.find("refused 12: 12 report_too_early"), std::string::npos) << described;
}

TEST(BulkUpload, StopsAtAMeasurementTheVdafRefuses) {
  Deployment deployment;
  config::TaskDefinition definition = deployment.NewTaskDefinition(1);
  definition.mutable_prio3_count();
  deployment.AddTask(definition);
  BulkUploadOptions options;
  options.threads = 1;
  options.reports_per_request = 10;
  auto summary = BulkUpload(
      UploadTaskOf(definition), 50,
      [](size_t index) { return poplar::Measurement(uint64_t{index == 25 ? 2u : 1u}); }, options);
  ASSERT_TRUE(summary) << summary.error().ToString();
  ASSERT_TRUE(summary->failure);
  EXPECT_NE(summary->failure->message().find("reports 20 to 29"), std::string::npos)
      << summary->failure->message();
  EXPECT_EQ(summary->accepted, 20u);
  EXPECT_EQ(summary->unanswered(), 30u);
}

TEST(BulkUpload, AnUnreachableLeaderFailsBeforeSending) {
  config::TaskDefinition definition;
  definition.set_task_id("RVhBTVBMRSB0YXNrOiBoZWF2eSBoaXR0ZXJzIDI1NmI");
  definition.set_leader_url("http://127.0.0.1:1/");
  definition.set_helper_url("http://127.0.0.1:1/");
  definition.set_time_precision_seconds(3600);
  definition.set_min_batch_size(1);
  definition.set_batch_mode(config::TaskDefinition::TIME_INTERVAL);
  definition.mutable_prio3_count();
  definition.mutable_collector_hpke_config()->set_id(1);
  definition.mutable_collector_hpke_config()->set_public_key(
      "KtGNt2c9Cf2FN5X6aRssr5uSeQkAiFJVkDitFlJ4xj8");
  BulkUploadOptions options;
  options.http.max_attempts = 1;
  std::vector<poplar::Measurement> measurements(3, uint64_t{1});
  auto summary = BulkUpload(UploadTaskOf(definition), measurements, options);
  ASSERT_FALSE(summary);
  EXPECT_NE(summary.error().message().find("leader"), std::string::npos)
      << summary.error().message();
}

}  // namespace
}  // namespace canopy::client
