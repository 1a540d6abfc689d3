#include "aggregator/internal/aggregation.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "aggregator/internal/common.h"

namespace canopy::aggregator::internal {

Bytes EncodeContinuedState(uint8_t round, const poplar::VerifyState& state) {
  Bytes blob = {round};
  Bytes encoded = poplar::EncodeVerifyState(state);
  blob.insert(blob.end(), encoded.begin(), encoded.end());
  return blob;
}

Result<ContinuedState> DecodeContinuedState(std::span<const uint8_t> blob) {
  if (blob.empty()) return MakeError(ErrorCode::kInternal, "empty stored verification state");
  auto state = poplar::DecodeVerifyState(blob.subspan(1));
  if (!state) return MakeError(ErrorCode::kInternal, "stored verification state does not decode");
  return ContinuedState{blob[0], std::move(*state)};
}

Result<void> OutputAccumulator::Add(const Bytes& bucket_key, dap::Time time,
                                    const dap::ReportId& report_id,
                                    const poplar::FieldVector& out_share) {
  auto [it, inserted] = buckets_.try_emplace(bucket_key);
  Sum& sum = it->second;
  if (inserted) {
    sum.aggregate = task_.vdaf->AggregateInit(agg_param_);
    sum.min_time = time;
    sum.max_time = time;
  }
  auto added = poplar::AddFieldVector(sum.aggregate, out_share);
  if (!added) return added;
  ++sum.count;
  UpdateChecksum(sum.checksum, report_id);
  sum.min_time = std::min(sum.min_time, time);
  sum.max_time = std::max(sum.max_time, time);
  return {};
}

Result<void> OutputAccumulator::Commit(Transaction& tx) const {
  for (const auto& [bucket_key, sum] : buckets_) {
    auto existing = tx.GetBatchAggregation(task_.id, bucket_key, agg_param_bytes_);
    if (!existing) return std::unexpected(existing.error());
    BatchAggregationRow row;
    poplar::FieldVector total = sum.aggregate;
    if (existing->has_value() && !(*existing)->aggregate.empty()) {
      row = std::move(**existing);
      auto stored = task_.vdaf->DecodeAggShare(agg_param_, row.aggregate);
      if (!stored) return MakeError(ErrorCode::kInternal, "stored aggregate does not decode");
      auto added = poplar::AddFieldVector(total, *stored);
      if (!added) return added;
      row.min_time = std::min(row.min_time, sum.min_time);
      row.max_time = std::max(row.max_time, sum.max_time);
    } else {
      row.task_id = task_.id;
      row.bucket_key = bucket_key;
      row.agg_param = agg_param_bytes_;
      row.min_time = sum.min_time;
      row.max_time = sum.max_time;
    }
    row.aggregate = poplar::EncodeFieldVector(total);
    row.report_count += sum.count;
    for (size_t i = 0; i < row.checksum.size(); ++i) row.checksum[i] ^= sum.checksum[i];
    auto put = tx.PutBatchAggregation(row);
    if (!put) return put;
  }
  return {};
}

Result<BatchTotal> SumBatch(Transaction& tx, const Task& task,
                            const poplar::AggregationParameter& agg_param,
                            const Bytes& agg_param_bytes, const Bytes& first_key,
                            const Bytes& last_key) {
  auto rows = tx.BatchAggregationsInRange(task.id, agg_param_bytes, first_key, last_key);
  if (!rows) return std::unexpected(rows.error());
  BatchTotal total;
  total.aggregate = task.vdaf->AggregateInit(agg_param);
  bool first = true;
  for (const BatchAggregationRow& row : *rows) {
    if (row.report_count == 0) continue;
    auto share = task.vdaf->DecodeAggShare(agg_param, row.aggregate);
    if (!share) return MakeError(ErrorCode::kInternal, "stored aggregate does not decode");
    auto added = poplar::AddFieldVector(total.aggregate, *share);
    if (!added) return std::unexpected(added.error());
    total.count += row.report_count;
    for (size_t i = 0; i < total.checksum.size(); ++i) total.checksum[i] ^= row.checksum[i];
    total.min_time = first ? row.min_time : std::min(total.min_time, row.min_time);
    total.max_time = first ? row.max_time : std::max(total.max_time, row.max_time);
    first = false;
  }
  return total;
}

std::string CheckAggParamHistory(const Task& task, const Bytes& agg_param,
                                 const poplar::AggregationParameter& decoded,
                                 const std::vector<Bytes>& history) {
  if (history.empty() || std::find(history.begin(), history.end(), agg_param) != history.end()) {
    return "";
  }
  if (!task.multi_level()) {
    return "the batch was already aggregated with another aggregation parameter";
  }
  if (history.size() >= task.rules.multi_level->max_collections_per_batch) {
    return "the batch reached its limit of " +
           std::to_string(task.rules.multi_level->max_collections_per_batch) +
           " aggregation parameters";
  }
  std::vector<std::shared_ptr<const poplar::AggregationParameter>> previous;
  std::vector<const poplar::AggregationParameter*> pointers;
  for (const Bytes& bytes : history) {
    auto param =
        task.vdaf->DecodeAggParam(bytes, previous.empty() ? nullptr : previous.back().get());
    if (!param) return "a stored aggregation parameter does not decode";
    previous.push_back(*param);
    pointers.push_back(param->get());
  }
  if (!task.vdaf->IsValid(decoded, pointers)) {
    return "the aggregation parameter is not valid after the batch's earlier ones";
  }
  return "";
}

}  // namespace canopy::aggregator::internal
