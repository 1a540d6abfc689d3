#include "aggregator/report_cache.h"

namespace canopy::aggregator {

std::unique_ptr<poplar::PreparedReport> ReportCache::Take(const dap::TaskId& task_id,
                                                          const dap::ReportId& report_id) {
  std::lock_guard lock(mutex_);
  auto it = entries_.find({task_id, report_id});
  if (it == entries_.end()) return nullptr;
  auto report = std::move(it->second.report);
  recency_.erase(it->second.position);
  entries_.erase(it);
  return report;
}

void ReportCache::Put(const dap::TaskId& task_id, const dap::ReportId& report_id,
                      std::unique_ptr<poplar::PreparedReport> report) {
  if (capacity_ == 0 || report == nullptr) return;
  std::lock_guard lock(mutex_);
  Key key{task_id, report_id};
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    recency_.erase(it->second.position);
    entries_.erase(it);
  }
  recency_.push_front(key);
  entries_.emplace(key, Entry{std::move(report), recency_.begin()});
  while (entries_.size() > capacity_) {
    entries_.erase(recency_.back());
    recency_.pop_back();
  }
}

void ReportCache::EraseTask(const dap::TaskId& task_id) {
  std::lock_guard lock(mutex_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->first.first == task_id) {
      recency_.erase(it->second.position);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

size_t ReportCache::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

}  // namespace canopy::aggregator
