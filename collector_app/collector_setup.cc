// LoadCollectorSetup and its checks across the configuration, the task file
// and the key (config/config.cc checks each file on its own).
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "collector_app/collector.h"
#include "config/config.h"
#include "dap/base64url.h"
#include "dap/task.h"

namespace canopy::collector {
namespace {

// Collects "file: field: problem" lines.
class Problems {
 public:
  explicit Problems(std::string file) : file_(std::move(file)) {}
  void Fail(const std::string& field, const std::string& problem) {
    lines_.push_back(file_ + ": " + field + ": " + problem);
  }
  bool empty() const { return lines_.empty(); }
  Error ToError() const {
    std::string message;
    for (const std::string& line : lines_) {
      if (!message.empty()) message += "\n";
      message += line;
    }
    return Error(ErrorCode::kInvalidArgument, message);
  }

 private:
  std::string file_;
  std::vector<std::string> lines_;
};

// The collector's key, checked against the task's collector_hpke_config.
Result<std::unique_ptr<crypto::hpke::RecipientKey>> LoadKey(const config::CollectorConfig& config,
                                                            const dap::HpkeConfig& task_config,
                                                            const std::string& task_file,
                                                            Problems& problems) {
  const config::HpkeKeyFiles& files = config.hpke_key();
  auto private_key = config::ReadKeyFile(files.private_key_file());
  if (!private_key) return std::unexpected(private_key.error());
  auto key = crypto::hpke::RecipientKey::Create(crypto::hpke::KemId::kX25519HkdfSha256,
                                                private_key->span());
  if (!key) {
    return MakeError(ErrorCode::kInvalidArgument,
                     files.private_key_file() + ": " + key.error().message());
  }
  const std::string task_field = " (" + task_file + ": collector_hpke_config";
  if (files.config_id() != task_config.id) {
    problems.Fail("hpke_key.config_id", "is " + std::to_string(files.config_id()) +
                                            ", the task's collector_hpke_config.id is " +
                                            std::to_string(task_config.id));
  }
  if (files.kem_id() != task_config.kem_id || files.kdf_id() != task_config.kdf_id ||
      files.aead_id() != task_config.aead_id) {
    problems.Fail("hpke_key",
                  "its suite (kem_id, kdf_id, aead_id) is not the task's" + task_field + ")");
  }
  if (!std::equal(key->public_key().begin(), key->public_key().end(),
                  task_config.public_key.begin(), task_config.public_key.end())) {
    problems.Fail("hpke_key.private_key_file",
                  "its public key is not the task's collector_hpke_config.public_key (" +
                      task_file + "): aggregate shares would not open");
  }
  return std::make_unique<crypto::hpke::RecipientKey>(std::move(*key));
}

void CheckHeavyHittersAgainstTask(const config::CollectorConfig& config,
                                  const config::TaskDefinition& task, const std::string& task_file,
                                  Problems& problems) {
  const config::HeavyHitters& walk = config.heavy_hitters();
  if (!task.has_poplar1()) {
    problems.Fail("heavy_hitters",
                  "the task (" + task_file + ") is not a Poplar1 task: use `collect` instead");
    return;
  }
  if (walk.bits() != task.poplar1().bits()) {
    problems.Fail("heavy_hitters.bits",
                  "is " + std::to_string(walk.bits()) + ", the task's poplar1.bits is " +
                      std::to_string(task.poplar1().bits()) + " (" + task_file + ")");
  }
  const uint32_t rounds = WalkRounds(walk);
  if (rounds > 1 && !task.has_multi_level_collection()) {
    problems.Fail("heavy_hitters", "the walk takes " + std::to_string(rounds) +
                                       " collections of one batch, but the task (" + task_file +
                                       ") has no multi_level_collection extension");
  } else if (rounds > 1 && task.multi_level_collection().max_collections_per_batch() < rounds) {
    problems.Fail("heavy_hitters.bits_per_round",
                  "the walk takes up to " + std::to_string(rounds) +
                      " collections of one batch, the task allows " +
                      std::to_string(task.multi_level_collection().max_collections_per_batch()) +
                      " (" + task_file +
                      ": multi_level_collection.max_collections_per_batch): raise "
                      "bits_per_round or first_round_bits");
  }
}

}  // namespace

uint32_t WalkRounds(const config::HeavyHitters& settings) {
  const uint32_t bits = settings.bits();
  const uint32_t first = std::max<uint32_t>(1, std::min(settings.first_round_bits(), bits));
  const uint32_t step = std::max<uint32_t>(1, settings.bits_per_round());
  if (bits <= first) return 1;
  return 1 + (bits - first + step - 1) / step;
}

Result<dap::Query> BatchQuery(const config::CollectorConfig& config,
                              const dap::TaskConfiguration& task) {
  if (config.has_leader_selected()) {
    if (task.batch_mode != dap::BatchMode::kLeaderSelected) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "leader_selected: the task's batch_mode is TIME_INTERVAL");
    }
    return dap::LeaderSelectedQuery();
  }
  if (task.batch_mode != dap::BatchMode::kTimeInterval) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "time_interval: the task's batch_mode is LEADER_SELECTED: use "
                     "leader_selected {}");
  }
  const uint64_t precision = task.time_precision;
  const config::BatchInterval& interval = config.time_interval();
  if (precision == 0 || interval.start_seconds() % precision != 0 ||
      interval.duration_seconds() % precision != 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "time_interval: start_seconds and duration_seconds must be multiples of "
                     "the task's time_precision_seconds (" +
                         std::to_string(precision) + ")");
  }
  return dap::TimeIntervalQuery(
      dap::Interval{interval.start_seconds() / precision, interval.duration_seconds() / precision});
}

