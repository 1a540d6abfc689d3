// Prio3 end to end: `canopy-client upload --input` sends numbers to a Prio3
// task of a leader and a helper on loopback, and `canopy-collector collect`
// prints the batch's aggregate, which must be the plain aggregate of the
// numbers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/end_to_end/end_to_end_fixture.h"

namespace canopy::end_to_end {
namespace {

using canopy::testing::LocalTask;

class Prio3CollectTest : public EndToEndTest {
 protected:
  // Starts the aggregators with `definition`'s task, uploads `measurements`
  // now and runs `canopy-collector collect --format <format>`; returns what
  // it printed ("" after failing the test).
  std::string UploadAndCollect(const config::TaskDefinition& definition,
                               const std::vector<std::string>& measurements,
                               const std::string& format) {
    auto task = deployment().AddTask(definition);
    EXPECT_TRUE(task) << task.error().ToString();
    if (!task) return "";
    auto started = deployment().Start();
    EXPECT_TRUE(started) << started.error().ToString();
    if (!started) return "";
    const uint64_t now = NowSeconds();
    auto uploaded = deployment().UploadInput(*task, measurements, now, "client");
    EXPECT_TRUE(uploaded) << uploaded.error().ToString();
    if (!uploaded) return "";

    config::CollectorConfig settings;
    canopy::testing::LocalDeployment::SetBatch(*task, now, settings);
    auto config = deployment().WriteCollectorConfig(
        deployment().CollectorConfigFor(*task, settings), "collector");
    EXPECT_TRUE(config) << config.error().ToString();
    if (!config) return "";
    auto run =
        deployment().RunCollector({"collect", "--config", *config, "--format", format}, "collect");
    EXPECT_TRUE(run) << run.error().ToString();
    if (!run) return "";
    EXPECT_TRUE(run->succeeded()) << run->status_text() << "\n" << run->Stderr();
    return run->Stdout();
  }

  config::TaskDefinition NewDefinition() {
    auto definition = deployment().NewTaskDefinition(/*min_batch_size=*/10);
    EXPECT_TRUE(definition) << definition.error().ToString();
    return definition ? *definition : config::TaskDefinition();
  }
};

TEST_F(Prio3CollectTest, HistogramAggregateAsJson) {
  config::TaskDefinition definition = NewDefinition();
  definition.mutable_prio3_histogram()->set_length(5);
  definition.mutable_prio3_histogram()->set_chunk_length(2);
  std::vector<std::string> measurements;
  uint64_t buckets[5] = {};
  for (int i = 0; i < 60; ++i) {
    const int bucket = (i * i + 3 * i) % 7 % 5;  // Uneven; buckets 1 and 2 stay empty.
    ++buckets[bucket];
    measurements.push_back(std::to_string(bucket));
  }
  const std::string printed = UploadAndCollect(definition, measurements, "json");
  std::string aggregate;
  for (uint64_t count : buckets) {
    aggregate += (aggregate.empty() ? "" : ",") + std::to_string(count);
  }
  EXPECT_EQ(printed, "{\"report_count\":60,\"aggregate\":[" + aggregate + "]}\n");
}

TEST_F(Prio3CollectTest, SumAggregateAsText) {
  config::TaskDefinition definition = NewDefinition();
  definition.mutable_prio3_sum()->set_max_measurement(1000);
  std::vector<std::string> measurements;
  uint64_t sum = 0;
  for (uint64_t i = 0; i < 25; ++i) {
    const uint64_t value = (i * 37 + 11) % 1001;
    sum += value;
    measurements.push_back(std::to_string(value));
  }
  const std::string printed = UploadAndCollect(definition, measurements, "text");
  EXPECT_EQ(printed, "reports: 25\naggregate: " + std::to_string(sum) + "\n");
}

}  // namespace
}  // namespace canopy::end_to_end
