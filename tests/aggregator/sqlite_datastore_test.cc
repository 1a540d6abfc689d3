// The SQLite datastore: migrations, transactions that roll back, replay
// detection, leases, batch aggregations and garbage collection.
#include "aggregator/sqlite_datastore.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/eventually.h"
#include "tests/testing/temp_folder.h"

namespace canopy::aggregator {
namespace {

class SqliteDatastoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = canopy::testing::MakeTempFolder("canopy-datastore");
    path_ = folder_ + "/test.sqlite";
  }
  void TearDown() override { std::filesystem::remove_all(folder_); }

  // Opens the file, migrated to `schema_version` (0: the latest).
  std::unique_ptr<Datastore> Open(int schema_version = 0) {
    SqliteOptions options{path_};
    options.schema_version = schema_version;
    auto datastore = OpenSqliteDatastore(options);
    EXPECT_TRUE(datastore) << datastore.error().ToString();
    return datastore ? std::move(*datastore) : nullptr;
  }

  std::string folder_;
  std::string path_;
};

TaskId SomeTask() {
  TaskId id{};
  id[0] = 1;
  return id;
}

ClientReportRow SomeReport(uint8_t n, dap::Time time) {
  ClientReportRow row;
  row.task_id = SomeTask();
  row.report_id[0] = n;
  row.time = time;
  row.encoded_report = {n, n, n};
  return row;
}

TEST_F(SqliteDatastoreTest, ReopensMigratedAndRefusesNewerSchemas) {
  {
    auto datastore = Open();
    ASSERT_TRUE(datastore->Run([](Transaction& tx) { return tx.PutTask({SomeTask(), {1}, "t"}); }));
  }
  {
    auto datastore = Open();  // Same file, already migrated.
    ASSERT_TRUE(datastore->Run([](Transaction& tx) -> Result<void> {
      auto tasks = tx.ListTasks();
      EXPECT_TRUE(tasks);
      EXPECT_EQ(tasks->size(), 1u);
      return {};
    }));
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto refused = OpenSqliteDatastore({path_});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kUnsupported);
  EXPECT_NE(refused.error().message().find(path_), std::string::npos);
}

// Version 2 names aggregation parameters by digest in rows per report, and
// version 3 keys those rows by parameter first; a version 1 file (full
// parameters there) is converted when opened.
TEST_F(SqliteDatastoreTest, MigratesVersionOneParametersToDigests) {
  const Bytes param(3000, 0x5a);  // As long as a deep Poplar1 parameter.
  const ReportId report = SomeReport(1, 0).report_id;
  Open(1);
  // What version 1 stored: the parameter itself.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(
                db, "INSERT INTO aggregated_reports (task_id, report_id, agg_param) VALUES (?,?,?)",
                -1, &statement, nullptr),
            SQLITE_OK);
  const TaskId task = SomeTask();
  sqlite3_bind_blob(statement, 1, task.data(), static_cast<int>(task.size()), SQLITE_STATIC);
  sqlite3_bind_blob(statement, 2, report.data(), static_cast<int>(report.size()), SQLITE_STATIC);
  sqlite3_bind_blob(statement, 3, param.data(), static_cast<int>(param.size()), SQLITE_STATIC);
  ASSERT_EQ(sqlite3_step(statement), SQLITE_DONE);
  sqlite3_finalize(statement);
  sqlite3_close(db);

  auto datastore = Open();
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    auto with_param = tx.WasAggregated(SomeTask(), report, param, false);
    EXPECT_TRUE(with_param && *with_param);
    auto other = tx.WasAggregated(SomeTask(), report, Bytes(3000, 0x5b), false);
    EXPECT_TRUE(other && !*other);
    auto any = tx.WasAggregated(SomeTask(), report, {}, true);  // Kept apart from version 3.
    EXPECT_TRUE(any && *any);
    auto again = tx.RecordAggregatedReport(SomeTask(), report, param);
    EXPECT_TRUE(again && !*again);
    return {};
  }));
}

// Version 3 keeps a job's init answer apart once the job moves on, and turns
// the tables with large rows into rowid tables; what version 2 stored stays.
TEST_F(SqliteDatastoreTest, MigratesVersionTwoJobs) {
  Open(2);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  // Job 1 at step 0 and job 2 at step 1, with a report of job 2 (task IDs
  // are 32 bytes, job and report IDs 16).
  const char* version_two_rows = R"sql(
INSERT INTO aggregation_jobs (task_id, job_id, agg_param, batch_key, state, step, helper_url,
  held_reports, last_request_hash, last_response, created_at)
VALUES (x'0100000000000000000000000000000000000000000000000000000000000000', x'01000000000000000000000000000000', x'aa', x'',
        0, 0, '', 0, x'1111', x'2222', 7),
       (x'0100000000000000000000000000000000000000000000000000000000000000', x'02000000000000000000000000000000', x'aa', x'',
        0, 1, 'http://helper/x', 1, x'3333', x'4444', 8);
INSERT INTO report_aggregations (task_id, job_id, ord, report_id, time, bucket_key, state, error,
  verify_state, last_message, agg_param)
VALUES (x'0100000000000000000000000000000000000000000000000000000000000000', x'02000000000000000000000000000000', 0,
        x'05000000000000000000000000000000', 9, x'0102', 1, 0, x'abcd', x'ef', x'00');
)sql";
  ASSERT_EQ(sqlite3_exec(db, version_two_rows, nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);

  auto datastore = Open();
  ASSERT_TRUE(datastore);
  JobId first{}, second{};
  first[0] = 1;
  second[0] = 2;
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    auto at_start = tx.GetAggregationJob(SomeTask(), first);
    EXPECT_TRUE(at_start && *at_start);
    if (at_start && *at_start) {
      EXPECT_EQ((*at_start)->init_request_hash, (Bytes{0x11, 0x11}));
      EXPECT_EQ((*at_start)->init_response, (Bytes{0x22, 0x22}));
      EXPECT_EQ((*at_start)->created_at, 7);
    }
    auto moved_on = tx.GetAggregationJob(SomeTask(), second);
    EXPECT_TRUE(moved_on && *moved_on);
    if (moved_on && *moved_on) {
      EXPECT_TRUE((*moved_on)->init_request_hash.empty());
      EXPECT_EQ((*moved_on)->last_response, (Bytes{0x44, 0x44}));
      EXPECT_EQ((*moved_on)->helper_url, "http://helper/x");
      EXPECT_TRUE((*moved_on)->held_reports);
    }
    auto rows = tx.GetReportAggregations(SomeTask(), second);
    EXPECT_TRUE(rows && rows->size() == 1);
    if (rows && rows->size() == 1) {
      EXPECT_EQ((*rows)[0].verify_state, (Bytes{0xab, 0xcd}));
      EXPECT_EQ((*rows)[0].bucket_key, (Bytes{0x01, 0x02}));
      EXPECT_EQ((*rows)[0].time, 9u);
    }
    // The report of the job in progress counts as taken (aggregated).
    ReportId waiting{};
    waiting[0] = 5;
    auto taken = tx.WasAggregated(SomeTask(), waiting, {}, true);
    EXPECT_TRUE(taken && *taken);
    return {};
  }));
}

