// The configuration loaders: every example loads, bad files are refused with
// their file, line and field, and task files build valid DAP configurations.
#include "config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dap/task.h"

namespace canopy::config {
namespace {

namespace fs = std::filesystem;

const fs::path kExamples = fs::path(CANOPY_SOURCE_DIR) / "docs" / "examples";

// A valid single-task file; tests break one line of it at a time.
constexpr std::string_view kGoodTask = R"(# A test task.
task_id: "RVhBTVBMRSB0YXNrOiBoZWF2eSBoaXR0ZXJzIDI1NmI"
leader_url: "https://leader.example.com/dap/"
helper_url: "https://helper.example.net/dap/"
time_precision_seconds: 60
min_batch_size: 10
batch_mode: TIME_INTERVAL
poplar1 { bits: 16 }
collector_hpke_config {
  id: 1
  public_key: "KtGNt2c9Cf2FN5X6aRssr5uSeQkAiFJVkDitFlJ4xj8"
}
verify_keys { id: 0 key: "RVhBTVBMRSB2ZXJpZnkga2V5IC0gTk9UIFNFQ1JFVCE" }
)";

constexpr std::string_view kGoodCollector = R"(leader_url: "https://leader.example.com/dap/"
task_id: "RVhBTVBMRSB0YXNrOiBoZWF2eSBoaXR0ZXJzIDI1NmI"
collector_token: "token"
hpke_key { config_id: 1 private_key_file: "c.key" }
leader_selected {}
heavy_hitters {
  bits: 16
  default_threshold: 5
}
)";

constexpr std::string_view kGoodAggregator = R"(role: HELPER
listen_address: "127.0.0.1:9000"
database_path: "helper.sqlite"
peer_token: "token"
hpke_keys { config_id: 1 private_key_file: "h.key" }
)";

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("canopy_config_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  // Writes `text` to `name` in the test's directory; returns its path.
  std::string Write(const std::string& name, std::string_view text) {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary) << text;
    return path.string();
  }

  // `base` with the first line starting with `prefix` replaced by
  // `replacement` (removed when empty).
  static std::string Replace(std::string_view base, std::string_view prefix,
                             std::string_view replacement) {
    std::string text(base);
    size_t at = 0;
    if (!text.starts_with(prefix)) {
      std::string needle = "\n";
      needle += prefix;
      at = text.find(needle);
      EXPECT_NE(at, std::string::npos) << prefix;
      ++at;
    }
    const size_t end = text.find('\n', at);
    text.replace(at, end - at, replacement);
    return text;
  }

  // Loads `text` as a task file and expects an error mentioning each of
  // `needles`.
  void ExpectTaskError(std::string_view text, const std::vector<std::string>& needles,
                       ErrorCode code = ErrorCode::kInvalidArgument) {
    const std::string path = Write("task.textproto", text);
    Result<std::vector<TaskDefinition>> tasks = LoadTaskFile(path);
    ASSERT_FALSE(tasks) << "accepted:\n" << text;
    EXPECT_EQ(tasks.error().code(), code);
    EXPECT_TRUE(tasks.error().message().starts_with(path)) << tasks.error().message();
    for (const std::string& needle : needles) {
      EXPECT_NE(tasks.error().message().find(needle), std::string::npos)
          << "no \"" << needle << "\" in: " << tasks.error().message();
    }
  }

  fs::path dir_;
};

// --- Examples ---------------------------------------------------------------

TEST_F(ConfigTest, EveryExampleLoads) {
  LoadOptions options;
  options.check_key_files = true;  // The examples ship their (example) keys.
  int loaded = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(kExamples)) {
    if (entry.path().extension() != ".textproto") continue;
    const std::string path = entry.path().string();
    const std::string name = entry.path().filename().string();
    SCOPED_TRACE(name);
    if (name.starts_with("aggregator-")) {
      Result<AggregatorConfig> config = LoadAggregatorConfig(path, options);
      ASSERT_TRUE(config) << config.error().message();
      Result<std::vector<TaskDefinition>> tasks = LoadAggregatorTasks(*config);
      ASSERT_TRUE(tasks) << tasks.error().message();
      EXPECT_EQ(tasks->size(), 2u);
    } else if (name.starts_with("task-")) {
      Result<TaskDefinition> task = LoadTask(path);
      ASSERT_TRUE(task) << task.error().message();
      ASSERT_TRUE(ToTaskConfiguration(*task)) << ToTaskConfiguration(*task).error().message();
    } else if (name.starts_with("collector-")) {
      Result<CollectorConfig> config = LoadCollectorConfig(path, options);
      ASSERT_TRUE(config) << config.error().message();
      ASSERT_TRUE(LoadTask(config->task_file()));
    } else {
      ADD_FAILURE() << "an example of unknown kind: " << name;
    }
    ++loaded;
  }
  EXPECT_EQ(loaded, 5);
}

