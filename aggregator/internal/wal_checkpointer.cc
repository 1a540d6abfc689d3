#include "aggregator/internal/wal_checkpointer.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <iostream>
#include <optional>
#include <system_error>
#include <utility>

namespace canopy::aggregator::internal {

Result<std::unique_ptr<WalCheckpointer>> WalCheckpointer::Start(sqlite3* writer,
                                                                std::mutex& writer_mutex,
                                                                int threshold_pages,
                                                                bool synchronous_full,
                                                                ReadGate* read_gate) {
  // The file SQLite resolved (a URI or a relative path included); empty for
  // a database in memory or a temporary one.
  const char* file = sqlite3_db_filename(writer, "main");
  if (file == nullptr || file[0] == '\0') return nullptr;
  const std::string path = file;
  sqlite3* own = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
  if (sqlite3_open_v2(path.c_str(), &own, flags, nullptr) != SQLITE_OK ||
      sqlite3_exec(own, SynchronousPragma(synchronous_full), nullptr, nullptr, nullptr) !=
          SQLITE_OK) {
    std::string message = own != nullptr ? sqlite3_errmsg(own) : "out of memory";
    sqlite3_close_v2(own);
    return MakeError(ErrorCode::kIoError,
                     "database " + path + ": checkpoint connection: " + message);
  }
  std::unique_ptr<WalCheckpointer> checkpointer;
  try {
    checkpointer.reset(
        new WalCheckpointer(writer, writer_mutex, read_gate, own, path, threshold_pages));
  } catch (const std::system_error& error) {
    sqlite3_close_v2(own);
    return MakeError(ErrorCode::kInternal,
                     "database " + path + ": checkpoint thread: " + error.what());
  }
  // The hook goes in under the writer's mutex: no commit is under way.
  std::lock_guard lock(writer_mutex);
  sqlite3_wal_hook(writer, &WalCheckpointer::OnCommit, checkpointer.get());
  return checkpointer;
}

WalCheckpointer::WalCheckpointer(sqlite3* writer, std::mutex& writer_mutex, ReadGate* read_gate,
                                 sqlite3* own, std::string path, int threshold_pages)
    : writer_(writer),
      writer_mutex_(writer_mutex),
      read_gate_(read_gate),
      own_(own),
      path_(std::move(path)),
      threshold_pages_(threshold_pages),
      thread_([this] { Loop(); }) {}

WalCheckpointer::~WalCheckpointer() {
  {
    std::lock_guard lock(writer_mutex_);
    // Replaces this object's hook with SQLite's own automatic checkpoints.
    sqlite3_wal_autocheckpoint(writer_, threshold_pages_);
  }
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  sqlite3_close_v2(own_);
}

int WalCheckpointer::OnCommit(void* self, sqlite3*, const char*, int pages) noexcept {
  auto* checkpointer = static_cast<WalCheckpointer*>(self);
  if (pages >= checkpointer->threshold_pages_) {
    {
      std::lock_guard lock(checkpointer->wake_mutex_);
      checkpointer->requested_ = true;
    }
    checkpointer->wake_.notify_one();
  }
  return SQLITE_OK;
}

void WalCheckpointer::Loop() {
  for (;;) {
    {
      std::unique_lock lock(wake_mutex_);
      wake_.wait(lock, [this] { return requested_ || stopping_; });
      if (stopping_) return;
      requested_ = false;
    }
    Checkpoint();
  }
}

WalCheckpointer::Passes WalCheckpointer::CopyWithoutTheWriter(int& log_frames, int& copied_frames) {
  Passes passes;
  for (int pass = 0; pass < kMaxUnlockedPasses; ++pass) {
    const int copied_before = copied_frames;
    passes.rc = sqlite3_wal_checkpoint_v2(own_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                          &copied_frames);
    if (passes.rc != SQLITE_OK || log_frames - copied_frames <= LockedPassPages()) break;
    // No progress: a reader's older snapshot keeps the frames after it.
    passes.stalled = pass > 0 && copied_frames <= copied_before;
    if (passes.stalled) break;
  }
  return passes;
}

void WalCheckpointer::Checkpoint() {
  // PASSIVE copies every frame it can without waiting for anyone: with the
  // writer's transactions going on, all but the ones committed meanwhile. A
  // busy writer may have added much during a pass, so passes go on until
  // little is left; only that little is copied with the writer held back.
  int log_frames = 0;
  int copied_frames = 0;
  Passes passes = CopyWithoutTheWriter(log_frames, copied_frames);
  int rc = passes.rc;
  unlocked_passes_done_.fetch_add(1);
  std::optional<ReadGate::Closed> readers_held;
  if (rc == SQLITE_OK && read_gate_ != nullptr) {
    // Readers on other connections are held back for the rest (one reading
    // an older snapshot would keep its frames in the log). When one kept the
    // passes above from copying past its snapshot, the passes go on without
    // the readers while the writer still goes on; otherwise the readers wait
    // only for the last pass.
    readers_held.emplace(*read_gate_);
    if (passes.stalled) rc = CopyWithoutTheWriter(log_frames, copied_frames).rc;
  }
  if (rc == SQLITE_OK) {
    // A pass syncs the log before it copies it. Synced here, the log's
    // frames committed since the last pass reach the disk while the writer
    // goes on, and the locked pass's own sync has little left to write:
    // under a busy disk the two syncs of that pass took a fifth of a second,
    // all of it with every transaction waiting.
    SyncLog();
    // The rest, with the writer held back: the log is then copied to its
    // end, and the next transaction writes it again from its start.
    std::lock_guard lock(writer_mutex_);
    rc = sqlite3_wal_checkpoint_v2(own_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                   &copied_frames);
  }
  if (rc != SQLITE_OK) {
    ReportProblem(std::string("failed: ") + sqlite3_errmsg(own_) + " (" + sqlite3_errstr(rc) + ")");
  } else if (copied_frames != log_frames) {
    // Another connection (a backup, a shell) reads an older snapshot: the
    // frames it may still need stay, as with SQLite's own checkpoints.
    ReportProblem("left " + std::to_string(log_frames - copied_frames) + " of " +
                  std::to_string(log_frames) +
                  " pages in the log: another connection reads an older snapshot");
  } else {
    completed_.fetch_add(1);
    problem_logged_ = false;
  }
}

void WalCheckpointer::SyncLog() const {
  // Another descriptor of the same file: on Linux, fdatasync writes the
  // file's dirty pages whichever descriptor wrote them, and a write-back
  // error is seen by every descriptor open at the time (since Linux 4.13),
  // so one ignored here still fails the checkpoint's own sync of the log,
  // which is reported.
  const int fd = open((path_ + "-wal").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  fdatasync(fd);
  close(fd);
}

void WalCheckpointer::ReportProblem(const std::string& what) {
  // The log keeps growing until a later checkpoint completes: said once, not
  // at every commit.
  if (problem_logged_) return;
  std::cerr << "canopy-aggregator: checkpoint of " << path_ << " " << what << "\n";
  problem_logged_ = true;
}

}  // namespace canopy::aggregator::internal
