// Reports prepared by the VDAF (decoded shares, and for Poplar1 the IDPF node
// states the next level starts from, fixed AES keys and XOF positions), kept in memory
// across the levels of a walk so that each level continues from the last
// instead of starting from the HPKE ciphertext (docs/multi-level-collection.md,
// rule 8). Bounded: about the least recently used report is evicted first; an
// evicted report is prepared again from the datastore: the helper's held
// share, or the leader's stored report (its share opened at upload).
//
// With LevelFiles, a report's per-level data (Poplar1: 12.6 KB at 256 bits)
// waits in files while the report is in the cache, and a verification reads
// back only the levels it needs.
#ifndef CANOPY_AGGREGATOR_REPORT_CACHE_H_
#define CANOPY_AGGREGATOR_REPORT_CACHE_H_

#include <atomic>
#include <memory>
#include <span>
#include <utility>

#include "aggregator/internal/lru_cache.h"
#include "aggregator/level_files.h"
#include "dap/messages.h"
#include "poplar/vdaf.h"

namespace canopy::aggregator {

class ReportCache {
 public:
  // `level_files` may be null: reports then keep every level in memory.
  explicit ReportCache(size_t capacity, std::shared_ptr<LevelFiles> level_files = nullptr);
  ~ReportCache();

  // Takes the report out of the cache (null when absent); the caller puts it
  // back with Put when done, so that one report is never used by two threads.
  std::unique_ptr<poplar::PreparedReport> Take(const dap::TaskId& task_id,
                                               const dap::ReportId& report_id);
  // Stores a report. Its per-level data goes to the level files the first
  // time (a report whose levels cannot be written keeps them in memory), and
  // the levels a verification read back are dropped.
  void Put(const dap::TaskId& task_id, const dap::ReportId& report_id,
           std::unique_ptr<poplar::PreparedReport> report);
  // Take and Put for many reports of one task at once, as a job has them:
  // out[i] for report_ids[i]; reports[i] stored under report_ids[i] (null
  // entries skipped, the others moved from). One lock for all, and each
  // lookup's memory is fetched a few reports ahead, so that at a million
  // cached reports a job's lookups wait for memory together.
  void TakeMany(const dap::TaskId& task_id, std::span<const dap::ReportId> report_ids,
                std::span<std::unique_ptr<poplar::PreparedReport>> out);
  void PutMany(const dap::TaskId& task_id, std::span<const dap::ReportId> report_ids,
               std::span<std::unique_ptr<poplar::PreparedReport>> reports);
  // Drops every report of a task.
  void EraseTask(const dap::TaskId& task_id);
  size_t size() const;
  // The level files, or null.
  const LevelFiles* level_files() const { return level_files_.get(); }

 private:
  // Moves the report's levels to a slot of the task's files, or drops those
  // read back from its slot.
  void ParkLevels(const dap::TaskId& task_id, poplar::PreparedReport& report);

  const size_t capacity_;
  std::shared_ptr<LevelFiles> level_files_;
  std::atomic<bool> write_failure_logged_{false};
  // Keyed by report first: the ordered map compares keys at every step of a
  // lookup, and with the task first each comparison read the 32 bytes that
  // all of a walk's reports share before reaching the report ID.
  using Key = std::pair<dap::ReportId, dap::TaskId>;
  internal::LruCache<Key, poplar::PreparedReport> cache_;
};

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_REPORT_CACHE_H_
