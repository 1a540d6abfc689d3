// The aggregator's durable state, behind an interface: HTTP handlers and the
// leader's drivers talk to `Datastore` and `Transaction`, never to SQL, so a
// second backend (PostgreSQL, for several replicas on one database) can be
// added without touching them (DESIGN.md, "Storage").
//
// Every state change happens inside `Datastore::Run`, which runs a function
// in one transaction: either everything it wrote is committed, or nothing.
// That is what makes a crash at any moment safe: a report is acknowledged
// only after the transaction that stored it has committed, and an output
// share is added to a batch aggregation in the same transaction that marks
// its report aggregation finished and records its report ID, so it is
// counted exactly once.
//
// Values are stored as bytes in their DAP or VDAF encodings; the datastore
// does not interpret them. Identifiers:
//   - a *bucket key* names one batch bucket (DAP-19, "Batch Buckets"): the
//     8-byte big-endian start of a one-unit interval (time_interval tasks) or
//     a 32-byte BatchID (leader_selected tasks);
//   - an *aggregation parameter* is its encoding (empty for Prio3).
#ifndef CANOPY_AGGREGATOR_DATASTORE_H_
#define CANOPY_AGGREGATOR_DATASTORE_H_

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "crypto/error.h"
#include "crypto/secure_wipe.h"
#include "dap/messages.h"

namespace canopy::aggregator {

using dap::Bytes;
using dap::ReportId;
using dap::TaskId;
using JobId = std::array<uint8_t, 16>;
using Checksum = std::array<uint8_t, 32>;

// A task as provisioned: its ID and its TaskDefinition, serialised (the
// datastore does not parse it).
struct TaskRow {
  TaskId task_id{};
  Bytes definition;
  std::string source;  // "file" or "admin": where it came from.
};

// How a ClientReportRow's encoded_report holds its report.
enum class StoredReportForm : uint8_t {
  // The dap::Report as uploaded: the leader's input share still encrypted.
  // Rows stored before schema version 7 are all of this form.
  kAsUploaded = 0,
  // The leader opened its input share at upload:
  // internal::EncodeOpenedReport's encoding, with the share in plaintext.
  kLeaderShareOpened = 1,
};

// An uploaded report, at the leader. In the kLeaderShareOpened form,
// encoded_report holds the leader's plaintext share: whoever reads such a
// row wipes it after use (internal::WipeIfOpened).
struct ClientReportRow {
  TaskId task_id{};
  ReportId report_id{};
  dap::Time time = 0;
  Bytes encoded_report;  // The report, in `form`.
  StoredReportForm form = StoredReportForm::kAsUploaded;
  // leader_selected tasks: the batch the leader put the report in (empty
  // until then).
  Bytes batch_key;
  // ReportsAwaitingAggregation and ReportsInBatch: whether the report passed
  // an earlier level of a walk (it has a held_reports row), so that the
  // helper holds its share and later levels name it by ID.
  bool aggregated_before = false;
  // ReportsAwaitingAggregation only: the report's place in upload order
  // (increasing), from which a later listing can go on (its `after`).
  uint64_t upload_position = 0;
};

// A report that passed a level of a multi-level walk. The helper keeps its
// shares here for the walk (decrypted once, verified at every later level
// from this); the leader keeps only the mark.
struct HeldReportRow {
  TaskId task_id{};
  ReportId report_id{};
  dap::Time time = 0;
  Bytes bucket_key;
  // The helper's. The leader keeps both empty: the row marks a report the
  // helper holds, and the leader's client_reports row has the report (its
  // own input share opened at upload, or encrypted in rows stored before
  // schema 7), from which it prepares the report again after a restart.
  // Earlier versions of the leader kept its decrypted input share here;
  // such rows still count as marks, and their shares are not read.
  Bytes public_share;
  Bytes input_share;  // The VDAF input share (secret: wiped when the row goes).

