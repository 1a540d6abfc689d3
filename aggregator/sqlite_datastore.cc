#include "aggregator/sqlite_datastore.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "aggregator/internal/common.h"
#include "aggregator/internal/wal_checkpointer.h"

namespace canopy::aggregator {
namespace {

// Each migration takes the schema from version i to i + 1. Never edit one
// that has shipped: add another.
constexpr const char* kMigrations[] = {
    // Version 1.
    R"sql(
CREATE TABLE tasks (
  task_id BLOB PRIMARY KEY,
  definition BLOB NOT NULL,
  source TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE client_reports (
  task_id BLOB NOT NULL,
  report_id BLOB NOT NULL,
  time INTEGER NOT NULL,
  encoded_report BLOB NOT NULL,
  batch_key BLOB NOT NULL DEFAULT x'',
  seq INTEGER NOT NULL,
  PRIMARY KEY (task_id, report_id)
);
CREATE INDEX client_reports_by_time ON client_reports (task_id, time);
CREATE INDEX client_reports_by_seq ON client_reports (task_id, seq);
CREATE INDEX client_reports_by_batch ON client_reports (task_id, batch_key, seq);

CREATE TABLE held_reports (
  task_id BLOB NOT NULL,
  report_id BLOB NOT NULL,
  time INTEGER NOT NULL,
  bucket_key BLOB NOT NULL,
  public_share BLOB NOT NULL,
  input_share BLOB NOT NULL,
  PRIMARY KEY (task_id, report_id)
) WITHOUT ROWID;

CREATE TABLE aggregated_reports (
  task_id BLOB NOT NULL,
  report_id BLOB NOT NULL,
  agg_param BLOB NOT NULL,
  PRIMARY KEY (task_id, report_id, agg_param)
) WITHOUT ROWID;

CREATE TABLE rejected_reports (
  task_id BLOB NOT NULL,
  report_id BLOB NOT NULL,
  error INTEGER NOT NULL,
  PRIMARY KEY (task_id, report_id)
) WITHOUT ROWID;

CREATE TABLE aggregation_jobs (
  task_id BLOB NOT NULL,
  job_id BLOB NOT NULL,
  agg_param BLOB NOT NULL,
  batch_key BLOB NOT NULL,
  state INTEGER NOT NULL,
  step INTEGER NOT NULL,
  helper_url TEXT NOT NULL,
  held_reports INTEGER NOT NULL,
  last_request_hash BLOB NOT NULL,
  last_response BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  lease_expiry_ms INTEGER NOT NULL DEFAULT 0,
  lease_attempts INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (task_id, job_id)
) WITHOUT ROWID;
CREATE INDEX aggregation_jobs_by_state ON aggregation_jobs (state, lease_expiry_ms);

CREATE TABLE report_aggregations (
  task_id BLOB NOT NULL,
  job_id BLOB NOT NULL,
  ord INTEGER NOT NULL,
  report_id BLOB NOT NULL,
  time INTEGER NOT NULL,
  bucket_key BLOB NOT NULL,
  state INTEGER NOT NULL,
  error INTEGER NOT NULL,
  verify_state BLOB NOT NULL,
  last_message BLOB NOT NULL,
  agg_param BLOB NOT NULL,
  PRIMARY KEY (task_id, job_id, ord)
) WITHOUT ROWID;
CREATE INDEX report_aggregations_by_report
  ON report_aggregations (task_id, report_id, agg_param);

CREATE TABLE batch_aggregations (
  task_id BLOB NOT NULL,
  bucket_key BLOB NOT NULL,
  agg_param BLOB NOT NULL,
  aggregate BLOB NOT NULL,
  report_count INTEGER NOT NULL,
  checksum BLOB NOT NULL,
  min_time INTEGER NOT NULL,
  max_time INTEGER NOT NULL,
  PRIMARY KEY (task_id, agg_param, bucket_key)
) WITHOUT ROWID;

CREATE TABLE buckets (
  task_id BLOB NOT NULL,
  bucket_key BLOB NOT NULL,
  collected INTEGER NOT NULL,
  PRIMARY KEY (task_id, bucket_key)
) WITHOUT ROWID;

CREATE TABLE bucket_agg_params (
  task_id BLOB NOT NULL,
  bucket_key BLOB NOT NULL,
  seq INTEGER NOT NULL,
  agg_param BLOB NOT NULL,
  PRIMARY KEY (task_id, bucket_key, seq)
) WITHOUT ROWID;

CREATE TABLE collection_jobs (
  task_id BLOB NOT NULL,
  job_id BLOB NOT NULL,
  request BLOB NOT NULL,
  agg_param BLOB NOT NULL,
  bucket_keys BLOB NOT NULL,
  state INTEGER NOT NULL,
  response BLOB NOT NULL,
  error TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  lease_expiry_ms INTEGER NOT NULL DEFAULT 0,
  lease_attempts INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (task_id, job_id)
) WITHOUT ROWID;
CREATE INDEX collection_jobs_by_state ON collection_jobs (state, lease_expiry_ms);

CREATE TABLE walks (
  task_id BLOB NOT NULL,
  walk_id BLOB NOT NULL,
  batch_key BLOB NOT NULL,
  PRIMARY KEY (task_id, walk_id)
) WITHOUT ROWID;

CREATE TABLE aggregate_shares (
  task_id BLOB NOT NULL,
  share_id BLOB NOT NULL,
  request_hash BLOB NOT NULL,
  response BLOB NOT NULL,
  PRIMARY KEY (task_id, share_id)
) WITHOUT ROWID;
)sql",
    // Version 2: rows per report name their aggregation parameter by its
    // SHA-256 digest (canopy_sha256, registered on every connection). A
    // Poplar1 parameter deep in a walk is kilobytes, and it was copied into
    // two rows per report at every level.
    R"sql(
UPDATE report_aggregations SET agg_param = canopy_sha256(agg_param);
UPDATE aggregated_reports SET agg_param = canopy_sha256(agg_param);
)sql",
    // Version 3: tables whose rows hold kilobytes become rowid tables. In a
    // WITHOUT ROWID table the whole row is the B-tree key, so a row larger
    // than a page spills into overflow pages and every comparison during a
    // lookup copies it back together: a walk's report aggregations (an
    // output share each) and its jobs (the parameter and the last answer)
    // made each lookup copy kilobytes. A rowid table keeps the key in a small
    // index of its own.
    R"sql(
CREATE TABLE aggregation_jobs_v3 (
  task_id BLOB NOT NULL,
  job_id BLOB NOT NULL,
  agg_param BLOB NOT NULL,
  batch_key BLOB NOT NULL,
  state INTEGER NOT NULL,
  step INTEGER NOT NULL,
  helper_url TEXT NOT NULL,
  held_reports INTEGER NOT NULL,
  last_request_hash BLOB NOT NULL,
  last_response BLOB NOT NULL,
  created_at INTEGER NOT NULL,
  lease_expiry_ms INTEGER NOT NULL DEFAULT 0,
  lease_attempts INTEGER NOT NULL DEFAULT 0,
  init_request_hash BLOB NOT NULL DEFAULT x'',
  init_response BLOB NOT NULL DEFAULT x'',
  PRIMARY KEY (task_id, job_id)
);
INSERT INTO aggregation_jobs_v3 (task_id, job_id, agg_param, batch_key, state, step, helper_url,
    held_reports, last_request_hash, last_response, created_at, lease_expiry_ms, lease_attempts,
    init_request_hash, init_response)
  SELECT task_id, job_id, agg_param, batch_key, state, step, helper_url, held_reports,
    last_request_hash, last_response, created_at, lease_expiry_ms, lease_attempts,
    CASE WHEN step = 0 THEN last_request_hash ELSE x'' END,
    CASE WHEN step = 0 THEN last_response ELSE x'' END
  FROM aggregation_jobs;
DROP TABLE aggregation_jobs;
ALTER TABLE aggregation_jobs_v3 RENAME TO aggregation_jobs;
CREATE INDEX aggregation_jobs_by_state ON aggregation_jobs (state, lease_expiry_ms);

CREATE TABLE report_aggregations_v3 (
  task_id BLOB NOT NULL,
  job_id BLOB NOT NULL,
  ord INTEGER NOT NULL,
  report_id BLOB NOT NULL,
  time INTEGER NOT NULL,
  bucket_key BLOB NOT NULL,
  state INTEGER NOT NULL,
  error INTEGER NOT NULL,
  verify_state BLOB NOT NULL,
  last_message BLOB NOT NULL,
  agg_param BLOB NOT NULL,
  PRIMARY KEY (task_id, job_id, ord)
);
INSERT INTO report_aggregations_v3 (task_id, job_id, ord, report_id, time, bucket_key, state,
    error, verify_state, last_message, agg_param)
  SELECT task_id, job_id, ord, report_id, time, bucket_key, state, error, verify_state,
    last_message, agg_param
  FROM report_aggregations;
DROP TABLE report_aggregations;
ALTER TABLE report_aggregations_v3 RENAME TO report_aggregations;
CREATE INDEX report_aggregations_by_report
  ON report_aggregations (task_id, report_id, agg_param);

CREATE TABLE held_reports_v3 (
  task_id BLOB NOT NULL,
  report_id BLOB NOT NULL,
  time INTEGER NOT NULL,
  bucket_key BLOB NOT NULL,
  public_share BLOB NOT NULL,
  input_share BLOB NOT NULL,
  PRIMARY KEY (task_id, report_id)
);
INSERT INTO held_reports_v3 (task_id, report_id, time, bucket_key, public_share, input_share)
  SELECT task_id, report_id, time, bucket_key, public_share, input_share FROM held_reports;
DROP TABLE held_reports;
ALTER TABLE held_reports_v3 RENAME TO held_reports;

CREATE TABLE batch_aggregations_v3 (
  task_id BLOB NOT NULL,
  bucket_key BLOB NOT NULL,
  agg_param BLOB NOT NULL,
  aggregate BLOB NOT NULL,
  report_count INTEGER NOT NULL,
  checksum BLOB NOT NULL,
  min_time INTEGER NOT NULL,
  max_time INTEGER NOT NULL,
  PRIMARY KEY (task_id, agg_param, bucket_key)
);
INSERT INTO batch_aggregations_v3 (task_id, bucket_key, agg_param, aggregate, report_count,
    checksum, min_time, max_time)
  SELECT task_id, bucket_key, agg_param, aggregate, report_count, checksum, min_time, max_time
  FROM batch_aggregations;
DROP TABLE batch_aggregations;
ALTER TABLE batch_aggregations_v3 RENAME TO batch_aggregations;

CREATE TABLE collection_jobs_v3 (
  task_id BLOB NOT NULL,
  job_id BLOB NOT NULL,
  request BLOB NOT NULL,
  agg_param BLOB NOT NULL,
  bucket_keys BLOB NOT NULL,
  state INTEGER NOT NULL,
  response BLOB NOT NULL,
  error TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  lease_expiry_ms INTEGER NOT NULL DEFAULT 0,
  lease_attempts INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (task_id, job_id)
);
INSERT INTO collection_jobs_v3 (task_id, job_id, request, agg_param, bucket_keys, state,
    response, error, created_at, lease_expiry_ms, lease_attempts)
  SELECT task_id, job_id, request, agg_param, bucket_keys, state, response, error, created_at,
    lease_expiry_ms, lease_attempts
  FROM collection_jobs;
DROP TABLE collection_jobs;
ALTER TABLE collection_jobs_v3 RENAME TO collection_jobs;
CREATE INDEX collection_jobs_by_state ON collection_jobs (state, lease_expiry_ms);

CREATE TABLE aggregate_shares_v3 (
  task_id BLOB NOT NULL,
  share_id BLOB NOT NULL,
  request_hash BLOB NOT NULL,
  response BLOB NOT NULL,
  PRIMARY KEY (task_id, share_id)
);
INSERT INTO aggregate_shares_v3 (task_id, share_id, request_hash, response)
  SELECT task_id, share_id, request_hash, response FROM aggregate_shares;
DROP TABLE aggregate_shares;
ALTER TABLE aggregate_shares_v3 RENAME TO aggregate_shares;

CREATE TABLE job_reports (
  task_id BLOB NOT NULL,
  job_id BLOB NOT NULL,
  reports BLOB NOT NULL,
  PRIMARY KEY (task_id, job_id)
);

-- The leader now records a report as aggregated with a parameter when it
-- puts the report into a job (the job's rows used to say so): the reports of
-- jobs in progress (states start and waiting) get that record.
INSERT OR IGNORE INTO aggregated_reports (task_id, report_id, agg_param)
  SELECT task_id, report_id, agg_param FROM report_aggregations WHERE state IN (0, 1);

-- aggregated_reports is keyed by parameter first: a walk records every report
-- at every level, and with the report first each record landed on a page of
-- its own (report IDs are random), so a job of 500 reports rewrote 500 pages.
-- Keyed by parameter, a level's records fill pages of their own. Whether a
-- report was aggregated at all is kept apart, written once per report.
CREATE TABLE aggregated_reports_v3 (
  task_id BLOB NOT NULL,
  agg_param BLOB NOT NULL,
  report_id BLOB NOT NULL,
  PRIMARY KEY (task_id, agg_param, report_id)
) WITHOUT ROWID;
INSERT INTO aggregated_reports_v3 (task_id, agg_param, report_id)
  SELECT task_id, agg_param, report_id FROM aggregated_reports;
CREATE TABLE seen_reports (
  task_id BLOB NOT NULL,
  report_id BLOB NOT NULL,
  PRIMARY KEY (task_id, report_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO seen_reports (task_id, report_id)
  SELECT task_id, report_id FROM aggregated_reports;
DROP TABLE aggregated_reports;
ALTER TABLE aggregated_reports_v3 RENAME TO aggregated_reports;
)sql",
    // Version 4: jobs are found by their parameter's digest. Multi-level
    // tasks keep which reports each level took in memory, and after a restart
    // read it back from the records of the level's jobs.
    R"sql(
ALTER TABLE aggregation_jobs ADD COLUMN agg_param_digest BLOB NOT NULL DEFAULT x'';
UPDATE aggregation_jobs SET agg_param_digest = canopy_sha256(agg_param);
CREATE INDEX aggregation_jobs_by_param ON aggregation_jobs (task_id, agg_param_digest);
)sql",
    // Version 5: the indexes that list a batch's reports in upload order hold
    // every column the listings read, so that a listing (once per level of a
    // walk) never reads the reports' rows: kilobytes each, a page per report
    // that a million reports' database cannot keep in memory.
    R"sql(
DROP INDEX client_reports_by_seq;
DROP INDEX client_reports_by_batch;
CREATE INDEX client_reports_by_seq ON client_reports (task_id, seq, time, batch_key, report_id);
CREATE INDEX client_reports_by_batch ON client_reports (task_id, batch_key, seq, time, report_id);
)sql",
    // Version 6: a report's bytes (kilobytes for Poplar1) move to a table of
    // their own, so that client_reports rows are small. Writing a row's
    // batch key rewrote the whole row: choosing the batch of a million
    // reports wrote 20 GB of overflow pages to the write-ahead log, in one
    // transaction. A trigger deletes a report's bytes with its row.
    R"sql(
CREATE TABLE report_bodies (
  id INTEGER PRIMARY KEY,
  encoded_report BLOB NOT NULL
);
CREATE TABLE client_reports_v6 (
  task_id BLOB NOT NULL,
  report_id BLOB NOT NULL,
  time INTEGER NOT NULL,
  batch_key BLOB NOT NULL DEFAULT x'',
  seq INTEGER NOT NULL,
  body INTEGER NOT NULL,
  PRIMARY KEY (task_id, report_id)
);
INSERT INTO report_bodies (id, encoded_report) SELECT rowid, encoded_report FROM client_reports;
INSERT INTO client_reports_v6 (task_id, report_id, time, batch_key, seq, body)
  SELECT task_id, report_id, time, batch_key, seq, rowid FROM client_reports;
DROP TABLE client_reports;
ALTER TABLE client_reports_v6 RENAME TO client_reports;
CREATE INDEX client_reports_by_time ON client_reports (task_id, time);
CREATE INDEX client_reports_by_seq ON client_reports (task_id, seq, time, batch_key, report_id);
CREATE INDEX client_reports_by_batch ON client_reports (task_id, batch_key, seq, time, report_id);
CREATE TRIGGER client_reports_delete_body AFTER DELETE ON client_reports
BEGIN
  DELETE FROM report_bodies WHERE id = old.body;
END;

-- Garbage collection finds expired held shares and old jobs by index: it
-- read every row of both tables (a million reports' held shares are a
-- page each at the helper: 30 to 40 s every five minutes, all else waiting).
CREATE INDEX held_reports_by_time ON held_reports (task_id, time);
CREATE INDEX aggregation_jobs_by_creation ON aggregation_jobs (task_id, created_at);
CREATE INDEX collection_jobs_by_creation ON collection_jobs (task_id, created_at);
)sql",
    // Version 7: the form of a report's bytes (StoredReportForm): the
    // leader opens its input share at upload and stores it opened; rows
    // stored before keep the report as uploaded (0).
    R"sql(
ALTER TABLE report_bodies ADD COLUMN form INTEGER NOT NULL DEFAULT 0;
)sql",
};

