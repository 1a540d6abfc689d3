#include "aggregator/report_cache.h"

namespace canopy::aggregator {

std::unique_ptr<poplar::PreparedReport> ReportCache::Take(const dap::TaskId& task_id,
                                                          const dap::ReportId& report_id) {
  return cache_.Take({task_id, report_id});
}

void ReportCache::Put(const dap::TaskId& task_id, const dap::ReportId& report_id,
                      std::unique_ptr<poplar::PreparedReport> report) {
  cache_.Put({task_id, report_id}, std::move(report));
}

void ReportCache::EraseTask(const dap::TaskId& task_id) {
  cache_.EraseIf([&](const auto& key) { return key.first == task_id; });
}

size_t ReportCache::size() const { return cache_.size(); }

}  // namespace canopy::aggregator