  HeldReportRow() = default;
  HeldReportRow(const TaskId& task, const ReportId& report, dap::Time report_time, Bytes bucket,
                Bytes public_bytes, Bytes input_bytes)
      : task_id(task),
        report_id(report),
        time(report_time),
        bucket_key(std::move(bucket)),
        public_share(std::move(public_bytes)),
        input_share(std::move(input_bytes)) {}
  HeldReportRow(HeldReportRow&& other) noexcept = default;
  HeldReportRow& operator=(HeldReportRow&& other) noexcept {
    crypto::SecureWipeVector(input_share);
    task_id = other.task_id;
    report_id = other.report_id;
    time = other.time;
    bucket_key = std::move(other.bucket_key);
    public_share = std::move(other.public_share);
    input_share = std::move(other.input_share);
    return *this;
  }
  HeldReportRow(const HeldReportRow&) = delete;
  HeldReportRow& operator=(const HeldReportRow&) = delete;
  ~HeldReportRow() { crypto::SecureWipeVector(input_share); }
};

enum class JobState : uint8_t {
  kInProgress = 0,  // Leader: to be driven. Helper: waiting for a continue.
  kFinished = 1,
  kAbandoned = 2,
};

// An aggregation job. The leader drives its own jobs (leases them); the
// helper keeps its answer to each step for idempotent retries.
struct AggregationJobRow {
  TaskId task_id{};
  JobId job_id{};
  Bytes agg_param;
  Bytes batch_key;  // leader_selected: the batch; empty otherwise.
  JobState state = JobState::kInProgress;
  uint16_t step = 0;
  // Leader: the helper's URL of this job (its Location answer), once known.
  std::string helper_url;
  // Leader: whether the job names held reports (multi-level extension).
  bool held_reports = false;
  // Helper: the hash of the last request handled and the answer given: for
  // an init request its ContentDigest, SHA-256(task ID || body) (builds
  // before 2026-11-27 stored SHA-256(body)); for a continuation SHA-256(body).
  Bytes last_request_hash;
  Bytes last_response;
  // Helper: the same for the job's init request, kept after the job has
  // moved on. A leader that crashed between the steps of a job redoes it
  // from the init (it keeps nothing of a job between steps), and gets the
  // same answer again.
  Bytes init_request_hash;
  Bytes init_response;
  int64_t created_at = 0;  // POSIX seconds.
};

enum class ReportAggregationState : uint8_t {
  kStart = 0,     // Leader: not yet sent to the helper.
  kWaiting = 1,   // Waiting for the peer's next message.
  kFinished = 2,  // Output share committed.
  kFailed = 3,    // Rejected with `error`.
};

// One report in one aggregation job, in the job's order.
struct ReportAggregationRow {
  TaskId task_id{};
  JobId job_id{};
  uint32_t ord = 0;
  ReportId report_id{};
  dap::Time time = 0;
  Bytes bucket_key;
  ReportAggregationState state = ReportAggregationState::kStart;
  dap::ReportError error = dap::ReportError::kInvalidMessage;
  // The VDAF verification state between steps (poplar::EncodeVerifyState)
  // and the outbound ping-pong message of the last step, if any.
  Bytes verify_state;
  Bytes last_message;
  // Helper, multi-level tasks: the leader's first message for the report.
  // Such a job's states between its steps are kept in memory only (empty
  // verify_state); this and the held input share compute one again when it
  // is missing (see StepStateCache), with the verification key the first
  // step used. Stored in job records only.
  Bytes init_payload;
  uint8_t verification_key_id = 0;
};

// The running aggregate of one bucket for one aggregation parameter.
struct BatchAggregationRow {
  TaskId task_id{};
  Bytes bucket_key;
  Bytes agg_param;
  Bytes aggregate;  // Encoded aggregate share; empty while no report counted.
  uint64_t report_count = 0;
  Checksum checksum{};     // XOR of SHA-256(report ID) over counted reports.
  dap::Time min_time = 0;  // Smallest and largest report time counted.
  dap::Time max_time = 0;
};

enum class CollectionState : uint8_t {
  kStart = 0,      // Waiting for aggregation, then for the helper.
  kFinished = 1,   // `response` holds the CollectionJobResp.
  kAbandoned = 2,  // Deleted by the collector, or failed (`error`).
  kFailed = 3,
};

// A collection job at the leader.
struct CollectionJobRow {
  TaskId task_id{};
  JobId job_id{};
  Bytes request;  // The CollectionJobReq, as received.
  Bytes agg_param;
  // The buckets of the batch, in order (the batch's identity).
  std::vector<Bytes> bucket_keys;
  CollectionState state = CollectionState::kStart;
  Bytes response;     // kFinished: the CollectionJobResp.
  std::string error;  // kFailed: a problem detail for the collector.
  int64_t created_at = 0;
};

// An aggregate-share answer at the helper, kept for idempotent retries.
struct AggregateShareRow {
  TaskId task_id{};
  JobId share_id{};
  Bytes request_hash;
  Bytes response;  // The AggregateShare.
};

// A job leased to one driver until `expiry` (POSIX milliseconds).
struct Lease {
  TaskId task_id{};
  JobId job_id{};
  int64_t expiry_ms = 0;
  uint32_t attempts = 0;  // Leases taken so far, this one included.
};

// What one transaction can read and write. Methods return kIoError (naming
// the operation) when the backend fails, and kInternal for stored values
// that violate the schema. "Put" methods insert or replace.
class Transaction {
 public:
  virtual ~Transaction() = default;