TEST_F(SqliteDatastoreTest, JobReportsRoundTripAsOneRecord) {
  auto datastore = Open();
  JobId job{};
  job[0] = 3;
  std::vector<ReportAggregationRow> rows(3);
  for (size_t i = 0; i < rows.size(); ++i) {
    rows[i].task_id = SomeTask();
    rows[i].job_id = job;
    rows[i].ord = static_cast<uint32_t>(i);
    rows[i].report_id[0] = static_cast<uint8_t>(10 + i);
    rows[i].time = 1000 + i;
    rows[i].bucket_key = Bytes(i == 2 ? 32 : 8, static_cast<uint8_t>(i));
    rows[i].state = static_cast<ReportAggregationState>(i + 1);
    rows[i].error = dap::ReportError::kVdafVerifyError;
    rows[i].verify_state = Bytes(i * 300, 0x77);
    rows[i].last_message = Bytes(i, 0x66);
    rows[i].init_payload = Bytes(2 * i, 0x55);
    rows[i].verification_key_id = static_cast<uint8_t>(200 + i);
  }
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    auto none = tx.GetJobReports(SomeTask(), job);
    EXPECT_TRUE(none && none->empty());
    auto put = tx.PutJobReports(SomeTask(), job, rows);
    EXPECT_TRUE(put);
    rows[1].state = ReportAggregationState::kFailed;  // Written whole again.
    return tx.PutJobReports(SomeTask(), job, rows);
  }));
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    auto read = tx.GetJobReports(SomeTask(), job);
    EXPECT_TRUE(read);
    if (!read) return {};
    EXPECT_EQ(read->size(), rows.size());
    for (size_t i = 0; i < read->size() && i < rows.size(); ++i) {
      const ReportAggregationRow& got = (*read)[i];
      EXPECT_EQ(got.report_id, rows[i].report_id);
      EXPECT_EQ(got.ord, rows[i].ord);
      EXPECT_EQ(got.time, rows[i].time);
      EXPECT_EQ(got.bucket_key, rows[i].bucket_key);
      EXPECT_EQ(got.state, rows[i].state);
      EXPECT_EQ(got.error, rows[i].error);
      EXPECT_EQ(got.verify_state, rows[i].verify_state);
      EXPECT_EQ(got.last_message, rows[i].last_message);
      EXPECT_EQ(got.init_payload, rows[i].init_payload);
      EXPECT_EQ(got.verification_key_id, rows[i].verification_key_id);
    }
    return {};
  }));
  // A damaged record is an internal error, not a short job.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE job_reports SET reports = substr(reports, 1, 40)", nullptr,
                         nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto damaged = datastore->Run([&](Transaction& tx) -> Result<void> {
    auto read = tx.GetJobReports(SomeTask(), job);
    if (!read) return std::unexpected(read.error());
    return {};
  });
  ASSERT_FALSE(damaged);
  EXPECT_EQ(damaged.error().code(), ErrorCode::kInternal);
}

TEST_F(SqliteDatastoreTest, FailedBodiesRollBack) {
  auto datastore = Open();
  auto failed = datastore->Run([](Transaction& tx) -> Result<void> {
    auto inserted = tx.InsertClientReport(SomeReport(1, 10));
    EXPECT_TRUE(inserted && *inserted);
    return MakeError(ErrorCode::kInvalidArgument, "changed my mind");
  });
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message(), "changed my mind");
  ASSERT_TRUE(datastore->Run([](Transaction& tx) -> Result<void> {
    auto report = tx.GetClientReport(SomeTask(), SomeReport(1, 10).report_id);
    EXPECT_TRUE(report);
    EXPECT_FALSE(report->has_value());
    return {};
  }));
}

TEST_F(SqliteDatastoreTest, DuplicateReportsAreNotInsertedTwice) {
  auto datastore = Open();
  ASSERT_TRUE(datastore->Run([](Transaction& tx) -> Result<void> {
    auto first = tx.InsertClientReport(SomeReport(1, 10));
    auto again = tx.InsertClientReport(SomeReport(1, 11));
    EXPECT_TRUE(first && *first);
    EXPECT_TRUE(again && !*again);
    auto stored = tx.GetClientReport(SomeTask(), SomeReport(1, 10).report_id);
    EXPECT_TRUE(stored && stored->has_value());
    EXPECT_EQ((*stored)->time, 10u);
    return {};
  }));
}

// Whether a report was aggregated at all is RecordSeenReport's record alone
// (only the helper writes and reads it); a parameter's record does not imply
// it, and forgetting that record does not clear it.
TEST_F(SqliteDatastoreTest, SeenReportsAreRecordedApartFromParameters) {
  auto datastore = Open();
  const Bytes param = {7};
  const ReportId report = SomeReport(1, 0).report_id;
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    EXPECT_TRUE(tx.RecordAggregatedReport(SomeTask(), report, param));
    auto with_param = tx.WasAggregated(SomeTask(), report, param, false);
    EXPECT_TRUE(with_param && *with_param);
    auto any = tx.WasAggregated(SomeTask(), report, {}, true);
    EXPECT_TRUE(any && !*any);
    auto history = tx.GetReportHistory(SomeTask(), report, param);
    EXPECT_TRUE(history && history->aggregated_with_param && !history->aggregated_before);

    EXPECT_TRUE(tx.RecordSeenReport(SomeTask(), report));
    EXPECT_TRUE(tx.RecordSeenReport(SomeTask(), report));  // Again: no error, no change.
    EXPECT_TRUE(tx.ForgetAggregatedReport(SomeTask(), report, param));
    any = tx.WasAggregated(SomeTask(), report, {}, true);
    EXPECT_TRUE(any && *any);
    history = tx.GetReportHistory(SomeTask(), report, param);
    EXPECT_TRUE(history && !history->aggregated_with_param && history->aggregated_before);
    return {};
  }));
}