static_assert(std::size(kMigrations) == kSchemaVersion);

// SHA-256 of `data`, remembered for the last input per thread: every row of
// a job names the same parameter, and deep in a walk a Poplar1 parameter is
// kilobytes, so hashing it once per report and statement would show.
const Bytes& MemoizedSha256(std::span<const uint8_t> data) {
  thread_local Bytes last_input;
  thread_local Bytes last_digest;
  if (last_digest.empty() || last_input.size() != data.size() ||
      (!data.empty() && std::memcmp(last_input.data(), data.data(), data.size()) != 0)) {
    auto digest = internal::Sha256(data);
    last_digest.assign(digest.begin(), digest.end());
    last_input.assign(data.begin(), data.end());
  }
  return last_digest;
}

// How rows per report name an aggregation parameter (schema version 2).
Bytes AggParamDigest(const Bytes& agg_param) { return MemoizedSha256(agg_param); }

// A job's report aggregations as one record: per report, in the job's
// order, report ID (16 bytes), time (u64), state (u8), error (u8),
// verification key ID (u8), then bucket key (u16 length), verify state, last
// message and init payload (u32 lengths each). Integers are big-endian.
void AppendUint(Bytes& out, uint64_t value, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
    out.push_back(static_cast<uint8_t>(value >> shift));
  }
}

void AppendWithLength(Bytes& out, const Bytes& value, int length_bytes) {
  AppendUint(out, value.size(), length_bytes);
  out.insert(out.end(), value.begin(), value.end());
}

Bytes EncodeJobReports(const std::vector<ReportAggregationRow>& rows) {
  size_t size = 0;
  for (const ReportAggregationRow& row : rows) {
    size += 41 + row.bucket_key.size() + row.verify_state.size() + row.last_message.size() +
            row.init_payload.size();
  }
  Bytes out;
  out.reserve(size);
  for (const ReportAggregationRow& row : rows) {
    out.insert(out.end(), row.report_id.begin(), row.report_id.end());
    AppendUint(out, row.time, 8);
    out.push_back(static_cast<uint8_t>(row.state));
    out.push_back(static_cast<uint8_t>(row.error));
    out.push_back(row.verification_key_id);
    AppendWithLength(out, row.bucket_key, 2);
    AppendWithLength(out, row.verify_state, 4);
    AppendWithLength(out, row.last_message, 4);
    AppendWithLength(out, row.init_payload, 4);
  }
  return out;
}

// Reads what EncodeJobReports wrote; kInternal for anything else.
class JobReportsReader {
 public:
  explicit JobReportsReader(const Bytes& data) : data_(data) {}
  bool AtEnd() const { return offset_ == data_.size(); }
  bool Uint(int bytes, uint64_t& value) {
    if (data_.size() - offset_ < static_cast<size_t>(bytes)) return false;
    value = 0;
    for (int i = 0; i < bytes; ++i) value = (value << 8) | data_[offset_++];
    return true;
  }
  bool Take(size_t size, uint8_t* out) {
    if (data_.size() - offset_ < size) return false;
    std::memcpy(out, data_.data() + offset_, size);
    offset_ += size;
    return true;
  }
  bool WithLength(int length_bytes, Bytes& value) {
    uint64_t size = 0;
    if (!Uint(length_bytes, size) || data_.size() - offset_ < size) return false;
    value.assign(data_.begin() + static_cast<std::ptrdiff_t>(offset_),
                 data_.begin() + static_cast<std::ptrdiff_t>(offset_ + size));
    offset_ += size;
    return true;
  }

 private:
  const Bytes& data_;
  size_t offset_ = 0;
};

Result<std::vector<ReportAggregationRow>> DecodeJobReports(const TaskId& task_id,
                                                           const JobId& job_id, const Bytes& data) {
  std::vector<ReportAggregationRow> rows;
  JobReportsReader reader(data);
  while (!reader.AtEnd()) {
    ReportAggregationRow row;
    row.task_id = task_id;
    row.job_id = job_id;
    row.ord = static_cast<uint32_t>(rows.size());
    uint64_t time = 0, state = 0, error = 0, key_id = 0;
    if (!reader.Take(row.report_id.size(), row.report_id.data()) || !reader.Uint(8, time) ||
        !reader.Uint(1, state) || !reader.Uint(1, error) || !reader.Uint(1, key_id) ||
        !reader.WithLength(2, row.bucket_key) || !reader.WithLength(4, row.verify_state) ||
        !reader.WithLength(4, row.last_message) || !reader.WithLength(4, row.init_payload) ||
        state > static_cast<uint64_t>(ReportAggregationState::kFailed)) {
      return MakeError(ErrorCode::kInternal, "a job's stored report aggregations are malformed");
    }
    row.time = time;
    row.state = static_cast<ReportAggregationState>(state);
    row.error = static_cast<dap::ReportError>(error);
    row.verification_key_id = static_cast<uint8_t>(key_id);
    rows.push_back(std::move(row));
  }
  return rows;
}

