// Checkpoints of a SQLite database's write-ahead log, on a thread of their
// own.
//
// SQLite's automatic checkpoint runs inside the commit that crosses its
// threshold: that transaction copies the whole log (64 MiB here) into the
// database file and syncs it, while the datastore's mutex holds every other
// transaction back. During a walk's first round the helper commits
// megabytes of held shares a job, and its checkpoints were 13 % of its
// processor time, all of it spent with every other job waiting.
//
// WalCheckpointer replaces that: a commit that finds the log past the
// threshold only wakes this thread, which copies the log through a
// connection of its own while transactions go on (again, while the writer
// added much meanwhile, up to eight passes; then again with the readers of
// other connections held back, see read_gate.h), syncs the log's newest
// frames itself, then takes the writer's mutex for a last, short pass over
// the frames committed since. A log copied to its end is restarted by the next
// transaction instead of growing, so the log stays near the threshold as
// before.
//
// Durability is SQLite's: a checkpoint never changes what a committed
// transaction wrote, and one cut short (kill -9) is redone from the log.
#ifndef CANOPY_AGGREGATOR_INTERNAL_WAL_CHECKPOINTER_H_
#define CANOPY_AGGREGATOR_INTERNAL_WAL_CHECKPOINTER_H_

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "aggregator/internal/read_gate.h"
#include "crypto/error.h"

struct sqlite3;

namespace canopy::aggregator::internal {

// The SQL that sets a connection's `synchronous` mode: FULL or NORMAL. The
// writer and the checkpoint connection must agree.
inline const char* SynchronousPragma(bool full) {
  return full ? "PRAGMA synchronous = FULL;" : "PRAGMA synchronous = NORMAL;";
}

class WalCheckpointer {
 public:
  // Opens a second connection to the file of `writer`'s main database and
  // starts the thread; null for a database without a file (in memory or
  // temporary), which keeps SQLite's own checkpoints. `writer` is the
  // connection whose commits grow the log (its WAL hook is replaced, which
  // also ends its automatic checkpoints) and `writer_mutex` serialises that
  // connection's transactions. A checkpoint starts once the log holds
  // `threshold_pages` pages. `synchronous_full` mirrors the writer's setting
  // (both sync the log before a checkpoint and the database after it).
  // `read_gate`, when given, is closed during the last pass, so that no
  // reader on another connection keeps an older snapshot of the log then
  // (see read_gate.h). Errors: kIoError naming the file when the second connection cannot be
  // opened; kInternal when the thread cannot start.
  static Result<std::unique_ptr<WalCheckpointer>> Start(sqlite3* writer, std::mutex& writer_mutex,
                                                        int threshold_pages, bool synchronous_full,
                                                        ReadGate* read_gate = nullptr);

  // Stops the thread (a checkpoint under way finishes first), gives the
  // writer its automatic checkpoints back and closes the second connection.
  // Must not run with the writer's mutex held: it takes it, and so may the
  // checkpoint it waits for.
  ~WalCheckpointer();

  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // How many checkpoints this thread has completed, the log copied to its
  // end (for tests).
  uint64_t completed() const { return completed_.load(); }
  // How many checkpoints have finished their passes without the writer's
  // mutex (for tests).
  uint64_t unlocked_passes_done() const { return unlocked_passes_done_.load(); }

 private:
  WalCheckpointer(sqlite3* writer, std::mutex& writer_mutex, ReadGate* read_gate, sqlite3* own,
                  std::string path, int threshold_pages);

  // The writer's WAL hook: called after each commit with the log's size.
  static int OnCommit(void* self, sqlite3* db, const char* schema, int pages) noexcept;

  void Loop();
  // One checkpoint: most of the log concurrently, the rest under the mutex.
  void Checkpoint();
  // Passes of PASSIVE checkpoints without the writer's mutex, until at most
  // LockedPassPages() are left, a pass copies nothing new (`stalled`: a
  // reader's older snapshot holds the rest), or kMaxUnlockedPasses.
  // `copied_frames` comes in as the last pass's count.
  struct Passes {
    int rc = 0;  // SQLite's code of the last pass.
    bool stalled = false;
  };
  Passes CopyWithoutTheWriter(int& log_frames, int& copied_frames);
  // Passes without the mutex stop once at most this many pages are left.
  int LockedPassPages() const { return std::max(1, threshold_pages_ / 32); }
  static constexpr int kMaxUnlockedPasses = 8;
  // Syncs the log file to disk, through a descriptor of this object's own.
  void SyncLog() const;
  // Says once, until a checkpoint completes again, why the log keeps growing.
  void ReportProblem(const std::string& what);

  sqlite3* const writer_;
  std::mutex& writer_mutex_;
  ReadGate* const read_gate_;
  sqlite3* const own_;
  const std::string path_;
  const int threshold_pages_;

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  bool requested_ = false;
  bool stopping_ = false;
  std::atomic<uint64_t> completed_{0};
  std::atomic<uint64_t> unlocked_passes_done_{0};
  bool problem_logged_ = false;
  std::thread thread_;
};

}  // namespace canopy::aggregator::internal

#endif  // CANOPY_AGGREGATOR_INTERNAL_WAL_CHECKPOINTER_H_
