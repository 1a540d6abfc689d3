// Task configurations: VDAFs from their codepoints, extension rules and
// report time checks.
#include "dap/task.h"

#include <gtest/gtest.h>

namespace canopy::dap {
namespace {

TaskConfiguration Poplar1Task(uint16_t bits) {
  TaskConfiguration task;
  task.leader_aggregator_endpoint = {'l'};
  task.helper_aggregator_endpoint = {'h'};
  task.time_precision = 60;
  task.min_batch_size = 10;
  task.vdaf_type = static_cast<uint32_t>(VdafType::kPoplar1);
  task.vdaf_configuration = Poplar1Configuration(bits);
  return task;
}

TEST(Task, BuildsEveryVdafFromItsConfiguration) {
  struct Case {
    VdafType type;
    Bytes configuration;
    std::string name_prefix;
  };
  const Case cases[] = {
      {VdafType::kPrio3Count, {}, "Prio3Count"},
      {VdafType::kPrio3Sum, Prio3SumConfiguration(255), "Prio3Sum"},
      {VdafType::kPrio3SumVec, Prio3SumVecConfiguration(10, 255, 9), "Prio3SumVec"},
      {VdafType::kPrio3Histogram, Prio3HistogramConfiguration(100, 10), "Prio3Histogram"},
      {VdafType::kPrio3MultihotCountVec, Prio3MultihotCountVecConfiguration(10, 3, 2),
       "Prio3MultihotCountVec"},
      {VdafType::kPoplar1, Poplar1Configuration(256), "Poplar1"},
  };
  for (const Case& c : cases) {
    auto vdaf = MakeVdaf(static_cast<uint32_t>(c.type), c.configuration);
    ASSERT_TRUE(vdaf) << c.name_prefix << ": " << vdaf.error().ToString();
    EXPECT_EQ((*vdaf)->algorithm_id(), static_cast<uint32_t>(c.type));
    EXPECT_TRUE((*vdaf)->name().starts_with(c.name_prefix)) << (*vdaf)->name();
    if (!c.configuration.empty()) {
      // Truncated and overlong configurations are refused.
      EXPECT_FALSE(MakeVdaf(static_cast<uint32_t>(c.type),
                            std::span(c.configuration).first(c.configuration.size() - 1)));
    }
    Bytes longer = c.configuration;
    longer.push_back(0);
    EXPECT_FALSE(MakeVdaf(static_cast<uint32_t>(c.type), longer)) << c.name_prefix;
  }
  EXPECT_EQ(MakeVdaf(7, {}).error().code(), ErrorCode::kUnsupported);
  EXPECT_FALSE(MakeVdaf(static_cast<uint32_t>(VdafType::kPoplar1), Poplar1Configuration(0)));
}

TEST(Task, ValidatesExtensions) {
  TaskConfiguration task = Poplar1Task(16);
  ASSERT_TRUE(ValidateTaskConfiguration(task));
  task.extensions = {TaskIntervalExtension({100, 50}), MultiLevelCollectionExtension({16})};
  Result<TaskRules> rules = ValidateTaskConfiguration(task);
  ASSERT_TRUE(rules) << rules.error().ToString();
  EXPECT_EQ(rules->task_interval, (Interval{100, 50}));
  EXPECT_EQ(rules->multi_level, MultiLevelCollection{16});

  TaskConfiguration unordered = task;
  std::swap(unordered.extensions[0], unordered.extensions[1]);
  EXPECT_FALSE(ValidateTaskConfiguration(unordered));
  TaskConfiguration unknown = Poplar1Task(16);
  unknown.extensions = {{0x0042, {}}};
  EXPECT_FALSE(ValidateTaskConfiguration(unknown));
  TaskConfiguration one_collection = Poplar1Task(16);
  one_collection.extensions = {MultiLevelCollectionExtension({1})};
  EXPECT_FALSE(ValidateTaskConfiguration(one_collection));
  TaskConfiguration prio3 = Poplar1Task(16);
  prio3.vdaf_type = static_cast<uint32_t>(VdafType::kPrio3Count);
  prio3.vdaf_configuration = {};
  EXPECT_TRUE(ValidateTaskConfiguration(prio3));
  prio3.extensions = {MultiLevelCollectionExtension({4})};
  EXPECT_FALSE(ValidateTaskConfiguration(prio3));  // Multi-level is for Poplar1 only.
  TaskConfiguration no_precision = Poplar1Task(16);
  no_precision.time_precision = 0;
  EXPECT_FALSE(ValidateTaskConfiguration(no_precision));
  TaskConfiguration bad_interval = Poplar1Task(16);
  bad_interval.extensions = {{kTaskIntervalExtension, {1, 2, 3}}};
  EXPECT_FALSE(ValidateTaskConfiguration(bad_interval));
}

TEST(Task, ReportTimeChecks) {
  TaskConfiguration task = Poplar1Task(8);
  task.extensions = {TaskIntervalExtension({1000, 100})};
  TaskRules rules = *ValidateTaskConfiguration(task);
  const uint64_t now = 1050 * 60;  // In unit 1050.
  EXPECT_EQ(CheckReportTime(task, rules, 1050, now, 0), std::nullopt);
  EXPECT_EQ(CheckReportTime(task, rules, 1051, now, 0), ReportError::kReportTooEarly);
  EXPECT_EQ(CheckReportTime(task, rules, 1051, now, 60), std::nullopt);  // Within skew.
  EXPECT_EQ(CheckReportTime(task, rules, 999, now, 0), ReportError::kReportDropped);
  EXPECT_EQ(CheckReportTime(task, rules, 1000, now, 0), std::nullopt);
  const uint64_t later = 2000 * 60;
  EXPECT_EQ(CheckReportTime(task, rules, 1099, later, 0), std::nullopt);
  EXPECT_EQ(CheckReportTime(task, rules, 1100, later, 0), ReportError::kReportDropped);
}

TEST(Task, QueryAndBatchSelectorChecks) {
  TaskConfiguration time_task = Poplar1Task(8);
  EXPECT_TRUE(CheckQuery(time_task, TimeIntervalQuery({100, 5})));
  EXPECT_FALSE(CheckQuery(time_task, TimeIntervalQuery({100, 0})));         // Empty.
  EXPECT_FALSE(CheckQuery(time_task, TimeIntervalQuery({UINT64_MAX, 2})));  // Overflow.
  EXPECT_FALSE(CheckQuery(time_task, LeaderSelectedQuery()));               // Wrong mode.
  Query truncated = TimeIntervalQuery({100, 5});
  truncated.config.pop_back();
  EXPECT_EQ(CheckQuery(time_task, truncated).error().code(), ErrorCode::kDecodeError);
  EXPECT_TRUE(
      CheckBatchSelector(time_task, TimeIntervalQuery({100, 5}), TimeIntervalQuery({100, 5})));
  EXPECT_FALSE(
      CheckBatchSelector(time_task, TimeIntervalQuery({100, 5}), TimeIntervalQuery({100, 6})));

  TaskConfiguration leader_task = Poplar1Task(8);
  leader_task.batch_mode = BatchMode::kLeaderSelected;
  EXPECT_TRUE(CheckQuery(leader_task, LeaderSelectedQuery()));
  Query with_config = LeaderSelectedQuery();
  with_config.config = {1};
  EXPECT_FALSE(CheckQuery(leader_task, with_config));
  BatchId id{};
  EXPECT_TRUE(
      CheckBatchSelector(leader_task, LeaderSelectedQuery(), LeaderSelectedBatchSelector(id)));
  BatchSelector short_id = LeaderSelectedBatchSelector(id);
  short_id.config.pop_back();
  EXPECT_FALSE(CheckBatchSelector(leader_task, LeaderSelectedQuery(), short_id));
}

}  // namespace
}  // namespace canopy::dap
