// Pieces of aggregation that the helper's endpoints and the leader's driver
// share: storing a report's ping-pong state, and adding output shares into
// batch aggregations.
#ifndef CANOPY_AGGREGATOR_INTERNAL_AGGREGATION_H_
#define CANOPY_AGGREGATOR_INTERNAL_AGGREGATION_H_

#include <map>
#include <optional>

#include "aggregator/datastore.h"
#include "aggregator/task_registry.h"
#include "crypto/error.h"
#include "poplar/vdaf.h"

namespace canopy::aggregator::internal {

// A kContinued ping-pong state for storage: round || EncodeVerifyState.
Bytes EncodeContinuedState(uint8_t round, const poplar::VerifyState& state);
struct ContinuedState {
  uint8_t round = 0;
  poplar::VerifyState state;
};
Result<ContinuedState> DecodeContinuedState(std::span<const uint8_t> blob);

// Output shares of one job, summed per bucket in memory, then merged into
// the stored batch aggregations in one go.
class OutputAccumulator {
 public:
  OutputAccumulator(const Task& task, const poplar::AggregationParameter& agg_param,
                    Bytes agg_param_bytes)
      : task_(task), agg_param_(agg_param), agg_param_bytes_(std::move(agg_param_bytes)) {}

  // Errors: kInvalidArgument when the share does not fit the parameter.
  Result<void> Add(const Bytes& bucket_key, dap::Time time, const dap::ReportId& report_id,
                   const poplar::FieldVector& out_share);

  // Adds everything accumulated into the batch aggregations, in `tx`.
  Result<void> Commit(Transaction& tx) const;

  bool empty() const { return buckets_.empty(); }

 private:
  struct Sum {
    poplar::FieldVector aggregate;
    uint64_t count = 0;
    Checksum checksum{};
    dap::Time min_time = 0;
    dap::Time max_time = 0;
  };
  const Task& task_;
  const poplar::AggregationParameter& agg_param_;
  Bytes agg_param_bytes_;
  std::map<Bytes, Sum> buckets_;
};

// The sum of the batch aggregations of `bucket keys in [first, last]` for a
// parameter: the aggregate share, count, checksum and the interval spanned
// by report times.
struct BatchTotal {
  poplar::FieldVector aggregate;
  uint64_t count = 0;
  Checksum checksum{};
  dap::Time min_time = 0;
  dap::Time max_time = 0;
};
Result<BatchTotal> SumBatch(Transaction& tx, const Task& task,
                            const poplar::AggregationParameter& agg_param,
                            const Bytes& agg_param_bytes, const Bytes& first_key,
                            const Bytes& last_key);

// Checks a new aggregation parameter against the ones a batch was already
// aggregated or collected with, oldest first: anything goes for a fresh
// batch or a repeated parameter; otherwise the task must allow multi-level
// collection, the limit of parameters must not be reached, and the VDAF's
// is_valid must accept it. Returns the problem detail, or "" when the
// parameter may be used.
std::string CheckAggParamHistory(const Task& task, const Bytes& agg_param,
                                 const poplar::AggregationParameter& decoded,
                                 const std::vector<Bytes>& history);

}  // namespace canopy::aggregator::internal

#endif  // CANOPY_AGGREGATOR_INTERNAL_AGGREGATION_H_
