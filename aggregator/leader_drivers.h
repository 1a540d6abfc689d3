// The leader's background work (DAP-19, "Aggregating" and "Collecting"):
//   - the aggregation job creator groups reports into aggregation jobs: all
//     waiting reports of Prio3 tasks as they arrive, and for Poplar1 the
//     reports of each batch a collection job asks for, with its parameter;
//   - the aggregation job driver runs each job with the helper (one round
//     for Prio3, two for Poplar1) and adds the output shares to the batch
//     aggregations;
//   - the collection job driver, once a batch's reports are all aggregated,
//     gets the helper's aggregate share and answers the collection job;
//   - the garbage collector deletes expired reports and old jobs.
// Jobs are leased from the datastore, so work a crashed process left half
// done is picked up again when its lease expires. Every request to the
// helper is rebuilt byte for byte from stored state, so a retry after a
// crash gets the helper's stored answer and nothing is counted twice.
#ifndef CANOPY_AGGREGATOR_LEADER_DRIVERS_H_
#define CANOPY_AGGREGATOR_LEADER_DRIVERS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "aggregator/datastore.h"
#include "aggregator/internal/agg_param_memo.h"
#include "aggregator/level_claims.h"
#include "aggregator/metrics.h"
#include "aggregator/report_cache.h"
#include "aggregator/task_registry.h"
#include "dap/http_client.h"
#include "dap/report.h"

namespace canopy::aggregator {

class CollectionWaiters;  // aggregator/collection_waiters.h
class WorkSignal;         // aggregator/work_signal.h

struct LeaderDriverOptions {
  // The helper's DAP endpoint URL and the token the leader presents to it.
  std::string helper_url;
  std::string peer_token;
  // Reports per aggregation job that carries the reports' shares (every
  // job of a Prio3 task; a multi-level batch's first level).
  size_t max_reports_per_job = 500;
  // Reports per held_reports job (a multi-level batch's later levels). Such
  // a request carries each report's ID, time and verifier message, about
  // 100 bytes instead of 12 KB, so a job can hold many more reports for
  // the same request size; and each job costs both aggregators a fixed
  // amount (transactions, two requests, the parameter's checks): with jobs
  // of 500, about 2.4 ms of processor time a job, a sixth of a walk's
  // later rounds. Less than max_reports_per_job counts as that.
  //
  // A pass splits the reports of each kind into jobs of about equal size
  // (not full jobs and a remainder), and into at least `parallel_jobs` of
  // them when it has that many jobs' worth at max_reports_per_job, so that
  // a small batch still keeps the parallel drivers busy.
  size_t max_reports_per_held_job = 4000;
  // Aggregation jobs a creator's pass creates at most. A level of a larger
  // batch takes several passes; in Run the drivers lease a pass's jobs as
  // soon as its transaction commits, while the creator makes the next
  // (CreateAndDriveAggregationJobs), but the level's first pass is created
  // with nothing to drive beside it (hence first_pass_jobs); each pass's
  // claims also rewrite the level's growing range of records. 256 jobs of
  // 500 make a level of 100,000 reports one pass. A pass lists at most
  // 131,072 reports (but at least one job's worth), whatever the job size;
  // 0 counts as 1.
  size_t jobs_per_pass = 256;
  // Aggregation jobs driven at once (each on its own thread).
  size_t parallel_jobs = 2;
  // A level's first pass makes at most this many jobs (0: no bound but
  // jobs_per_pass): the drivers then start at once, while the creator makes
  // the rest of the level's jobs beside them (Run), instead of idling, with
  // the helper, through a whole pass's listing and creation. The service
  // sets it to parallel_jobs.
  size_t first_pass_jobs = 0;
  // How long a driver owns a job before another may take it over.
  std::chrono::milliseconds lease_duration{60000};
  // Pause between passes when there was nothing to do.
  std::chrono::milliseconds idle_interval{200};
  // Ends an idle pause early when notified (a new collection job). May be
  // null.
  WorkSignal* work_signal = nullptr;
  // Told when a collection job finishes or fails, to answer the polls held
  // for it. May be null.
  CollectionWaiters* collection_waiters = nullptr;
  // After a failed attempt (the helper unreachable or answering 5xx, a
  // datastore error), the job is retried no sooner than this. The HTTP
  // client has already retried the request by then.
  std::chrono::milliseconds retry_delay{1000};
  // Garbage collection: reports older than this (seconds) are deleted, and
  // finished jobs created longer ago.
  uint64_t report_expiry_seconds = 7 * 24 * 3600;
  std::chrono::seconds garbage_collection_interval{300};
};

class LeaderDrivers {
 public:
  // Everything passed must outlive the drivers.
  LeaderDrivers(LeaderDriverOptions options, Datastore& datastore, TaskRegistry& tasks,
                const std::vector<dap::AggregatorHpkeKey>& hpke_keys, dap::HttpClient& http,
                Metrics& metrics, ReportCache& report_cache, LevelClaims& level_claims);