TEST_F(ConfigTest, LeaderExampleHasResolvedPathsAndDefaults) {
  Result<AggregatorConfig> config =
      LoadAggregatorConfig((kExamples / "aggregator-leader.textproto").string());
  ASSERT_TRUE(config) << config.error().message();
  EXPECT_EQ(config->role(), AggregatorConfig::LEADER);
  EXPECT_EQ(config->hpke_keys(0).private_key_file(),
            (kExamples / "keys" / "leader-hpke.key").lexically_normal().string());
  EXPECT_EQ(config->hpke_keys(0).kem_id(), 0x20u);
  EXPECT_EQ(config->hpke_keys(0).aead_id(), 1u);
  EXPECT_EQ(config->task_files(0), (kExamples / "task-heavy-hitters.textproto").string());
  EXPECT_EQ(config->tolerable_clock_skew_seconds(), 60u);

  Result<AggregatorConfig> helper =
      ParseAggregatorConfig(kGoodAggregator, (dir_ / "helper.textproto").string());
  ASSERT_TRUE(helper) << helper.error().message();
  EXPECT_EQ(helper->database_path(), (dir_ / "helper.sqlite").string());
  EXPECT_EQ(helper->limits().max_request_body_bytes(), kDefaultMaxRequestBodyBytes);
  EXPECT_EQ(helper->limits().request_timeout_seconds(), kDefaultRequestTimeoutSeconds);
  EXPECT_EQ(helper->tolerable_clock_skew_seconds(), kDefaultTolerableClockSkewSeconds);
  EXPECT_EQ(helper->garbage_collection().report_expiry_seconds(), kDefaultReportExpirySeconds);
  // Level files beside the database unless told otherwise.
  EXPECT_EQ(helper->level_files_directory(), dir_.string());
}

TEST_F(ConfigTest, JobSizesHaveDefaultsAndBounds) {
  Result<AggregatorConfig> defaults =
      ParseAggregatorConfig(kGoodAggregator, (dir_ / "helper.textproto").string());
  ASSERT_TRUE(defaults) << defaults.error().message();
  EXPECT_EQ(defaults->max_reports_per_aggregation_job(), kDefaultMaxReportsPerAggregationJob);
  EXPECT_EQ(defaults->max_reports_per_held_aggregation_job(),
            kDefaultMaxReportsPerHeldAggregationJob);

  Result<AggregatorConfig> set = ParseAggregatorConfig(
      std::string(kGoodAggregator) + "max_reports_per_held_aggregation_job: 100000\n",
      "h.textproto");
  ASSERT_TRUE(set) << set.error().message();
  EXPECT_EQ(set->max_reports_per_held_aggregation_job(), 100000u);

  for (const char* field :
       {"max_reports_per_aggregation_job", "max_reports_per_held_aggregation_job"}) {
    Result<AggregatorConfig> too_large =
        ParseAggregatorConfig(std::string(kGoodAggregator) + field + ": 100001\n", "h.textproto");
    ASSERT_FALSE(too_large) << field;
    EXPECT_NE(too_large.error().message().find(std::string("h.textproto:6: ") + field +
                                               ": must be at most 100000, got 100001"),
              std::string::npos)
        << too_large.error().message();
  }
}

TEST_F(ConfigTest, WalCheckpointSizeHasADefaultAndABound) {
  Result<AggregatorConfig> defaults =
      ParseAggregatorConfig(kGoodAggregator, (dir_ / "helper.textproto").string());
  ASSERT_TRUE(defaults) << defaults.error().message();
  EXPECT_EQ(defaults->wal_checkpoint_mib(), kDefaultWalCheckpointMib);

  Result<AggregatorConfig> set = ParseAggregatorConfig(
      std::string(kGoodAggregator) + "wal_checkpoint_mib: 65536\n", "h.textproto");
  ASSERT_TRUE(set) << set.error().message();
  EXPECT_EQ(set->wal_checkpoint_mib(), 65536u);

  Result<AggregatorConfig> too_large = ParseAggregatorConfig(
      std::string(kGoodAggregator) + "wal_checkpoint_mib: 65537\n", "h.textproto");
  ASSERT_FALSE(too_large);
  EXPECT_NE(too_large.error().message().find(
                "h.textproto:6: wal_checkpoint_mib: must be at most 65536, got 65537"),
            std::string::npos)
      << too_large.error().message();
}

