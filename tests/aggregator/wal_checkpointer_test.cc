// The WAL's checkpoints on a thread of their own: they copy the log while the
// writer's mutex is held elsewhere, finish under it, and hand the writer its
// automatic checkpoints back when they stop.
#include "aggregator/internal/wal_checkpointer.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tests/testing/eventually.h"
#include "tests/testing/temp_folder.h"

namespace canopy::aggregator::internal {
namespace {

using canopy::testing::EventuallyTrue;

class WalCheckpointerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = canopy::testing::MakeTempFolder("canopy-checkpointer");
    path_ = folder_ + "/test.sqlite";
    ASSERT_EQ(sqlite3_open(path_.c_str(), &writer_), SQLITE_OK);
    Exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; CREATE TABLE t(b BLOB)");
  }
  void TearDown() override {
    sqlite3_close(writer_);
    std::filesystem::remove_all(folder_);
  }

  void Exec(const char* sql) {
    ASSERT_EQ(sqlite3_exec(writer_, sql, nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(writer_);
  }
  // One transaction of 64 KiB: 16 pages of log.
  void WriteOneTransaction() { Exec("INSERT INTO t VALUES (randomblob(65536))"); }

  uintmax_t DatabaseBytes() const { return std::filesystem::file_size(path_); }
  uintmax_t LogBytes() const { return std::filesystem::file_size(path_ + "-wal"); }

  std::string folder_;
  std::string path_;
  sqlite3* writer_ = nullptr;
  std::mutex writer_mutex_;
};

TEST_F(WalCheckpointerTest, CopiesTheLogWhileTheWriterIsHeldAndFinishesAfter) {
  auto checkpointer = WalCheckpointer::Start(writer_, writer_mutex_, 4, false);
  ASSERT_TRUE(checkpointer) << checkpointer.error().ToString();
  const uintmax_t before = DatabaseBytes();
  {
    // The commit only wakes the thread; the copy happens while this test
    // still holds the writer's mutex, so it is not the commit's.
    std::lock_guard held(writer_mutex_);
    WriteOneTransaction();
    EXPECT_TRUE(EventuallyTrue([&] { return (*checkpointer)->unlocked_passes_done() == 1; }));
    EXPECT_GE(DatabaseBytes(), before + 65536);
    // The last pass waits for the mutex.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ((*checkpointer)->completed(), 0u);
  }
  EXPECT_TRUE(EventuallyTrue([&] { return (*checkpointer)->completed() == 1; }));
}

TEST_F(WalCheckpointerTest, ALogCopiedToItsEndIsWrittenAgainFromItsStart) {
  auto checkpointer = WalCheckpointer::Start(writer_, writer_mutex_, 4, false);
  ASSERT_TRUE(checkpointer) << checkpointer.error().ToString();
  for (uint64_t i = 1; i <= 20; ++i) {
    {
      std::lock_guard held(writer_mutex_);
      WriteOneTransaction();
    }
    ASSERT_TRUE(EventuallyTrue([&] { return (*checkpointer)->completed() >= i; }));
  }
  // Twenty transactions of 64 KiB went through a log that never held more
  // than about one of them.
  EXPECT_LT(LogBytes(), 4 * 65536u);
  EXPECT_GE(DatabaseBytes(), 20 * 65536u);
}

TEST_F(WalCheckpointerTest, TheWriterCheckpointsItselfAgainOnceItStops) {
  Exec("PRAGMA wal_autocheckpoint = 1000000");
  {
    auto checkpointer = WalCheckpointer::Start(writer_, writer_mutex_, 4, false);
    ASSERT_TRUE(checkpointer) << checkpointer.error().ToString();
  }
  // Without the thread, the commit that crosses 4 pages copies the log
  // itself, before it returns.
  const uintmax_t before = DatabaseBytes();
  WriteOneTransaction();
  EXPECT_GE(DatabaseBytes(), before + 65536);
}

TEST_F(WalCheckpointerTest, RefusesADatabaseWhoseFileIsGone) {
  std::filesystem::remove(path_);
  auto refused = WalCheckpointer::Start(writer_, writer_mutex_, 4, false);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kIoError);
  EXPECT_NE(refused.error().message().find("test.sqlite"), std::string::npos);
}

// The last pass waits for readers under way (another connection reading an
// older snapshot would keep frames in the log), without holding the writer
// back meanwhile.
TEST_F(WalCheckpointerTest, TheLastPassWaitsForReadersUnderWay) {
  ReadGate gate;
  auto checkpointer = WalCheckpointer::Start(writer_, writer_mutex_, 4, false, &gate);
  ASSERT_TRUE(checkpointer) << checkpointer.error().ToString();
  {
    ReadGate::Reading reading(gate);
    {
      std::lock_guard held(writer_mutex_);
      WriteOneTransaction();
    }
    EXPECT_TRUE(EventuallyTrue([&] { return (*checkpointer)->unlocked_passes_done() == 1; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ((*checkpointer)->completed(), 0u);
    // The writer is not held back while the pass waits for the reader.
    ASSERT_TRUE(EventuallyTrue([&] {
      if (!writer_mutex_.try_lock()) return false;
      writer_mutex_.unlock();
      return true;
    }));
  }
  EXPECT_TRUE(EventuallyTrue([&] { return (*checkpointer)->completed() == 1; }));
}

// A reader on another connection keeps the frames after its snapshot in the
// log, so the passes stop making progress: the checkpoint then waits for it
// to leave and copies the log without the writer's mutex, as before.
TEST_F(WalCheckpointerTest, AReaderOnAnOlderSnapshotIsWaitedForAndTheCopyGoesOnWithoutTheWriter) {
  ReadGate gate;
  auto checkpointer = WalCheckpointer::Start(writer_, writer_mutex_, 4, false, &gate);
  ASSERT_TRUE(checkpointer) << checkpointer.error().ToString();
  sqlite3* reader = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &reader), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM t;", nullptr, nullptr, nullptr),
            SQLITE_OK);
  auto reading = std::make_unique<ReadGate::Reading>(gate);
  const uintmax_t before = DatabaseBytes();
  {
    std::lock_guard held(writer_mutex_);
    WriteOneTransaction();
    EXPECT_TRUE(EventuallyTrue([&] { return (*checkpointer)->unlocked_passes_done() == 1; }));
    EXPECT_LT(DatabaseBytes(), before + 65536);  // Nothing past the reader's snapshot.
    ASSERT_EQ(sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
    reading.reset();
    // Copied while this test still holds the writer's mutex.
    EXPECT_TRUE(EventuallyTrue([&] { return DatabaseBytes() >= before + 65536; }));
    EXPECT_EQ((*checkpointer)->completed(), 0u);
  }
  EXPECT_TRUE(EventuallyTrue([&] { return (*checkpointer)->completed() == 1; }));
  sqlite3_close(reader);
}

// A closed gate holds new readers back until it opens, and closing waits for
// the readers already through.
TEST(ReadGate, ClosingWaitsForReadersAndHoldsNewOnesBack) {
  ReadGate gate;
  std::atomic<bool> closed{false};
  std::atomic<bool> second_reader_trying{false};
  std::atomic<bool> second_reader_in{false};
  std::thread closer;
  {
    ReadGate::Reading first(gate);
    closer = std::thread([&] {
      ReadGate::Closed held(gate);
      closed = true;
      // The second reader is at the gate: it stays out while it is closed.
      EXPECT_TRUE(EventuallyTrue([&] { return second_reader_trying.load(); }));
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      EXPECT_FALSE(second_reader_in.load());
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_FALSE(closed.load());  // The first reader is still through.
  }
  EXPECT_TRUE(EventuallyTrue([&] { return closed.load(); }));
  std::thread second([&] {
    second_reader_trying = true;
    ReadGate::Reading reading(gate);
    second_reader_in = true;
  });
  closer.join();
  second.join();
  EXPECT_TRUE(second_reader_in.load());
}

TEST(WalCheckpointer, LeavesADatabaseInMemoryToSqlite) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  std::mutex mutex;
  auto started = WalCheckpointer::Start(db, mutex, 4, false);
  ASSERT_TRUE(started) << started.error().ToString();
  EXPECT_EQ(*started, nullptr);
  sqlite3_close(db);
}

}  // namespace
}  // namespace canopy::aggregator::internal