// Bucket key lists are stored as concatenated (u16 length || key) records.
Bytes EncodeKeyList(const std::vector<Bytes>& keys) {
  Bytes out;
  for (const Bytes& key : keys) {
    out.push_back(static_cast<uint8_t>(key.size() >> 8));
    out.push_back(static_cast<uint8_t>(key.size()));
    out.insert(out.end(), key.begin(), key.end());
  }
  return out;
}

Result<std::vector<Bytes>> DecodeKeyList(std::span<const uint8_t> bytes) {
  std::vector<Bytes> keys;
  size_t offset = 0;
  while (offset < bytes.size()) {
    if (bytes.size() - offset < 2) return MakeError(ErrorCode::kInternal, "bad bucket key list");
    size_t length = (size_t{bytes[offset]} << 8) | bytes[offset + 1];
    offset += 2;
    if (bytes.size() - offset < length) {
      return MakeError(ErrorCode::kInternal, "bad bucket key list");
    }
    keys.emplace_back(bytes.begin() + offset, bytes.begin() + offset + length);
    offset += length;
  }
  return keys;
}

// A prepared statement with typed binding and reading; finalised on
// destruction. Bind indexes start at 1, column indexes at 0, as in SQLite.
class Statement {
 public:
  // Prepares `sql` for this statement alone.
  Statement(sqlite3* db, const char* sql) : db_(db), owned_(true) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK) stmt_ = nullptr;
  }
  // Uses a statement from a StatementCache, resetting it when done.
  Statement(sqlite3* db, sqlite3_stmt* cached) : db_(db), stmt_(cached), owned_(false) {}
  ~Statement() {
    if (owned_) {
      sqlite3_finalize(stmt_);
    } else if (stmt_ != nullptr) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  bool ok() const { return stmt_ != nullptr; }

  Statement& Bind(int index, std::span<const uint8_t> bytes) {
    // A zero-length blob must still be a blob, not NULL.
    static const uint8_t kEmpty = 0;
    sqlite3_bind_blob(stmt_, index, bytes.empty() ? &kEmpty : bytes.data(),
                      static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // Binds `bytes` without SQLite copying them: for secrets (SQLite would
  // free its copy unwiped) and large blobs. `bytes` must stay alive and
  // unchanged until this Statement is destroyed (which resets it).
  Statement& BindBorrowed(int index, std::span<const uint8_t> bytes) {
    static const uint8_t kEmpty = 0;
    sqlite3_bind_blob(stmt_, index, bytes.empty() ? &kEmpty : bytes.data(),
                      static_cast<int>(bytes.size()), SQLITE_STATIC);
    return *this;
  }
  template <size_t N>
  Statement& Bind(int index, const std::array<uint8_t, N>& bytes) {
    return Bind(index, std::span<const uint8_t>(bytes));
  }
  Statement& Bind(int index, const Bytes& bytes) {
    return Bind(index, std::span<const uint8_t>(bytes));
  }
  Statement& BindInt(int index, int64_t value) {
    sqlite3_bind_int64(stmt_, index, value);
    return *this;
  }
  Statement& BindText(int index, const std::string& text) {
    sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
    return *this;
  }

  // Advances: true with a row, false when done; errors become kIoError.
  Result<bool> Step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return MakeError(ErrorCode::kIoError, std::string("sqlite: ") + sqlite3_errmsg(db_));
  }
  Result<void> Execute() {
    auto stepped = Step();
    if (!stepped) return std::unexpected(stepped.error());
    return {};
  }

  Bytes Blob(int column) const {
    const auto* data = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, column));
    int size = sqlite3_column_bytes(stmt_, column);
    if (data == nullptr || size <= 0) return {};
    return Bytes(data, data + size);
  }
  template <size_t N>
  Result<std::array<uint8_t, N>> FixedBlob(int column) const {
    Bytes bytes = Blob(column);
    if (bytes.size() != N) return MakeError(ErrorCode::kInternal, "stored identifier length");
    std::array<uint8_t, N> out;
    std::memcpy(out.data(), bytes.data(), N);
    return out;
  }
  // Steps through every row and collects its first column, an N-byte
  // identifier. Errors: kIoError, kInternal for an identifier of another
  // length.
  template <size_t N>
  Result<std::vector<std::array<uint8_t, N>>> IdColumn() {
    std::vector<std::array<uint8_t, N>> ids;
    for (;;) {
      auto row = Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) return ids;
      auto id = FixedBlob<N>(0);
      if (!id) return std::unexpected(id.error());
      ids.push_back(*id);
    }
  }
  int64_t Int(int column) const { return sqlite3_column_int64(stmt_, column); }
  int ColumnCount() const { return sqlite3_column_count(stmt_); }
  std::string Text(int column) const {
    const auto* text = sqlite3_column_text(stmt_, column);
    int size = sqlite3_column_bytes(stmt_, column);
    return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text), size);
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  bool owned_ = true;
};

// Prepared statements by SQL text, compiled once per connection: compiling
// costs more than running most of these statements.
class StatementCache {
 public:
  explicit StatementCache(sqlite3* db) : db_(db) {}
  ~StatementCache() {
    for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  }
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;

  // The statement for `sql`, or null when it does not compile.
  sqlite3_stmt* Get(const std::string& sql) {
    auto it = statements_.find(sql);
    if (it != statements_.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) !=
        SQLITE_OK) {
      return nullptr;
    }
    statements_.emplace(sql, stmt);
    return stmt;
  }

 private:
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

#define CANOPY_TRY(expr)                                            \
  do {                                                              \
    auto canopy_try_result = (expr);                                \
    if (!canopy_try_result) {                                       \
      return std::unexpected(std::move(canopy_try_result).error()); \
    }                                                               \
  } while (false)

// Whether a listed report was aggregated with another parameter before (a
// column of the listings' queries): the leader marks each report that passed
// an earlier level of a walk with a held_reports row.
#define AGGREGATED_BEFORE                                             \
  "EXISTS (SELECT 1 FROM held_reports h WHERE h.task_id = c.task_id " \
  "  AND h.report_id = c.report_id) "

// The listings' columns, and the conditions that a report was never
// rejected, or neither taken for the parameter (?2) nor rejected.
// clang-format off
#define AWAITING_COLUMNS                                                   \
  "SELECT c.task_id, c.report_id, c.time, x'', c.batch_key, "             \
  AGGREGATED_BEFORE ", c.seq FROM client_reports c "
#define NOT_REJECTED                                                              \
  "AND NOT EXISTS (SELECT 1 FROM rejected_reports x WHERE x.task_id = c.task_id " \
  "  AND x.report_id = c.report_id) "
#define NOT_TAKEN_OR_REJECTED                                                       \
  "AND NOT EXISTS (SELECT 1 FROM aggregated_reports r WHERE r.task_id = c.task_id " \
  "  AND r.report_id = c.report_id AND r.agg_param = ?2) " NOT_REJECTED
// clang-format on

// The four forms of a listing of a task's reports (?1) in upload order, at
// most ?5: by time range (?3, ?4) or by batch key (?6), from the start or
// after an upload position (?7), leaving out what `filter` excludes. Since
// schema 5 the upload-order indexes cover the columns read, and every form
// reads them (by time range in upload order from the task's first report,
// which reads other batches' entries too): never a report's row.
class ListingQueries {
 public:
  explicit ListingQueries(const char* filter) {
    for (bool by_batch_key : {false, true}) {
      for (bool after : {false, true}) {
        std::string& sql = sql_[by_batch_key][after];
        sql = AWAITING_COLUMNS "WHERE c.task_id = ?1 ";
        sql += after ? "AND c.seq > ?7 " : "";
        sql += by_batch_key ? "AND c.batch_key = ?6 " : "AND c.time >= ?3 AND c.time < ?4 ";
        sql += filter;
        sql += "ORDER BY c.seq LIMIT ?5";
      }
    }
  }
  const char* Get(bool by_batch_key, bool after) const { return sql_[by_batch_key][after].c_str(); }

 private:
  std::string sql_[2][2];
};

const ListingQueries& AwaitingQueries() {
  static const ListingQueries queries(NOT_TAKEN_OR_REJECTED);
  return queries;
}

const ListingQueries& InBatchQueries() {
  static const ListingQueries queries(NOT_REJECTED);
  return queries;
}

class SqliteTransaction final : public Transaction {
 public:
  SqliteTransaction(sqlite3* db, StatementCache& cache) : db_(db), cache_(cache) {}

  // Whether the transaction changed what batch listings show (see
  // Datastore::ListingGeneration).
  bool changed_listings() const { return changed_listings_; }

  // Prepares `sql`; a failure to prepare is a programming error reported as
  // kIoError with SQLite's message.
  Result<std::unique_ptr<Statement>> Prepare(const char* sql) {
    auto statement = std::make_unique<Statement>(db_, cache_.Get(sql));
    if (!statement->ok()) {
      return MakeError(ErrorCode::kIoError, std::string("sqlite prepare: ") + sqlite3_errmsg(db_));
    }
    return statement;
  }