TEST_F(ConfigTest, LevelFilesDirectory) {
  fs::create_directories(dir_ / "levels");
  Result<AggregatorConfig> relative =
      ParseAggregatorConfig(std::string(kGoodAggregator) + "level_files_directory: \"levels\"\n",
                            (dir_ / "helper.textproto").string());
  ASSERT_TRUE(relative) << relative.error().message();
  EXPECT_EQ(relative->level_files_directory(), (dir_ / "levels").string());

  Result<AggregatorConfig> in_memory = ParseAggregatorConfig(
      std::string(kGoodAggregator) + "report_levels_in_memory: true\n", "h.textproto");
  ASSERT_TRUE(in_memory) << in_memory.error().message();
  EXPECT_EQ(in_memory->level_files_directory(), "");

  Result<AggregatorConfig> missing =
      ParseAggregatorConfig(std::string(kGoodAggregator) + "level_files_directory: \"nowhere\"\n",
                            (dir_ / "helper.textproto").string());
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find(":6: level_files_directory: No such file"),
            std::string::npos)
      << missing.error().message();
  Write("a-file", "");
  Result<AggregatorConfig> file =
      ParseAggregatorConfig(std::string(kGoodAggregator) + "level_files_directory: \"a-file\"\n",
                            (dir_ / "helper.textproto").string());
  ASSERT_FALSE(file);
  EXPECT_NE(file.error().message().find(":6: level_files_directory: not a directory"),
            std::string::npos)
      << file.error().message();

  Result<AggregatorConfig> both = ParseAggregatorConfig(
      std::string(kGoodAggregator) +
          "level_files_directory: \"levels\"\nreport_levels_in_memory: true\n",
      (dir_ / "helper.textproto").string());
  ASSERT_FALSE(both);
  EXPECT_NE(both.error().message().find(
                "level_files_directory: set while report_levels_in_memory is true"),
            std::string::npos)
      << both.error().message();
}

TEST_F(ConfigTest, HeavyHittersTaskBuildsItsConfiguration) {
  Result<TaskDefinition> task = LoadTask((kExamples / "task-heavy-hitters.textproto").string());
  ASSERT_TRUE(task) << task.error().message();
  Result<dap::TaskConfiguration> configuration = ToTaskConfiguration(*task);
  ASSERT_TRUE(configuration) << configuration.error().message();
  EXPECT_EQ(configuration->vdaf_type, static_cast<uint32_t>(dap::VdafType::kPoplar1));
  EXPECT_EQ(configuration->vdaf_configuration, dap::Poplar1Configuration(256));
  EXPECT_EQ(configuration->time_precision, 3600u);
  EXPECT_EQ(configuration->batch_mode, dap::BatchMode::kTimeInterval);
  const std::string leader = "https://leader.example.com/dap/";
  EXPECT_EQ(configuration->leader_aggregator_endpoint, dap::Bytes(leader.begin(), leader.end()));
  ASSERT_EQ(configuration->extensions.size(), 2u);
  EXPECT_EQ(configuration->extensions[0],
            dap::TaskIntervalExtension(dap::Interval{1767225600 / 3600, 31536000 / 3600}));
  EXPECT_EQ(configuration->extensions[1],
            dap::MultiLevelCollectionExtension(dap::MultiLevelCollection{256}));

  Result<dap::TaskRules> rules = dap::ValidateTaskConfiguration(*configuration);
  ASSERT_TRUE(rules) << rules.error().message();
  ASSERT_TRUE(rules->multi_level);
  EXPECT_EQ(rules->multi_level->max_collections_per_batch, 256);

  auto vdaf = dap::MakeVdaf(configuration->vdaf_type, configuration->vdaf_configuration);
  ASSERT_TRUE(vdaf) << vdaf.error().message();
  Result<std::vector<uint8_t>> encoded = dap::Encode(*configuration);
  ASSERT_TRUE(encoded);
  Result<dap::TaskConfiguration> decoded = dap::Decode<dap::TaskConfiguration>(*encoded);
  ASSERT_TRUE(decoded) << decoded.error().message();
  EXPECT_EQ(*decoded, *configuration);

  Result<dap::TaskId> id = DecodeTaskId(task->task_id());
  ASSERT_TRUE(id);
  EXPECT_EQ(std::string(id->begin(), id->end()), "EXAMPLE task: heavy hitters 256b");
  Result<dap::HpkeConfig> hpke = ToHpkeConfig(task->collector_hpke_config());
  ASSERT_TRUE(hpke) << hpke.error().message();
  EXPECT_EQ(hpke->id, 3);
  EXPECT_EQ(hpke->kem_id, 0x20);
  EXPECT_EQ(hpke->public_key.size(), 32u);
}

