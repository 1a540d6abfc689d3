#include "aggregator/report_cache.h"

#include <iostream>
#include <vector>

namespace canopy::aggregator {

ReportCache::ReportCache(size_t capacity, std::shared_ptr<LevelFiles> level_files)
    : capacity_(capacity), level_files_(std::move(level_files)), cache_(capacity) {}

ReportCache::~ReportCache() = default;

std::unique_ptr<poplar::PreparedReport> ReportCache::Take(const dap::TaskId& task_id,
                                                          const dap::ReportId& report_id) {
  return cache_.Take({report_id, task_id});
}

void ReportCache::Put(const dap::TaskId& task_id, const dap::ReportId& report_id,
                      std::unique_ptr<poplar::PreparedReport> report) {
  if (capacity_ == 0 || report == nullptr) return;
  if (level_files_ != nullptr) ParkLevels(task_id, *report);
  cache_.Put({report_id, task_id}, std::move(report));
}

void ReportCache::TakeMany(const dap::TaskId& task_id, std::span<const dap::ReportId> report_ids,
                           std::span<std::unique_ptr<poplar::PreparedReport>> out) {
  std::vector<Key> keys;
  keys.reserve(report_ids.size());
  for (const dap::ReportId& report_id : report_ids) keys.emplace_back(report_id, task_id);
  cache_.TakeMany(keys, out);
}

void ReportCache::PutMany(const dap::TaskId& task_id, std::span<const dap::ReportId> report_ids,
                          std::span<std::unique_ptr<poplar::PreparedReport>> reports) {
  if (capacity_ == 0) return;
  std::vector<Key> keys;
  keys.reserve(report_ids.size());
  for (size_t i = 0; i < report_ids.size(); ++i) {
    keys.emplace_back(report_ids[i], task_id);
    if (level_files_ != nullptr && reports[i] != nullptr) ParkLevels(task_id, *reports[i]);
  }
  cache_.PutMany(keys, reports);
}

void ReportCache::ParkLevels(const dap::TaskId& task_id, poplar::PreparedReport& report) {
  if (report.levels_in_slot()) {
    report.DropLevelsRead();
    return;
  }
  const std::vector<size_t> sizes = report.LevelRecordSizes();
  if (sizes.empty()) return;
  auto slot = level_files_->NewSlot(task_id, sizes);
  Result<void> moved =
      slot ? report.MoveLevelsTo(std::move(*slot)) : Result<void>(std::unexpected(slot.error()));
  if (!moved && !write_failure_logged_.exchange(true)) {
    std::cerr << "canopy-aggregator: report cache: " << moved.error().message()
              << "; reports keep their levels in memory until it can be written\n";
  }
}

void ReportCache::EraseTask(const dap::TaskId& task_id) {
  cache_.EraseIf([&](const auto& key) { return key.second == task_id; });
  if (level_files_ != nullptr) level_files_->EraseTask(task_id);
}

size_t ReportCache::size() const { return cache_.size(); }

}  // namespace canopy::aggregator