TEST_F(SqliteDatastoreTest, AwaitingReportsSkipAggregatedAndRejected) {
  auto datastore = Open();
  const Bytes param = {7};
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    for (uint8_t n = 1; n <= 5; ++n) EXPECT_TRUE(tx.InsertClientReport(SomeReport(n, 10 + n)));
    // Report 1 is taken for `param`; report 5 was, and then released.
    auto first = tx.RecordAggregatedReport(SomeTask(), SomeReport(1, 0).report_id, param);
    EXPECT_TRUE(first && *first);
    auto again = tx.RecordAggregatedReport(SomeTask(), SomeReport(1, 0).report_id, param);
    EXPECT_TRUE(again && !*again);  // Recorded already: nothing written.
    EXPECT_TRUE(tx.RecordAggregatedReport(SomeTask(), SomeReport(5, 0).report_id, param));
    EXPECT_TRUE(tx.ForgetAggregatedReport(SomeTask(), SomeReport(5, 0).report_id, param));
    EXPECT_TRUE(tx.RecordRejectedReport(SomeTask(), SomeReport(2, 0).report_id,
                                        dap::ReportError::kVdafVerifyError));
    auto awaiting = tx.ReportsAwaitingAggregation(SomeTask(), param, 0, 100, {}, 10);
    EXPECT_TRUE(awaiting);
    EXPECT_EQ(awaiting->size(), 3u);  // Reports 3, 4 and 5, in upload order.
    EXPECT_EQ((*awaiting)[0].report_id[0], 3);
    EXPECT_EQ((*awaiting)[2].report_id[0], 5);
    // Going on after report 3: 4 and 5; after 5, nothing.
    EXPECT_LT((*awaiting)[0].upload_position, (*awaiting)[1].upload_position);
    EXPECT_LT((*awaiting)[1].upload_position, (*awaiting)[2].upload_position);
    auto rest = tx.ReportsAwaitingAggregation(SomeTask(), param, 0, 100, {}, 10,
                                              (*awaiting)[0].upload_position);
    EXPECT_TRUE(rest);
    EXPECT_EQ(rest->size(), 2u);
    if (rest->size() == 2) {
      EXPECT_EQ((*rest)[0].report_id[0], 4);
      EXPECT_EQ((*rest)[1].report_id[0], 5);
    }
    auto none = tx.ReportsAwaitingAggregation(SomeTask(), param, 0, 100, {}, 10,
                                              (*awaiting)[2].upload_position);
    EXPECT_TRUE(none && none->empty());
    auto in_window = tx.ReportsAwaitingAggregation(SomeTask(), param, 14, 15, {}, 10);
    EXPECT_TRUE(in_window);
    EXPECT_EQ(in_window->size(), 1u);  // Report 4 (time 14) only.
    // Existence alone: reports 1 (taken) and 2 (rejected) at times 11 and
    // 12 await nothing; report 4 at 14 does.
    auto any = tx.AnyReportAwaitingAggregation(SomeTask(), param, 11, 13, {});
    EXPECT_TRUE(any && !*any);
    any = tx.AnyReportAwaitingAggregation(SomeTask(), param, 11, 15, {});
    EXPECT_TRUE(any && *any);
    // And past an upload position: after report 3, report 4 (time 14) in
    // [11, 15) but nothing in [11, 14); after report 5, nothing at all.
    const uint64_t after_3 = (*awaiting)[0].upload_position;
    any = tx.AnyReportAwaitingAggregation(SomeTask(), param, 11, 15, {}, after_3);
    EXPECT_TRUE(any && *any);
    any = tx.AnyReportAwaitingAggregation(SomeTask(), param, 11, 14, {}, after_3);
    EXPECT_TRUE(any && !*any);
    any = tx.AnyReportAwaitingAggregation(SomeTask(), param, 0, 100, {},
                                          (*awaiting)[2].upload_position);
    EXPECT_TRUE(any && !*any);
    auto other_param = tx.ReportsAwaitingAggregation(SomeTask(), {8}, 0, 100, {}, 10);
    EXPECT_TRUE(other_param);
    EXPECT_EQ(other_param->size(), 4u);  // Only the rejected report stays out.
    return {};
  }));
}

// The same by batch key (leader_selected): a listing and the existence check
// going on after a position see only that batch's later reports.
TEST_F(SqliteDatastoreTest, AwaitingReportsOfABatchGoOnAfterAPosition) {
  auto datastore = Open();
  const Bytes param = {7};
  const Bytes batch_a(32, 0xa), batch_b(32, 0xb);
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    for (uint8_t n = 1; n <= 4; ++n) {
      EXPECT_TRUE(tx.InsertClientReport(SomeReport(n, 10)));
      // Reports 1 and 3 in batch a, 2 and 4 in batch b.
      EXPECT_TRUE(
          tx.AssignBatch(SomeTask(), SomeReport(n, 0).report_id, n % 2 ? batch_a : batch_b));
    }
    auto listed = tx.ReportsAwaitingAggregation(SomeTask(), param, 0, 0, batch_a, 10);
    EXPECT_TRUE(listed);
    EXPECT_EQ(listed->size(), 2u);
    if (!listed || listed->size() != 2) return {};
    const uint64_t after_1 = (*listed)[0].upload_position;
    const uint64_t after_3 = (*listed)[1].upload_position;
    auto rest = tx.ReportsAwaitingAggregation(SomeTask(), param, 0, 0, batch_a, 10, after_1);
    EXPECT_TRUE(rest && rest->size() == 1 && (*rest)[0].report_id[0] == 3);
    auto any = tx.AnyReportAwaitingAggregation(SomeTask(), param, 0, 0, batch_a, after_1);
    EXPECT_TRUE(any && *any);  // Report 3.
    any = tx.AnyReportAwaitingAggregation(SomeTask(), param, 0, 0, batch_a, after_3);
    EXPECT_TRUE(any && !*any);  // Report 4 is later, but in batch b.
    EXPECT_TRUE(tx.RecordAggregatedReport(SomeTask(), SomeReport(3, 0).report_id, param));
    any = tx.AnyReportAwaitingAggregation(SomeTask(), param, 0, 0, batch_a, after_1);
    EXPECT_TRUE(any && !*any);  // Report 3 taken.
    return {};
  }));
}

// WhichRejected answers for a job's reports at once, by reading the task's
// rejections when they are no more than the reports asked about and by a
// lookup per report otherwise: both give the same answers, and another
// task's rejections count for nothing.
TEST_F(SqliteDatastoreTest, WhichRejectedAnswersWithFewAndWithManyRejections) {
  auto datastore = Open();
  TaskId other_task = SomeTask();
  other_task[0] = 2;
  auto id = [](uint8_t n) { return SomeReport(n, 0).report_id; };
  auto reject = [&](Transaction& tx, const TaskId& task, uint8_t n) {
    EXPECT_TRUE(tx.RecordRejectedReport(task, id(n), dap::ReportError::kVdafVerifyError));
  };
  const std::vector<ReportId> asked = {id(5), id(1), id(9), id(3)};
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    auto none = tx.WhichRejected(SomeTask(), asked);
    EXPECT_TRUE(none && *none == std::vector<bool>(4, false));
    auto empty = tx.WhichRejected(SomeTask(), {});
    EXPECT_TRUE(empty && empty->empty());
    // Few: two of this task's, one of another task's for a report asked about.
    reject(tx, SomeTask(), 9);
    reject(tx, SomeTask(), 3);
    reject(tx, other_task, 5);
    auto few = tx.WhichRejected(SomeTask(), asked);
    EXPECT_TRUE(few && *few == (std::vector<bool>{false, false, true, true}));
    // Many: more rejections than reports asked about.
    for (uint8_t n = 20; n < 30; ++n) reject(tx, SomeTask(), n);
    reject(tx, SomeTask(), 1);
    // Report 29 sorts after the first five rejections: only a lookup finds it.
    auto many = tx.WhichRejected(SomeTask(), std::vector<ReportId>{id(5), id(1), id(9), id(29)});
    EXPECT_TRUE(many && *many == (std::vector<bool>{false, true, true, true}));
    auto one = tx.WhichRejected(SomeTask(), std::vector<ReportId>{id(5)});
    EXPECT_TRUE(one && *one == std::vector<bool>{false});
    return {};
  }));
}