TEST_F(ConfigTest, EveryVdafBuildsAndRoundTrips) {
  const std::vector<std::string> vdafs = {
      "poplar1 { bits: 256 }",
      "prio3_count {}",
      "prio3_sum { max_measurement: 1000 }",
      "prio3_sum_vec { length: 10 max_measurement: 255 chunk_length: 9 }",
      "prio3_histogram { length: 20 chunk_length: 4 }",
      "prio3_multihot_count_vec { length: 10 chunk_length: 4 max_weight: 3 }",
  };
  for (const std::string& vdaf : vdafs) {
    SCOPED_TRACE(vdaf);
    Result<std::vector<TaskDefinition>> tasks =
        ParseTaskFile(Replace(kGoodTask, "poplar1", vdaf), "t.textproto");
    ASSERT_TRUE(tasks) << tasks.error().message();
    Result<dap::TaskConfiguration> configuration = ToTaskConfiguration(tasks->at(0));
    ASSERT_TRUE(configuration) << configuration.error().message();
    EXPECT_TRUE(configuration->extensions.empty());
    auto made = dap::MakeVdaf(configuration->vdaf_type, configuration->vdaf_configuration);
    ASSERT_TRUE(made) << made.error().message();
    Result<std::vector<uint8_t>> encoded = dap::Encode(*configuration);
    ASSERT_TRUE(encoded);
    Result<dap::TaskConfiguration> decoded = dap::Decode<dap::TaskConfiguration>(*encoded);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, *configuration);
  }
}

TEST_F(ConfigTest, TaskListLoadsEveryTask) {
  std::string second =
      Replace(kGoodTask, "task_id", "task_id: \"RVhBTVBMRSB0YXNrOiBwcmlvMyBoaXN0b2dyYW0hISE\"");
  const std::string text =
      "# two tasks\ntask {\n" + std::string(kGoodTask) + "}\ntask {\n" + second + "}\n";
  const std::string path = Write("tasks.textproto", text);
  Result<std::vector<TaskDefinition>> tasks = LoadTaskFile(path);
  ASSERT_TRUE(tasks) << tasks.error().message();
  EXPECT_EQ(tasks->size(), 2u);
  Result<TaskDefinition> one = LoadTask(path);
  ASSERT_FALSE(one);
  EXPECT_NE(one.error().message().find("exactly one task"), std::string::npos);
}

// --- Bad files --------------------------------------------------------------

TEST_F(ConfigTest, GoodTaskLoads) {
  const std::string path = Write("task.textproto", kGoodTask);
  Result<std::vector<TaskDefinition>> tasks = LoadTaskFile(path);
  ASSERT_TRUE(tasks) << tasks.error().message();
}

TEST_F(ConfigTest, UnknownFieldNamesFileLineAndField) {
  ExpectTaskError(Replace(kGoodTask, "min_batch_size", "min_batchsize: 10"),
                  {"task.textproto:6:1: ",
                   "Message type \"canopy.config.TaskDefinition\" has no field named "
                   "\"min_batchsize\""});
}

TEST_F(ConfigTest, SyntaxErrorNamesFileAndLine) {
  ExpectTaskError(Replace(kGoodTask, "time_precision_seconds", "time_precision_seconds 60"),
                  {"task.textproto:5:", "time_precision_seconds"});
  ExpectTaskError(Replace(kGoodTask, "poplar1", "poplar1 { bits: 16"), {"task.textproto:"});
}