  Result<void> PutTask(const TaskRow& task) override {
    auto s = Prepare("INSERT OR REPLACE INTO tasks (task_id, definition, source) VALUES (?,?,?)");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task.task_id).Bind(2, task.definition).BindText(3, task.source);
    return (*s)->Execute();
  }

  Result<bool> DeleteTask(const TaskId& task_id) override {
    auto s = Prepare("DELETE FROM tasks WHERE task_id = ?");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id);
    CANOPY_TRY((*s)->Execute());
    return sqlite3_changes(db_) > 0;
  }

  Result<std::vector<TaskRow>> ListTasks() override {
    auto s = Prepare("SELECT task_id, definition, source FROM tasks ORDER BY task_id");
    if (!s) return std::unexpected(s.error());
    std::vector<TaskRow> tasks;
    for (;;) {
      auto row = (*s)->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      auto id = (*s)->FixedBlob<32>(0);
      if (!id) return std::unexpected(id.error());
      tasks.push_back({*id, (*s)->Blob(1), (*s)->Text(2)});
    }
    return tasks;
  }

  Result<bool> InsertClientReport(const ClientReportRow& report) override {
    // The row first, naming the bytes' row-to-be: a duplicate then writes
    // nothing at all.
    auto row = Prepare(
        "INSERT OR IGNORE INTO client_reports (task_id, report_id, time, batch_key, seq, body) "
        "VALUES (?1, ?2, ?3, ?4, (SELECT COALESCE(MAX(seq), 0) + 1 FROM client_reports "
        "WHERE task_id = ?1), (SELECT COALESCE(MAX(id), 0) + 1 FROM report_bodies))");
    if (!row) return std::unexpected(row.error());
    (*row)
        ->Bind(1, report.task_id)
        .Bind(2, report.report_id)
        .BindInt(3, static_cast<int64_t>(report.time))
        .Bind(4, report.batch_key);
    CANOPY_TRY((*row)->Execute());
    if (sqlite3_changes(db_) == 0) return false;
    auto body = Prepare(
        "INSERT INTO report_bodies (id, encoded_report, form) VALUES ((SELECT body FROM "
        "client_reports WHERE task_id = ?1 AND report_id = ?2), ?3, ?4)");
    if (!body) return std::unexpected(body.error());
    (*body)
        ->Bind(1, report.task_id)
        .Bind(2, report.report_id)
        .BindBorrowed(3, report.encoded_report)
        .BindInt(4, static_cast<int64_t>(report.form));
    CANOPY_TRY((*body)->Execute());
    return true;
  }

  Result<std::vector<ClientReportRow>> ReadClientReports(Statement& s) {
    std::vector<ClientReportRow> reports;
    for (;;) {
      auto row = s.Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      ClientReportRow report;
      auto task = s.FixedBlob<32>(0);
      auto id = s.FixedBlob<16>(1);
      if (!task || !id) return MakeError(ErrorCode::kInternal, "stored report identifiers");
      report.task_id = *task;
      report.report_id = *id;
      report.time = static_cast<dap::Time>(s.Int(2));
      report.encoded_report = s.Blob(3);
      report.batch_key = s.Blob(4);
      if (s.ColumnCount() > 5) report.aggregated_before = s.Int(5) != 0;
      if (s.ColumnCount() > 6) report.upload_position = static_cast<uint64_t>(s.Int(6));
      reports.push_back(std::move(report));
    }
    return reports;
  }

  Result<std::optional<ClientReportRow>> GetClientReport(const TaskId& task_id,
                                                         const ReportId& report_id) override {
    auto s = Prepare(
        "SELECT c.task_id, c.report_id, c.time, b.encoded_report, c.batch_key, b.form "
        "FROM client_reports c JOIN report_bodies b ON b.id = c.body "
        "WHERE c.task_id = ? AND c.report_id = ?");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, report_id);
    auto row = (*s)->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::nullopt;
    ClientReportRow report;
    auto task = (*s)->FixedBlob<32>(0);
    auto id = (*s)->FixedBlob<16>(1);
    const int64_t form = (*s)->Int(5);
    if (!task || !id) return MakeError(ErrorCode::kInternal, "stored report identifiers");
    if (form != static_cast<int64_t>(StoredReportForm::kAsUploaded) &&
        form != static_cast<int64_t>(StoredReportForm::kLeaderShareOpened)) {
      return MakeError(ErrorCode::kInternal,
                       "stored report of unknown form " + std::to_string(form));
    }
    report.task_id = *task;
    report.report_id = *id;
    report.time = static_cast<dap::Time>((*s)->Int(2));
    report.encoded_report = (*s)->Blob(3);
    report.batch_key = (*s)->Blob(4);
    report.form = static_cast<StoredReportForm>(form);
    return report;
  }

  // Binds what the awaiting-report queries share: the task (?1), the
  // parameter's digest (?2), and the batch, by time range (?3, ?4) or by
  // key (?6).
  void BindAwaitingScope(Statement& s, const TaskId& task_id, const Bytes& agg_param,
                         dap::Time time_start, dap::Time time_end, const Bytes& batch_key) {
    s.Bind(1, task_id).Bind(2, AggParamDigest(agg_param));
    if (batch_key.empty()) {
      s.BindInt(3, static_cast<int64_t>(time_start))
          .BindInt(4, static_cast<int64_t>(std::min<dap::Time>(time_end, INT64_MAX)));
    } else {
      s.Bind(6, batch_key);
    }
  }

  Result<std::vector<ClientReportRow>> ReportsAwaitingAggregation(
      const TaskId& task_id, const Bytes& agg_param, dap::Time time_start, dap::Time time_end,
      const Bytes& batch_key, size_t limit, uint64_t after) override {
    // Going on after a report reads the task's reports in upload order from
    // there and stops at `limit` (the levels of a walk of 100,000 reports
    // are listed in four parts, and each part from the start read all
    // 100,000, three lookups each).
    const char* sql = AwaitingQueries().Get(!batch_key.empty(), after > 0);
    auto s = Prepare(sql);
    if (!s) return std::unexpected(s.error());
    BindAwaitingScope(**s, task_id, agg_param, time_start, time_end, batch_key);
    (*s)->BindInt(5, static_cast<int64_t>(limit));
    if (after > 0) (*s)->BindInt(7, static_cast<int64_t>(std::min<uint64_t>(after, INT64_MAX)));
    return ReadClientReports(**s);
  }

  Result<std::vector<ClientReportRow>> ReportsInBatch(const TaskId& task_id, dap::Time time_start,
                                                      dap::Time time_end, const Bytes& batch_key,
                                                      size_t limit, uint64_t after) override {
    auto s = Prepare(internal::ReportsInBatchQuery(!batch_key.empty(), after > 0));
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).BindInt(5, static_cast<int64_t>(limit));
    if (batch_key.empty()) {
      (*s)->BindInt(3, static_cast<int64_t>(time_start))
          .BindInt(4, static_cast<int64_t>(std::min<dap::Time>(time_end, INT64_MAX)));
    } else {
      (*s)->Bind(6, batch_key);
    }
    if (after > 0) (*s)->BindInt(7, static_cast<int64_t>(std::min<uint64_t>(after, INT64_MAX)));
    return ReadClientReports(**s);
  }

  Result<bool> AnyReportAwaitingAggregation(const TaskId& task_id, const Bytes& agg_param,
                                            dap::Time time_start, dap::Time time_end,
                                            const Bytes& batch_key, uint64_t after) override {
    // Going on after a report, the time range must not pick the time index
    // (the unary plus): it would read the whole batch for the few reports
    // past `after`, where the upload-order index reads just those. (The
    // listing's own after-form needs no plus: its ORDER BY seq already makes
    // SQLite take that index.) By time, that read covers every later report
    // of the task, other batches' too, as the creator's last listing did.
    // clang-format off
    const char* by_time = "SELECT EXISTS (SELECT 1 FROM client_reports c "
        "WHERE c.task_id = ?1 AND c.time >= ?3 AND c.time < ?4 " NOT_TAKEN_OR_REJECTED ")";
    const char* by_time_after = "SELECT EXISTS (SELECT 1 FROM client_reports c "
        "WHERE c.task_id = ?1 AND c.seq > ?7 AND +c.time >= ?3 AND +c.time < ?4 "
        NOT_TAKEN_OR_REJECTED ")";
    const char* by_batch = "SELECT EXISTS (SELECT 1 FROM client_reports c "
        "WHERE c.task_id = ?1 AND c.batch_key = ?6 " NOT_TAKEN_OR_REJECTED ")";
    const char* by_batch_after = "SELECT EXISTS (SELECT 1 FROM client_reports c "
        "WHERE c.task_id = ?1 AND c.batch_key = ?6 AND c.seq > ?7 " NOT_TAKEN_OR_REJECTED ")";
    // clang-format on
    const char* sql = batch_key.empty() ? (after > 0 ? by_time_after : by_time)
                                        : (after > 0 ? by_batch_after : by_batch);
    auto s = Prepare(sql);
    if (!s) return std::unexpected(s.error());
    BindAwaitingScope(**s, task_id, agg_param, time_start, time_end, batch_key);
    if (after > 0) (*s)->BindInt(7, static_cast<int64_t>(std::min<uint64_t>(after, INT64_MAX)));
    auto row = (*s)->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return MakeError(ErrorCode::kInternal, "EXISTS returned no row");
    return (*s)->Int(0) != 0;
  }

  Result<std::vector<ClientReportRow>> UnbatchedReports(const TaskId& task_id,
                                                        size_t limit) override {
    auto s = Prepare(
        "SELECT task_id, report_id, time, x'', batch_key FROM client_reports "
        "WHERE task_id = ? AND batch_key = x'' ORDER BY seq LIMIT ?");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).BindInt(2, static_cast<int64_t>(limit));
    return ReadClientReports(**s);
  }

  Result<void> AssignBatch(const TaskId& task_id, const ReportId& report_id,
                           const Bytes& batch_key) override {
    auto s = Prepare("UPDATE client_reports SET batch_key = ? WHERE task_id = ? AND report_id = ?");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, batch_key).Bind(2, task_id).Bind(3, report_id);
    return (*s)->Execute();
  }

  Result<uint64_t> CountUnbatchedReports(const TaskId& task_id) override {
    auto s = Prepare("SELECT COUNT(*) FROM client_reports WHERE task_id = ? AND batch_key = x''");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id);
    auto row = (*s)->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return MakeError(ErrorCode::kInternal, "COUNT returned no row");
    return static_cast<uint64_t>((*s)->Int(0));
  }

  Result<uint64_t> AssignUnbatchedReports(const TaskId& task_id, const Bytes& batch_key) override {
    auto s =
        Prepare("UPDATE client_reports SET batch_key = ?2 WHERE task_id = ?1 AND batch_key = x''");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, batch_key);
    CANOPY_TRY((*s)->Execute());
    return static_cast<uint64_t>(sqlite3_changes(db_));
  }

  Result<std::vector<BatchSize>> LeaderSelectedBatches(const TaskId& task_id) override {
    auto s = Prepare(
        "SELECT batch_key, COUNT(*) FROM client_reports WHERE task_id = ? AND batch_key != x'' "
        "GROUP BY batch_key ORDER BY MIN(seq)");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id);
    std::vector<BatchSize> batches;
    for (;;) {
      auto row = (*s)->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      batches.push_back({(*s)->Blob(0), static_cast<uint64_t>((*s)->Int(1))});
    }
    return batches;
  }

  Result<void> PutHeldReport(const HeldReportRow& report) override {
    changed_listings_ = true;
    auto s = Prepare(
        "INSERT OR REPLACE INTO held_reports (task_id, report_id, time, bucket_key, "
        "public_share, input_share) VALUES (?,?,?,?,?,?)");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, report.task_id)
        .Bind(2, report.report_id)
        .BindInt(3, static_cast<int64_t>(report.time))
        .Bind(4, report.bucket_key)
        .BindBorrowed(5, report.public_share)
        .BindBorrowed(6, report.input_share);
    return (*s)->Execute();
  }

  Result<std::optional<HeldReportRow>> GetHeldReport(const TaskId& task_id,
                                                     const ReportId& report_id) override {
    auto s = Prepare(
        "SELECT time, bucket_key, public_share, input_share FROM held_reports "
        "WHERE task_id = ? AND report_id = ?");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, report_id);
    auto row = (*s)->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::nullopt;
    HeldReportRow held;
    held.task_id = task_id;
    held.report_id = report_id;
    held.time = static_cast<dap::Time>((*s)->Int(0));
    held.bucket_key = (*s)->Blob(1);
    held.public_share = (*s)->Blob(2);
    held.input_share = (*s)->Blob(3);
    return held;
  }

  Result<bool> IsHeld(const TaskId& task_id, const ReportId& report_id) override {
    auto s =
        Prepare("SELECT EXISTS (SELECT 1 FROM held_reports WHERE task_id = ? AND report_id = ?)");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, report_id);
    auto row = (*s)->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return MakeError(ErrorCode::kInternal, "EXISTS returned no row");
    return (*s)->Int(0) != 0;
  }

  Result<bool> RecordAggregatedReport(const TaskId& task_id, const ReportId& report_id,
                                      const Bytes& agg_param) override {
    auto s = Prepare(
        "INSERT OR IGNORE INTO aggregated_reports (task_id, agg_param, report_id) VALUES (?,?,?)");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, AggParamDigest(agg_param)).Bind(3, report_id);
    CANOPY_TRY((*s)->Execute());
    return sqlite3_changes(db_) != 0;
  }

  Result<void> RecordSeenReport(const TaskId& task_id, const ReportId& report_id) override {
    auto s = Prepare("INSERT OR IGNORE INTO seen_reports (task_id, report_id) VALUES (?,?)");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, report_id);
    return (*s)->Execute();
  }

  Result<void> ForgetAggregatedReport(const TaskId& task_id, const ReportId& report_id,
                                      const Bytes& agg_param) override {
    auto s = Prepare(
        "DELETE FROM aggregated_reports WHERE task_id = ? AND agg_param = ? AND report_id = ?");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, AggParamDigest(agg_param)).Bind(3, report_id);
    return (*s)->Execute();
  }

  Result<bool> WasAggregated(const TaskId& task_id, const ReportId& report_id,
                             const Bytes& agg_param, bool any_param) override {
    auto s = Prepare(any_param ? "SELECT 1 FROM seen_reports WHERE task_id = ?1 AND report_id = ?2"
                               : "SELECT 1 FROM aggregated_reports WHERE task_id = ?1 AND "
                                 "report_id = ?2 AND agg_param = ?3");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, report_id);
    if (!any_param) (*s)->Bind(3, AggParamDigest(agg_param));
    return (*s)->Step();
  }

  Result<void> RecordRejectedReport(const TaskId& task_id, const ReportId& report_id,
                                    dap::ReportError error) override {
    changed_listings_ = true;
    auto s = Prepare(
        "INSERT OR IGNORE INTO rejected_reports (task_id, report_id, error) VALUES (?,?,?)");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, report_id).BindInt(3, static_cast<int>(error));
    return (*s)->Execute();
  }

  Result<ReportHistory> GetReportHistory(const TaskId& task_id, const ReportId& report_id,
                                         const Bytes& agg_param) override {
    auto s = Prepare(
        "SELECT EXISTS (SELECT 1 FROM rejected_reports WHERE task_id = ?1 AND report_id = ?2), "
        "EXISTS (SELECT 1 FROM aggregated_reports WHERE task_id = ?1 AND agg_param = ?3 "
        "  AND report_id = ?2), "
        "EXISTS (SELECT 1 FROM seen_reports WHERE task_id = ?1 AND report_id = ?2)");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, report_id).Bind(3, AggParamDigest(agg_param));
    auto row = (*s)->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return MakeError(ErrorCode::kInternal, "report history: no row");
    return ReportHistory{(*s)->Int(0) != 0, (*s)->Int(1) != 0, (*s)->Int(2) != 0};
  }

  Result<std::vector<ReportId>> AggregatedReportsWithParam(const TaskId& task_id,
                                                           const Bytes& agg_param) override {
    auto s =
        Prepare("SELECT report_id FROM aggregated_reports WHERE task_id = ? AND agg_param = ?");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, AggParamDigest(agg_param));
    return (*s)->IdColumn<16>();
  }

  Result<std::vector<bool>> WhichRejected(const TaskId& task_id,
                                          std::span<const ReportId> report_ids) override {
    std::vector<bool> rejected(report_ids.size(), false);
    if (report_ids.empty()) return rejected;
    // A task rarely has many rejected reports: when it has no more than the
    // reports asked about, one read of them all answers for every report
    // (in a walk's later levels, a lookup per report and level was 3 % of
    // the helper's time).
    auto all = Prepare("SELECT report_id FROM rejected_reports WHERE task_id = ? LIMIT ?");
    if (!all) return std::unexpected(all.error());
    (*all)->Bind(1, task_id).BindInt(2, static_cast<int64_t>(report_ids.size()) + 1);
    auto few = (*all)->IdColumn<16>();
    if (!few) return std::unexpected(few.error());
    if (few->size() <= report_ids.size()) {
      std::sort(few->begin(), few->end());
      for (size_t i = 0; i < report_ids.size(); ++i) {
        rejected[i] = std::binary_search(few->begin(), few->end(), report_ids[i]);
      }
      return rejected;
    }
    for (size_t i = 0; i < report_ids.size(); ++i) {
      auto s = Prepare("SELECT 1 FROM rejected_reports WHERE task_id = ? AND report_id = ?");
      if (!s) return std::unexpected(s.error());
      (*s)->Bind(1, task_id).Bind(2, report_ids[i]);
      auto row = (*s)->Step();
      if (!row) return std::unexpected(row.error());
      rejected[i] = *row;
    }
    return rejected;
  }

  Result<void> PutAggregationJob(const AggregationJobRow& job) override {
    // Upsert without touching the lease columns.
    auto s = Prepare(
        "INSERT INTO aggregation_jobs (task_id, job_id, agg_param, batch_key, state, step, "
        "helper_url, held_reports, last_request_hash, last_response, created_at, "
        "init_request_hash, init_response, agg_param_digest) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (task_id, job_id) DO UPDATE SET "
        "agg_param = excluded.agg_param, agg_param_digest = excluded.agg_param_digest, "
        "batch_key = excluded.batch_key, state = excluded.state, "
        "step = excluded.step, helper_url = excluded.helper_url, held_reports = "
        "excluded.held_reports, last_request_hash = excluded.last_request_hash, last_response = "
        "excluded.last_response, init_request_hash = excluded.init_request_hash, "
        "init_response = excluded.init_response");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, job.task_id)
        .Bind(2, job.job_id)
        .Bind(3, job.agg_param)
        .Bind(4, job.batch_key)
        .BindInt(5, static_cast<int>(job.state))
        .BindInt(6, job.step)
        .BindText(7, job.helper_url)
        .BindInt(8, job.held_reports ? 1 : 0)
        .Bind(9, job.last_request_hash)
        .Bind(10, job.last_response)
        .BindInt(11, job.created_at)
        .Bind(12, job.init_request_hash)
        .Bind(13, job.init_response)
        .Bind(14, AggParamDigest(job.agg_param));
    return (*s)->Execute();
  }

  Result<std::vector<JobId>> JobsWithParam(const TaskId& task_id, const Bytes& agg_param) override {
    auto s =
        Prepare("SELECT job_id FROM aggregation_jobs WHERE task_id = ? AND agg_param_digest = ?");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, AggParamDigest(agg_param));
    return (*s)->IdColumn<16>();
  }

  Result<std::optional<AggregationJobRow>> GetAggregationJob(const TaskId& task_id,
                                                             const JobId& job_id) override {
    auto s = Prepare(
        "SELECT agg_param, batch_key, state, step, helper_url, held_reports, last_request_hash, "
        "last_response, created_at, init_request_hash, init_response FROM aggregation_jobs "
        "WHERE task_id = ? AND job_id = ?");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, job_id);
    auto row = (*s)->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::nullopt;
    AggregationJobRow job;
    job.task_id = task_id;
    job.job_id = job_id;
    job.agg_param = (*s)->Blob(0);
    job.batch_key = (*s)->Blob(1);
    job.state = static_cast<JobState>((*s)->Int(2));
    job.step = static_cast<uint16_t>((*s)->Int(3));
    job.helper_url = (*s)->Text(4);
    job.held_reports = (*s)->Int(5) != 0;
    job.last_request_hash = (*s)->Blob(6);
    job.last_response = (*s)->Blob(7);
    job.created_at = (*s)->Int(8);
    job.init_request_hash = (*s)->Blob(9);
    job.init_response = (*s)->Blob(10);
    return job;
  }

  Result<void> PutReportAggregation(const ReportAggregationRow& row) override {
    auto s = Prepare(
        // A report's row is written at each step of its job. Updating only
        // the columns that change leaves the (task_id, report_id, agg_param)
        // index alone; a REPLACE would rewrite a random page of it per
        // report and step.
        "INSERT INTO report_aggregations (task_id, job_id, ord, report_id, time, "
        "bucket_key, state, error, verify_state, last_message, agg_param) VALUES "
        "(?,?,?,?,?,?,?,?,?,?, (SELECT canopy_sha256(agg_param) FROM aggregation_jobs "
        "WHERE task_id = ?1 AND job_id = ?2)) "
        "ON CONFLICT (task_id, job_id, ord) DO UPDATE SET state = excluded.state, "
        "error = excluded.error, verify_state = excluded.verify_state, "
        "last_message = excluded.last_message, "
        "time = excluded.time, bucket_key = excluded.bucket_key");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, row.task_id)
        .Bind(2, row.job_id)
        .BindInt(3, row.ord)
        .Bind(4, row.report_id)
        .BindInt(5, static_cast<int64_t>(row.time))
        .Bind(6, row.bucket_key)
        .BindInt(7, static_cast<int>(row.state))
        .BindInt(8, static_cast<int>(row.error))
        .Bind(9, row.verify_state)
        .Bind(10, row.last_message);
    return (*s)->Execute();
  }

  Result<void> PutJobReports(const TaskId& task_id, const JobId& job_id,
                             const std::vector<ReportAggregationRow>& rows) override {
    auto s =
        Prepare("INSERT OR REPLACE INTO job_reports (task_id, job_id, reports) VALUES (?,?,?)");
    if (!s) return std::unexpected(s.error());
    Bytes encoded = EncodeJobReports(rows);
    (*s)->Bind(1, task_id).Bind(2, job_id).Bind(3, encoded);
    return (*s)->Execute();
  }

  Result<std::vector<ReportAggregationRow>> GetJobReports(const TaskId& task_id,
                                                          const JobId& job_id) override {
    auto s = Prepare("SELECT reports FROM job_reports WHERE task_id = ? AND job_id = ?");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, job_id);
    auto row = (*s)->Step();
    if (!row) return std::unexpected(row.error());
    // No record: a job stored before job records existed has a row per
    // report (none for a job that was never stored).
    if (!*row) return GetReportAggregations(task_id, job_id);
    return DecodeJobReports(task_id, job_id, (*s)->Blob(0));
  }

  Result<std::vector<ReportAggregationRow>> GetReportAggregations(const TaskId& task_id,
                                                                  const JobId& job_id) override {
    auto s = Prepare(
        "SELECT ord, report_id, time, bucket_key, state, error, verify_state, last_message "
        "FROM report_aggregations WHERE task_id = ? AND job_id = ? ORDER BY ord");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, job_id);
    std::vector<ReportAggregationRow> rows;
    for (;;) {
      auto row = (*s)->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      ReportAggregationRow r;
      r.task_id = task_id;
      r.job_id = job_id;
      r.ord = static_cast<uint32_t>((*s)->Int(0));
      auto id = (*s)->FixedBlob<16>(1);
      if (!id) return std::unexpected(id.error());
      r.report_id = *id;
      r.time = static_cast<dap::Time>((*s)->Int(2));
      r.bucket_key = (*s)->Blob(3);
      r.state = static_cast<ReportAggregationState>((*s)->Int(4));
      r.error = static_cast<dap::ReportError>((*s)->Int(5));
      r.verify_state = (*s)->Blob(6);
      r.last_message = (*s)->Blob(7);
      rows.push_back(std::move(r));
    }
    return rows;
  }

  Result<std::vector<Lease>> LeaseJobs(const char* table, int in_progress_state, int64_t now_ms,
                                       int64_t duration_ms, size_t limit) {
    std::string select = std::string("SELECT task_id, job_id, lease_attempts FROM ") + table +
                         " WHERE state = ? AND lease_expiry_ms <= ? ORDER BY created_at LIMIT ?";
    auto s = Prepare(select.c_str());
    if (!s) return std::unexpected(s.error());
    (*s)->BindInt(1, in_progress_state).BindInt(2, now_ms).BindInt(3, static_cast<int64_t>(limit));
    std::vector<Lease> leases;
    for (;;) {
      auto row = (*s)->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      auto task = (*s)->FixedBlob<32>(0);
      auto job = (*s)->FixedBlob<16>(1);
      if (!task || !job) return MakeError(ErrorCode::kInternal, "stored job identifiers");
      leases.push_back(
          {*task, *job, now_ms + duration_ms, static_cast<uint32_t>((*s)->Int(2)) + 1});
    }
    std::string update = std::string("UPDATE ") + table +
                         " SET lease_expiry_ms = ?, lease_attempts = ? WHERE task_id = ? AND "
                         "job_id = ?";
    for (const Lease& lease : leases) {
      auto u = Prepare(update.c_str());
      if (!u) return std::unexpected(u.error());
      (*u)->BindInt(1, lease.expiry_ms)
          .BindInt(2, lease.attempts)
          .Bind(3, lease.task_id)
          .Bind(4, lease.job_id);
      CANOPY_TRY((*u)->Execute());
    }
    return leases;
  }

  Result<void> ReleaseJob(const char* table, const Lease& lease, int64_t retry_at_ms) {
    std::string update = std::string("UPDATE ") + table +
                         " SET lease_expiry_ms = ? WHERE task_id = ? AND job_id = ? AND "
                         "lease_expiry_ms = ?";
    auto s = Prepare(update.c_str());
    if (!s) return std::unexpected(s.error());
    (*s)->BindInt(1, retry_at_ms)
        .Bind(2, lease.task_id)
        .Bind(3, lease.job_id)
        .BindInt(4, lease.expiry_ms);
    return (*s)->Execute();
  }

  Result<std::vector<Lease>> LeaseAggregationJobs(int64_t now_ms, int64_t duration_ms,
                                                  size_t limit) override {
    return LeaseJobs("aggregation_jobs", static_cast<int>(JobState::kInProgress), now_ms,
                     duration_ms, limit);
  }
  Result<void> ReleaseAggregationJob(const Lease& lease, int64_t retry_at_ms) override {
    return ReleaseJob("aggregation_jobs", lease, retry_at_ms);
  }

  Result<void> DeleteReportAggregations(const TaskId& task_id, const JobId& job_id) override {
    for (const char* sql : {"DELETE FROM job_reports WHERE task_id = ? AND job_id = ?",
                            "DELETE FROM report_aggregations WHERE task_id = ? AND job_id = ?"}) {
      auto s = Prepare(sql);
      if (!s) return std::unexpected(s.error());
      (*s)->Bind(1, task_id).Bind(2, job_id);
      CANOPY_TRY((*s)->Execute());
    }
    return {};
  }

  Result<void> ReleaseAllLeases() override {
    for (const char* sql : {"UPDATE aggregation_jobs SET lease_expiry_ms = 0",
                            "UPDATE collection_jobs SET lease_expiry_ms = 0"}) {
      auto s = Prepare(sql);
      if (!s) return std::unexpected(s.error());
      CANOPY_TRY((*s)->Execute());
    }
    return {};
  }

  Result<uint64_t> CountUnfinishedJobs(const TaskId& task_id, const Bytes& agg_param) override {
    auto s = Prepare(
        "SELECT COUNT(*) FROM aggregation_jobs WHERE task_id = ? AND agg_param = ? AND state = ?");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, agg_param).BindInt(3, static_cast<int>(JobState::kInProgress));
    auto row = (*s)->Step();
    if (!row) return std::unexpected(row.error());
    return static_cast<uint64_t>((*s)->Int(0));
  }

  static Result<BatchAggregationRow> ReadBatchAggregation(Statement& s) {
    BatchAggregationRow row;
    auto task = s.FixedBlob<32>(0);
    auto checksum = s.FixedBlob<32>(5);
    if (!task || !checksum) return MakeError(ErrorCode::kInternal, "stored batch aggregation");
    row.task_id = *task;
    row.bucket_key = s.Blob(1);
    row.agg_param = s.Blob(2);
    row.aggregate = s.Blob(3);
    row.report_count = static_cast<uint64_t>(s.Int(4));
    row.checksum = *checksum;
    row.min_time = static_cast<dap::Time>(s.Int(6));
    row.max_time = static_cast<dap::Time>(s.Int(7));
    return row;
  }

  Result<std::optional<BatchAggregationRow>> GetBatchAggregation(const TaskId& task_id,
                                                                 const Bytes& bucket_key,
                                                                 const Bytes& agg_param) override {
    auto s = Prepare(
        "SELECT task_id, bucket_key, agg_param, aggregate, report_count, checksum, min_time, "
        "max_time FROM batch_aggregations WHERE task_id = ? AND bucket_key = ? AND agg_param = ?");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, bucket_key).Bind(3, agg_param);
    auto row = (*s)->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::nullopt;
    auto result = ReadBatchAggregation(**s);
    if (!result) return std::unexpected(result.error());
    return std::move(*result);
  }

  Result<void> PutBatchAggregation(const BatchAggregationRow& row) override {
    auto s = Prepare(
        "INSERT OR REPLACE INTO batch_aggregations (task_id, bucket_key, agg_param, aggregate, "
        "report_count, checksum, min_time, max_time) VALUES (?,?,?,?,?,?,?,?)");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, row.task_id)
        .Bind(2, row.bucket_key)
        .Bind(3, row.agg_param)
        .Bind(4, row.aggregate)
        .BindInt(5, static_cast<int64_t>(row.report_count))
        .Bind(6, row.checksum)
        .BindInt(7, static_cast<int64_t>(row.min_time))
        .BindInt(8, static_cast<int64_t>(row.max_time));
    return (*s)->Execute();
  }

  Result<std::vector<BatchAggregationRow>> BatchAggregationsInRange(
      const TaskId& task_id, const Bytes& agg_param, const Bytes& first_key,
      const Bytes& last_key) override {
    auto s = Prepare(
        "SELECT task_id, bucket_key, agg_param, aggregate, report_count, checksum, min_time, "
        "max_time FROM batch_aggregations WHERE task_id = ? AND agg_param = ? AND bucket_key >= ? "
        "AND bucket_key <= ? ORDER BY bucket_key");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, agg_param).Bind(3, first_key).Bind(4, last_key);
    std::vector<BatchAggregationRow> rows;
    for (;;) {
      auto row = (*s)->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      auto result = ReadBatchAggregation(**s);
      if (!result) return std::unexpected(result.error());
      rows.push_back(std::move(*result));
    }
    return rows;
  }

  Result<void> MarkBucketCollected(const TaskId& task_id, const Bytes& bucket_key) override {
    auto s =
        Prepare("INSERT OR REPLACE INTO buckets (task_id, bucket_key, collected) VALUES (?,?,1)");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, bucket_key);
    return (*s)->Execute();
  }

  Result<bool> IsBucketCollected(const TaskId& task_id, const Bytes& bucket_key) override {
    auto s =
        Prepare("SELECT 1 FROM buckets WHERE task_id = ? AND bucket_key = ? AND collected = 1");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, bucket_key);
    return (*s)->Step();
  }

  Result<bool> AnyBucketCollected(const TaskId& task_id, const Bytes& first_key,
                                  const Bytes& last_key) override {
    auto s = Prepare(
        "SELECT 1 FROM buckets WHERE task_id = ? AND bucket_key >= ? AND bucket_key <= ? AND "
        "collected = 1 LIMIT 1");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, first_key).Bind(3, last_key);
    return (*s)->Step();
  }

  Result<std::vector<Bytes>> BucketAggParams(const TaskId& task_id,
                                             const Bytes& bucket_key) override {
    auto s = Prepare(
        "SELECT agg_param FROM bucket_agg_params WHERE task_id = ? AND bucket_key = ? ORDER BY "
        "seq");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, bucket_key);
    std::vector<Bytes> params;
    for (;;) {
      auto row = (*s)->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      params.push_back((*s)->Blob(0));
    }
    return params;
  }

  Result<void> AppendBucketAggParam(const TaskId& task_id, const Bytes& bucket_key,
                                    const Bytes& agg_param) override {
    auto s = Prepare(
        "INSERT INTO bucket_agg_params (task_id, bucket_key, seq, agg_param) VALUES (?1, ?2, "
        "(SELECT COALESCE(MAX(seq), 0) + 1 FROM bucket_agg_params WHERE task_id = ?1 AND "
        "bucket_key = ?2), ?3)");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, bucket_key).Bind(3, agg_param);
    return (*s)->Execute();
  }

  Result<void> PutCollectionJob(const CollectionJobRow& job) override {
    auto s = Prepare(
        "INSERT INTO collection_jobs (task_id, job_id, request, agg_param, bucket_keys, state, "
        "response, error, created_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (task_id, job_id) "
        "DO UPDATE SET request = excluded.request, agg_param = excluded.agg_param, bucket_keys = "
        "excluded.bucket_keys, state = excluded.state, response = excluded.response, error = "
        "excluded.error");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, job.task_id)
        .Bind(2, job.job_id)
        .Bind(3, job.request)
        .Bind(4, job.agg_param)
        .Bind(5, EncodeKeyList(job.bucket_keys))
        .BindInt(6, static_cast<int>(job.state))
        .Bind(7, job.response)
        .BindText(8, job.error)
        .BindInt(9, job.created_at);
    return (*s)->Execute();
  }

  Result<std::optional<CollectionJobRow>> GetCollectionJob(const TaskId& task_id,
                                                           const JobId& job_id) override {
    auto s = Prepare(
        "SELECT request, agg_param, bucket_keys, state, response, error, created_at FROM "
        "collection_jobs WHERE task_id = ? AND job_id = ?");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, job_id);
    auto row = (*s)->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::nullopt;
    CollectionJobRow job;
    job.task_id = task_id;
    job.job_id = job_id;
    job.request = (*s)->Blob(0);
    job.agg_param = (*s)->Blob(1);
    auto keys = DecodeKeyList((*s)->Blob(2));
    if (!keys) return std::unexpected(keys.error());
    job.bucket_keys = std::move(*keys);
    job.state = static_cast<CollectionState>((*s)->Int(3));
    job.response = (*s)->Blob(4);
    job.error = (*s)->Text(5);
    job.created_at = (*s)->Int(6);
    return job;
  }

  Result<std::vector<CollectionJobRow>> ListCollectionJobs(const TaskId& task_id,
                                                           CollectionState state) override {
    auto s = Prepare(
        "SELECT job_id FROM collection_jobs WHERE task_id = ? AND state = ? ORDER BY created_at");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).BindInt(2, static_cast<int>(state));
    auto ids = (*s)->IdColumn<16>();
    if (!ids) return std::unexpected(ids.error());
    std::vector<CollectionJobRow> jobs;
    for (const JobId& id : *ids) {
      auto job = GetCollectionJob(task_id, id);
      if (!job) return std::unexpected(job.error());
      if (job->has_value()) jobs.push_back(std::move(**job));
    }
    return jobs;
  }

  Result<std::vector<Lease>> LeaseCollectionJobs(int64_t now_ms, int64_t duration_ms,
                                                 size_t limit) override {
    return LeaseJobs("collection_jobs", static_cast<int>(CollectionState::kStart), now_ms,
                     duration_ms, limit);
  }
  Result<void> ReleaseCollectionJob(const Lease& lease, int64_t retry_at_ms) override {
    return ReleaseJob("collection_jobs", lease, retry_at_ms);
  }

  Result<std::optional<Bytes>> WalkBatch(const TaskId& task_id, const Bytes& walk_id) override {
    auto s = Prepare("SELECT batch_key FROM walks WHERE task_id = ? AND walk_id = ?");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, walk_id);
    auto row = (*s)->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::nullopt;
    return (*s)->Blob(0);
  }

  Result<void> BindWalk(const TaskId& task_id, const Bytes& walk_id,
                        const Bytes& batch_key) override {
    auto s = Prepare("INSERT OR REPLACE INTO walks (task_id, walk_id, batch_key) VALUES (?,?,?)");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, walk_id).Bind(3, batch_key);
    return (*s)->Execute();
  }

  Result<void> PutAggregateShare(const AggregateShareRow& row) override {
    auto s = Prepare(
        "INSERT OR REPLACE INTO aggregate_shares (task_id, share_id, request_hash, response) "
        "VALUES (?,?,?,?)");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, row.task_id)
        .Bind(2, row.share_id)
        .Bind(3, row.request_hash)
        .Bind(4, row.response);
    return (*s)->Execute();
  }

  Result<std::optional<AggregateShareRow>> GetAggregateShare(const TaskId& task_id,
                                                             const JobId& share_id) override {
    auto s = Prepare(
        "SELECT request_hash, response FROM aggregate_shares WHERE task_id = ? AND share_id = ?");
    if (!s) return std::unexpected(s.error());
    (*s)->Bind(1, task_id).Bind(2, share_id);
    auto row = (*s)->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) return std::nullopt;
    return AggregateShareRow{task_id, share_id, (*s)->Blob(0), (*s)->Blob(1)};
  }

  Result<uint64_t> DeleteExpired(const TaskId& task_id, dap::Time time_limit,
                                 int64_t created_before) override {
    uint64_t deleted = 0;
    for (const char* sql : internal::kDeleteExpiredReports) {
      auto s = Prepare(sql);
      if (!s) return std::unexpected(s.error());
      (*s)->Bind(1, task_id).BindInt(2, static_cast<int64_t>(time_limit));
      CANOPY_TRY((*s)->Execute());
      deleted += static_cast<uint64_t>(sqlite3_changes(db_));
    }
    if (deleted > 0) changed_listings_ = true;
    for (const char* sql : internal::kDeleteOldJobs) {
      auto s = Prepare(sql);
      if (!s) return std::unexpected(s.error());
      (*s)->Bind(1, task_id).BindInt(2, created_before);
      CANOPY_TRY((*s)->Execute());
      deleted += static_cast<uint64_t>(sqlite3_changes(db_));
    }
    return deleted;
  }

 private:
  sqlite3* db_;
  StatementCache& cache_;
  bool changed_listings_ = false;
};