  // --- Tasks.
  virtual Result<void> PutTask(const TaskRow& task) = 0;
  virtual Result<bool> DeleteTask(const TaskId& task_id) = 0;
  virtual Result<std::vector<TaskRow>> ListTasks() = 0;

  // --- Leader: uploaded reports.
  // Inserts the report unless one with its ID exists in the task; returns
  // false (and writes nothing) for a duplicate.
  virtual Result<bool> InsertClientReport(const ClientReportRow& report) = 0;
  virtual Result<std::optional<ClientReportRow>> GetClientReport(const TaskId& task_id,
                                                                 const ReportId& report_id) = 0;
  // Reports of the task, oldest upload first, that were not aggregated
  // with `agg_param` (the leader records that when it puts a report into a
  // job, see RecordAggregatedReport) and were never rejected, among those
  // with time in [time_start, time_end) (time_interval) or in `batch_key`
  // (when not empty). At most `limit`. The rows carry no encoded_report (it
  // is empty): listing is done at every level of a walk, and reading each
  // report's kilobytes there would cost more than the level's verification.
  // With `after` > 0, only reports later in upload order than the row whose
  // upload_position it is: a listing that goes on where the last one ended
  // reads only what it returns, where one from the start reads past every
  // report taken since.
  virtual Result<std::vector<ClientReportRow>> ReportsAwaitingAggregation(
      const TaskId& task_id, const Bytes& agg_param, dap::Time time_start, dap::Time time_end,
      const Bytes& batch_key, size_t limit, uint64_t after = 0) = 0;
  // As ReportsAwaitingAggregation, but whether a report was taken for a
  // parameter is not asked: every report of the batch never rejected.
  // Multi-level tasks keep which reports each level took in memory
  // (LevelClaims) and filter this listing with it.
  virtual Result<std::vector<ClientReportRow>> ReportsInBatch(const TaskId& task_id,
                                                              dap::Time time_start,
                                                              dap::Time time_end,
                                                              const Bytes& batch_key, size_t limit,
                                                              uint64_t after) = 0;
  // Whether ReportsAwaitingAggregation would list any report (with the
  // same `after`): it stops at the first one found, where a listing of one
  // reads and sorts the batch.
  virtual Result<bool> AnyReportAwaitingAggregation(const TaskId& task_id, const Bytes& agg_param,
                                                    dap::Time time_start, dap::Time time_end,
                                                    const Bytes& batch_key, uint64_t after = 0) = 0;
  // leader_selected: reports not yet in any batch, oldest first (at most
  // `limit`); without encoded_report, as above.
  virtual Result<std::vector<ClientReportRow>> UnbatchedReports(const TaskId& task_id,
                                                                size_t limit) = 0;
  virtual Result<void> AssignBatch(const TaskId& task_id, const ReportId& report_id,
                                   const Bytes& batch_key) = 0;
  // leader_selected: how many reports of the task are in no batch yet.
  virtual Result<uint64_t> CountUnbatchedReports(const TaskId& task_id) = 0;
  // leader_selected: puts every report of the task that is in no batch yet
  // into `batch_key` (heavy hitters: a walk's batch is every report not in
  // an earlier one); returns how many. One statement, whatever the count.
  virtual Result<uint64_t> AssignUnbatchedReports(const TaskId& task_id,
                                                  const Bytes& batch_key) = 0;
  // leader_selected: how many reports each batch of the task holds, per
  // batch key, and whether it has been bound to a collection.
  struct BatchSize {
    Bytes batch_key;
    uint64_t reports = 0;
  };
  virtual Result<std::vector<BatchSize>> LeaderSelectedBatches(const TaskId& task_id) = 0;