TEST_F(ConfigTest, WrongTypeNamesFileLineAndField) {
  ExpectTaskError(Replace(kGoodTask, "min_batch_size", "min_batch_size: \"ten\""),
                  {"task.textproto:6:17: ", "min_batch_size"});
  ExpectTaskError(Replace(kGoodTask, "batch_mode", "batch_mode: SOMETIMES"),
                  {"task.textproto:7:", "SOMETIMES", "batch_mode"});
  ExpectTaskError(Replace(kGoodTask, "poplar1", "poplar1 { bits: -3 }"),
                  {"task.textproto:8:", "bits"});
}

TEST_F(ConfigTest, MissingVdafIsNamed) {
  ExpectTaskError(Replace(kGoodTask, "poplar1", ""), {"task.textproto: vdaf: no VDAF set"});
}

TEST_F(ConfigTest, TwoVdafsAreRefused) {
  ExpectTaskError(Replace(kGoodTask, "poplar1", "poplar1 { bits: 16 }\nprio3_count {}"),
                  {"task.textproto:9:", "prio3_count", "poplar1"});
}

TEST_F(ConfigTest, BadTaskIdIsNamed) {
  // 31 bytes.
  ExpectTaskError(
      Replace(kGoodTask, "task_id", "task_id: \"RVhBTVBMRSB0YXNrOiBoZWF2eSBoaXR0ZXJzIDI1Ng\""),
      {"task.textproto:2: task_id: must be 32 bytes of base64url, got 31"});
  ExpectTaskError(Replace(kGoodTask, "task_id", "task_id: \"not base64!\""),
                  {"task.textproto:2: task_id: must be 32 bytes of unpadded base64url"});
  ExpectTaskError(Replace(kGoodTask, "task_id", ""), {"task.textproto: task_id: required"});
}

TEST_F(ConfigTest, ZeroBitsIsNamed) {
  ExpectTaskError(Replace(kGoodTask, "poplar1", "poplar1 { bits: 0 }"),
                  {"task.textproto:8: poplar1.bits: must be in 1..65535, got 0"});
  ExpectTaskError(Replace(kGoodTask, "poplar1", "poplar1 {}"),
                  {"task.textproto:8: poplar1.bits: must be in 1..65535, got 0"});
  ExpectTaskError(Replace(kGoodTask, "poplar1", "poplar1 { bits: 65536 }"),
                  {"task.textproto:8: poplar1.bits: must be in 1..65535, got 65536"});
}

TEST_F(ConfigTest, HistogramChunkLengthZeroIsNamed) {
  ExpectTaskError(
      Replace(kGoodTask, "poplar1", "prio3_histogram {\n  length: 10\n  chunk_length: 0\n}"),
      {"task.textproto:10: prio3_histogram.chunk_length: must be at least 1, got 0"});
  ExpectTaskError(Replace(kGoodTask, "poplar1", "prio3_histogram { length: 10 chunk_length: 11 }"),
                  {"task.textproto:8: prio3_histogram.chunk_length: must be at most length"});
}

TEST_F(ConfigTest, VdafRefusalIsAttributedToTheVdaf) {
  // chunk_length above length * bit_length(max): only the VDAF knows.
  ExpectTaskError(Replace(kGoodTask, "poplar1",
                          "prio3_sum_vec { length: 2 max_measurement: 1 chunk_length: 1000 }"),
                  {"task.textproto:8: prio3_sum_vec: "});
}

TEST_F(ConfigTest, TaskIntervalNotAMultipleOfPrecisionIsNamed) {
  ExpectTaskError(Replace(kGoodTask, "batch_mode",
                          "batch_mode: TIME_INTERVAL\ntask_interval {\n  start_seconds: 100\n"
                          "  duration_seconds: 3600\n}"),
                  {"task.textproto:9: task_interval.start_seconds: must be a multiple of "
                   "time_precision_seconds (60), got 100"});
  ExpectTaskError(Replace(kGoodTask, "batch_mode",
                          "batch_mode: TIME_INTERVAL\ntask_interval { start_seconds: 120 }"),
                  {"task.textproto:8: task_interval.duration_seconds: must be positive"});
}

TEST_F(ConfigTest, MultiLevelWithPrio3IsRefused) {
  std::string text = Replace(kGoodTask, "poplar1", "prio3_count {}");
  text += "multi_level_collection { max_collections_per_batch: 4 }\n";
  ExpectTaskError(text,
                  {"task.textproto:14: multi_level_collection: only Poplar1 tasks", "prio3_count"});
  std::string one = std::string(kGoodTask) +
                    "multi_level_collection {\n"
                    "  max_collections_per_batch: 1\n}\n";
  ExpectTaskError(one, {"task.textproto:15: multi_level_collection.max_collections_per_batch: "
                        "must be in 2..65535, got 1"});
}

