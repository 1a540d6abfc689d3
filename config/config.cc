#include "config/config.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>

#include "config/internal/checks.h"
#include "crypto/secure_wipe.h"
#include "dap/base64url.h"
#include "dap/task.h"

namespace canopy::config {
namespace {

namespace pb = google::protobuf;
using internal::Problems;
using internal::Where;

constexpr uint64_t kMaxKeyFileBytes = 4096;

std::string Str(uint64_t value) { return std::to_string(value); }

// ---------------------------------------------------------------------------
// Tasks.
// ---------------------------------------------------------------------------

// The name of the task's VDAF field ("prio3_histogram"), or "vdaf".
std::string VdafFieldName(const TaskDefinition& task) {
  const pb::FieldDescriptor* field =
      TaskDefinition::descriptor()->FindFieldByNumber(static_cast<int>(task.vdaf_case()));
  return field != nullptr ? field->name() : "vdaf";
}

// The VDAF's codepoint and configuration. Only for a task whose VDAF
// parameters are in range.
std::pair<dap::VdafType, dap::Bytes> VdafOf(const TaskDefinition& task) {
  switch (task.vdaf_case()) {
    case TaskDefinition::kPoplar1:
      return {dap::VdafType::kPoplar1,
              dap::Poplar1Configuration(static_cast<uint16_t>(task.poplar1().bits()))};
    case TaskDefinition::kPrio3Count:
      return {dap::VdafType::kPrio3Count, {}};
    case TaskDefinition::kPrio3Sum:
      return {dap::VdafType::kPrio3Sum,
              dap::Prio3SumConfiguration(task.prio3_sum().max_measurement())};
    case TaskDefinition::kPrio3SumVec: {
      const Prio3SumVec& v = task.prio3_sum_vec();
      return {dap::VdafType::kPrio3SumVec,
              dap::Prio3SumVecConfiguration(v.length(), v.max_measurement(), v.chunk_length())};
    }
    case TaskDefinition::kPrio3Histogram: {
      const Prio3Histogram& v = task.prio3_histogram();
      return {dap::VdafType::kPrio3Histogram,
              dap::Prio3HistogramConfiguration(v.length(), v.chunk_length())};
    }
    case TaskDefinition::kPrio3MultihotCountVec: {
      const Prio3MultihotCountVec& v = task.prio3_multihot_count_vec();
      return {
          dap::VdafType::kPrio3MultihotCountVec,
          dap::Prio3MultihotCountVecConfiguration(v.length(), v.chunk_length(), v.max_weight())};
    }
    case TaskDefinition::VDAF_NOT_SET:
      break;
  }
  return {dap::VdafType::kPrio3Count, {}};
}

// Checks the VDAF's parameters field by field; true when they are in range.
bool CheckVdafParameters(const TaskDefinition& task, const Where& where) {
  auto positive = [](const Where& w, std::string_view field, uint64_t value) {
    if (value == 0) {
      w.Fail(field, "must be at least 1, got 0");
      return false;
    }
    return true;
  };
  switch (task.vdaf_case()) {
    case TaskDefinition::VDAF_NOT_SET:
      where.Fail("vdaf",
                 "no VDAF set: give one of poplar1, prio3_count, prio3_sum, prio3_sum_vec, "
                 "prio3_histogram, prio3_multihot_count_vec");
      return false;
    case TaskDefinition::kPoplar1: {
      const uint32_t bits = task.poplar1().bits();
      if (bits == 0 || bits > 65535) {
        where.Nested("poplar1").Fail("bits", "must be in 1..65535, got " + Str(bits));
        return false;
      }
      return true;
    }
    case TaskDefinition::kPrio3Count:
      return true;
    case TaskDefinition::kPrio3Sum:
      return positive(where.Nested("prio3_sum"), "max_measurement",
                      task.prio3_sum().max_measurement());
    case TaskDefinition::kPrio3SumVec: {
      const Where w = where.Nested("prio3_sum_vec");
      const Prio3SumVec& v = task.prio3_sum_vec();
      const bool length = positive(w, "length", v.length());
      const bool max = positive(w, "max_measurement", v.max_measurement());
      const bool chunk = positive(w, "chunk_length", v.chunk_length());
      return length && max && chunk;
    }
    case TaskDefinition::kPrio3Histogram: {
      const Where w = where.Nested("prio3_histogram");
      const Prio3Histogram& v = task.prio3_histogram();
      const bool length = positive(w, "length", v.length());
      bool chunk = positive(w, "chunk_length", v.chunk_length());
      if (chunk && length && v.chunk_length() > v.length()) {
        w.Fail("chunk_length",
               "must be at most length (" + Str(v.length()) + "), got " + Str(v.chunk_length()));
        chunk = false;
      }
      return length && chunk;
    }
    case TaskDefinition::kPrio3MultihotCountVec: {
      const Where w = where.Nested("prio3_multihot_count_vec");
      const Prio3MultihotCountVec& v = task.prio3_multihot_count_vec();
      const bool length = positive(w, "length", v.length());
      const bool chunk = positive(w, "chunk_length", v.chunk_length());
      bool weight = positive(w, "max_weight", v.max_weight());
      if (weight && length && v.max_weight() > v.length()) {
        w.Fail("max_weight",
               "must be at most length (" + Str(v.length()) + "), got " + Str(v.max_weight()));
        weight = false;
      }
      return length && chunk && weight;
    }
  }
  return false;
}

void CheckTaskInterval(const TaskDefinition& task, const Where& where) {
  if (!task.has_task_interval()) return;
  const Where w = where.Nested("task_interval");
  const TaskInterval& interval = task.task_interval();
  const uint64_t precision = task.time_precision_seconds();
  if (interval.duration_seconds() == 0) w.Fail("duration_seconds", "must be positive");
  if (precision == 0) return;  // Reported on time_precision_seconds.
  auto multiple = [&](std::string_view field, uint64_t value) {
    if (value % precision != 0) {
      w.Fail(field, "must be a multiple of time_precision_seconds (" + Str(precision) + "), got " +
                        Str(value));
    }
  };
  multiple("start_seconds", interval.start_seconds());
  multiple("duration_seconds", interval.duration_seconds());
}

void CheckMultiLevel(const TaskDefinition& task, const Where& where) {
  if (!task.has_multi_level_collection()) return;
  const uint32_t max = task.multi_level_collection().max_collections_per_batch();
  if (max < 2 || max > 65535) {
    where.Nested("multi_level_collection")
        .Fail("max_collections_per_batch", "must be in 2..65535, got " + Str(max));
  }
  if (task.vdaf_case() != TaskDefinition::kPoplar1 &&
      task.vdaf_case() != TaskDefinition::VDAF_NOT_SET) {
    where.Fail("multi_level_collection",
               "only Poplar1 tasks may be collected at several levels; this task's VDAF is " +
                   VdafFieldName(task));
  }
}

void CheckVerifyKeys(const TaskDefinition& task, const Where& where, bool require) {
  if (require && task.verify_keys_size() == 0) {
    where.Fail("verify_keys", "required: an aggregator needs at least one verify key");
  }
  std::map<uint32_t, int> seen;
  for (int i = 0; i < task.verify_keys_size(); ++i) {
    const VerifyKey& key = task.verify_keys(i);
    const Where w = where.Nested("verify_keys", i);
    if (key.id() > 255) w.Fail("id", "must be in 0..255, got " + Str(key.id()));
    auto [it, inserted] = seen.emplace(key.id(), i);
    if (!inserted) {
      w.Fail("id", "duplicates verify_keys[" + Str(it->second) + "].id (" + Str(key.id()) + ")");
    }
    internal::Check32Bytes(w, "key", key.key());
  }
}

// Checks the collector's HPKE configuration, filling in the suite's defaults.
void CheckCollectorHpkeConfig(CollectorHpkeConfig& config, const Where& where, bool present) {
  if (!present) {
    where.Fail("collector_hpke_config",
               "required: the collector's HPKE configuration (id, public_key)");
    return;
  }
  const Where w = where.Nested("collector_hpke_config");
  uint32_t kem = config.kem_id(), kdf = config.kdf_id(), aead = config.aead_id();
  internal::CheckHpkeSuite(w, config.id(), "id", kem, kdf, aead);
  config.set_kem_id(kem);
  config.set_kdf_id(kdf);
  config.set_aead_id(aead);
  internal::Check32Bytes(w, "public_key", config.public_key());
}

// Checks everything a task definition must satisfy (filling in the collector
// HPKE suite's defaults).
void CheckTask(TaskDefinition& task, const Where& where, bool require_verify_keys) {
  internal::Check32Bytes(where, "task_id", task.task_id());
  if (task.task_info().size() > 255) {
    where.Fail("task_info", "must be at most 255 bytes, got " + Str(task.task_info().size()));
  }
  internal::CheckUrl(where, "leader_url", task.leader_url(), true);
  internal::CheckUrl(where, "helper_url", task.helper_url(), true);
  if (task.time_precision_seconds() == 0) {
    where.Fail("time_precision_seconds", "required: a positive number of seconds");
  }
  if (task.min_batch_size() == 0) where.Fail("min_batch_size", "required: a positive count");
  if (task.batch_mode() != TaskDefinition::TIME_INTERVAL &&
      task.batch_mode() != TaskDefinition::LEADER_SELECTED) {
    where.Fail("batch_mode", "required: TIME_INTERVAL or LEADER_SELECTED");
  }
  if (CheckVdafParameters(task, where)) {
    auto [type, configuration] = VdafOf(task);
    Result<std::unique_ptr<poplar::Vdaf>> vdaf =
        dap::MakeVdaf(static_cast<uint32_t>(type), configuration);
    if (!vdaf) where.Fail(VdafFieldName(task), vdaf.error().message());
  }
  CheckTaskInterval(task, where);
  CheckMultiLevel(task, where);
  CheckVerifyKeys(task, where, require_verify_keys);
  const bool has_hpke = task.has_collector_hpke_config();
  CheckCollectorHpkeConfig(*task.mutable_collector_hpke_config(), where, has_hpke);
  if (!has_hpke) task.clear_collector_hpke_config();
}

// The TaskConfiguration of a checked task.
dap::TaskConfiguration BuildTaskConfiguration(const TaskDefinition& task) {
  dap::TaskConfiguration configuration;
  configuration.task_info.assign(task.task_info().begin(), task.task_info().end());
  configuration.leader_aggregator_endpoint.assign(task.leader_url().begin(),
                                                  task.leader_url().end());
  configuration.helper_aggregator_endpoint.assign(task.helper_url().begin(),
                                                  task.helper_url().end());
  configuration.time_precision = task.time_precision_seconds();
  configuration.min_batch_size = task.min_batch_size();
  configuration.batch_mode = task.batch_mode() == TaskDefinition::LEADER_SELECTED
                                 ? dap::BatchMode::kLeaderSelected
                                 : dap::BatchMode::kTimeInterval;
  auto [type, vdaf_configuration] = VdafOf(task);
  configuration.vdaf_type = static_cast<uint32_t>(type);
  configuration.vdaf_configuration = std::move(vdaf_configuration);
  // Extensions in increasing type order: task_interval (1), then 0xFF00.
  if (task.has_task_interval()) {
    const uint64_t precision = task.time_precision_seconds();
    configuration.extensions.push_back(dap::TaskIntervalExtension(
        dap::Interval{task.task_interval().start_seconds() / precision,
                      task.task_interval().duration_seconds() / precision}));
  }
  if (task.has_multi_level_collection()) {
    configuration.extensions.push_back(dap::MultiLevelCollectionExtension(dap::MultiLevelCollection{
        static_cast<uint16_t>(task.multi_level_collection().max_collections_per_batch())}));
  }
  return configuration;
}

// Checks and builds; problems are recorded through `where`.
std::optional<dap::TaskConfiguration> CheckAndBuild(TaskDefinition& task, const Where& where,
                                                    Problems& problems, bool require_verify_keys) {
  const size_t before = problems.size();
  CheckTask(task, where, require_verify_keys);
  if (problems.size() != before) return std::nullopt;
  dap::TaskConfiguration configuration = BuildTaskConfiguration(task);
  Result<dap::TaskRules> rules = dap::ValidateTaskConfiguration(configuration);
  if (!rules) {
    where.Fail("", rules.error().message());
    return std::nullopt;
  }
  Result<std::vector<uint8_t>> encoded = dap::Encode(configuration);
  if (!encoded) {
    where.Fail("", "cannot encode the task configuration: " + encoded.error().message());
    return std::nullopt;
  }
  return configuration;
}

Result<std::vector<TaskDefinition>> ParseTasks(std::string_view text, const std::string& file,
                                               bool require_verify_keys) {
  Problems problems;
  pb::TextFormat::ParseInfoTree tree;
  std::vector<TaskDefinition> tasks;
  if (internal::FirstIdentifier(text) == "task") {
    TaskList list;
    if (!internal::ParseText(text, file, list, tree, problems))
      return std::unexpected(problems.ToError());
    const Where top(&problems, file, &tree, TaskList::descriptor());
    if (list.task_size() == 0) top.Fail("task", "the file defines no task");
    std::map<std::string, int> seen;
    for (int i = 0; i < list.task_size(); ++i) {
      TaskDefinition& task = *list.mutable_task(i);
      const Where w = top.Nested("task", i);
      CheckAndBuild(task, w, problems, require_verify_keys);
      if (task.task_id().empty()) continue;
      auto [it, inserted] = seen.emplace(task.task_id(), i);
      if (!inserted) {
        w.Fail("task_id",
               "duplicates task[" + Str(it->second) + "].task_id (" + task.task_id() + ")");
      }
    }
    tasks.assign(list.task().begin(), list.task().end());
  } else {
    TaskDefinition task;
    if (!internal::ParseText(text, file, task, tree, problems))
      return std::unexpected(problems.ToError());
    const Where top(&problems, file, &tree, TaskDefinition::descriptor());
    CheckAndBuild(task, top, problems, require_verify_keys);
    tasks.push_back(std::move(task));
  }
  if (!problems.empty()) return std::unexpected(problems.ToError());
  return tasks;
}

Result<std::vector<TaskDefinition>> LoadTasks(const std::string& path, bool require_verify_keys) {
  Result<std::string> text = internal::ReadFile(path, kMaxConfigFileBytes);
  if (!text) return std::unexpected(text.error());
  return ParseTasks(*text, path, require_verify_keys);
}

// ---------------------------------------------------------------------------
// HPKE key files.
// ---------------------------------------------------------------------------

// Checks one key's fields, resolves its paths against `file` and, if asked,
// reads the key files.
void CheckHpkeKeyFiles(HpkeKeyFiles& key, const Where& where, const std::string& file,
                       const LoadOptions& options) {
  uint32_t kem = key.kem_id(), kdf = key.kdf_id(), aead = key.aead_id();
  internal::CheckHpkeSuite(where, key.config_id(), "config_id", kem, kdf, aead);
  key.set_kem_id(kem);
  key.set_kdf_id(kdf);
  key.set_aead_id(aead);
  internal::CheckPath(where, "private_key_file", key.private_key_file(), true);
  internal::CheckPath(where, "public_key_file", key.public_key_file(), false);
  key.set_private_key_file(internal::ResolvePath(file, key.private_key_file()));
  key.set_public_key_file(internal::ResolvePath(file, key.public_key_file()));
  if (!options.check_key_files || key.private_key_file().empty()) return;
  Result<crypto::hpke::SecretBytes> private_key = ReadKeyFile(key.private_key_file());
  if (!private_key) {
    where.Fail("private_key_file", private_key.error().message());
    return;
  }
  if (key.public_key_file().empty()) return;
  Result<crypto::hpke::SecretBytes> public_key = ReadKeyFile(key.public_key_file());
  if (!public_key) {
    where.Fail("public_key_file", public_key.error().message());
    return;
  }
  Result<std::vector<uint8_t>> derived = crypto::hpke::PublicKeyFromPrivate(
      crypto::hpke::KemId::kX25519HkdfSha256, private_key->span());
  if (!derived || !std::ranges::equal(*derived, public_key->span())) {
    where.Fail("public_key_file", key.public_key_file() + ": does not match private_key_file " +
                                      key.private_key_file());
  }
}

// ---------------------------------------------------------------------------
// Aggregator.
// ---------------------------------------------------------------------------

void CheckAggregator(AggregatorConfig& config, const Where& where, const std::string& file,
                     const LoadOptions& options) {
  const bool leader = config.role() == AggregatorConfig::LEADER;
  if (config.role() != AggregatorConfig::LEADER && config.role() != AggregatorConfig::HELPER) {
    where.Fail("role", "required: LEADER or HELPER");
  }
  internal::CheckListenAddress(where, "listen_address", config.listen_address());
  internal::CheckPath(where, "database_path", config.database_path(), true);
  config.set_database_path(internal::ResolvePath(file, config.database_path()));
  if (leader && config.peer_url().empty()) {
    where.Fail("peer_url", "required for a leader: the helper's DAP endpoint URL");
  } else {
    internal::CheckUrl(where, "peer_url", config.peer_url(), false);
  }
  internal::CheckToken(where, "peer_token", config.peer_token(), true);
  if (leader) {
    internal::CheckToken(where, "collector_token", config.collector_token(), true);
  } else if (config.role() == AggregatorConfig::HELPER && !config.collector_token().empty()) {
    where.Fail("collector_token", "must be empty for a helper: only the leader serves collectors");
  }
  internal::CheckToken(where, "admin_token", config.admin_token(), false);
  if (config.hpke_keys_size() == 0) where.Fail("hpke_keys", "required: at least one HPKE key");
  std::map<uint32_t, int> ids;
  for (int i = 0; i < config.hpke_keys_size(); ++i) {
    const Where w = where.Nested("hpke_keys", i);
    CheckHpkeKeyFiles(*config.mutable_hpke_keys(i), w, file, options);
    auto [it, inserted] = ids.emplace(config.hpke_keys(i).config_id(), i);
    if (!inserted) {
      w.Fail("config_id",
             "duplicates hpke_keys[" + Str(it->second) + "].config_id (" + Str(it->first) + ")");
    }
  }
  for (int i = 0; i < config.task_files_size(); ++i) {
    internal::CheckPath(where, "task_files", config.task_files(i), true, i);
    config.set_task_files(i, internal::ResolvePath(file, config.task_files(i)));
  }
  Limits& limits = *config.mutable_limits();
  if (limits.max_request_body_bytes() == 0) {
    limits.set_max_request_body_bytes(kDefaultMaxRequestBodyBytes);
  }
  if (limits.request_timeout_seconds() == 0) {
    limits.set_request_timeout_seconds(kDefaultRequestTimeoutSeconds);
  }
  if (limits.max_connections() == 0) limits.set_max_connections(kDefaultMaxConnections);
  if (limits.max_connections() > 65536) {
    where.Nested("limits").Fail("max_connections",
                                "must be at most 65536, got " + Str(limits.max_connections()));
  }
  if (limits.worker_threads() > 1024) {
    where.Nested("limits").Fail("worker_threads",
                                "must be at most 1024, got " + Str(limits.worker_threads()));
  }
  if (!config.has_tolerable_clock_skew_seconds()) {
    config.set_tolerable_clock_skew_seconds(kDefaultTolerableClockSkewSeconds);
  }
  GarbageCollection& gc = *config.mutable_garbage_collection();
  if (gc.report_expiry_seconds() == 0) gc.set_report_expiry_seconds(kDefaultReportExpirySeconds);
  if (gc.interval_seconds() == 0) gc.set_interval_seconds(kDefaultGarbageCollectionIntervalSeconds);
  if (config.report_cache_reports() == 0) {
    config.set_report_cache_reports(kDefaultReportCacheReports);
  } else if (config.report_cache_reports() > kMaxReportCacheReports) {
    where.Fail("report_cache_reports", "must be at most " + Str(kMaxReportCacheReports) + ", got " +
                                           Str(config.report_cache_reports()));
  }
  if (config.report_levels_in_memory()) {
    if (!config.level_files_directory().empty()) {
      where.Fail("level_files_directory", "set while report_levels_in_memory is true");
    }
  } else if (config.level_files_directory().empty()) {
    const std::string parent = std::filesystem::path(config.database_path()).parent_path();
    config.set_level_files_directory(parent.empty() ? "." : parent);
  } else {
    internal::CheckPath(where, "level_files_directory", config.level_files_directory(), true);
    config.set_level_files_directory(internal::ResolvePath(file, config.level_files_directory()));
    std::error_code error;
    if (!std::filesystem::is_directory(config.level_files_directory(), error)) {
      where.Fail("level_files_directory", (error ? error.message() + ": " : "not a directory: ") +
                                              config.level_files_directory());
    }
  }
  // A job size: 0 means the default; at most kMaxReportsPerAggregationJob.
  auto job_size = [&](std::string_view field, uint32_t size, uint32_t default_size) {
    if (size == 0) return default_size;
    if (size > kMaxReportsPerAggregationJob) {
      where.Fail(field,
                 "must be at most " + Str(kMaxReportsPerAggregationJob) + ", got " + Str(size));
    }
    return size;
  };
  config.set_max_reports_per_aggregation_job(job_size("max_reports_per_aggregation_job",
                                                      config.max_reports_per_aggregation_job(),
                                                      kDefaultMaxReportsPerAggregationJob));
  config.set_max_reports_per_held_aggregation_job(job_size(
      "max_reports_per_held_aggregation_job", config.max_reports_per_held_aggregation_job(),
      kDefaultMaxReportsPerHeldAggregationJob));
  if (config.wal_checkpoint_mib() == 0) {
    config.set_wal_checkpoint_mib(kDefaultWalCheckpointMib);
  } else if (config.wal_checkpoint_mib() > kMaxWalCheckpointMib) {
    where.Fail("wal_checkpoint_mib", "must be at most " + Str(kMaxWalCheckpointMib) + ", got " +
                                         Str(config.wal_checkpoint_mib()));
  }
}

// ---------------------------------------------------------------------------
// Collector.
// ---------------------------------------------------------------------------

void CheckFraction(const Where& where, std::string_view field, double value, int index = -1) {
  if (!(value > 0.0 && value <= 1.0)) {
    char text[64];
    std::snprintf(text, sizeof text, "%g", value);
    where.Fail(field, std::string("must be in (0, 1], got ") + text, index);
  }
}

void CheckHeavyHitters(HeavyHitters& hh, const Where& where, const std::string& file) {
  const uint32_t bits = hh.bits();
  const bool bits_ok = bits >= 1 && bits <= 65535;
  if (!bits_ok)
    where.Fail("bits", "must be in 1..65535 (the task's poplar1.bits), got " + Str(bits));
  switch (hh.threshold_case()) {
    case HeavyHitters::THRESHOLD_NOT_SET:
      where.Fail("threshold", "required: default_threshold (a count) or relative_threshold");
      break;
    case HeavyHitters::kDefaultThreshold:
      if (hh.default_threshold() == 0) where.Fail("default_threshold", "must be at least 1, got 0");
      break;
    case HeavyHitters::kRelativeThreshold:
      CheckFraction(where, "relative_threshold", hh.relative_threshold());
      break;
  }
  std::map<std::vector<bool>, int> prefixes;
  for (int i = 0; i < hh.prefix_thresholds_size(); ++i) {
    const PrefixThreshold& entry = hh.prefix_thresholds(i);
    const Where w = where.Nested("prefix_thresholds", i);
    bool prefix_ok = true;
    size_t length = 0;
    switch (entry.prefix_case()) {
      case PrefixThreshold::PREFIX_NOT_SET:
        w.Fail("prefix", "required: bits (\"0110\") or text (\"ab\")");
        prefix_ok = false;
        break;
      case PrefixThreshold::kBits:
        length = entry.bits().size();
        if (entry.bits().empty() || entry.bits().find_first_not_of("01") != std::string::npos) {
          w.Fail("bits", "must be a non-empty string of binary digits 0 and 1");
          prefix_ok = false;
        }
        if (bits_ok && length > bits) {
          w.Fail("bits", "is " + Str(length) + " bits long, longer than heavy_hitters.bits (" +
                             Str(bits) + ")");
          prefix_ok = false;
        }
        break;
      case PrefixThreshold::kText:
        length = entry.text().size() * 8;
        if (entry.text().empty()) {
          w.Fail("text", "must not be empty");
          prefix_ok = false;
        }
        if (bits_ok && length > bits) {
          w.Fail("text", "is " + Str(length) + " bits long, longer than heavy_hitters.bits (" +
                             Str(bits) + ")");
          prefix_ok = false;
        }
        break;
    }
    switch (entry.value_case()) {
      case PrefixThreshold::VALUE_NOT_SET:
        w.Fail("value", "required: threshold (a count) or relative_threshold");
        break;
      case PrefixThreshold::kThreshold:
        if (entry.threshold() == 0) w.Fail("threshold", "must be at least 1, got 0");
        break;
      case PrefixThreshold::kRelativeThreshold:
        CheckFraction(w, "relative_threshold", entry.relative_threshold());
        break;
    }
    if (prefix_ok) {
      auto [it, inserted] = prefixes.emplace(PrefixBits(entry), i);
      if (!inserted) {
        w.Fail(entry.has_bits() ? "bits" : "text",
               "the same prefix as prefix_thresholds[" + Str(it->second) + "]");
      }
    }
  }
  if (hh.bits_per_round() == 0) hh.set_bits_per_round(kDefaultBitsPerRound);
  if (hh.bits_per_round() > 16) {
    where.Fail("bits_per_round", "must be in 1..16, got " + Str(hh.bits_per_round()));
  }
  if (hh.first_round_bits() == 0) {
    hh.set_first_round_bits(bits_ok ? std::min(hh.bits_per_round(), bits) : hh.bits_per_round());
  } else if (hh.first_round_bits() > 16 || (bits_ok && hh.first_round_bits() > bits)) {
    where.Fail("first_round_bits",
               "must be in 1..16 and at most bits, got " + Str(hh.first_round_bits()));
  }
  const uint32_t cap = hh.max_candidates_per_level();
  if (cap != 0 && hh.bits_per_round() <= 16 && hh.first_round_bits() <= 16) {
    const uint64_t first = uint64_t{1} << hh.first_round_bits();
    const uint64_t step = uint64_t{1} << hh.bits_per_round();
    if (cap < std::max(first, step)) {
      where.Fail("max_candidates_per_level",
                 "must be 0 (no cap) or at least " + Str(std::max(first, step)) +
                     " (2^first_round_bits and 2^bits_per_round), got " + Str(cap));
    }
  }
  internal::CheckPath(where, "resume_state_path", hh.resume_state_path(), false);
  hh.set_resume_state_path(internal::ResolvePath(file, hh.resume_state_path()));
}

void CheckCollector(CollectorConfig& config, const Where& where, const std::string& file,
                    const LoadOptions& options) {
  internal::CheckUrl(where, "leader_url", config.leader_url(), true);
  internal::Check32Bytes(where, "task_id", config.task_id());
  internal::CheckToken(where, "collector_token", config.collector_token(), true);
  if (!config.has_hpke_key()) {
    where.Fail("hpke_key", "required: the collector's HPKE key files");
  } else {
    CheckHpkeKeyFiles(*config.mutable_hpke_key(), where.Nested("hpke_key"), file, options);
  }
  internal::CheckPath(where, "task_file", config.task_file(), false);
  config.set_task_file(internal::ResolvePath(file, config.task_file()));
  switch (config.batch_case()) {
    case CollectorConfig::BATCH_NOT_SET:
      where.Fail("batch", "required: time_interval { ... } or leader_selected {}");
      break;
    case CollectorConfig::kTimeInterval:
      if (config.time_interval().duration_seconds() == 0) {
        where.Nested("time_interval").Fail("duration_seconds", "must be positive");
      }
      break;
    case CollectorConfig::kLeaderSelected:
      break;
  }
  if (config.output_format() == CollectorConfig::OUTPUT_FORMAT_UNSPECIFIED) {
    config.set_output_format(CollectorConfig::TEXT);
  }
  internal::CheckPath(where, "output_path", config.output_path(), false);
  config.set_output_path(internal::ResolvePath(file, config.output_path()));
  if (config.poll_interval_seconds() == 0) {
    config.set_poll_interval_seconds(kDefaultPollIntervalSeconds);
  }
  if (config.collection_timeout_seconds() == 0) {
    config.set_collection_timeout_seconds(kDefaultCollectionTimeoutSeconds);
  }
  if (config.has_heavy_hitters()) {
    CheckHeavyHitters(*config.mutable_heavy_hitters(), where.Nested("heavy_hitters"), file);
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Public functions.
// ---------------------------------------------------------------------------

Result<AggregatorConfig> ParseAggregatorConfig(std::string_view text, const std::string& file_name,
                                               const LoadOptions& options) {
  Problems problems;
  pb::TextFormat::ParseInfoTree tree;
  AggregatorConfig config;
  if (!internal::ParseText(text, file_name, config, tree, problems)) {
    return std::unexpected(problems.ToError());
  }
  CheckAggregator(config, Where(&problems, file_name, &tree, AggregatorConfig::descriptor()),
                  file_name, options);
  if (!problems.empty()) return std::unexpected(problems.ToError());
  return config;
}

Result<AggregatorConfig> LoadAggregatorConfig(const std::string& path, const LoadOptions& options) {
  Result<std::string> text = internal::ReadFile(path, kMaxConfigFileBytes);
  if (!text) return std::unexpected(text.error());
  return ParseAggregatorConfig(*text, path, options);
}

Result<std::vector<TaskDefinition>> ParseTaskFile(std::string_view text,
                                                  const std::string& file_name) {
  return ParseTasks(text, file_name, /*require_verify_keys=*/false);
}

Result<std::vector<TaskDefinition>> LoadTaskFile(const std::string& path) {
  return LoadTasks(path, /*require_verify_keys=*/false);
}

Result<TaskDefinition> LoadTask(const std::string& path) {
  Result<std::vector<TaskDefinition>> tasks = LoadTaskFile(path);
  if (!tasks) return std::unexpected(tasks.error());
  if (tasks->size() != 1) {
    return MakeError(ErrorCode::kInvalidArgument,
                     path + ": must define exactly one task, defines " + Str(tasks->size()));
  }
  return std::move(tasks->front());
}

Result<std::vector<TaskDefinition>> LoadAggregatorTasks(const AggregatorConfig& config) {
  std::vector<TaskDefinition> all;
  std::map<std::string, std::string> defined_in;
  Problems problems;
  for (const std::string& path : config.task_files()) {
    Result<std::vector<TaskDefinition>> tasks = LoadTasks(path, /*require_verify_keys=*/true);
    if (!tasks) return std::unexpected(tasks.error());
    for (TaskDefinition& task : *tasks) {
      auto [it, inserted] = defined_in.emplace(task.task_id(), path);
      if (!inserted) {
        problems.Add(path + ": task_id: task " + task.task_id() + " is also defined in " +
                     it->second);
      }
      all.push_back(std::move(task));
    }
  }
  if (!problems.empty()) return std::unexpected(problems.ToError());
  return all;
}

Result<CollectorConfig> ParseCollectorConfig(std::string_view text, const std::string& file_name,
                                             const LoadOptions& options) {
  Problems problems;
  pb::TextFormat::ParseInfoTree tree;
  CollectorConfig config;
  if (!internal::ParseText(text, file_name, config, tree, problems)) {
    return std::unexpected(problems.ToError());
  }
  CheckCollector(config, Where(&problems, file_name, &tree, CollectorConfig::descriptor()),
                 file_name, options);
  if (!problems.empty()) return std::unexpected(problems.ToError());
  return config;
}

Result<CollectorConfig> LoadCollectorConfig(const std::string& path, const LoadOptions& options) {
  Result<std::string> text = internal::ReadFile(path, kMaxConfigFileBytes);
  if (!text) return std::unexpected(text.error());
  return ParseCollectorConfig(*text, path, options);
}

void WipeVerifyKeys(TaskDefinition& task) {
  for (VerifyKey& key : *task.mutable_verify_keys()) {
    std::string* bytes = key.mutable_key();
    crypto::SecureWipe(bytes->data(), bytes->size());
  }
}

Result<dap::TaskConfiguration> ToTaskConfiguration(const TaskDefinition& task) {
  Problems problems;
  TaskDefinition copy = task;
  const Where where(&problems, "", nullptr, TaskDefinition::descriptor());
  std::optional<dap::TaskConfiguration> configuration =
      CheckAndBuild(copy, where, problems, /*require_verify_keys=*/false);
  if (!configuration) return std::unexpected(problems.ToError());
  return std::move(*configuration);
}

Result<dap::TaskId> DecodeTaskId(std::string_view base64url) {
  Problems problems;
  const Where where(&problems, "", nullptr, nullptr);
  std::optional<std::vector<uint8_t>> bytes = internal::Check32Bytes(where, "task_id", base64url);
  if (!bytes) return std::unexpected(problems.ToError());
  dap::TaskId id{};
  std::ranges::copy(*bytes, id.begin());
  return id;
}

Result<dap::HpkeConfig> ToHpkeConfig(const CollectorHpkeConfig& config) {
  Problems problems;
  const Where where(&problems, "", nullptr, TaskDefinition::descriptor());
  CollectorHpkeConfig copy = config;
  CheckCollectorHpkeConfig(copy, where, true);
  if (!problems.empty()) return std::unexpected(problems.ToError());
  dap::HpkeConfig hpke;
  hpke.id = static_cast<uint8_t>(copy.id());
  hpke.kem_id = static_cast<uint16_t>(copy.kem_id());
  hpke.kdf_id = static_cast<uint16_t>(copy.kdf_id());
  hpke.aead_id = static_cast<uint16_t>(copy.aead_id());
  Result<std::vector<uint8_t>> key = dap::Base64UrlDecode(copy.public_key());
  hpke.public_key = std::move(*key);
  return hpke;
}

std::vector<bool> PrefixBits(const PrefixThreshold& prefix_threshold) {
  std::vector<bool> bits;
  if (prefix_threshold.has_bits()) {
    for (char c : prefix_threshold.bits()) bits.push_back(c == '1');
  } else if (prefix_threshold.has_text()) {
    for (char c : prefix_threshold.text()) {
      const auto byte = static_cast<uint8_t>(c);
      for (int i = 7; i >= 0; --i) bits.push_back(((byte >> i) & 1) != 0);
    }
  }
  return bits;
}

Result<crypto::hpke::SecretBytes> ReadKeyFile(const std::string& path) {
  Result<std::string> text = internal::ReadFile(path, kMaxKeyFileBytes);
  if (!text) return std::unexpected(text.error());
  std::string_view view = *text;
  constexpr std::string_view kSpace = " \t\r\n";
  const size_t first = view.find_first_not_of(kSpace);
  view = first == std::string_view::npos ? std::string_view() : view.substr(first);
  view = view.substr(0, view.find_last_not_of(kSpace) + 1);
  Result<std::vector<uint8_t>> bytes = dap::Base64UrlDecode(view);
  auto wipe = [](auto& buffer) {
    volatile char* p = reinterpret_cast<volatile char*>(buffer.data());
    for (size_t i = 0; i < buffer.size(); ++i) p[i] = 0;
  };
  wipe(*text);
  if (!bytes || bytes->size() != 32) {
    if (bytes) wipe(*bytes);
    return MakeError(ErrorCode::kInvalidArgument,
                     path + ": must hold a 32-byte key as unpadded base64url");
  }
  crypto::hpke::SecretBytes key(*bytes);
  wipe(*bytes);
  return key;
}

}  // namespace canopy::config