// SQL canopy_sha256(blob), registered on every connection (defined below).
void SqlSha256(sqlite3_context* context, int, sqlite3_value** values);

bool RegisterSha256(sqlite3* db) {
  return sqlite3_create_function(db, "canopy_sha256", 1, SQLITE_UTF8 | SQLITE_DETERMINISTIC,
                                 nullptr, SqlSha256, nullptr, nullptr) == SQLITE_OK;
}

// Reads through a memory map of the file's first GiB save a copy per page
// read (every connection that reads sets it).
constexpr const char* kMmapPragma = "PRAGMA mmap_size = 1073741824; ";

// Connections that only read, for Datastore::Read: in WAL mode each reads a
// snapshot of its own beside the writer's transactions and the other
// readers'. Opened as they are first needed, up to a capacity.
class ReaderPool {
 public:
  struct Reader {
    explicit Reader(sqlite3* connection)
        : db(connection), statements(std::make_unique<StatementCache>(connection)) {}
    ~Reader() {
      statements.reset();  // Finalised before their connection closes.
      sqlite3_close_v2(db);
    }
    Reader(const Reader&) = delete;
    Reader& operator=(const Reader&) = delete;

    sqlite3* db;
    std::unique_ptr<StatementCache> statements;
  };

  ReaderPool(std::string path, int busy_timeout_ms, size_t capacity)
      : path_(std::move(path)), busy_timeout_ms_(busy_timeout_ms), capacity_(capacity) {}
  ReaderPool(const ReaderPool&) = delete;
  ReaderPool& operator=(const ReaderPool&) = delete;