TEST_F(ConfigTest, EveryProblemIsReported) {
  std::string text = Replace(kGoodTask, "min_batch_size", "min_batch_size: 0");
  text = Replace(text, "leader_url", "leader_url: \"ftp://leader\"");
  text = Replace(text, "verify_keys", "verify_keys { id: 300 key: \"abc\" }");
  ExpectTaskError(text, {"task.textproto:6: min_batch_size:", "task.textproto:3: leader_url:",
                         "task.textproto:13: verify_keys[0].id: must be in 0..255",
                         "task.textproto:13: verify_keys[0].key:"});
}

TEST_F(ConfigTest, TaskListErrorsNameTheTask) {
  const std::string bad = Replace(kGoodTask, "poplar1", "poplar1 { bits: 0 }");
  const std::string text = "task {\n" + std::string(kGoodTask) + "}\ntask {\n" + bad + "}\n";
  // The second task opens on line 16; its poplar1 is on line 17 + 7.
  ExpectTaskError(text, {"task.textproto:24: task[1].poplar1.bits: must be in 1..65535",
                         "task.textproto:18: task[1].task_id: duplicates task[0].task_id"});
}

TEST_F(ConfigTest, MissingFileIsAnIoError) {
  const std::string path = (dir_ / "absent.textproto").string();
  Result<std::vector<TaskDefinition>> tasks = LoadTaskFile(path);
  ASSERT_FALSE(tasks);
  EXPECT_EQ(tasks.error().code(), ErrorCode::kIoError);
  EXPECT_TRUE(tasks.error().message().starts_with(path)) << tasks.error().message();
  Result<AggregatorConfig> directory = LoadAggregatorConfig(dir_.string());
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().code(), ErrorCode::kIoError);
  EXPECT_FALSE(LoadCollectorConfig(path));
}

TEST_F(ConfigTest, ToTaskConfigurationNamesTheField) {
  Result<std::vector<TaskDefinition>> tasks = ParseTaskFile(kGoodTask, "t.textproto");
  ASSERT_TRUE(tasks);
  TaskDefinition task = tasks->at(0);
  task.mutable_task_interval()->set_start_seconds(90);
  task.mutable_task_interval()->set_duration_seconds(120);
  Result<dap::TaskConfiguration> configuration = ToTaskConfiguration(task);
  ASSERT_FALSE(configuration);
  EXPECT_EQ(configuration.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(configuration.error().message(),
            "task_interval.start_seconds: must be a multiple of time_precision_seconds (60), "
            "got 90");
  task.mutable_task_interval()->set_start_seconds(120);
  configuration = ToTaskConfiguration(task);
  ASSERT_TRUE(configuration) << configuration.error().message();
  EXPECT_EQ(configuration->extensions.at(0), dap::TaskIntervalExtension(dap::Interval{2, 2}));
}

// --- Collector --------------------------------------------------------------

TEST_F(ConfigTest, CollectorRelativeThresholdOutOfRangeIsNamed) {
  const std::string text =
      Replace(kGoodCollector, "  default_threshold", "  relative_threshold: 1.5");
  const std::string path = Write("collector.textproto", text);
  Result<CollectorConfig> config = LoadCollectorConfig(path);
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().message(),
            path + ":8: heavy_hitters.relative_threshold: must be in (0, 1], got 1.5");
}