  // --- Both: reports kept across a walk.
  virtual Result<void> PutHeldReport(const HeldReportRow& report) = 0;
  virtual Result<std::optional<HeldReportRow>> GetHeldReport(const TaskId& task_id,
                                                             const ReportId& report_id) = 0;
  // Whether the report has a held_reports row (at the leader: its mark that
  // the helper holds the report), without reading the row's shares.
  virtual Result<bool> IsHeld(const TaskId& task_id, const ReportId& report_id) = 0;

  // --- Both: which (report, aggregation parameter) pairs were aggregated,
  // and which reports were rejected (they stay out of later levels). The
  // helper records a pair when it verifies the report's first step; the
  // leader when it puts the report into a job (and forgets it when the job
  // was abandoned: its reports may go into a new job). Multi-level tasks
  // record no pairs: their jobs' records are the record (LevelClaims).
  // Returns false (and writes nothing) when the pair was recorded already.
  virtual Result<bool> RecordAggregatedReport(const TaskId& task_id, const ReportId& report_id,
                                              const Bytes& agg_param) = 0;
  // Records that the report was aggregated at all, with whichever parameter
  // (what WasAggregated with `any_param` and GetReportHistory's
  // aggregated_before answer). Only the helper asks that, so only the helper
  // records it, once per report: the leader's records would never be read,
  // and each costs a lookup per report and level.
  virtual Result<void> RecordSeenReport(const TaskId& task_id, const ReportId& report_id) = 0;
  virtual Result<void> ForgetAggregatedReport(const TaskId& task_id, const ReportId& report_id,
                                              const Bytes& agg_param) = 0;
  // Whether the report was aggregated with `agg_param` (or, when
  // `any_param`, whether RecordSeenReport recorded it: ForgetAggregatedReport
  // does not change that answer; only the helper asks it, and it never
  // forgets).
  virtual Result<bool> WasAggregated(const TaskId& task_id, const ReportId& report_id,
                                     const Bytes& agg_param, bool any_param) = 0;
  virtual Result<void> RecordRejectedReport(const TaskId& task_id, const ReportId& report_id,
                                            dap::ReportError error) = 0;
  // Which of `report_ids` RecordRejectedReport recorded for the task: entry
  // i answers for report_ids[i]. One call for a job's reports, so that a
  // backend can answer with one lookup when the task has few rejections.
  virtual Result<std::vector<bool>> WhichRejected(const TaskId& task_id,
                                                  std::span<const ReportId> report_ids) = 0;
  // The reports recorded with RecordAggregatedReport for `agg_param`
  // (multi-level tasks no longer record them: their jobs' records say which
  // reports each level took, see JobsWithParam).
  virtual Result<std::vector<ReportId>> AggregatedReportsWithParam(const TaskId& task_id,
                                                                   const Bytes& agg_param) = 0;
  // All of the above for one report at once (one lookup where a request
  // checks every report of a job).
  struct ReportHistory {
    bool rejected = false;
    bool aggregated_with_param = false;
    bool aggregated_before = false;  // With any parameter.
  };
  virtual Result<ReportHistory> GetReportHistory(const TaskId& task_id, const ReportId& report_id,
                                                 const Bytes& agg_param) = 0;