  // One pass of each kind of work; each returns how many jobs it created or
  // advanced. Errors: the datastore's (kIoError); a failure with one job is
  // logged and left for a later pass, not returned. A driving pass drives
  // every job there is to lease (not only jobs_per_pass), each at most once.
  Result<size_t> CreateAggregationJobs();
  Result<size_t> DriveAggregationJobs();
  // Both at once, as Run does: jobs are driven on threads of their own (up
  // to LeaderDriverOptions::parallel_jobs), each leasing the next job as it
  // becomes free, while this thread creates jobs pass after pass; the
  // drivers take those too. Returns the jobs created and advanced; errors:
  // either's (a creator's failure first).
  Result<size_t> CreateAndDriveAggregationJobs();
  Result<size_t> DriveCollectionJobs();
  Result<size_t> CollectGarbage();

  // Where the job creator's last listing of reports of the task awaiting
  // `agg_param` ended (an upload position, see listing_ends_), while that
  // position still holds; nullopt otherwise. For tests and diagnostics; on
  // the thread that runs the passes.
  std::optional<uint64_t> ListingPosition(const TaskId& task_id, const Bytes& agg_param) const;

  // How many pages of a batch's reports the job creator and the collection
  // driver were served from a listing kept in memory since an earlier pass
  // (see batch_listings_), and how many times such a listing was read from
  // the datastore. For tests and diagnostics.
  uint64_t pages_listed_from_memory() const { return pages_from_memory_; }
  uint64_t batch_listings_read() const { return batch_listings_read_; }

  // Runs the passes in a loop until `stop` becomes true. A pass in progress
  // then finishes the job it is driving and leaves the others to the next
  // start, so that a shutdown does not wait for a whole batch of jobs.
  void Run(const std::atomic<bool>& stop);