// Multi-level tasks list a batch whatever was taken for a parameter (they
// keep that in memory): only rejected reports stay out.
TEST_F(SqliteDatastoreTest, ReportsInBatchLeaveOutOnlyRejectedOnes) {
  auto datastore = Open();
  const Bytes batch_a(32, 0xa), batch_b(32, 0xb);
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    for (uint8_t n = 1; n <= 5; ++n) EXPECT_TRUE(tx.InsertClientReport(SomeReport(n, 10 + n)));
    EXPECT_TRUE(tx.RecordAggregatedReport(SomeTask(), SomeReport(1, 0).report_id, {7}));
    EXPECT_TRUE(tx.RecordRejectedReport(SomeTask(), SomeReport(2, 0).report_id,
                                        dap::ReportError::kVdafVerifyError));
    auto listed = tx.ReportsInBatch(SomeTask(), 0, 100, {}, 10, 0);
    EXPECT_TRUE(listed);
    if (!listed) return {};
    std::vector<uint8_t> order;
    for (const ClientReportRow& row : *listed) order.push_back(row.report_id[0]);
    EXPECT_EQ(order, (std::vector<uint8_t>{1, 3, 4, 5}));  // In upload order.
    auto page = tx.ReportsInBatch(SomeTask(), 0, 100, {}, 2, 0);
    EXPECT_TRUE(page && page->size() == 2);
    if (!page || page->size() != 2) return {};
    auto rest = tx.ReportsInBatch(SomeTask(), 0, 100, {}, 10, (*page)[1].upload_position);
    EXPECT_TRUE(rest && rest->size() == 2 && (*rest)[0].report_id[0] == 4);
    auto in_window = tx.ReportsInBatch(SomeTask(), 13, 15, {}, 10, 0);
    EXPECT_TRUE(in_window && in_window->size() == 2);  // Reports 3 and 4.
    // By batch key: reports 1, 3 and 5 in batch a, 2 and 4 in batch b.
    for (uint8_t n = 1; n <= 5; ++n) {
      EXPECT_TRUE(
          tx.AssignBatch(SomeTask(), SomeReport(n, 0).report_id, n % 2 ? batch_a : batch_b));
    }
    auto in_a = tx.ReportsInBatch(SomeTask(), 0, 0, batch_a, 10, 0);
    EXPECT_TRUE(in_a && in_a->size() == 3);
    auto in_b = tx.ReportsInBatch(SomeTask(), 0, 0, batch_b, 10, 0);
    EXPECT_TRUE(in_b && in_b->size() == 1 && (*in_b)[0].report_id[0] == 4);
    if (!in_a || in_a->size() != 3) return {};
    auto a_after = tx.ReportsInBatch(SomeTask(), 0, 0, batch_a, 10, (*in_a)[0].upload_position);
    EXPECT_TRUE(a_after && a_after->size() == 2);
    return {};
  }));
}

// The plan SQLite makes for `sql` on the file at `path`: one line per step.
std::vector<std::string> QueryPlan(const std::string& path, const std::string& sql) {
  std::vector<std::string> plan;
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  const std::string explain = "EXPLAIN QUERY PLAN " + sql;
  EXPECT_EQ(sqlite3_prepare_v2(db, explain.c_str(), -1, &statement, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  while (statement != nullptr && sqlite3_step(statement) == SQLITE_ROW) {
    plan.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(statement, 3)));
  }
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return plan;
}

// Garbage collection finds what it deletes by index: reading every held
// share or every job (rows of kilobytes) stalled an aggregator for half a
// minute at a million reports. The plan names no table scan (SQLite says
// "SCAN t" for one, "SEARCH t USING INDEX" otherwise), nor a search by task
// alone.
TEST_F(SqliteDatastoreTest, GarbageCollectionSearchesIndexes) {
  Open();
  std::vector<const char*> statements(std::begin(internal::kDeleteExpiredReports),
                                      std::end(internal::kDeleteExpiredReports));
  statements.insert(statements.end(), std::begin(internal::kDeleteOldJobs),
                    std::end(internal::kDeleteOldJobs));
  for (const char* sql : statements) {
    const std::vector<std::string> plan = QueryPlan(path_, sql);
    EXPECT_FALSE(plan.empty()) << sql;
    for (const std::string& step : plan) {
      EXPECT_FALSE(step.starts_with("SCAN")) << sql << ": " << step;
      // Not the task's every row either: the index bounds the time too.
      EXPECT_FALSE(step.ends_with("(task_id=?)")) << sql << ": " << step;
    }
  }
}

// Inserts reports 1 to `count` (time 10 + n, bytes {n, n, n}) with the
// columns of schema versions 4 and 5, whose rows held the report's bytes.
void InsertVersionFiveReports(const std::string& path, uint8_t count) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* insert = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "INSERT INTO client_reports (task_id, report_id, time, "
                               "encoded_report, batch_key, seq) VALUES (?, ?, ?, ?, x'', ?)",
                               -1, &insert, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  for (uint8_t n = 1; n <= count; ++n) {
    const ClientReportRow report = SomeReport(n, 10 + n);
    sqlite3_bind_blob(insert, 1, report.task_id.data(), 32, SQLITE_TRANSIENT);
    sqlite3_bind_blob(insert, 2, report.report_id.data(), 16, SQLITE_TRANSIENT);
    sqlite3_bind_int64(insert, 3, static_cast<int64_t>(report.time));
    sqlite3_bind_blob(insert, 4, report.encoded_report.data(),
                      static_cast<int>(report.encoded_report.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(insert, 5, n);
    EXPECT_EQ(sqlite3_step(insert), SQLITE_DONE) << sqlite3_errmsg(db);
    sqlite3_reset(insert);
  }
  sqlite3_finalize(insert);
  sqlite3_close(db);
}

// How many rows of reports' bytes the file holds.
int64_t StoredReportBodies(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* count = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM report_bodies", -1, &count, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  const int64_t rows = sqlite3_step(count) == SQLITE_ROW ? sqlite3_column_int64(count, 0) : -1;
  sqlite3_finalize(count);
  sqlite3_close(db);
  return rows;
}

// Version 6 keeps a report's bytes apart from its row; a version 5 file's
// reports keep theirs, in upload order, and new ones follow.
TEST_F(SqliteDatastoreTest, MigratesVersionFiveReportsToBodiesApart) {
  Open(5);
  InsertVersionFiveReports(path_, 3);
  auto datastore = Open();
  ASSERT_TRUE(datastore);
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    for (uint8_t n = 1; n <= 3; ++n) {
      auto stored = tx.GetClientReport(SomeTask(), SomeReport(n, 0).report_id);
      EXPECT_TRUE(stored && stored->has_value());
      if (!stored || !stored->has_value()) continue;
      EXPECT_EQ((*stored)->encoded_report, SomeReport(n, 0).encoded_report);
      EXPECT_EQ((*stored)->form, StoredReportForm::kAsUploaded);
      EXPECT_EQ((*stored)->time, 10u + n);
    }
    EXPECT_TRUE(tx.InsertClientReport(SomeReport(4, 14)));
    auto fourth = tx.GetClientReport(SomeTask(), SomeReport(4, 0).report_id);
    EXPECT_TRUE(fourth && fourth->has_value() &&
                (*fourth)->encoded_report == SomeReport(4, 0).encoded_report);
    auto listed = tx.ReportsInBatch(SomeTask(), 0, 100, {}, 10, 0);
    EXPECT_TRUE(listed && listed->size() == 4);
    for (size_t i = 0; listed && i < listed->size(); ++i) {
      EXPECT_EQ((*listed)[i].report_id[0], i + 1);
      EXPECT_TRUE((*listed)[i].encoded_report.empty());  // Listings carry no bytes.
    }
    return {};
  }));
  EXPECT_EQ(StoredReportBodies(path_), 4);
}