Result<CollectorSetup> LoadCollectorSetup(const std::string& config_path) {
  config::LoadOptions load_options;
  load_options.check_key_files = true;
  auto config = config::LoadCollectorConfig(config_path, load_options);
  if (!config) return std::unexpected(config.error());
  Problems problems(config_path);
  if (config->task_file().empty()) {
    problems.Fail("task_file", "required: the collector rebuilds the task's configuration from it");
    return std::unexpected(problems.ToError());
  }
  const std::string& task_file = config->task_file();
  auto definition = config::LoadTask(task_file);
  if (!definition) return std::unexpected(definition.error());

  CollectorSetup setup;
  if (definition->task_id() != config->task_id()) {
    problems.Fail("task_id", "is not the task_id of the task file " + task_file);
  }
  auto task_id = config::DecodeTaskId(definition->task_id());
  if (!task_id) return std::unexpected(task_id.error());
  auto configuration = config::ToTaskConfiguration(*definition);
  if (!configuration) {
    return MakeError(ErrorCode::kInvalidArgument,
                     task_file + ": " + configuration.error().message());
  }
  auto vdaf = dap::MakeVdaf(configuration->vdaf_type, configuration->vdaf_configuration);
  if (!vdaf) return MakeError(vdaf.error().code(), task_file + ": " + vdaf.error().message());
  auto hpke_config = config::ToHpkeConfig(definition->collector_hpke_config());
  if (!hpke_config) {
    return MakeError(ErrorCode::kInvalidArgument,
                     task_file + ": collector_hpke_config: " + hpke_config.error().message());
  }
  auto key = LoadKey(*config, *hpke_config, task_file, problems);
  if (!key) return std::unexpected(key.error());
  if (config->has_heavy_hitters()) {
    CheckHeavyHittersAgainstTask(*config, *definition, task_file, problems);
  }
  auto query = BatchQuery(*config, *configuration);
  if (!query) problems.Fail("batch", query.error().message());
  if (!problems.empty()) return std::unexpected(problems.ToError());

  setup.task.task_id = *task_id;
  setup.task.configuration = std::move(*configuration);
  setup.task.vdaf = std::shared_ptr<const poplar::Vdaf>(std::move(*vdaf));
  setup.task.leader_url = config->leader_url();
  setup.hpke_config = std::move(*hpke_config);
  setup.key = std::move(*key);
  setup.options.collector_token = config->collector_token();
  setup.options.poll_interval = std::chrono::seconds(config->poll_interval_seconds());
  setup.options.collection_timeout = std::chrono::seconds(config->collection_timeout_seconds());
  setup.config = std::move(*config);
  setup.task_definition = std::move(*definition);
  return setup;
}

}  // namespace canopy::collector
