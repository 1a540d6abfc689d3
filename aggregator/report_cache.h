// Reports prepared by the VDAF (decoded shares, and for Poplar1 the IDPF node
// states, fixed AES keys and XOF positions of the last level), kept in memory
// across the levels of a walk so that each level continues from the last
// instead of starting from the HPKE ciphertext (docs/multi-level-collection.md,
// rule 8). Bounded: the least recently used report is evicted first; an
// evicted report is prepared again from the datastore's held share.
#ifndef CANOPY_AGGREGATOR_REPORT_CACHE_H_
#define CANOPY_AGGREGATOR_REPORT_CACHE_H_

#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "dap/messages.h"
#include "poplar/vdaf.h"

namespace canopy::aggregator {

class ReportCache {
 public:
  explicit ReportCache(size_t capacity) : capacity_(capacity) {}

  // Takes the report out of the cache (null when absent); the caller puts it
  // back with Put when done, so that one report is never used by two threads.
  std::unique_ptr<poplar::PreparedReport> Take(const dap::TaskId& task_id,
                                               const dap::ReportId& report_id);
  void Put(const dap::TaskId& task_id, const dap::ReportId& report_id,
           std::unique_ptr<poplar::PreparedReport> report);
  // Drops every report of a task.
  void EraseTask(const dap::TaskId& task_id);
  size_t size() const;

 private:
  using Key = std::pair<dap::TaskId, dap::ReportId>;
  struct Entry {
    std::unique_ptr<poplar::PreparedReport> report;
    std::list<Key>::iterator position;
  };
  size_t capacity_;
  mutable std::mutex mutex_;
  std::map<Key, Entry> entries_;
  std::list<Key> recency_;  // Most recently used first.
};

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_REPORT_CACHE_H_