  // --- Aggregation jobs and their reports.
  virtual Result<void> PutAggregationJob(const AggregationJobRow& job) = 0;
  virtual Result<std::optional<AggregationJobRow>> GetAggregationJob(const TaskId& task_id,
                                                                     const JobId& job_id) = 0;
  // A row per report, as schema versions before 3 stored jobs: GetJobReports
  // reads them for jobs such a version left in progress; new jobs are
  // written with PutJobReports.
  virtual Result<void> PutReportAggregation(const ReportAggregationRow& row) = 0;
  virtual Result<std::vector<ReportAggregationRow>> GetReportAggregations(const TaskId& task_id,
                                                                          const JobId& job_id) = 0;
  // All the report aggregations of a job as one record, written whole at
  // each step (both aggregators read and write every report of a job at
  // once, so one record spares a B-tree update per report and step). Get
  // returns the rows in the job's order: the record, or for a job without
  // one its rows of GetReportAggregations (empty when none were stored).
  virtual Result<void> PutJobReports(const TaskId& task_id, const JobId& job_id,
                                     const std::vector<ReportAggregationRow>& rows) = 0;
  virtual Result<std::vector<ReportAggregationRow>> GetJobReports(const TaskId& task_id,
                                                                  const JobId& job_id) = 0;
  // Every job of the task stored with `agg_param`, whatever its state.
  virtual Result<std::vector<JobId>> JobsWithParam(const TaskId& task_id,
                                                   const Bytes& agg_param) = 0;
  // Leader: leases up to `limit` jobs in progress whose lease has expired
  // (or was never taken), until now + duration.
  virtual Result<std::vector<Lease>> LeaseAggregationJobs(int64_t now_ms, int64_t duration_ms,
                                                          size_t limit) = 0;
  // Ends a lease (a no-op when it was already taken over): the job may be
  // leased again from `retry_at_ms` (POSIX milliseconds; 0: at once). A
  // failed attempt passes a back-off, so that a job whose peer is down is
  // retried soon, not only when its lease would have expired.
  virtual Result<void> ReleaseAggregationJob(const Lease& lease, int64_t retry_at_ms) = 0;
  // Leader: forgets a job's report aggregations (an abandoned job: its
  // reports may go into a new job, DAP-19; the caller forgets their
  // aggregated records).
  virtual Result<void> DeleteReportAggregations(const TaskId& task_id, const JobId& job_id) = 0;
  // Leader, at start: frees every lease. One process owns a database, so
  // leases left by a crashed run are stale and their work can resume at once.
  virtual Result<void> ReleaseAllLeases() = 0;
  // Number of the task's jobs in progress with `agg_param` (leader).
  virtual Result<uint64_t> CountUnfinishedJobs(const TaskId& task_id, const Bytes& agg_param) = 0;

  // --- Batch aggregations and buckets.
  virtual Result<std::optional<BatchAggregationRow>> GetBatchAggregation(
      const TaskId& task_id, const Bytes& bucket_key, const Bytes& agg_param) = 0;
  virtual Result<void> PutBatchAggregation(const BatchAggregationRow& row) = 0;
  // Buckets of the task whose key is in [first, last] (byte order) with
  // a batch aggregation for `agg_param`.
  virtual Result<std::vector<BatchAggregationRow>> BatchAggregationsInRange(
      const TaskId& task_id, const Bytes& agg_param, const Bytes& first_key,
      const Bytes& last_key) = 0;
  // A collected bucket accepts no new report (multi-level: no report that was
  // not already in it).
  virtual Result<void> MarkBucketCollected(const TaskId& task_id, const Bytes& bucket_key) = 0;
  virtual Result<bool> IsBucketCollected(const TaskId& task_id, const Bytes& bucket_key) = 0;
  // Whether any bucket in [first, last] is collected.
  virtual Result<bool> AnyBucketCollected(const TaskId& task_id, const Bytes& first_key,
                                          const Bytes& last_key) = 0;
  // The aggregation parameters a bucket was collected or aggregated with,
  // oldest first (multi-level collection), and appending one.
  virtual Result<std::vector<Bytes>> BucketAggParams(const TaskId& task_id,
                                                     const Bytes& bucket_key) = 0;
  virtual Result<void> AppendBucketAggParam(const TaskId& task_id, const Bytes& bucket_key,
                                            const Bytes& agg_param) = 0;