// Runs one statement on the file, outside any datastore.
void ExecSql(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &error), SQLITE_OK) << error;
  sqlite3_free(error);
  sqlite3_close(db);
}

// Stores a report as a version 6 datastore did: its row and its bytes, no
// form.
void InsertVersionSixReport(const std::string& path, const ClientReportRow& report) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* insert = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db,
                               "INSERT INTO client_reports (task_id, report_id, time, batch_key, "
                               "seq, body) VALUES (?, ?, ?, x'', 1, 1)",
                               -1, &insert, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_bind_blob(insert, 1, report.task_id.data(), 32, SQLITE_TRANSIENT);
  sqlite3_bind_blob(insert, 2, report.report_id.data(), 16, SQLITE_TRANSIENT);
  sqlite3_bind_int64(insert, 3, static_cast<int64_t>(report.time));
  EXPECT_EQ(sqlite3_step(insert), SQLITE_DONE) << sqlite3_errmsg(db);
  sqlite3_finalize(insert);
  ASSERT_EQ(sqlite3_prepare_v2(db, "INSERT INTO report_bodies (id, encoded_report) VALUES (1, ?)",
                               -1, &insert, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_bind_blob(insert, 1, report.encoded_report.data(),
                    static_cast<int>(report.encoded_report.size()), SQLITE_TRANSIENT);
  EXPECT_EQ(sqlite3_step(insert), SQLITE_DONE) << sqlite3_errmsg(db);
  sqlite3_finalize(insert);
  sqlite3_close(db);
}

// Version 7 records the form of a report's bytes: a version 6 file's
// reports were stored as uploaded, and new ones keep the form they are
// given; a form this build does not know is an error, not a guess.
TEST_F(SqliteDatastoreTest, MigratesVersionSixReportsAsUploaded) {
  Open(6);
  InsertVersionSixReport(path_, SomeReport(1, 11));
  auto datastore = Open();
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    auto old = tx.GetClientReport(SomeTask(), SomeReport(1, 0).report_id);
    EXPECT_TRUE(old && old->has_value() && (*old)->form == StoredReportForm::kAsUploaded &&
                (*old)->encoded_report == SomeReport(1, 0).encoded_report);
    ClientReportRow opened = SomeReport(2, 12);
    opened.form = StoredReportForm::kLeaderShareOpened;
    EXPECT_TRUE(tx.InsertClientReport(opened));
    auto fresh = tx.GetClientReport(SomeTask(), opened.report_id);
    EXPECT_TRUE(fresh && fresh->has_value() &&
                (*fresh)->form == StoredReportForm::kLeaderShareOpened &&
                (*fresh)->encoded_report == opened.encoded_report);
    return {};
  }));
  datastore.reset();
  ExecSql(path_, "UPDATE report_bodies SET form = 9");
  datastore = Open();
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    auto unknown = tx.GetClientReport(SomeTask(), SomeReport(1, 0).report_id);
    EXPECT_FALSE(unknown);
    if (!unknown) {
      EXPECT_EQ(unknown.error().code(), ErrorCode::kInternal);
    }
    return {};
  }));
}

// A report's bytes go with its row: a duplicate writes none, and deleted
// reports (garbage collection) leave none behind.
TEST_F(SqliteDatastoreTest, ReportBodiesFollowTheirRows) {
  auto datastore = Open();
  ASSERT_TRUE(datastore->Run([](Transaction& tx) -> Result<void> {
    for (uint8_t n = 1; n <= 3; ++n) EXPECT_TRUE(tx.InsertClientReport(SomeReport(n, 10 * n)));
    ClientReportRow duplicate = SomeReport(2, 99);
    duplicate.encoded_report = {9, 9};
    auto again = tx.InsertClientReport(duplicate);
    EXPECT_TRUE(again && !*again);
    auto kept = tx.GetClientReport(SomeTask(), duplicate.report_id);
    EXPECT_TRUE(kept && kept->has_value() &&
                (*kept)->encoded_report == SomeReport(2, 0).encoded_report);
    return {};
  }));
  EXPECT_EQ(StoredReportBodies(path_), 3);
  ASSERT_TRUE(datastore->Run([](Transaction& tx) -> Result<void> {
    auto deleted = tx.DeleteExpired(SomeTask(), 25, 0);  // Reports 1 and 2.
    EXPECT_TRUE(deleted && *deleted == 2);
    EXPECT_TRUE(tx.InsertClientReport(SomeReport(4, 40)));
    auto third = tx.GetClientReport(SomeTask(), SomeReport(3, 0).report_id);
    auto fourth = tx.GetClientReport(SomeTask(), SomeReport(4, 0).report_id);
    EXPECT_TRUE(third && third->has_value() &&
                (*third)->encoded_report == SomeReport(3, 0).encoded_report);
    EXPECT_TRUE(fourth && fourth->has_value() &&
                (*fourth)->encoded_report == SomeReport(4, 0).encoded_report);
    return {};
  }));
  EXPECT_EQ(StoredReportBodies(path_), 2);
}

