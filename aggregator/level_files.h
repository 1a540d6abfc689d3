// Files that hold the per-level data of the reports in the report cache
// (Poplar1: each level's correction words and correlated-randomness shares,
// 12.6 KB a report at 256 bits), so that memory keeps only what a report
// needs between levels: the IDPF node states the next round starts from, the
// key schedules and XOF positions (about 5 KB a report in a walk at four bits
// a round, measured in docs/PERFORMANCE.md, "Level claims in memory, and a
// round's first level of nodes").
//
// Layout: each task has one file per chunk of eight consecutive levels (more
// for strings over 256 bits: at most 32 files a task), and each cached report
// a slot number; a report's records for a chunk sit at slot * (the chunk's
// record size). A round of a walk at a few bits therefore reads one short
// record per report from one file (two when it crosses a chunk), mostly in
// the order the reports were first cached, the order of the jobs. A slot is
// numbered at its first write, and the first writes of consecutive slots are
// gathered into one write per file (reads of those still waiting are served
// from memory); written records are read through read-only maps of the
// files, without a system call per read. A disk error while a mapped page is
// read in ends the process (SIGBUS, without the message a failed read
// prints before it stops the process, see NewSlot): a restart prepares the
// reports again from the datastore. Freed slots are
// reused; a task's files are closed, and their space freed, when its
// last report leaves the cache. The files are unlinked as soon as they are made: nothing remains
// after the process ends, whichever way it ends, and the reports are prepared again from the
// datastore after a restart.
//
// The files are trusted as memory is: no checksums. They hold the levels'
// correlated-randomness shares in the clear (both datastores hold the input
// shares they come from: the helper's held reports, the leader's reports
// opened at upload), unlinked, so they vanish with the process; a freed slot
// is overwritten only when reused.
#ifndef CANOPY_AGGREGATOR_LEVEL_FILES_H_
#define CANOPY_AGGREGATOR_LEVEL_FILES_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>

#include "crypto/error.h"
#include "dap/messages.h"
#include "poplar/vdaf.h"

namespace canopy::aggregator {

class LevelFiles {
 public:
  // Files will be made in `directory`. Errors (kIoError): a file cannot be
  // made there (checked by making one), with the directory named.
  static Result<std::unique_ptr<LevelFiles>> Open(const std::string& directory);

  ~LevelFiles();
  LevelFiles(const LevelFiles&) = delete;
  LevelFiles& operator=(const LevelFiles&) = delete;

  // A slot for one report of `task_id` whose levels have these record sizes
  // (PreparedReport::LevelRecordSizes), numbered at its first write.
  // Destroying the slot frees it. A slot
  // that cannot read back what it wrote (the disk failed under a running
  // aggregator) stops the process: going on would reject good reports for
  // the rest of their walk, and a restart loses nothing. Errors (kIoError): the task's
  // files cannot be made (then, for ten seconds, every call fails the same
  // way without trying again); (kInvalidArgument): no levels.
  Result<std::unique_ptr<poplar::LevelSlot>> NewSlot(const dap::TaskId& task_id,
                                                     std::span<const size_t> record_sizes);

  // Forgets a task's files (its next slot gets new ones); slots still in use
  // keep the old ones open until freed.
  void EraseTask(const dap::TaskId& task_id);

  // Slots in use, bytes the files span, and maps made to read them, over
  // every task.
  struct Usage {
    uint64_t slots = 0;
    uint64_t file_bytes = 0;
    uint64_t maps = 0;
  };
  Usage usage() const;

 private:
  class TaskFiles;
  class Slot;
  explicit LevelFiles(std::string directory) : directory_(std::move(directory)) {}

  static constexpr std::chrono::seconds kRetryAfterFailure{10};

  std::string directory_;
  mutable std::mutex mutex_;
  // The slots own their task's files: a task's files are closed, and their
  // space freed, when its last cached report leaves the cache.
  std::map<dap::TaskId, std::weak_ptr<TaskFiles>> tasks_;
  std::optional<std::pair<std::chrono::steady_clock::time_point, Error>> last_failure_;
};

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_LEVEL_FILES_H_
