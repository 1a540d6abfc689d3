// Decoded aggregation parameters, remembered. Every job of a walk's level
// carries the same parameter, kilobytes deep in the walk, and decoding it
// builds the Poplar1 prefix set and evaluation plan: done once per level
// instead of once per job and step.
#ifndef CANOPY_AGGREGATOR_INTERNAL_AGG_PARAM_MEMO_H_
#define CANOPY_AGGREGATOR_INTERNAL_AGG_PARAM_MEMO_H_

#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <tuple>

#include "aggregator/task_registry.h"
#include "crypto/error.h"
#include "poplar/vdaf.h"

namespace canopy::aggregator::internal {

class AggParamMemo {
 public:
  // Remembers the last `capacity` parameters.
  explicit AggParamMemo(size_t capacity = 32) : capacity_(capacity) {}

  // `agg_param` decoded. The first time, it is decoded after `earlier` (the
  // batch's parameters before it, oldest first, when the caller knows them):
  // Poplar1 plans a level's evaluation from the previous level's plan, whose
  // choice of which nodes the reports keep depends on the level before that,
  // and so on. The previous parameter is taken as remembered; one no longer
  // remembered is decoded again after its own predecessors (a plan made
  // without them would not match what the reports kept, and every report
  // would be walked from the root for a level). Later calls return the first
  // decoding, whatever their `earlier`. Errors: the VDAF's decoding errors
  // of `agg_param` (nothing is remembered then).
  Result<std::shared_ptr<const poplar::AggregationParameter>> Decode(
      const Task& task, const dap::Bytes& agg_param, std::span<const dap::Bytes> earlier = {});

 private:
  // The remembered decoding of `agg_param`, or null.
  std::shared_ptr<const poplar::AggregationParameter> Find(const Task& task,
                                                           const dap::Bytes& agg_param);

  const size_t capacity_;
  std::mutex mutex_;
  // Newest last.
  std::deque<
      std::tuple<dap::TaskId, dap::Bytes, std::shared_ptr<const poplar::AggregationParameter>>>
      entries_;
};

}  // namespace canopy::aggregator::internal

#endif  // CANOPY_AGGREGATOR_INTERNAL_AGG_PARAM_MEMO_H_