// Heavy hitters' batch: every report in no batch yet, put into one in a
// single statement; reports already in a batch stay in theirs.
TEST_F(SqliteDatastoreTest, UnbatchedReportsAreCountedAndAssignedTogether) {
  auto datastore = Open();
  const Bytes first(32, 0xa), second(32, 0xb);
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    for (uint8_t n = 1; n <= 3; ++n) EXPECT_TRUE(tx.InsertClientReport(SomeReport(n, 10)));
    EXPECT_TRUE(tx.AssignBatch(SomeTask(), SomeReport(1, 0).report_id, first));
    auto unbatched = tx.CountUnbatchedReports(SomeTask());
    EXPECT_TRUE(unbatched && *unbatched == 2);
    auto assigned = tx.AssignUnbatchedReports(SomeTask(), second);
    EXPECT_TRUE(assigned && *assigned == 2);
    unbatched = tx.CountUnbatchedReports(SomeTask());
    EXPECT_TRUE(unbatched && *unbatched == 0);
    auto batches = tx.LeaderSelectedBatches(SomeTask());
    EXPECT_TRUE(batches && batches->size() == 2);
    if (batches && batches->size() == 2) {
      EXPECT_EQ((*batches)[0].batch_key, first);
      EXPECT_EQ((*batches)[0].reports, 1u);
      EXPECT_EQ((*batches)[1].batch_key, second);
      EXPECT_EQ((*batches)[1].reports, 2u);
    }
    auto in_second = tx.ReportsInBatch(SomeTask(), 0, 0, second, 10, 0);
    EXPECT_TRUE(in_second && in_second->size() == 2 && (*in_second)[0].report_id[0] == 2);
    auto none = tx.AssignUnbatchedReports(SomeTask(), first);
    EXPECT_TRUE(none && *none == 0);
    auto other_task = tx.CountUnbatchedReports(TaskId{});
    EXPECT_TRUE(other_task && *other_task == 0);
    return {};
  }));
}

// Version 5: a batch's listing (once per level of a walk) reads indexes
// only, never the reports' rows of kilobytes each, and needs no sort; a
// database of version 4 gets the indexes and lists as before.
TEST_F(SqliteDatastoreTest, ListingsOfABatchReadOnlyIndexesAlsoAfterMigrating) {
  Open(4);
  InsertVersionFiveReports(path_, 5);  // Version 4 has the same columns.
  auto datastore = Open();
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    auto listed = tx.ReportsInBatch(SomeTask(), 12, 100, {}, 10, 0);
    EXPECT_TRUE(listed && listed->size() == 4 && (*listed)[0].report_id[0] == 2 &&
                (*listed)[0].time == 12);
    return {};
  }));
  for (bool by_batch_key : {false, true}) {
    for (bool after : {false, true}) {
      const std::vector<std::string> plan =
          QueryPlan(path_, internal::ReportsInBatchQuery(by_batch_key, after));
      std::string reads_reports;
      for (const std::string& step : plan) {
        EXPECT_EQ(step.find("TEMP B-TREE"), std::string::npos) << step;
        if (step.find(" c ") != std::string::npos || step.ends_with(" c")) reads_reports = step;
      }
      EXPECT_NE(reads_reports.find("COVERING INDEX"), std::string::npos)
          << "by batch key " << by_batch_key << ", after " << after << ": " << reads_reports;
    }
  }
}

// Version 4 finds jobs by their parameter's digest, also jobs stored before.
TEST_F(SqliteDatastoreTest, MigratesVersionThreeJobsToBeFoundByParameter) {
  Open(3);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  const char* version_three_rows = R"sql(
INSERT INTO aggregation_jobs (task_id, job_id, agg_param, batch_key, state, step, helper_url,
  held_reports, last_request_hash, last_response, created_at, init_request_hash, init_response)
VALUES (x'0100000000000000000000000000000000000000000000000000000000000000', x'01000000000000000000000000000000', x'aa', x'',
        1, 1, '', 0, x'', x'', 7, x'', x''),
       (x'0100000000000000000000000000000000000000000000000000000000000000', x'02000000000000000000000000000000', x'bb', x'',
        0, 0, '', 0, x'', x'', 8, x'', x'');
)sql";
  ASSERT_EQ(sqlite3_exec(db, version_three_rows, nullptr, nullptr, nullptr), SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);

  auto datastore = Open();
  ASSERT_TRUE(datastore);
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    auto with_aa = tx.JobsWithParam(SomeTask(), {0xaa});
    EXPECT_TRUE(with_aa && with_aa->size() == 1 && (*with_aa)[0][0] == 1);
    // A job stored now is found too, and moves when its parameter changes.
    AggregationJobRow job;
    job.task_id = SomeTask();
    job.job_id[0] = 3;
    job.agg_param = {0xaa};
    EXPECT_TRUE(tx.PutAggregationJob(job));
    with_aa = tx.JobsWithParam(SomeTask(), {0xaa});
    EXPECT_TRUE(with_aa && with_aa->size() == 2);
    job.agg_param = {0xcc};
    EXPECT_TRUE(tx.PutAggregationJob(job));
    with_aa = tx.JobsWithParam(SomeTask(), {0xaa});
    EXPECT_TRUE(with_aa && with_aa->size() == 1);
    auto with_bb = tx.JobsWithParam(SomeTask(), {0xbb});
    EXPECT_TRUE(with_bb && with_bb->size() == 1 && (*with_bb)[0][0] == 2);
    auto other_task = tx.JobsWithParam(TaskId{}, {0xaa});
    EXPECT_TRUE(other_task && other_task->empty());
    return {};
  }));
}

TEST_F(SqliteDatastoreTest, LeasesExpireAndAreReleasedAtStart) {
  auto datastore = Open();
  AggregationJobRow job;
  job.task_id = SomeTask();
  job.job_id[0] = 1;
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) { return tx.PutAggregationJob(job); }));
  auto lease = [&](int64_t now) {
    std::vector<Lease> leases;
    EXPECT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
      auto taken = tx.LeaseAggregationJobs(now, 1000, 10);
      EXPECT_TRUE(taken);
      leases = *taken;
      return {};
    }));
    return leases;
  };
  auto first = lease(5000);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].attempts, 1u);
  EXPECT_TRUE(lease(5500).empty());  // Still leased.
  auto second = lease(6001);         // Expired.
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].attempts, 2u);
  ASSERT_TRUE(datastore->Run([](Transaction& tx) { return tx.ReleaseAllLeases(); }));
  EXPECT_EQ(lease(6002).size(), 1u);
  // A finished job is never leased.
  job.state = JobState::kFinished;
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) { return tx.PutAggregationJob(job); }));
  EXPECT_TRUE(lease(100000).empty());
}

