// The SQLite datastore: one database file per aggregator, in WAL mode, with
// a busy timeout and versioned schema migrations applied at open.
//
// Durability: WAL with synchronous=NORMAL survives the death of the process
// at any moment (kill -9 included): a committed transaction is in the WAL
// file before Run returns. Only an operating-system crash or a power loss
// can undo the last transactions; operators who need that guarantee set
// `synchronous_full` (SqliteOptions; the aggregator's configuration field
// of the same name). A file system where WAL cannot be had is refused.
//
// Concurrency: one connection writes, and its transactions are serialised
// by a mutex (SQLite has one writer at a time anyway); Read's transactions
// run on connections of their own (up to SqliteOptions::readers), each on a
// snapshot, beside the writer's; another connection only copies the WAL
// into the database file, on a thread of its own, while transactions go on.
// Several processes must not share one file: each aggregator owns its
// database, and holds an exclusive lock on "<database>.lock" while it has it
// open, so that a second one (a restart while the first still drains, a
// mistake) is refused instead of driving the same jobs.
#ifndef CANOPY_AGGREGATOR_SQLITE_DATASTORE_H_
#define CANOPY_AGGREGATOR_SQLITE_DATASTORE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "aggregator/datastore.h"
#include "crypto/error.h"

namespace canopy::aggregator {

struct SqliteOptions {
  // Path of the database file; ":memory:" for a private in-memory database
  // (tests).
  std::string path;
  // Milliseconds to wait for a lock held by another connection.
  int busy_timeout_ms = 5000;
  // synchronous=FULL instead of NORMAL (see above).
  bool synchronous_full = false;
  // The schema version to migrate a new or older file to; 0 means this
  // build's (kSchemaVersion). Only tests of the migrations set it: the
  // datastore's methods expect the latest schema.
  int schema_version = 0;
  // The WAL's size in bytes at which a checkpoint copies it into the
  // database file, on a thread of its own (see internal/wal_checkpointer.h);
  // rounded down to whole pages of the file (one at least). Must be at
  // least 1.
  int64_t checkpoint_bytes = int64_t{64} << 20;
  // The size of a database page in bytes, for a file created now: a power of
  // two from 512 to 65536. A file keeps the page size it was created with
  // (SQLite cannot change it in WAL mode). 16 KiB, not SQLite's 4 KiB: a
  // stored report of a 256-bit Poplar1 task (17 KB) then spans two pages
  // instead of five, and a job's record of thousands of reports a quarter
  // of the pages (see docs/PERFORMANCE.md).
  int page_size = 16384;
  // Connections for Datastore::Read, opened as needed: reads that run beside
  // the writer's transactions. 0: Read runs as Run. A database without a
  // file has none.
  int readers = 4;
};

// The schema version this build writes. Opening a database with a newer
// version is refused.
inline constexpr int kSchemaVersion = 7;

// Opens (creating if needed) and migrates the database. Errors: kIoError
// naming the path when it cannot be opened or migrated, or when another
// process (or datastore) has it open; kUnsupported when the file's schema is
// newer than this build's.
Result<std::unique_ptr<Datastore>> OpenSqliteDatastore(const SqliteOptions& options);

namespace internal {
// The SQL of Transaction::ReportsInBatch: a batch by time range or by key
// (`by_batch_key`), from its start or after an upload position (`after`).
// Exposed for the tests of its query plan.
const char* ReportsInBatchQuery(bool by_batch_key, bool after);

// The SQL of Transaction::DeleteExpired: reports of a task (?1) older than a
// time (?2), then finished jobs created before a time (?2; report
// aggregations first, which hang off their jobs). Exposed for the tests of
// their query plans.
inline constexpr const char* kDeleteExpiredReports[] = {
    "DELETE FROM client_reports WHERE task_id = ?1 AND time < ?2",
    "DELETE FROM held_reports WHERE task_id = ?1 AND time < ?2",
};
inline constexpr const char* kDeleteOldJobs[] = {
    "DELETE FROM report_aggregations WHERE task_id = ?1 AND job_id IN (SELECT job_id FROM "
    "aggregation_jobs WHERE task_id = ?1 AND created_at < ?2 AND state != 0)",
    "DELETE FROM job_reports WHERE task_id = ?1 AND job_id IN (SELECT job_id FROM "
    "aggregation_jobs WHERE task_id = ?1 AND created_at < ?2 AND state != 0)",
    "DELETE FROM aggregation_jobs WHERE task_id = ?1 AND created_at < ?2 AND state != 0",
    "DELETE FROM collection_jobs WHERE task_id = ?1 AND created_at < ?2 AND state != 0",
};
}  // namespace internal

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_SQLITE_DATASTORE_H_