  // A reader for one transaction, to hand back with Release: a free one, a
  // new one while fewer than the capacity are open, or else the next one
  // released. Null when none is open and none can be (said once on stderr):
  // the caller then reads as the writer does.
  Reader* Acquire() {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (!free_.empty()) {
        Reader* reader = free_.back();
        free_.pop_back();
        return reader;
      }
      if (readers_.size() < capacity_ && !open_failed_) {
        auto opened = Open();
        if (opened) {
          readers_.push_back(std::move(*opened));
          return readers_.back().get();
        }
        std::cerr << "canopy-aggregator: " << opened.error().message()
                  << "; reads wait for the writer instead\n";
        open_failed_ = true;
      }
      if (readers_.empty()) return nullptr;
      released_.wait(lock);
    }
  }

  // Hands a reader back. One still in a transaction (its COMMIT and ROLLBACK
  // both failed) is closed instead: it would hold an old snapshot, and its
  // frames in the log, for whoever took it next.
  void Release(Reader* reader) {
    {
      std::lock_guard lock(mutex_);
      if (sqlite3_get_autocommit(reader->db) != 0) {
        free_.push_back(reader);
      } else {
        std::erase_if(readers_,
                      [&](const std::unique_ptr<Reader>& r) { return r.get() == reader; });
      }
    }
    released_.notify_one();
  }

 private:
  Result<std::unique_ptr<Reader>> Open() const {
    sqlite3* db = nullptr;
    // Read-write with query_only rather than read-only: a read-only
    // connection to a WAL database has rules of its own for the shared
    // memory file; this one shares it as the writer does and refuses writes.
    const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE;
    bool ok = sqlite3_open_v2(path_.c_str(), &db, flags, nullptr) == SQLITE_OK;
    ok = ok && sqlite3_busy_timeout(db, busy_timeout_ms_) == SQLITE_OK;
    ok = ok && RegisterSha256(db);
    // A smaller page cache than the writer's 64 MiB: the readers read
    // stored reports and job records once each; the map serves the rest.
    const std::string pragmas =
        std::string("PRAGMA query_only = ON; PRAGMA cache_size = -16384; ") + kMmapPragma;
    ok = ok && sqlite3_exec(db, pragmas.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
    if (!ok) {
      std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
      sqlite3_close_v2(db);
      return MakeError(ErrorCode::kIoError,
                       "database " + path_ + ": reader connection: " + message);
    }
    return std::make_unique<Reader>(db);
  }

  const std::string path_;
  const int busy_timeout_ms_;
  const size_t capacity_;
  std::mutex mutex_;
  std::condition_variable released_;
  std::vector<std::unique_ptr<Reader>> readers_;
  std::vector<Reader*> free_;
  bool open_failed_ = false;
};