TEST_F(ConfigTest, CollectorThresholdsAreChecked) {
  Result<CollectorConfig> good = ParseCollectorConfig(kGoodCollector, "c.textproto");
  ASSERT_TRUE(good) << good.error().message();
  EXPECT_EQ(good->heavy_hitters().bits_per_round(), 3u);
  EXPECT_EQ(good->heavy_hitters().first_round_bits(), 3u);
  EXPECT_EQ(good->output_format(), CollectorConfig::TEXT);

  std::string text = Replace(kGoodCollector, "  default_threshold",
                             "  relative_threshold: 0.25\n"
                             "  prefix_thresholds { bits: \"0120\" threshold: 3 }\n"
                             "  prefix_thresholds { text: \"abc\" threshold: 3 }\n"
                             "  prefix_thresholds { bits: \"01\" }\n"
                             "  prefix_thresholds { bits: \"01\" relative_threshold: 0 }\n"
                             "  max_candidates_per_level: 1");
  Result<CollectorConfig> bad = ParseCollectorConfig(text, "c.textproto");
  ASSERT_FALSE(bad);
  const std::string& message = bad.error().message();
  for (const char* needle : {
           "c.textproto:9: heavy_hitters.prefix_thresholds[0].bits: must be a non-empty string",
           "c.textproto:10: heavy_hitters.prefix_thresholds[1].text: is 24 bits long",
           "c.textproto:11: heavy_hitters.prefix_thresholds[2].value: required",
           "c.textproto:12: heavy_hitters.prefix_thresholds[3].relative_threshold: must be in "
           "(0, 1], got 0",
           "c.textproto:12: heavy_hitters.prefix_thresholds[3].bits: the same prefix as "
           "prefix_thresholds[2]",
           "c.textproto:13: heavy_hitters.max_candidates_per_level: must be 0 (no cap) or at "
           "least 8",
       }) {
    EXPECT_NE(message.find(needle), std::string::npos) << "no \"" << needle << "\" in:\n"
                                                       << message;
  }
  EXPECT_EQ(message.find("relative_threshold: must be in (0, 1], got 0.25"), std::string::npos);

  Result<CollectorConfig> no_threshold =
      ParseCollectorConfig(Replace(kGoodCollector, "  default_threshold", ""), "c.textproto");
  ASSERT_FALSE(no_threshold);
  EXPECT_NE(no_threshold.error().message().find("c.textproto:6: heavy_hitters.threshold: required"),
            std::string::npos)
      << no_threshold.error().message();
}

TEST_F(ConfigTest, PrefixBitsOfTextAndDigits) {
  PrefixThreshold digits;
  digits.set_bits("0110");
  EXPECT_EQ(PrefixBits(digits), (std::vector<bool>{false, true, true, false}));
  PrefixThreshold text;
  text.set_text("a");  // 0x61
  EXPECT_EQ(PrefixBits(text),
            (std::vector<bool>{false, true, true, false, false, false, false, true}));
}

// --- Aggregator -------------------------------------------------------------

TEST_F(ConfigTest, AggregatorProblemsAreNamed) {
  std::string text = Replace(kGoodAggregator, "role", "");
  text = Replace(text, "listen_address", "listen_address: \"127.0.0.1\"");
  text += "collector_token: \"has spaces\"\n";
  const std::string path = Write("aggregator.textproto", text);
  Result<AggregatorConfig> config = LoadAggregatorConfig(path);
  ASSERT_FALSE(config);
  const std::string& message = config.error().message();
  EXPECT_NE(message.find(path + ": role: required"), std::string::npos) << message;
  EXPECT_NE(message.find(path + ":2: listen_address: must be \"host:port\""), std::string::npos)
      << message;
  EXPECT_EQ(message.find("has spaces"), std::string::npos) << "a token was quoted: " << message;

  std::string helper = std::string(kGoodAggregator) + "collector_token: \"abc\"\n";
  Result<AggregatorConfig> refused = ParseAggregatorConfig(helper, "h.textproto");
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message().find("h.textproto:6: collector_token: must be empty"),
            std::string::npos);

  std::string leader = Replace(kGoodAggregator, "role", "role: LEADER");
  Result<AggregatorConfig> no_peer = ParseAggregatorConfig(leader, "l.textproto");
  ASSERT_FALSE(no_peer);
  EXPECT_NE(no_peer.error().message().find("l.textproto: peer_url: required for a leader"),
            std::string::npos);
  EXPECT_NE(no_peer.error().message().find("l.textproto: collector_token: required"),
            std::string::npos);

  std::string keys = std::string(kGoodAggregator) +
                     "hpke_keys {\n  config_id: 1\n  aead_id: 2\n  private_key_file: \"x\"\n}\n";
  Result<AggregatorConfig> duplicate = ParseAggregatorConfig(keys, "k.textproto");
  ASSERT_FALSE(duplicate);
  EXPECT_NE(duplicate.error().message().find(
                "k.textproto:7: hpke_keys[1].config_id: duplicates hpke_keys[0].config_id (1)"),
            std::string::npos)
      << duplicate.error().message();
  EXPECT_NE(duplicate.error().message().find("k.textproto:8: hpke_keys[1].aead_id: unsupported"),
            std::string::npos)
      << duplicate.error().message();
}

