#include "dap/task.h"

#include <cstdint>
#include <string>

#include "poplar/poplar1.h"
#include "poplar/prio3.h"

namespace canopy::dap {
namespace {

constexpr size_t kShares = 2;

Bytes Finish(Writer&& writer) { return *std::move(writer).Finish(); }

template <typename Fn>
Result<std::unique_ptr<poplar::Vdaf>> Build(std::span<const uint8_t> configuration,
                                            const char* name, Fn read_and_build) {
  Reader reader(configuration);
  Result<std::unique_ptr<poplar::Vdaf>> vdaf = read_and_build(reader);
  if (!reader.ok() || !reader.ExpectEnd(name)) {
    return MakeError(ErrorCode::kDecodeError,
                     std::string(name) + " configuration is malformed: " + reader.error());
  }
  return vdaf;
}

template <typename T>
Result<std::unique_ptr<poplar::Vdaf>> Upcast(Result<std::unique_ptr<T>> vdaf) {
  if (!vdaf) return std::unexpected(vdaf.error());
  return std::unique_ptr<poplar::Vdaf>(std::move(*vdaf));
}

Result<std::unique_ptr<poplar::Vdaf>> Unreadable() {
  return MakeError(ErrorCode::kDecodeError, "truncated VDAF configuration");
}

}  // namespace

Extension TaskIntervalExtension(const Interval& interval) {
  Writer writer;
  Write(writer, interval);
  return {kTaskIntervalExtension, Finish(std::move(writer))};
}

Extension MultiLevelCollectionExtension(const MultiLevelCollection& extension) {
  Writer writer;
  writer.U16(extension.max_collections_per_batch);
  return {kMultiLevelCollectionExtension, Finish(std::move(writer))};
}

Bytes Poplar1Configuration(uint16_t bits) {
  Writer writer;
  writer.U16(bits);
  return Finish(std::move(writer));
}

Bytes Prio3SumConfiguration(uint64_t max_measurement) {
  Writer writer;
  writer.U64(max_measurement);
  return Finish(std::move(writer));
}

Bytes Prio3SumVecConfiguration(uint32_t length, uint64_t max_measurement, uint32_t chunk_length) {
  Writer writer;
  writer.U32(length);
  writer.U64(max_measurement);
  writer.U32(chunk_length);
  return Finish(std::move(writer));
}

Bytes Prio3HistogramConfiguration(uint32_t length, uint32_t chunk_length) {
  Writer writer;
  writer.U32(length);
  writer.U32(chunk_length);
  return Finish(std::move(writer));
}

Bytes Prio3MultihotCountVecConfiguration(uint32_t length, uint32_t chunk_length,
                                         uint64_t max_weight) {
  Writer writer;
  writer.U32(length);
  writer.U32(chunk_length);
  writer.U64(max_weight);
  return Finish(std::move(writer));
}

Result<std::unique_ptr<poplar::Vdaf>> MakeVdaf(uint32_t vdaf_type,
                                               std::span<const uint8_t> configuration) {
  switch (static_cast<VdafType>(vdaf_type)) {
    case VdafType::kPrio3Count:
      return Build(configuration, "Prio3Count",
                   [](Reader&) { return Upcast(poplar::Prio3::Count(kShares)); });
    case VdafType::kPrio3Sum:
      return Build(configuration, "Prio3Sum", [](Reader& r) {
        uint64_t max = 0;
        if (!r.U64(max, "max_measurement")) return Unreadable();
        return Upcast(poplar::Prio3::Sum(max, kShares));
      });
    case VdafType::kPrio3SumVec:
      return Build(configuration, "Prio3SumVec", [](Reader& r) {
        uint32_t length = 0, chunk = 0;
        uint64_t max = 0;
        if (!r.U32(length, "length") || !r.U64(max, "max_measurement") ||
            !r.U32(chunk, "chunk_length")) {
          return Unreadable();
        }
        return Upcast(poplar::Prio3::SumVec(length, max, chunk, kShares));
      });
    case VdafType::kPrio3Histogram:
      return Build(configuration, "Prio3Histogram", [](Reader& r) {
        uint32_t length = 0, chunk = 0;
        if (!r.U32(length, "length") || !r.U32(chunk, "chunk_length")) return Unreadable();
        return Upcast(poplar::Prio3::Histogram(length, chunk, kShares));
      });
    case VdafType::kPrio3MultihotCountVec:
      return Build(configuration, "Prio3MultihotCountVec", [](Reader& r) {
        uint32_t length = 0, chunk = 0;
        uint64_t max_weight = 0;
        if (!r.U32(length, "length") || !r.U32(chunk, "chunk_length") ||
            !r.U64(max_weight, "max_weight")) {
          return Unreadable();
        }
        return Upcast(poplar::Prio3::MultihotCountVec(length, max_weight, chunk, kShares));
      });
    case VdafType::kPoplar1:
      return Build(configuration, "Poplar1", [](Reader& r) {
        uint16_t bits = 0;
        if (!r.U16(bits, "bits")) return Unreadable();
        return Upcast(poplar::Poplar1::Create(bits));
      });
  }
  return MakeError(ErrorCode::kUnsupported, "unknown VDAF type " + std::to_string(vdaf_type));
}

bool ExtensionsStrictlyIncreasing(std::span<const Extension> extensions) {
  for (size_t i = 1; i < extensions.size(); ++i) {
    if (extensions[i - 1].type >= extensions[i].type) return false;
  }
  return true;
}

Result<TaskRules> ValidateTaskConfiguration(const TaskConfiguration& configuration) {
  auto invalid = [](const std::string& what) {
    return MakeError(ErrorCode::kInvalidArgument, "task configuration: " + what);
  };
  if (configuration.time_precision == 0) return invalid("time_precision must be positive");
  if (configuration.min_batch_size == 0) return invalid("min_batch_size must be positive");
  if (!configuration.batch_config.empty()) {
    return invalid("batch_config must be empty for both batch modes");
  }
  Result<std::unique_ptr<poplar::Vdaf>> vdaf =
      MakeVdaf(configuration.vdaf_type, configuration.vdaf_configuration);
  if (!vdaf) return std::unexpected(vdaf.error());
  if (!ExtensionsStrictlyIncreasing(configuration.extensions)) {
    return invalid("extensions must be strictly increasing by type");
  }
  TaskRules rules;
  for (const Extension& extension : configuration.extensions) {
    if (extension.type == kTaskIntervalExtension) {
      Result<Interval> interval = DecodeWith<Interval>(
          extension.data, [](Reader& r, Interval& i) { return Read(r, i); }, "task_interval");
      if (!interval) return invalid(interval.error().message());
      rules.task_interval = *interval;
    } else if (extension.type == kMultiLevelCollectionExtension) {
      Result<MultiLevelCollection> multi = DecodeWith<MultiLevelCollection>(
          extension.data,
          [](Reader& r, MultiLevelCollection& m) {
            return r.U16(m.max_collections_per_batch, "max_collections_per_batch");
          },
          "multi_level_collection");
      if (!multi) return invalid(multi.error().message());
      if (multi->max_collections_per_batch < 2) {
        return invalid("multi_level_collection needs max_collections_per_batch of at least 2");
      }
      if (configuration.vdaf_type != static_cast<uint32_t>(VdafType::kPoplar1)) {
        return invalid("multi_level_collection is only defined for Poplar1 tasks");
      }
      rules.multi_level = *multi;
    } else {
      return invalid("unknown task extension " + std::to_string(extension.type));
    }
  }
  return rules;
}

std::optional<ReportError> CheckReportTime(const TaskConfiguration& configuration,
                                           const TaskRules& rules, Time report_time,
                                           uint64_t now_seconds,
                                           uint64_t tolerable_clock_skew_seconds) {
  const uint64_t precision = configuration.time_precision == 0 ? 1 : configuration.time_precision;
  const uint64_t latest = (now_seconds + tolerable_clock_skew_seconds) / precision;
  if (report_time > latest) return ReportError::kReportTooEarly;
  if (rules.task_interval) {
    const Interval& interval = *rules.task_interval;
    const bool before = report_time < interval.start;
    const bool after = report_time - interval.start >= interval.duration;
    if (before || after) return ReportError::kReportDropped;
  }
  return std::nullopt;
}

Result<void> CheckQuery(const TaskConfiguration& configuration, const Query& query) {
  if (query.batch_mode != configuration.batch_mode) {
    return MakeError(ErrorCode::kDecodeError, "the query's batch mode is not the task's");
  }
  if (query.batch_mode == BatchMode::kLeaderSelected) {
    if (!query.config.empty()) {
      return MakeError(ErrorCode::kDecodeError, "a leader_selected query has no configuration");
    }
    return {};
  }
  Result<Interval> interval = BatchIntervalOf(query);
  if (!interval) return std::unexpected(interval.error());
  if (interval->duration == 0) {
    return MakeError(ErrorCode::kInvalidArgument, "the batch interval is empty");
  }
  if (interval->start > UINT64_MAX - interval->duration) {
    return MakeError(ErrorCode::kInvalidArgument, "the batch interval overflows");
  }
  return {};
}

Result<void> CheckBatchSelector(const TaskConfiguration& configuration, const Query& query,
                                const BatchSelector& selector) {
  if (Result<void> checked = CheckQuery(configuration, query); !checked) return checked;
  if (selector.batch_mode != configuration.batch_mode) {
    return MakeError(ErrorCode::kDecodeError, "the batch selector's mode is not the task's");
  }
  if (selector.batch_mode == BatchMode::kLeaderSelected) {
    Result<BatchId> id = BatchIdOf(selector);
    if (!id) return std::unexpected(id.error());
    return {};
  }
  Result<Interval> selected = BatchIntervalOf(selector);
  if (!selected) return std::unexpected(selected.error());
  if (*selected != *BatchIntervalOf(query)) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the batch selector's interval is not the query's");
  }
  return {};
}

}  // namespace canopy::dap
