#include "aggregator/internal/agg_param_memo.h"

namespace canopy::aggregator::internal {

std::shared_ptr<const poplar::AggregationParameter> AggParamMemo::Find(
    const Task& task, const dap::Bytes& agg_param) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& [task_id, bytes, decoded] : entries_) {
    if (task_id == task.id && bytes == agg_param) return decoded;
  }
  return nullptr;
}

Result<std::shared_ptr<const poplar::AggregationParameter>> AggParamMemo::Decode(
    const Task& task, const dap::Bytes& agg_param, const dap::Bytes* previous) {
  if (auto found = Find(task, agg_param)) return found;
  std::shared_ptr<const poplar::AggregationParameter> before;
  if (previous != nullptr) {
    // The remembered one first: it was planned from its own predecessor, so
    // its plan says which nodes the reports kept after it (a Poplar1 level
    // keeps its round's first level, which only that plan knows).
    before = Find(task, *previous);
    if (before == nullptr) {
      auto decoded = task.vdaf->DecodeAggParam(*previous, nullptr);
      if (decoded) before = *decoded;  // Else decoded without a plan.
    }
  }
  auto decoded = task.vdaf->DecodeAggParam(agg_param, before.get());
  if (!decoded) return std::unexpected(decoded.error());
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.emplace_back(task.id, agg_param, *decoded);
  if (entries_.size() > capacity_) entries_.pop_front();
  return *decoded;
}

}  // namespace canopy::aggregator::internal
