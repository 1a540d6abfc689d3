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
    const Task& task, const dap::Bytes& agg_param, std::span<const dap::Bytes> earlier) {
  if (auto found = Find(task, agg_param)) return found;
  // The latest earlier parameter still remembered, then the ones after it
  // decoded in order, each after its predecessor (not remembered: only the
  // last of them matters, and they would push out the walks in progress).
  std::shared_ptr<const poplar::AggregationParameter> before;
  size_t next = earlier.size();
  while (next > 0) {
    if (auto found = Find(task, earlier[next - 1])) {
      before = std::move(found);
      break;
    }
    --next;
  }
  for (; next < earlier.size(); ++next) {
    auto decoded = task.vdaf->DecodeAggParam(earlier[next], before.get());
    before = decoded ? *decoded : nullptr;  // Else the next is planned from the root.
  }
  auto decoded = task.vdaf->DecodeAggParam(agg_param, before.get());
  if (!decoded) return std::unexpected(decoded.error());
  std::lock_guard<std::mutex> lock(mutex_);
  entries_.emplace_back(task.id, agg_param, *decoded);
  if (entries_.size() > capacity_) entries_.pop_front();
  return *decoded;
}

}  // namespace canopy::aggregator::internal