TEST_F(SqliteDatastoreTest, BatchAggregationsAndCollectedBuckets) {
  auto datastore = Open();
  ASSERT_TRUE(datastore->Run([](Transaction& tx) -> Result<void> {
    for (dap::Time time : {5, 6, 9}) {
      BatchAggregationRow row;
      row.task_id = SomeTask();
      row.bucket_key = TimeBucketKey(time);
      row.agg_param = {};
      row.aggregate = {1, 2, 3};
      row.report_count = time;
      EXPECT_TRUE(tx.PutBatchAggregation(row));
    }
    auto range = tx.BatchAggregationsInRange(SomeTask(), {}, TimeBucketKey(5), TimeBucketKey(8));
    EXPECT_TRUE(range);
    EXPECT_EQ(range->size(), 2u);
    EXPECT_TRUE(tx.MarkBucketCollected(SomeTask(), TimeBucketKey(6)));
    EXPECT_TRUE(*tx.AnyBucketCollected(SomeTask(), TimeBucketKey(0), TimeBucketKey(7)));
    EXPECT_FALSE(*tx.AnyBucketCollected(SomeTask(), TimeBucketKey(7), TimeBucketKey(100)));
    EXPECT_TRUE(tx.AppendBucketAggParam(SomeTask(), TimeBucketKey(6), {1}));
    EXPECT_TRUE(tx.AppendBucketAggParam(SomeTask(), TimeBucketKey(6), {2}));
    auto params = tx.BucketAggParams(SomeTask(), TimeBucketKey(6));
    EXPECT_TRUE(params);
    EXPECT_EQ(*params, (std::vector<Bytes>{{1}, {2}}));
    return {};
  }));
}

TEST_F(SqliteDatastoreTest, GarbageCollectionDeletesOldReportsAndFinishedJobs) {
  auto datastore = Open();
  ASSERT_TRUE(datastore->Run([](Transaction& tx) -> Result<void> {
    EXPECT_TRUE(tx.InsertClientReport(SomeReport(1, 10)));
    EXPECT_TRUE(tx.InsertClientReport(SomeReport(2, 20)));
    AggregationJobRow old_job;
    old_job.task_id = SomeTask();
    old_job.job_id[0] = 1;
    old_job.state = JobState::kFinished;
    old_job.created_at = 100;
    AggregationJobRow running = old_job;
    running.job_id[0] = 2;
    running.state = JobState::kInProgress;
    EXPECT_TRUE(tx.PutAggregationJob(old_job));
    EXPECT_TRUE(tx.PutAggregationJob(running));
    auto deleted = tx.DeleteExpired(SomeTask(), 15, 200);
    EXPECT_TRUE(deleted);
    EXPECT_EQ(*deleted, 2u);  // Report 1 and the finished job.
    EXPECT_FALSE(tx.GetClientReport(SomeTask(), SomeReport(1, 0).report_id)->has_value());
    EXPECT_TRUE(tx.GetClientReport(SomeTask(), SomeReport(2, 0).report_id)->has_value());
    EXPECT_FALSE(tx.GetAggregationJob(SomeTask(), old_job.job_id)->has_value());
    EXPECT_TRUE(tx.GetAggregationJob(SomeTask(), running.job_id)->has_value());
    return {};
  }));
}

// Two aggregators on one file would each free the other's leases and drive
// the same jobs: the second to open it is refused until the first is gone.
TEST_F(SqliteDatastoreTest, OneDatastoreAtATimeHoldsTheFile) {
  std::unique_ptr<Datastore> first = Open();
  ASSERT_NE(first, nullptr);
  auto second = OpenSqliteDatastore({path_});
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code(), ErrorCode::kIoError);
  EXPECT_NE(second.error().message().find("database " + path_ + ": in use by another process (" +
                                          path_ + ".lock is locked)"),
            std::string::npos)
      << second.error().message();
  first.reset();
  auto again = OpenSqliteDatastore({path_});
  EXPECT_TRUE(again) << again.error().ToString();
  // A database without a file has no lock to take.
  auto memory_one = OpenSqliteDatastore({":memory:"});
  auto memory_two = OpenSqliteDatastore({":memory:"});
  EXPECT_TRUE(memory_one && memory_two);
}

TEST_F(SqliteDatastoreTest, RefusesCheckpointBytesBelowOne) {
  SqliteOptions options{path_};
  options.checkpoint_bytes = 0;
  auto refused = OpenSqliteDatastore(options);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(refused.error().message().find("checkpoint_bytes"), std::string::npos);
}

// The page size of the file at `path`, as SQLite reports it.
int64_t PageSizeOf(const std::string& path) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* statement = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &statement, nullptr), SQLITE_OK);
  EXPECT_EQ(sqlite3_step(statement), SQLITE_ROW);
  const int64_t size = sqlite3_column_int64(statement, 0);
  sqlite3_finalize(statement);
  sqlite3_close(db);
  return size;
}

TEST_F(SqliteDatastoreTest, RefusesPageSizesSqliteDoesNotHave) {
  for (int page_size : {0, 256, 1000, 131072}) {
    SqliteOptions options{path_};
    options.page_size = page_size;
    auto refused = OpenSqliteDatastore(options);
    ASSERT_FALSE(refused) << page_size;
    EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(refused.error().message().find("page_size"), std::string::npos);
  }
  EXPECT_FALSE(std::filesystem::exists(path_));  // Refused before any file is made.
}

TEST_F(SqliteDatastoreTest, NewFilesTakeThePageSizeAndOldOnesKeepTheirs) {
  // A file made by default has 16 KiB pages.
  { ASSERT_TRUE(OpenSqliteDatastore({path_})); }
  EXPECT_EQ(PageSizeOf(path_), 16384);
  // One made with 4 KiB pages (as before the option) keeps them when opened
  // with the default, and what it holds reads back.
  const std::string old_path = folder_ + "/old.sqlite";
  const ClientReportRow report = SomeReport(7, 70);
  {
    SqliteOptions options{old_path};
    options.page_size = 4096;
    auto datastore = OpenSqliteDatastore(options);
    ASSERT_TRUE(datastore) << datastore.error().ToString();
    ASSERT_TRUE((*datastore)->Run([&](Transaction& tx) -> Result<void> {
      auto inserted = tx.InsertClientReport(report);
      if (!inserted) return std::unexpected(inserted.error());
      return {};
    }));
  }
  EXPECT_EQ(PageSizeOf(old_path), 4096);
  auto reopened = OpenSqliteDatastore({old_path});
  ASSERT_TRUE(reopened) << reopened.error().ToString();
  EXPECT_EQ(PageSizeOf(old_path), 4096);
  ASSERT_TRUE((*reopened)->Run([&](Transaction& tx) -> Result<void> {
    auto read = tx.GetClientReport(report.task_id, report.report_id);
    EXPECT_TRUE(read && read->has_value());
    if (read && read->has_value()) {
      EXPECT_EQ((*read)->encoded_report, report.encoded_report);
    }
    return {};
  }));
}

