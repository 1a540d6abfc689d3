#include "aggregator/internal/wal_checkpointer.h"

#include <sqlite3.h>

#include <iostream>
#include <utility>

namespace canopy::aggregator::internal {

Result<std::unique_ptr<WalCheckpointer>> WalCheckpointer::Start(sqlite3* writer,
                                                                std::mutex& writer_mutex,
                                                                const std::string& path,
                                                                int threshold_pages,
                                                                bool synchronous_full) {
  sqlite3* own = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  const char* pragma =
      synchronous_full ? "PRAGMA synchronous = FULL;" : "PRAGMA synchronous = NORMAL;";
  if (sqlite3_open_v2(path.c_str(), &own, flags, nullptr) != SQLITE_OK ||
      sqlite3_exec(own, pragma, nullptr, nullptr, nullptr) != SQLITE_OK) {
    std::string message = own != nullptr ? sqlite3_errmsg(own) : "out of memory";
    sqlite3_close_v2(own);
    return MakeError(ErrorCode::kIoError,
                     "database " + path + ": checkpoint connection: " + message);
  }
  std::unique_ptr<WalCheckpointer> checkpointer(
      new WalCheckpointer(writer, writer_mutex, own, path, threshold_pages));
  // The hook goes in under the writer's mutex: no commit is under way.
  std::lock_guard lock(writer_mutex);
  sqlite3_wal_hook(writer, &WalCheckpointer::OnCommit, checkpointer.get());
  return checkpointer;
}

WalCheckpointer::WalCheckpointer(sqlite3* writer, std::mutex& writer_mutex, sqlite3* own,
                                 std::string path, int threshold_pages)
    : writer_(writer),
      writer_mutex_(writer_mutex),
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

int WalCheckpointer::OnCommit(void* self, sqlite3*, const char*, int pages) {
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

void WalCheckpointer::Checkpoint() {
  // PASSIVE copies every frame it can without waiting for anyone: with the
  // writer's transactions going on, all but the ones committed meanwhile.
  int rc = sqlite3_wal_checkpoint_v2(own_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  if (rc == SQLITE_OK) {
    // Those few, with the writer held back: the log is then copied to its
    // end, and the next transaction writes it again from its start.
    std::lock_guard lock(writer_mutex_);
    rc = sqlite3_wal_checkpoint_v2(own_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  }
  if (rc == SQLITE_OK) {
    completed_.fetch_add(1);
    failure_logged_ = false;
  } else if (!failure_logged_) {
    // The log keeps growing until a later checkpoint succeeds: said once,
    // not at every commit.
    std::cerr << "canopy-aggregator: checkpoint of " << path_ << " failed: " << sqlite3_errmsg(own_)
              << "\n";
    failure_logged_ = true;
  }
}

}  // namespace canopy::aggregator::internal