// An exclusive lock on "<database>.lock", held while a datastore has the
// database open, so that a second process cannot open it too: two leaders
// on one file would each free the other's leases at start and drive the
// same jobs, adding their output shares twice (SQLite's own locks guard
// single transactions, not that). The lock is the kernel's (flock), so it
// goes with the process however the process ends. Move-only.
class LockFile {
 public:
  LockFile() = default;
  ~LockFile() {
    if (fd_ >= 0) close(fd_);
  }
  LockFile(LockFile&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  LockFile& operator=(LockFile&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }

  // Takes the lock of the database at `path`, without waiting. A database
  // without a file (":memory:") needs none. Errors (kIoError, naming the
  // database): the lock file cannot be made; another process (or another
  // datastore of this one) holds the lock.
  static Result<LockFile> Acquire(const std::string& path) {
    LockFile lock;
    if (path.empty() || path == ":memory:") return lock;
    const std::string lock_path = path + ".lock";
    lock.fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock.fd_ < 0) {
      const int error = errno;
      return MakeError(ErrorCode::kIoError, "database " + path + ": cannot open its lock file " +
                                                lock_path + ": " + std::strerror(error));
    }
    if (flock(lock.fd_, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      return MakeError(
          ErrorCode::kIoError,
          "database " + path + ": " +
              (error == EWOULDBLOCK ? "in use by another process (" + lock_path +
                                          " is locked); an aggregator's database belongs to one "
                                          "process at a time"
                                    : "cannot lock " + lock_path + ": " + std::strerror(error)));
    }
    return lock;
  }

 private:
  int fd_ = -1;
};

class SqliteDatastore final : public Datastore {
 public:
  // `lock` is held for as long as the datastore lives (released after
  // everything else: it is the first member).
  SqliteDatastore(sqlite3* db, LockFile lock) : lock_(std::move(lock)), db_(db) {}
  // The checkpointer stops before the connection closes (its hook points
  // here). sqlite3_close_v2 defers the close until the cached statements,
  // which are finalised after this body, are gone.
  ~SqliteDatastore() override {
    checkpointer_.reset();
    readers_.reset();
    sqlite3_close_v2(db_);
  }