// With a small threshold, the log is copied into the database file many
// times while reports are written (by the checkpoint thread), and every
// report is there after the datastore is closed and opened again.
TEST_F(SqliteDatastoreTest, CheckpointsAsItGoesAndLosesNoWrite) {
  constexpr int kReports = 100;
  constexpr size_t kReportBytes = 16384;
  {
    SqliteOptions options{path_};
    options.checkpoint_bytes = 4 * 16384;  // Four pages.
    auto datastore = OpenSqliteDatastore(options);
    ASSERT_TRUE(datastore) << datastore.error().ToString();
    for (int n = 0; n < kReports; ++n) {
      ClientReportRow row = SomeReport(static_cast<uint8_t>(n), n);
      row.encoded_report.assign(kReportBytes, static_cast<uint8_t>(n));
      ASSERT_TRUE((*datastore)->Run([&](Transaction& tx) -> Result<void> {
        auto inserted = tx.InsertClientReport(row);
        if (!inserted) return std::unexpected(inserted.error());
        return {};
      }));
    }
    canopy::testing::EventuallyTrue(
        [&] { return std::filesystem::file_size(path_) >= kReports * kReportBytes; });
    EXPECT_GE(std::filesystem::file_size(path_), kReports * kReportBytes);
  }
  auto datastore = Open();
  ASSERT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
    for (int n = 0; n < kReports; ++n) {
      auto report =
          tx.GetClientReport(SomeTask(), SomeReport(static_cast<uint8_t>(n), 0).report_id);
      EXPECT_TRUE(report && report->has_value()) << n;
      if (report && report->has_value()) {
        EXPECT_EQ((*report)->encoded_report, Bytes(kReportBytes, static_cast<uint8_t>(n))) << n;
      }
    }
    return {};
  }));
}

// Read runs on a connection of its own: it sees what the writer committed,
// not what a transaction still under way wrote, and it does not wait for
// that transaction (which holds the writer's lock until the test lets it
// go).
TEST_F(SqliteDatastoreTest, ReadsRunBesideTheWriterAndSeeWhatItCommitted) {
  auto datastore = Open();
  ASSERT_TRUE(datastore->Run([](Transaction& tx) -> Result<void> {
    auto inserted = tx.InsertClientReport(SomeReport(1, 10));
    if (!inserted) return std::unexpected(inserted.error());
    return {};
  }));
  std::promise<void> written;
  std::promise<void> let_go;
  std::shared_future<void> let_go_signal = let_go.get_future().share();
  std::thread writer([&] {
    EXPECT_TRUE(datastore->Run([&](Transaction& tx) -> Result<void> {
      auto inserted = tx.InsertClientReport(SomeReport(2, 20));
      if (!inserted) return std::unexpected(inserted.error());
      written.set_value();
      let_go_signal.wait();
      return {};
    }));
  });
  written.get_future().wait();
  auto seen = [&](uint8_t n) {
    bool found = false;
    EXPECT_TRUE(datastore->Read([&](Transaction& tx) -> Result<void> {
      auto report = tx.GetClientReport(SomeTask(), SomeReport(n, 0).report_id);
      if (!report) return std::unexpected(report.error());
      found = report->has_value();
      return {};
    }));
    return found;
  };
  // Both answered while the writer's transaction is still open (a read that
  // waited for the writer would wait for the test to let it go).
  auto reads = std::async(std::launch::async, [&] { return std::pair(seen(1), seen(2)); });
  const bool answered = reads.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  let_go.set_value();
  writer.join();
  ASSERT_TRUE(answered) << "the reads waited for the writer";
  EXPECT_EQ(reads.get(), std::pair(true, false));
  EXPECT_TRUE(seen(2));
}

TEST_F(SqliteDatastoreTest, ReadsRefuseToWrite) {
  auto datastore = Open();
  auto refused = datastore->Read([](Transaction& tx) -> Result<void> {
    auto inserted = tx.InsertClientReport(SomeReport(1, 10));
    if (!inserted) return std::unexpected(inserted.error());
    return {};
  });
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kIoError);
  ASSERT_TRUE(datastore->Run([](Transaction& tx) -> Result<void> {
    auto report = tx.GetClientReport(SomeTask(), SomeReport(1, 10).report_id);
    EXPECT_TRUE(report && !report->has_value());
    return {};
  }));
}

// Without reader connections (none asked for, or a database in memory),
// Read is Run: it still reads. Negative counts are refused.
TEST_F(SqliteDatastoreTest, ReadsWithoutReaderConnectionsRunAsTransactions) {
  SqliteOptions no_readers{path_};
  no_readers.readers = 0;
  for (const SqliteOptions& options : {no_readers, SqliteOptions{":memory:"}}) {
    auto datastore = OpenSqliteDatastore(options);
    ASSERT_TRUE(datastore) << datastore.error().ToString();
    ASSERT_TRUE((*datastore)->Run([](Transaction& tx) -> Result<void> {
      auto inserted = tx.InsertClientReport(SomeReport(1, 10));
      if (!inserted) return std::unexpected(inserted.error());
      return {};
    }));
    bool found = false;
    ASSERT_TRUE((*datastore)->Read([&](Transaction& tx) -> Result<void> {
      auto report = tx.GetClientReport(SomeTask(), SomeReport(1, 10).report_id);
      if (!report) return std::unexpected(report.error());
      found = report->has_value();
      return {};
    }));
    EXPECT_TRUE(found) << options.path;
  }
  SqliteOptions negative{path_};
  negative.readers = -1;
  auto refused = OpenSqliteDatastore(negative);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kInvalidArgument);
}

// Many reads between the writes, from several threads, while the log is
// checkpointed every few pages (the checkpoint's last pass holds the readers
// back): every read sees every report committed before it began.
TEST_F(SqliteDatastoreTest, ReadsBetweenCheckpointsSeeEveryCommittedReport) {
  constexpr int kReports = 60;
  constexpr size_t kReportBytes = 16384;
  SqliteOptions options{path_};
  options.checkpoint_bytes = 4 * 16384;
  auto opened = OpenSqliteDatastore(options);
  ASSERT_TRUE(opened) << opened.error().ToString();
  Datastore& datastore = **opened;
  for (int n = 0; n < kReports; ++n) {
    ClientReportRow row = SomeReport(static_cast<uint8_t>(n), n);
    row.encoded_report.assign(kReportBytes, static_cast<uint8_t>(n));
    ASSERT_TRUE(datastore.Run([&](Transaction& tx) -> Result<void> {
      auto inserted = tx.InsertClientReport(row);
      if (!inserted) return std::unexpected(inserted.error());
      return {};
    }));
    std::vector<std::thread> readers;
    for (int r = 0; r < 3; ++r) {
      readers.emplace_back([&] {
        EXPECT_TRUE(datastore.Read([&](Transaction& tx) -> Result<void> {
          for (int k = 0; k <= n; ++k) {
            auto report =
                tx.GetClientReport(SomeTask(), SomeReport(static_cast<uint8_t>(k), 0).report_id);
            if (!report) return std::unexpected(report.error());
            EXPECT_TRUE(report->has_value() &&
                        (*report)->encoded_report == Bytes(kReportBytes, static_cast<uint8_t>(k)))
                << k << " after " << n;
          }
          return {};
        }));
      });
    }
    for (std::thread& reader : readers) reader.join();
  }
}

}  // namespace
}  // namespace canopy::aggregator
