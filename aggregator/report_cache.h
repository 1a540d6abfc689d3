// Reports prepared by the VDAF (decoded shares, and for Poplar1 the IDPF node
// states, fixed AES keys and XOF positions of the last level), kept in memory
// across the levels of a walk so that each level continues from the last
// instead of starting from the HPKE ciphertext (docs/multi-level-collection.md,
// rule 8). Bounded: the least recently used report is evicted first; an
// evicted report is prepared again from the datastore's held share.
#ifndef CANOPY_AGGREGATOR_REPORT_CACHE_H_
#define CANOPY_AGGREGATOR_REPORT_CACHE_H_

#include <memory>
#include <utility>

#include "aggregator/internal/lru_cache.h"
#include "dap/messages.h"
#include "poplar/vdaf.h"

namespace canopy::aggregator {

class ReportCache {
 public:
  explicit ReportCache(size_t capacity) : cache_(capacity) {}

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
  // Keyed by report first: the ordered map compares keys at every step of a
  // lookup, and with the task first each comparison read the 32 bytes that
  // all of a walk's reports share before reaching the report ID.
  internal::LruCache<std::pair<dap::ReportId, dap::TaskId>, poplar::PreparedReport> cache_;
};

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_REPORT_CACHE_H_
