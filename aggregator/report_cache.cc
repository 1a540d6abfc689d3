#include "aggregator/report_cache.h"

namespace canopy::aggregator {

std::unique_ptr<poplar::PreparedReport> ReportCache::Take(const dap::TaskId& task_id,
                                                          const dap::ReportId& report_id) {
  return cache_.Take({report_id, task_id});
}

void ReportCache::Put(const dap::TaskId& task_id, const dap::ReportId& report_id,
                      std::unique_ptr<poplar::PreparedReport> report) {
  cache_.Put({report_id, task_id}, std::move(report));
}

void ReportCache::EraseTask(const dap::TaskId& task_id) {
  cache_.EraseIf([&](const auto& key) { return key.second == task_id; });
}

size_t ReportCache::size() const { return cache_.size(); }

}  // namespace canopy::aggregator