TEST_F(ConfigTest, KeyFilesAreOnlyReadWhenAsked) {
  const std::string path = Write("helper.textproto", kGoodAggregator);
  ASSERT_TRUE(LoadAggregatorConfig(path));  // h.key does not exist.
  LoadOptions options;
  options.check_key_files = true;
  Result<AggregatorConfig> missing = LoadAggregatorConfig(path, options);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message().find(path + ":5: hpke_keys[0].private_key_file: "),
            std::string::npos)
      << missing.error().message();

  Write("h.key", "RVhBTVBMRSBoZWxwZXIga2V5IC0gTk9UIFNFQ1JFVCE\n");
  EXPECT_TRUE(LoadAggregatorConfig(path, options));
  Write("h.key", "short\n");
  Result<AggregatorConfig> malformed = LoadAggregatorConfig(path, options);
  ASSERT_FALSE(malformed);
  EXPECT_NE(malformed.error().message().find("must hold a 32-byte key"), std::string::npos);
  EXPECT_EQ(malformed.error().message().find("short"), std::string::npos);

  // A public key file that does not match its private key.
  Write("h.key", "RVhBTVBMRSBoZWxwZXIga2V5IC0gTk9UIFNFQ1JFVCE\n");
  Write("h.pub", "KtGNt2c9Cf2FN5X6aRssr5uSeQkAiFJVkDitFlJ4xj8\n");
  const std::string mismatched = Write(
      "mismatch.textproto",
      Replace(kGoodAggregator, "hpke_keys",
              "hpke_keys { config_id: 1 private_key_file: \"h.key\" public_key_file: \"h.pub\" }"));
  Result<AggregatorConfig> wrong = LoadAggregatorConfig(mismatched, options);
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message().find("does not match"), std::string::npos);
}

TEST_F(ConfigTest, AggregatorTasksNeedVerifyKeys) {
  Write("task.textproto", Replace(kGoodTask, "verify_keys", ""));
  const std::string path =
      Write("helper.textproto", std::string(kGoodAggregator) + "task_files: \"task.textproto\"\n");
  Result<AggregatorConfig> config = LoadAggregatorConfig(path);
  ASSERT_TRUE(config) << config.error().message();
  ASSERT_TRUE(LoadTaskFile(config->task_files(0)));  // Fine for a client's copy.
  Result<std::vector<TaskDefinition>> tasks = LoadAggregatorTasks(*config);
  ASSERT_FALSE(tasks);
  EXPECT_NE(tasks.error().message().find("task.textproto: verify_keys: required"),
            std::string::npos)
      << tasks.error().message();
}

TEST_F(ConfigTest, SecretsAreNotQuoted) {
  // A verify key written without quotes: the parser's message would show it.
  ExpectTaskError(Replace(kGoodTask, "verify_keys",
                          "verify_keys { id: 0 key: RVhBTVBMRSB2ZXJpZnkga2V5IC0gTk9UIFNFQ1JFVCE }"),
                  {"task.textproto:13:", "(value not shown", "(field \"key\")"});
  const std::string path = Write(
      "task.textproto", Replace(kGoodTask, "verify_keys", "verify_keys { id: 0 key: SECRET }"));
  Result<std::vector<TaskDefinition>> tasks = LoadTaskFile(path);
  ASSERT_FALSE(tasks);
  EXPECT_EQ(tasks.error().message().find("SECRET"), std::string::npos) << tasks.error().message();
}

TEST_F(ConfigTest, UnknownEnumValueIsOnItsLine) {
  ExpectTaskError(Replace(kGoodTask, "batch_mode", "batch_mode: SOMETIMES"),
                  {"task.textproto:7:13: Unknown enumeration value of \"SOMETIMES\" for field "
                   "\"batch_mode\""});
}

TEST(WipeVerifyKeys, ZeroesEveryKeyInPlace) {
  TaskDefinition task;
  task.set_task_id("kept");
  task.add_verify_keys()->set_key("first-key");
  task.add_verify_keys()->set_key("second");
  WipeVerifyKeys(task);
  ASSERT_EQ(task.verify_keys_size(), 2);
  EXPECT_EQ(task.verify_keys(0).key(), std::string(9, '\0'));
  EXPECT_EQ(task.verify_keys(1).key(), std::string(6, '\0'));
  EXPECT_EQ(task.task_id(), "kept");
}

}  // namespace
}  // namespace canopy::config