  // Moves the WAL's checkpoints to a thread of their own (see
  // internal/wal_checkpointer.h). A database without a file keeps SQLite's
  // own; so does one whose second connection cannot open, with a line on
  // stderr: the datastore works either way, only slower.
  void CheckpointInBackground(const SqliteOptions& options, int checkpoint_pages) {
    auto started = internal::WalCheckpointer::Start(db_, mutex_, checkpoint_pages,
                                                    options.synchronous_full, &read_gate_);
    if (!started) {
      std::cerr << "canopy-aggregator: " << started.error().message()
                << "; SQLite checkpoints in its commits instead\n";
      return;
    }
    checkpointer_ = std::move(*started);
  }

  // Gives Read connections of its own (up to `options.readers`), once the
  // checkpoints run on their thread: their last pass keeps the readers out
  // (internal::ReadGate), so that the log still starts again from its
  // beginning. Without them, Read runs as Run.
  void ReadConcurrently(const SqliteOptions& options) {
    if (checkpointer_ == nullptr || options.readers == 0) return;
    // The file SQLite resolved: readers open later, whatever the working
    // directory is then.
    readers_ =
        std::make_unique<ReaderPool>(sqlite3_db_filename(db_, "main"), options.busy_timeout_ms,
                                     static_cast<size_t>(options.readers));
  }

  Result<void> Run(const std::function<Result<void>(Transaction&)>& body) override {
    std::lock_guard lock(mutex_);
    for (int attempt = 0;; ++attempt) {
      int rc = sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr);
      if (rc == SQLITE_BUSY && attempt < 20) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10 << std::min(attempt, 5)));
        continue;
      }
      if (rc != SQLITE_OK) return Fail("begin");
      SqliteTransaction transaction(db_, statements_);
      Result<void> result = body(transaction);
      if (!result) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return result;
      }
      if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
        Result<void> failure = Fail("commit");
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        return failure;
      }
      if (transaction.changed_listings()) listing_generation_.fetch_add(1);
      return {};
    }
  }

  Result<void> Read(const std::function<Result<void>(Transaction&)>& body) override {
    ReaderPool::Reader* reader = readers_ != nullptr ? readers_->Acquire() : nullptr;
    if (reader == nullptr) return Run(body);
    struct GiveBack {
      ReaderPool& pool;
      ReaderPool::Reader* reader;
      ~GiveBack() { pool.Release(reader); }
    } give_back{*readers_, reader};
    internal::ReadGate::Reading reading(read_gate_);
    if (sqlite3_exec(reader->db, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return FailOn(reader->db, "begin");
    }
    SqliteTransaction transaction(reader->db, *reader->statements);
    Result<void> result = body(transaction);
    // Ends the snapshot; nothing was written, so either way is the same.
    if (sqlite3_exec(reader->db, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      sqlite3_exec(reader->db, "ROLLBACK", nullptr, nullptr, nullptr);
    }
    return result;
  }

  uint64_t ListingGeneration() const override { return listing_generation_.load(); }

 private:
  Result<void> Fail(const char* what) { return FailOn(db_, what); }
  static Result<void> FailOn(sqlite3* db, const char* what) {
    return MakeError(ErrorCode::kIoError,
                     std::string("sqlite ") + what + ": " + sqlite3_errmsg(db));
  }

  LockFile lock_;
  sqlite3* db_;
  std::mutex mutex_;
  StatementCache statements_{db_};
  std::atomic<uint64_t> listing_generation_{0};
  internal::ReadGate read_gate_;
  std::unique_ptr<internal::WalCheckpointer> checkpointer_;
  std::unique_ptr<ReaderPool> readers_;
};

// SQL canopy_sha256(blob): the SHA-256 digest of a blob (NULL stays NULL).
void SqlSha256(sqlite3_context* context, int, sqlite3_value** values) {
  if (sqlite3_value_type(values[0]) == SQLITE_NULL) {
    sqlite3_result_null(context);
    return;
  }
  const auto* data = static_cast<const uint8_t*>(sqlite3_value_blob(values[0]));
  const int size = sqlite3_value_bytes(values[0]);
  const Bytes& digest = MemoizedSha256(std::span<const uint8_t>(data, static_cast<size_t>(size)));
  sqlite3_result_blob(context, digest.data(), static_cast<int>(digest.size()), SQLITE_TRANSIENT);
}

Result<void> Exec(sqlite3* db, const std::string& path, const char* sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : sqlite3_errmsg(db);
    sqlite3_free(message);
    return MakeError(ErrorCode::kIoError, "database " + path + ": " + text);
  }
  return {};
}

// The integer a pragma without argument returns (`pragma` is its SQL);
// `what` names it in the error.
Result<int64_t> ReadIntegerPragma(sqlite3* db, const std::string& path, const char* pragma,
                                  const std::string& what) {
  Statement s(db, pragma);
  if (!s.ok())
    return MakeError(ErrorCode::kIoError, "database " + path + ": " + sqlite3_errmsg(db));
  auto row = s.Step();
  if (!row || !*row) {
    return MakeError(ErrorCode::kIoError, "database " + path + ": cannot read " + what);
  }
  return s.Int(0);
}

// Puts the database in WAL mode, which the durability and the concurrency
// described in the header rest on. SQLite keeps its rollback journal,
// without an error, where WAL cannot be had (a file system without shared
// memory maps): that is refused here. A database without a file keeps its
// journal in memory. Errors (kIoError): naming the journal mode it got.
Result<void> UseWriteAheadLog(sqlite3* db, const std::string& path) {
  Statement s(db, "PRAGMA journal_mode = WAL");
  if (!s.ok())
    return MakeError(ErrorCode::kIoError, "database " + path + ": " + sqlite3_errmsg(db));
  auto row = s.Step();
  if (!row || !*row) {
    return MakeError(ErrorCode::kIoError, "database " + path + ": cannot set the journal mode");
  }
  const std::string mode = s.Text(0);
  if (mode == "wal" || (mode == "memory" && path == ":memory:")) return {};
  return MakeError(ErrorCode::kIoError, "database " + path +
                                            ": cannot use a write-ahead log (the journal mode "
                                            "stays \"" +
                                            mode + "\"); put the database on a local file system");
}

Result<int> UserVersion(sqlite3* db, const std::string& path) {
  auto version = ReadIntegerPragma(db, path, "PRAGMA user_version", "schema version");
  if (!version) return std::unexpected(version.error());
  return static_cast<int>(*version);
}

Result<void> Migrate(sqlite3* db, const std::string& path, int target_version) {
  auto version = UserVersion(db, path);
  if (!version) return std::unexpected(version.error());
  if (*version > kSchemaVersion) {
    return MakeError(ErrorCode::kUnsupported,
                     "database " + path + " has schema version " + std::to_string(*version) +
                         ", newer than this build's " + std::to_string(kSchemaVersion));
  }
  for (int next = *version; next < target_version; ++next) {
    // Each migration and its version bump commit together.
    CANOPY_TRY(Exec(db, path, "BEGIN IMMEDIATE"));
    Result<void> applied = Exec(db, path, kMigrations[next]);
    if (applied) {
      std::string bump = "PRAGMA user_version = " + std::to_string(next + 1);
      applied = Exec(db, path, bump.c_str());
    }
    if (!applied) {
      sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      return applied;
    }
    CANOPY_TRY(Exec(db, path, "COMMIT"));
  }
  return {};
}

}  // namespace

Bytes TimeBucketKey(dap::Time time) {
  Bytes key(8);
  for (int i = 0; i < 8; ++i) key[i] = static_cast<uint8_t>(time >> (56 - 8 * i));
  return key;
}

namespace internal {

const char* ReportsInBatchQuery(bool by_batch_key, bool after) {
  return InBatchQueries().Get(by_batch_key, after);
}

}  // namespace internal

Result<std::unique_ptr<Datastore>> OpenSqliteDatastore(const SqliteOptions& options) {
  if (options.checkpoint_bytes < 1) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "database " + options.path + ": checkpoint_bytes must be at least 1");
  }
  if (options.readers < 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "database " + options.path + ": readers must not be negative");
  }
  if (options.page_size < 512 || options.page_size > 65536 ||
      !std::has_single_bit(static_cast<unsigned>(options.page_size))) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "database " + options.path + ": page_size must be a power of two from 512 " +
                         "to 65536, not " + std::to_string(options.page_size));
  }
  auto lock = LockFile::Acquire(options.path);
  if (!lock) return std::unexpected(lock.error());
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(options.path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close_v2(db);
    return MakeError(ErrorCode::kIoError, "database " + options.path + ": " + message);
  }
  auto datastore = std::make_unique<SqliteDatastore>(db, std::move(*lock));
  sqlite3_busy_timeout(db, options.busy_timeout_ms);
  if (!RegisterSha256(db)) {
    return MakeError(ErrorCode::kIoError, "database " + options.path + ": " + sqlite3_errmsg(db));
  }
  // The page size first: it takes effect only on a file with nothing in it
  // yet, and not once the file is in WAL mode.
  CANOPY_TRY(Exec(db, options.path,
                  ("PRAGMA page_size = " + std::to_string(options.page_size) + ";").c_str()));
  CANOPY_TRY(UseWriteAheadLog(db, options.path));
  // What the file has: the size asked for, or the one it was created with.
  auto page_size = ReadIntegerPragma(db, options.path, "PRAGMA page_size", "the page size");
  if (!page_size) return std::unexpected(page_size.error());
  const int checkpoint_pages = static_cast<int>(std::clamp<int64_t>(
      options.checkpoint_bytes / *page_size, 1, std::numeric_limits<int>::max()));
  // A walk rewrites each report's rows at every level. A page cache of 64
  // MiB (SQLite's default is 2 MiB) keeps the indexes it touches in memory;
  // reading through a memory map saves a copy per page read; checkpointing
  // every 64 MiB of WAL instead of every 1,000 pages (SQLite's default)
  // writes a page rewritten several times per level (created, stepped,
  // finished) once.
  std::string pragmas = std::string("PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536; ") +
                        kMmapPragma +
                        "PRAGMA wal_autocheckpoint = " + std::to_string(checkpoint_pages) + "; ";
  pragmas += internal::SynchronousPragma(options.synchronous_full);
  CANOPY_TRY(Exec(db, options.path, pragmas.c_str()));
  if (options.schema_version < 0 || options.schema_version > kSchemaVersion) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "no schema version " + std::to_string(options.schema_version));
  }
  CANOPY_TRY(Migrate(db, options.path,
                     options.schema_version == 0 ? kSchemaVersion : options.schema_version));
  datastore->CheckpointInBackground(options, checkpoint_pages);
  datastore->ReadConcurrently(options);
  return std::unique_ptr<Datastore>(std::move(datastore));
}

}  // namespace canopy::aggregator
