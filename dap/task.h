// Tasks: the VDAF a task configuration names, the rules it imposes (task
// interval, multi-level collection), and the report time checks of DAP-19.
#ifndef CANOPY_DAP_TASK_H_
#define CANOPY_DAP_TASK_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>

#include "crypto/error.h"
#include "dap/messages.h"
#include "poplar/vdaf.h"

namespace canopy::dap {

// Canopy's extension codepoints (docs/multi-level-collection.md).
inline constexpr uint16_t kMultiLevelCollectionExtension = 0xFF00;  // Task extension.
inline constexpr uint16_t kWalkIdExtension = 0xFF01;                // Collection job extension.
inline constexpr uint16_t kHeldReportsExtension = 0xFF02;           // Aggregation job extension.

// DAP's VDAF codepoints (the VDAF draft's algorithm identifiers).
enum class VdafType : uint32_t {
  kPrio3Count = 1,
  kPrio3Sum = 2,
  kPrio3SumVec = 3,
  kPrio3Histogram = 4,
  kPrio3MultihotCountVec = 5,
  kPoplar1 = 6,
};

// The multi-level collection extension's data.
struct MultiLevelCollection {
  uint16_t max_collections_per_batch = 0;
  friend bool operator==(const MultiLevelCollection&, const MultiLevelCollection&) = default;
};

// The task extensions Canopy understands, encoded.
Extension TaskIntervalExtension(const Interval& interval);
Extension MultiLevelCollectionExtension(const MultiLevelCollection& extension);

// vdaf_configuration encodings of DAP-19's appendix.
Bytes Poplar1Configuration(uint16_t bits);
Bytes Prio3SumConfiguration(uint64_t max_measurement);
Bytes Prio3SumVecConfiguration(uint32_t length, uint64_t max_measurement, uint32_t chunk_length);
Bytes Prio3HistogramConfiguration(uint32_t length, uint32_t chunk_length);
Bytes Prio3MultihotCountVecConfiguration(uint32_t length, uint32_t chunk_length,
                                         uint64_t max_weight);

// Builds the VDAF (with two aggregators) that a task's vdaf_type and
// vdaf_configuration name. Errors: kDecodeError for a malformed
// configuration, kUnsupported for an unknown type, kInvalidArgument for
// parameters the VDAF refuses.
Result<std::unique_ptr<poplar::Vdaf>> MakeVdaf(uint32_t vdaf_type,
                                               std::span<const uint8_t> vdaf_configuration);

// What a valid task configuration imposes beyond its fields.
struct TaskRules {
  std::optional<Interval> task_interval;
  std::optional<MultiLevelCollection> multi_level;
};

// True when the extension types strictly increase (DAP requires it of every
// extension list).
bool ExtensionsStrictlyIncreasing(std::span<const Extension> extensions);

// Checks a task configuration the way an aggregator must before accepting the
// task: time_precision and min_batch_size positive, empty batch_config, a VDAF
// it can build, extensions strictly increasing and all known, and
// multi-level collection only with Poplar1 and at least 2 collections.
// Errors: kInvalidArgument (or the VDAF's error), naming the field.
Result<TaskRules> ValidateTaskConfiguration(const TaskConfiguration& configuration);

// The report-time checks of upload and aggregation. `now_seconds` is POSIX
// time; the report's time is in time_precision units. Returns the report
// error to answer with, or nullopt when the time is acceptable:
// report_too_early beyond the tolerated clock skew, report_dropped outside
// the task interval.
std::optional<ReportError> CheckReportTime(const TaskConfiguration& configuration,
                                           const TaskRules& rules, Time report_time,
                                           uint64_t now_seconds,
                                           uint64_t tolerable_clock_skew_seconds);

// The batch-mode checks of a collector's query (DAP-19, "Batch Modes"): the
// query's mode must be the task's; a time_interval query must hold exactly
// one Interval with a duration of at least one time_precision unit that does
// not overflow; a leader_selected query must have an empty configuration.
// Errors: kDecodeError (answer invalidMessage) for a malformed or mismatched
// query, kInvalidArgument (answer batchInvalid) for an empty or overflowing
// interval.
Result<void> CheckQuery(const TaskConfiguration& configuration, const Query& query);

// The batch-selector checks of an aggregate-share request: its mode must be
// the task's; a time_interval selector must hold the query's interval; a
// leader_selected selector must hold a BatchID. Errors as CheckQuery.
Result<void> CheckBatchSelector(const TaskConfiguration& configuration, const Query& query,
                                const BatchSelector& selector);

}  // namespace canopy::dap

#endif  // CANOPY_DAP_TASK_H_