 private:
  struct JobContext;
  // Drives the jobs there are to lease, on up to parallel_jobs threads,
  // until none is left; each job at most once a call. With `created`, this
  // thread meanwhile runs the job creator (CreateWhileDriving, its result
  // into `*created`), and the drivers also take the jobs it makes. Returns
  // the jobs advanced; errors: the datastore's.
  Result<size_t> DriveLeasedJobs(Result<size_t>* created);
  // Creator passes, one after the other while each makes jobs (at most 16),
  // calling `jobs_created` after each that did; it returns whether to go on
  // (false once the drivers failed). Returns the jobs made.
  Result<size_t> CreateWhileDriving(const std::function<bool()>& jobs_created);
  // A listing's end (see listing_ends_).
  using ListingKey = std::tuple<TaskId, Bytes, std::vector<Bytes>>;
  struct ListingEnd {
    uint64_t position = 0;
    bool more = false;
    std::weak_ptr<const Task> task;  // The task object it was listed for.
  };
  // Whether every report behind `end.position` is still taken or refused:
  // nothing was released since the creator's last pass, and `task` is the
  // object the listing was made for. On the thread that runs the passes,
  // after a CreateAggregationJobs.
  bool PositionHolds(const ListingEnd& end, const std::shared_ptr<const Task>& task) const;
  // How many reports a pass lists and puts into jobs, at most; fewer in a
  // level's first pass (of a later level: `held`) when first_pass_jobs is set.
  size_t ReportsPerPass() const;
  size_t ReportsPerFirstPass(bool held) const;
  // The largest job of a kind (held or not): its maximum size, at least 1.
  size_t LargestJob(bool held) const;
  // How many jobs a pass makes of `reports` reports of one kind (held or
  // not): few enough that none exceeds its kind's maximum size, and enough
  // to keep the parallel drivers busy.
  size_t JobsFor(size_t reports, bool held) const;
  Result<size_t> CreateJobsForTask(const Task& task);
  // Lists reports of a batch (its bucket keys; none: every report of the
  // task) awaiting `agg_param` and puts them into jobs, going on from where
  // the last listing of the same batch and parameter ended (see
  // listing_ends_).
  // `later_level`: a multi-level batch's level after its first, whose
  // listing is kept in memory (see batch_listings_).
  Result<size_t> ListAndCreateJobs(const Task& task, const Bytes& agg_param,
                                   const std::vector<Bytes>& bucket_keys, bool later_level = false);
  // Puts reports into jobs. Multi-level tasks: the caller has claimed them
  // for the level (LevelClaims); other tasks' claims are recorded here.
  Result<size_t> CreateJobs(const Task& task, const Bytes& agg_param, const Bytes& batch_key,
                            std::vector<ClientReportRow> reports);
  // Multi-level tasks: reads a level's claims from its stored jobs.
  LevelClaims::Loader LevelLoader(const TaskId& task_id, const Bytes& agg_param);
  // Multi-level tasks: a page of the batch's reports (its bucket keys) as
  // Transaction::ReportsInBatch lists it (at most `limit`, after upload
  // position `after`), from the listing kept in memory while it holds. When
  // it does not, `read_whole` reads the whole batch into a new one (for a
  // listing from the start, after > 0 never does); otherwise the page comes
  // from the datastore. Errors: the datastore's.
  Result<std::vector<ClientReportRow>> ListBatchPage(const Task& task,
                                                     const std::vector<Bytes>& bucket_keys,
                                                     size_t limit, uint64_t after, bool read_whole);
  // Forgets the batch listings that no longer hold or were not used for
  // kListingIdle.
  void ForgetStaleListings();
  // Multi-level tasks: whether any report of the batch (its bucket keys)
  // after upload position `after` is neither rejected nor taken for
  // `agg_param`. Errors: the datastore's.
  Result<bool> AnyUnclaimedReport(const Task& task, const Bytes& agg_param,
                                  const std::vector<Bytes>& bucket_keys, uint64_t after);
  // Drives one leased job; on failure gives the lease back with the retry
  // delay. True when the job advanced.
  Result<bool> DriveLeasedJob(const Lease& lease);
  Result<void> DriveAggregationJob(const Lease& lease);
  // The job's first step. A job that continues goes straight on to the next
  // step in memory: the leader keeps nothing of a job between its steps,
  // and after a crash redoes it from the start (the helper answers a
  // repeated init with its stored answer, and so a repeated continue).
  Result<void> StartJob(JobContext& context);
  // The next step of a job. `start_writes`, when given, writes what the
  // first step decided, in the same transaction as this step's outcome.
  using Writes = std::function<Result<void>(Transaction&)>;
  Result<void> ContinueJob(JobContext& context, const Writes* start_writes = nullptr);
  Result<bool> DriveCollectionJob(const Lease& lease);
  // Sends a request to the helper, following a "poll later" answer until
  // the resource is ready. Errors: kVerifyFailed for a 4xx answer, the
  // helper's verdict (the problem document's type and detail in the
  // message); kIoError for what is worth trying again: the network, a 5xx,
  // 401, 403, 408, 429, and a 404 without a DAP problem type.
  Result<dap::HttpResponse> SendToHelper(dap::HttpMethod method, const std::string& url,
                                         std::string_view content_type,
                                         std::span<const uint8_t> body);
  std::string HelperUrl(const Task& task, std::string_view path) const;
  // Whether Run has been asked to stop.
  bool Stopping() const { return stop_ != nullptr && stop_->load(); }