  // --- Leader: collection jobs.
  virtual Result<void> PutCollectionJob(const CollectionJobRow& job) = 0;
  virtual Result<std::optional<CollectionJobRow>> GetCollectionJob(const TaskId& task_id,
                                                                   const JobId& job_id) = 0;
  // The task's collection jobs in `state`, oldest first.
  virtual Result<std::vector<CollectionJobRow>> ListCollectionJobs(const TaskId& task_id,
                                                                   CollectionState state) = 0;
  virtual Result<std::vector<Lease>> LeaseCollectionJobs(int64_t now_ms, int64_t duration_ms,
                                                         size_t limit) = 0;
  // As ReleaseAggregationJob.
  virtual Result<void> ReleaseCollectionJob(const Lease& lease, int64_t retry_at_ms) = 0;
  // leader_selected multi-level walks: the batch bound to a walk ID.
  virtual Result<std::optional<Bytes>> WalkBatch(const TaskId& task_id, const Bytes& walk_id) = 0;
  virtual Result<void> BindWalk(const TaskId& task_id, const Bytes& walk_id,
                                const Bytes& batch_key) = 0;

  // --- Helper: aggregate shares.
  virtual Result<void> PutAggregateShare(const AggregateShareRow& row) = 0;
  virtual Result<std::optional<AggregateShareRow>> GetAggregateShare(const TaskId& task_id,
                                                                     const JobId& share_id) = 0;

  // --- Garbage collection: deletes the task's reports (client, held) with
  // time below `time_limit`, and jobs created before `created_before`, with
  // their report aggregations. Returns the rows deleted.
  virtual Result<uint64_t> DeleteExpired(const TaskId& task_id, dap::Time time_limit,
                                         int64_t created_before) = 0;
};

// A datastore: runs functions in transactions.
class Datastore {
 public:
  virtual ~Datastore() = default;

  // Runs `body` in one read-write transaction, committing when it returns a
  // value and rolling back when it returns an error (which Run returns).
  // Transient contention (another writer) is retried inside, so `body` may
  // run more than once: it must not have effects outside the transaction.
  // Errors: the body's, or kIoError when the backend fails.
  virtual Result<void> Run(const std::function<Result<void>(Transaction&)>& body) = 0;

  // Runs `body` in one read-only transaction, which sees what the
  // transactions of Run committed before it began. A backend with
  // concurrent readers runs it beside Run's transactions and other reads,
  // without holding them back: for reads that would otherwise hold the
  // writer's lock while they wait for the disk (stored reports at the
  // leader, a job's records). It may wait, briefly, while the backend
  // copies its log (SQLite's checkpoint, which also waits for the
  // transaction under way). There, a write in `body` fails (kIoError); this
  // default runs it as Run, where writes go through, so `body` must only
  // read. Must not be called inside the body of Run or Read (the backend's
  // checkpoint would wait for the outer one while the inner one waits for
  // it). Errors: as Run's.
  virtual Result<void> Read(const std::function<Result<void>(Transaction&)>& body) {
    return Run(body);
  }

  // A count that moves on after every committed transaction that changed
  // what a listing of a batch's reports shows (Transaction::ReportsInBatch):
  // a report rejected (RecordRejectedReport) or marked held (PutHeldReport),
  // or reports deleted (DeleteExpired). Read before a listing: while it has
  // not moved, the listing still holds (uploads add reports, but never to a
  // batch already collected).
  virtual uint64_t ListingGeneration() const = 0;
};

// The bucket key of a time_interval report: its time, 8 bytes big-endian.
Bytes TimeBucketKey(dap::Time time);

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_DATASTORE_H_