  LeaderDriverOptions options_;
  Datastore& datastore_;
  TaskRegistry& tasks_;
  const std::vector<dap::AggregatorHpkeKey>& hpke_keys_;
  dap::HttpClient& http_;
  Metrics& metrics_;
  ReportCache& report_cache_;
  // Multi-level tasks: which reports each level's jobs took.
  LevelClaims& level_claims_;
  std::chrono::steady_clock::time_point last_garbage_collection_{};
  // A job's aggregation parameter, decoded once per level. Job creation knows
  // the batch's history and decodes it first, with the batch's previous
  // parameter: Poplar1 then plans each level's evaluation from the last
  // one's, which the reports prepared in memory continue from (without it,
  // every candidate's path is walked again). The drivers find it here.
  internal::AggParamMemo agg_params_;
  // Where the last listing of reports awaiting a parameter ended, per task,
  // parameter and batch (an upload position, see ReportsAwaitingAggregation):
  // a level of a large batch is created in several passes, and each pass
  // lists only what follows the last, instead of reading past every report
  // already taken. Every report behind that position was taken or refused,
  // unless a driver released it again (an abandoned job) or garbage
  // collection deleted reports (or failed part-way): then `releases_` moves
  // on and the next pass forgets all positions and lists from the start. The
  // collection driver reads it too: `more` (the last listing filled its page,
  // so the batch is not ready yet) and, while PositionHolds, the position
  // (only reports past it can still await). This assumes one leader driver
  // per database: another process's releases would not move `releases_`. Used
  // by the thread that runs the passes only.
  std::map<ListingKey, ListingEnd> listing_ends_;
  // Multi-level tasks: each walked batch's reports, as listed from the
  // datastore at the first pass of a level after the batch's first (every
  // report never rejected, in upload order, whether the helper holds it). A
  // walk lists its batch at every level, and from the datastore that costs
  // two index lookups a report (held? rejected?), seconds a level at a
  // million reports, while after the first level (which marks every report
  // held) the listing changes only when a report is rejected. A listing
  // holds while the datastore's ListingGeneration is what it was when the
  // listing was read (read before the datastore, so that a change that
  // commits meanwhile is not missed) and the task is the same object; the
  // datastore's batch itself cannot change: a batch is frozen at its first
  // collection (docs/multi-level-collection.md). 40 bytes a report;
  // a listing goes once it no longer holds, its task is gone, or it was not
  // used for kListingIdle (a collector asks for the next level within
  // seconds of the last). Used by the thread that runs the passes only.
  struct ListedReport {
    ReportId report_id{};
    dap::Time time = 0;
    uint64_t upload_position = 0;
    bool aggregated_before = false;
  };
  struct BatchListing {
    std::weak_ptr<const Task> task;
    uint64_t generation = 0;
    std::chrono::steady_clock::time_point last_used;
    std::vector<ListedReport> reports;  // In upload order.
  };
  using BatchListingKey = std::pair<TaskId, std::vector<Bytes>>;
  std::map<BatchListingKey, BatchListing> batch_listings_;
  static constexpr std::chrono::minutes kListingIdle{10};
  uint64_t pages_from_memory_ = 0;
  uint64_t batch_listings_read_ = 0;
  std::atomic<uint64_t> releases_{0};
  uint64_t releases_seen_ = 0;
  // Held by the job creator from a page's claims' reservation until they
  // are kept, and by a driver abandoning a job from its commit until its
  // claims are released. The creator runs beside the drivers, and
  // LevelClaims::Release erases whichever claim it finds: a release that
  // came after a creator had read the level back from the datastore (the
  // abandoned job's reports free there) and put one of those reports into
  // a new job would erase that job's claim, and the report would go into a
  // second job of the level.
  std::mutex claims_change_mutex_;
  const std::atomic<bool>* stop_ = nullptr;  // Set by Run.
};

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_LEADER_DRIVERS_H_
