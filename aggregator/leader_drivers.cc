#include "aggregator/leader_drivers.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <system_error>
#include <thread>
#include <utility>

#include "aggregator/collection_waiters.h"
#include "aggregator/garbage_collector.h"
#include "aggregator/internal/aggregation.h"
#include "aggregator/internal/common.h"
#include "aggregator/internal/opened_report.h"
#include "aggregator/work_signal.h"
#include "crypto/random.h"
#include "crypto/secure_wipe.h"
#include "dap/base64url.h"
#include "dap/ping_pong.h"
#include "dap/problem.h"
#include "poplar/poplar1.h"

namespace canopy::aggregator {

using dap::ReportError;
using PingKind = dap::PingPongState::Kind;

namespace {

bool IsPoplar1(const Task& task) {
  return task.vdaf->algorithm_id() == poplar::Poplar1::kAlgorithmId;
}

void Log(const std::string& message) { std::cerr << "canopy-aggregator: " << message << "\n"; }

// A placeholder input share for reports the helper holds (the extension's
// "shortest encoding": config 0, one-byte enc and payload).
dap::HpkeCiphertext HeldPlaceholder() { return {0, {0}, {0}}; }

// The time a time_interval bucket key stands for.
dap::Time BucketTime(const Bytes& key) {
  dap::Time time = 0;
  for (uint8_t byte : key) time = (time << 8) | byte;
  return time;
}

// Which reports a batch holds, as the datastore's listings take it: a
// leader_selected batch by its key; a time_interval batch by the time range
// its buckets cover, or every report of the task when no bucket is named
// (Prio3 aggregates reports as they arrive, before any collection).
struct BatchScope {
  dap::Time time_start = 0;
  dap::Time time_end = 0;
  Bytes batch_key;
};

BatchScope ScopeOf(const Task& task, const std::vector<Bytes>& bucket_keys) {
  if (task.leader_selected()) return {0, 0, bucket_keys.front()};
  if (bucket_keys.empty()) return {0, UINT64_MAX, {}};
  return {BucketTime(bucket_keys.front()), BucketTime(bucket_keys.back()) + 1, {}};
}

// Reports [first, second) of `count` split into `jobs` jobs of about equal
// size: job j takes those from j * count / jobs.
std::pair<size_t, size_t> JobRange(size_t count, size_t jobs, size_t j) {
  return {j * count / jobs, (j + 1) * count / jobs};
}

// The report IDs of listed reports or of a job's rows, in order.
template <typename Row>
std::vector<ReportId> ReportIdsOf(const std::vector<Row>& rows) {
  std::vector<ReportId> ids;
  ids.reserve(rows.size());
  for (const Row& row : rows) ids.push_back(row.report_id);
  return ids;
}

Result<JobId> RandomJobId() {
  JobId id;
  auto filled = crypto::RandomBytes(id);
  if (!filled) return std::unexpected(filled.error());
  return id;
}

}  // namespace

LeaderDrivers::LeaderDrivers(LeaderDriverOptions options, Datastore& datastore, TaskRegistry& tasks,
                             const std::vector<dap::AggregatorHpkeKey>& hpke_keys,
                             dap::HttpClient& http, Metrics& metrics, ReportCache& report_cache,
                             LevelClaims& level_claims)
    : options_(std::move(options)),
      datastore_(datastore),
      tasks_(tasks),
      hpke_keys_(hpke_keys),
      http_(http),
      metrics_(metrics),
      report_cache_(report_cache),
      level_claims_(level_claims) {}

std::string LeaderDrivers::HelperUrl(const Task& task, std::string_view path) const {
  std::string base = options_.helper_url;
  if (base.empty()) {
    base.assign(task.configuration.helper_aggregator_endpoint.begin(),
                task.configuration.helper_aggregator_endpoint.end());
  }
  return dap::JoinUrl(base, path);
}

Result<dap::HttpResponse> LeaderDrivers::SendToHelper(dap::HttpMethod method,
                                                      const std::string& url,
                                                      std::string_view content_type,
                                                      std::span<const uint8_t> body) {
  dap::HttpRequest request;
  request.method = method;
  request.url = url;
  request.content_type = content_type;
  request.body = body;
  request.bearer_token = options_.peer_token;
  auto response = http_.Send(request);
  if (!response) return response;
  // "Poll later": an empty success with a Location to GET.
  for (int poll = 0; poll < 50 && response->status == 202 && response->body.empty(); ++poll) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::optional<std::string> poll_url =
        response->location.empty() ? url : internal::LocationOnOrigin(url, response->location);
    if (!poll_url) {
      return MakeError(
          ErrorCode::kIoError,
          "the helper's answer to " + url + " sends the leader elsewhere: " + response->location);
    }
    response = http_.Send(dap::HttpMethod::kGet, *poll_url, {}, {}, options_.peer_token);
    if (!response) return response;
  }
  if (response->status == 202 && response->body.empty()) {
    return MakeError(ErrorCode::kIoError, "the helper is still processing " + url);
  }
  if (response->status >= 400) {
    std::string text(response->body.begin(), response->body.end());
    auto problem = dap::ProblemDocument::FromJson(text);
    std::string message = "helper answered " + std::to_string(response->status);
    if (problem) {
      message += " " + std::string(dap::ProblemToken(problem->type)) + ": " + problem->detail;
    }
    // A 4xx is the helper's verdict on the request (the job is abandoned,
    // the collection fails), except for answers that may pass and must not
    // lose the job's reports, which are tried again later: a refused token
    // (401, 403: say, a token rotated on one side first), a timeout or a
    // rate limit (408, 429), a 404 that is not DAP's (from something between
    // the aggregators), and any 5xx.
    const int status = response->status;
    const bool dap_type = problem && !dap::ProblemToken(problem->type).empty();
    const bool transient = status >= 500 || status == 401 || status == 403 || status == 408 ||
                           status == 429 || (status == 404 && !dap_type);
    return MakeError(transient ? ErrorCode::kIoError : ErrorCode::kVerifyFailed, message);
  }
  return response;
}

// --- The aggregation job creator.

Result<size_t> LeaderDrivers::CreateAggregationJobs() {
  if (const uint64_t releases = releases_.load(); releases != releases_seen_) {
    // A driver released reports (or garbage was collected) since: any
    // listing may have left one behind where it ended.
    listing_ends_.clear();
    releases_seen_ = releases;
  }
  // A task removed (its reports deleted) and perhaps added again gives its
  // upload positions again from 1: forget the listings of any task that is
  // not the same object as when they were made.
  const std::vector<std::shared_ptr<const Task>> tasks = tasks_.All();
  std::erase_if(listing_ends_, [&](const auto& entry) {
    const std::shared_ptr<const Task> listed = entry.second.task.lock();
    return std::none_of(tasks.begin(), tasks.end(),
                        [&](const auto& task) { return task == listed; });
  });
  ForgetStaleListings();
  size_t created = 0;
  for (const auto& task : tasks) {
    auto made = CreateJobsForTask(*task);
    if (!made) return made;
    created += *made;
  }
  return created;
}

size_t LeaderDrivers::ReportsPerPass() const {
  // A bound on one listing and one transaction of claims (which holds the
  // datastore, and the uploads with it, for its duration).
  constexpr size_t kMaxReportsPerPass = 131072;
  const size_t jobs = std::max<size_t>(1, options_.jobs_per_pass);
  return std::max(options_.max_reports_per_job,
                  std::min(options_.max_reports_per_job * jobs, kMaxReportsPerPass));
}

size_t LeaderDrivers::ReportsPerFirstPass(bool held) const {
  if (options_.first_pass_jobs == 0) return ReportsPerPass();
  return std::min(ReportsPerPass(), options_.first_pass_jobs * LargestJob(held));
}

size_t LeaderDrivers::LargestJob(bool held) const {
  const size_t full_size = std::max<size_t>(1, options_.max_reports_per_job);
  return held ? std::max(full_size, options_.max_reports_per_held_job) : full_size;
}

size_t LeaderDrivers::JobsFor(size_t reports, bool held) const {
  if (reports == 0) return 0;
  auto jobs_of = [&](size_t size) { return (reports + size - 1) / size; };
  const size_t full_size = std::max<size_t>(1, options_.max_reports_per_job);
  const size_t enough = std::min(std::max<size_t>(1, options_.parallel_jobs), jobs_of(full_size));
  return std::max(jobs_of(LargestJob(held)), enough);
}

std::optional<uint64_t> LeaderDrivers::ListingPosition(const TaskId& task_id,
                                                       const Bytes& agg_param) const {
  for (const auto& [key, end] : listing_ends_) {
    if (std::get<0>(key) != task_id || std::get<1>(key) != agg_param) continue;
    if (PositionHolds(end, tasks_.Find(task_id))) return end.position;
  }
  return std::nullopt;
}

bool LeaderDrivers::PositionHolds(const ListingEnd& end,
                                  const std::shared_ptr<const Task>& task) const {
  return releases_.load() == releases_seen_ && end.task.lock() == task;
}

Result<size_t> LeaderDrivers::CreateJobsForTask(const Task& task) {
  size_t created = 0;
  if (!IsPoplar1(task)) {
    // Prio3: aggregate as reports arrive, with the empty parameter.
    const Bytes agg_param;
    if (task.leader_selected()) {
      // Put new reports into batches of min_batch_size, filling the newest
      // batch first unless it is already collected.
      auto assigned = datastore_.Run([&](Transaction& tx) -> Result<void> {
        auto batches = tx.LeaderSelectedBatches(task.id);
        if (!batches) return std::unexpected(batches.error());
        Bytes current;
        uint64_t current_size = 0;
        if (!batches->empty()) {
          auto collected = tx.IsBucketCollected(task.id, batches->back().batch_key);
          if (!collected) return std::unexpected(collected.error());
          if (!*collected) {
            current = batches->back().batch_key;
            current_size = batches->back().reports;
          }
        }
        auto reports = tx.UnbatchedReports(task.id, 10000);
        if (!reports) return std::unexpected(reports.error());
        for (const ClientReportRow& report : *reports) {
          if (current.empty() || current_size >= task.configuration.min_batch_size) {
            current.assign(32, 0);
            auto filled = crypto::RandomBytes(current);
            if (!filled) return std::unexpected(filled.error());
            current_size = 0;
          }
          auto put = tx.AssignBatch(task.id, report.report_id, current);
          if (!put) return put;
          ++current_size;
        }
        return {};
      });
      if (!assigned) return std::unexpected(assigned.error());
      std::vector<Bytes> batch_keys;
      auto listed = datastore_.Run([&](Transaction& tx) -> Result<void> {
        auto batches = tx.LeaderSelectedBatches(task.id);
        if (!batches) return std::unexpected(batches.error());
        batch_keys.clear();
        for (const auto& batch : *batches) batch_keys.push_back(batch.batch_key);
        return {};
      });
      if (!listed) return std::unexpected(listed.error());
      for (const Bytes& batch_key : batch_keys) {
        auto made = ListAndCreateJobs(task, agg_param, {batch_key});
        if (!made) return made;
        created += *made;
      }
      return created;
    }
    // Every report of the task, whatever its time: the whole time range.
    return ListAndCreateJobs(task, agg_param, {});
  }

  // Poplar1: the reports of each batch a pending collection job names. A
  // batch's levels are aggregated in the order the batch's history has them
  // (the helper accepts a parameter only after the earlier ones), so only
  // the earliest pending level of each batch gets aggregation jobs.
  std::map<std::vector<Bytes>, std::pair<size_t, CollectionJobRow>> next_level;
  std::map<std::vector<Bytes>, std::vector<Bytes>> ranked_history;  // Per batch.
  auto read = datastore_.Run([&](Transaction& tx) -> Result<void> {
    next_level.clear();
    ranked_history.clear();
    auto jobs = tx.ListCollectionJobs(task.id, CollectionState::kStart);
    if (!jobs) return std::unexpected(jobs.error());
    for (CollectionJobRow& job : *jobs) {
      if (job.bucket_keys.empty()) continue;  // leader_selected batch not chosen yet.
      Bytes history_key = task.leader_selected()
                              ? job.bucket_keys.front()
                              : internal::IntervalBatchKey(
                                    {BucketTime(job.bucket_keys.front()), job.bucket_keys.size()});
      auto history = tx.BucketAggParams(task.id, history_key);
      if (!history) return std::unexpected(history.error());
      size_t rank = std::find(history->begin(), history->end(), job.agg_param) - history->begin();
      auto it = next_level.find(job.bucket_keys);
      if (it == next_level.end() || rank < it->second.first) {
        std::vector<Bytes> batch = job.bucket_keys;  // Before `job` is moved from.
        next_level[batch] = {rank, std::move(job)};
        ranked_history[batch] = std::move(*history);
      }
    }
    return {};
  });
  if (!read) return std::unexpected(read.error());
  // Forget where the listings of levels no longer pending ended (a batch's
  // own listing stays between its levels: see ForgetStaleListings).
  std::erase_if(listing_ends_, [&](const auto& entry) {
    const auto& [task_id, agg_param, bucket_keys] = entry.first;
    if (task_id != task.id) return false;
    auto pending = next_level.find(bucket_keys);
    return pending == next_level.end() || pending->second.second.agg_param != agg_param;
  });
  for (const auto& [batch, ranked] : next_level) {
    const CollectionJobRow& job = ranked.second;
    // Decoded now, after the levels before it, for the drivers.
    const std::vector<Bytes>& history = ranked_history[batch];
    auto planned = agg_params_.Decode(
        task, job.agg_param,
        std::span<const Bytes>(history).first(std::min(ranked.first, history.size())));
    if (!planned) return std::unexpected(planned.error());
    auto made = ListAndCreateJobs(task, job.agg_param, job.bucket_keys, ranked.first > 0);
    if (!made) return made;
    created += *made;
  }
  return created;
}

LevelClaims::Loader LeaderDrivers::LevelLoader(const TaskId& task_id, const Bytes& agg_param) {
  // A job abandoned at its first step has no record (its reports were given
  // back); see LeaderRowHoldsClaim for the others.
  return [this, task_id, agg_param] {
    return LoadLevelClaims(datastore_, task_id, agg_param, LeaderRowHoldsClaim);
  };
}

Result<size_t> LeaderDrivers::ListAndCreateJobs(const Task& task, const Bytes& agg_param,
                                                const std::vector<Bytes>& bucket_keys,
                                                bool later_level) {
  ListingEnd& end = listing_ends_[ListingKey(task.id, agg_param, bucket_keys)];
  if (end.task.expired()) end.task = tasks_.Find(task.id);
  const BatchScope scope = ScopeOf(task, bucket_keys);
  // Multi-level tasks list the whole batch and leave out, in memory, what
  // the level's jobs took (LevelClaims); others ask the datastore.
  const bool claims_in_memory = task.multi_level();
  for (;;) {
    const size_t limit = end.position == 0 ? ReportsPerFirstPass(later_level) : ReportsPerPass();
    std::vector<ClientReportRow> reports;
    if (claims_in_memory) {
      auto listed = ListBatchPage(task, bucket_keys, limit, end.position, later_level);
      if (!listed) return std::unexpected(listed.error());
      reports = std::move(*listed);
    } else {
      auto read = datastore_.Run([&](Transaction& tx) -> Result<void> {
        auto listed =
            tx.ReportsAwaitingAggregation(task.id, agg_param, scope.time_start, scope.time_end,
                                          scope.batch_key, limit, end.position);
        if (!listed) return std::unexpected(listed.error());
        reports = std::move(*listed);
        return {};
      });
      if (!read) return std::unexpected(read.error());
    }
    const bool more = reports.size() == limit;
    if (reports.empty()) {
      end.more = false;
      return 0;
    }
    const uint64_t last = reports.back().upload_position;
    // From the claims' reservation until they are kept (or given back).
    std::unique_lock<std::mutex> no_release_meanwhile(claims_change_mutex_);
    std::optional<LevelClaims::Reservation> reservation;
    if (claims_in_memory) {
      auto reserved = level_claims_.Reserve(task.id, agg_param, ReportIdsOf(reports),
                                            LevelLoader(task.id, agg_param));
      if (!reserved) return std::unexpected(reserved.error());
      reservation.emplace(std::move(*reserved));
      std::vector<ClientReportRow> free;
      free.reserve(reports.size());
      for (size_t i = 0; i < reports.size(); ++i) {
        if (reservation->taken(i)) free.push_back(std::move(reports[i]));
      }
      reports = std::move(free);
    }
    auto made = CreateJobs(task, agg_param, scope.batch_key, std::move(reports));
    if (!made) return made;  // The reservation gives its claims back.
    if (reservation) reservation->KeepAll();
    // Only once the reports are taken: a failed pass lists them again. (Not
    // the whole entry: it keeps the task it was listed for.)
    end.position = last;
    end.more = more;
    // A full page that the level's jobs had all taken already (listed from
    // the start after a restart): go on with the next.
    if (*made > 0 || !more) return made;
  }
}

Result<size_t> LeaderDrivers::CreateJobs(const Task& task, const Bytes& agg_param,
                                         const Bytes& batch_key,
                                         std::vector<ClientReportRow> reports) {
  if (reports.empty()) return 0;
  size_t created = 0;
  auto run = datastore_.Run([&](Transaction& tx) -> Result<void> {
    created = 0;
    // Multi-level: reports the helper already holds go into held_reports
    // jobs, the others (first level, or sent again) into full ones.
    std::vector<const ClientReportRow*> held, full;
    for (const ClientReportRow& report : reports) {
      const bool is_held = task.multi_level() && report.aggregated_before;
      (is_held ? held : full).push_back(&report);
    }
    for (int kind = 0; kind < 2; ++kind) {
      const auto& group = kind == 0 ? full : held;
      const size_t jobs = JobsFor(group.size(), kind == 1);
      for (size_t j = 0; j < jobs; ++j) {
        const auto [start, end] = JobRange(group.size(), jobs, j);
        auto job_id = RandomJobId();
        if (!job_id) return std::unexpected(job_id.error());
        AggregationJobRow job;
        job.task_id = task.id;
        job.job_id = *job_id;
        job.agg_param = agg_param;
        job.batch_key = batch_key;
        job.held_reports = kind == 1;
        job.created_at = static_cast<int64_t>(internal::NowSeconds());
        auto put = tx.PutAggregationJob(job);
        if (!put) return put;
        std::vector<ReportAggregationRow> rows;
        rows.reserve(end - start);
        for (size_t i = start; i < end; ++i) {
          ReportAggregationRow row;
          row.task_id = task.id;
          row.job_id = *job_id;
          row.ord = static_cast<uint32_t>(i - start);
          row.report_id = group[i]->report_id;
          row.time = group[i]->time;
          row.bucket_key = task.leader_selected() ? batch_key : TimeBucketKey(group[i]->time);
          if (task.multi_level()) {
            // Claimed in memory by the caller; this job's record is the
            // claim's durable form.
            rows.push_back(std::move(row));
            continue;
          }
          // Taken for this parameter: no other job gets it (one taken
          // already, by a job created meanwhile, is left to that job).
          auto claimed = tx.RecordAggregatedReport(task.id, row.report_id, agg_param);
          if (!claimed) return std::unexpected(claimed.error());
          if (*claimed) rows.push_back(std::move(row));
        }
        auto stored = tx.PutJobReports(task.id, *job_id, rows);
        if (!stored) return stored;
        ++created;
      }
    }
    return {};
  });
  if (!run) return std::unexpected(run.error());
  for (size_t i = 0; i < created; ++i) metrics_.AggregationJob(Metrics::JobEvent::kCreated);
  return created;
}

void LeaderDrivers::ForgetStaleListings() {
  const auto now = std::chrono::steady_clock::now();
  const uint64_t generation = datastore_.ListingGeneration();
  std::erase_if(batch_listings_, [&](const auto& entry) {
    const BatchListing& listing = entry.second;
    return listing.task.expired() || listing.generation != generation ||
           now - listing.last_used > kListingIdle;
  });
}

Result<std::vector<ClientReportRow>> LeaderDrivers::ListBatchPage(
    const Task& task, const std::vector<Bytes>& bucket_keys, size_t limit, uint64_t after,
    bool read_whole) {
  const BatchScope scope = ScopeOf(task, bucket_keys);
  auto from_datastore = [&](size_t count, uint64_t from) -> Result<std::vector<ClientReportRow>> {
    std::vector<ClientReportRow> reports;
    auto read = datastore_.Run([&](Transaction& tx) -> Result<void> {
      auto listed = tx.ReportsInBatch(task.id, scope.time_start, scope.time_end, scope.batch_key,
                                      count, from);
      if (!listed) return std::unexpected(listed.error());
      reports = std::move(*listed);
      return {};
    });
    if (!read) return std::unexpected(read.error());
    return reports;
  };
  const std::shared_ptr<const Task> current = tasks_.Find(task.id);
  const BatchListingKey key{task.id, bucket_keys};
  auto listing = batch_listings_.find(key);
  auto holds = [&] {
    return listing != batch_listings_.end() && current != nullptr &&
           listing->second.task.lock() == current &&
           listing->second.generation == datastore_.ListingGeneration();
  };
  if (holds()) {
    ++pages_from_memory_;
  } else {
    // Read the whole batch only for a listing from its start (a level's
    // first pass): during a level whose jobs change it (the first, which
    // marks every report held), a listing read at every pass would read the
    // batch once per pass; those passes ask the datastore for their page.
    if (!read_whole || after > 0 || current == nullptr) return from_datastore(limit, after);
    BatchListing fresh;
    fresh.task = current;
    fresh.generation = datastore_.ListingGeneration();  // Before reading.
    constexpr size_t kPage = 131072;
    for (uint64_t from = 0;;) {
      auto page = from_datastore(kPage, from);
      if (!page) return std::unexpected(page.error());
      for (const ClientReportRow& row : *page) {
        fresh.reports.push_back(
            {row.report_id, row.time, row.upload_position, row.aggregated_before});
      }
      if (page->size() < kPage) break;
      from = page->back().upload_position;
    }
    ++batch_listings_read_;
    listing = batch_listings_.insert_or_assign(key, std::move(fresh)).first;
  }
  listing->second.last_used = std::chrono::steady_clock::now();
  const std::vector<ListedReport>& all = listing->second.reports;
  auto first = std::upper_bound(all.begin(), all.end(), after,
                                [](uint64_t position, const ListedReport& report) {
                                  return position < report.upload_position;
                                });
  const size_t count = std::min<size_t>(limit, static_cast<size_t>(all.end() - first));
  std::vector<ClientReportRow> reports(count);
  for (size_t i = 0; i < count; ++i) {
    const ListedReport& listed = first[static_cast<std::ptrdiff_t>(i)];
    ClientReportRow& row = reports[i];
    row.task_id = task.id;
    row.report_id = listed.report_id;
    row.time = listed.time;
    row.batch_key = scope.batch_key;  // As the datastore lists it: empty by time.
    row.aggregated_before = listed.aggregated_before;
    row.upload_position = listed.upload_position;
  }
  return reports;
}

Result<bool> LeaderDrivers::AnyUnclaimedReport(const Task& task, const Bytes& agg_param,
                                               const std::vector<Bytes>& bucket_keys,
                                               uint64_t after) {
  const size_t page = ReportsPerPass();
  for (;;) {
    // Never reads the whole batch: this stops at the first page with an
    // unclaimed report.
    auto listed = ListBatchPage(task, bucket_keys, page, after, /*read_whole=*/false);
    if (!listed) return std::unexpected(listed.error());
    const std::vector<ClientReportRow>& reports = *listed;
    if (reports.empty()) return false;
    auto claimed = level_claims_.Claimed(task.id, agg_param, ReportIdsOf(reports),
                                         LevelLoader(task.id, agg_param));
    if (!claimed) return std::unexpected(claimed.error());
    if (std::find(claimed->begin(), claimed->end(), false) != claimed->end()) return true;
    if (reports.size() < page) return false;
    after = reports.back().upload_position;
  }
}

// --- The aggregation job driver.

struct LeaderDrivers::JobContext {
  std::shared_ptr<const Task> task;
  AggregationJobRow job;
  std::vector<ReportAggregationRow> rows;
  std::shared_ptr<const poplar::AggregationParameter> agg_param;
  // Per row, the output share that waits for the helper's confirmation
  // between a job's two steps, when both run in memory (empty otherwise:
  // the row's verify_state then holds it encoded). Encoding it into the row
  // and decoding it back was 4 % of the leader's time in a walk's later
  // levels; it is encoded only if the row is stored before it is added.
  std::vector<poplar::FieldVector> pending_out_shares;

  // Encodes the pending output shares into their rows, so that the rows
  // can be stored as the datastore keeps them.
  void EncodePendingOutShares() {
    for (size_t i = 0; i < pending_out_shares.size(); ++i) {
      if (poplar::FieldVectorSize(pending_out_shares[i]) == 0) continue;
      rows[i].verify_state = poplar::EncodeFieldVector(pending_out_shares[i]);
      pending_out_shares[i] = poplar::FieldVector();
    }
  }
};

namespace {

// The jobs of one driving pass, leased a few at a time as drivers become
// free. Leasing a whole pass's jobs at its start made each pass end with a
// tail in which fewer jobs ran than there were drivers, and left the jobs
// that the creator made meanwhile for the next pass; now the drivers go on
// with those until none is left and the creator is done. A job is driven
// at most once a pass: one that comes round again (its retry delay ran out)
// is kept leased, out of the other drivers' way, and given back at the end.
class PassLeases {
 public:
  using LeaseSome = std::function<Result<std::vector<Lease>>(size_t limit)>;

  // `lease_some` leases up to `limit` jobs in a transaction of its own;
  // `batch` is how many it asks for at once (the number of drivers, so that
  // one lease serves them all). With `creating`, the pass goes on, waiting
  // for new jobs, until CreatorDone.
  PassLeases(LeaseSome lease_some, size_t batch, bool creating, std::function<bool()> stopping)
      : lease_some_(std::move(lease_some)),
        batch_(batch),
        stopping_(std::move(stopping)),
        creating_(creating) {}

  // The next job to drive, or nullopt when the pass is over (no job left to
  // lease and no creator at work, a failure, or a shutdown). Any driver.
  std::optional<Lease> Next() {
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
      if (failure_ || over_ || stopping_()) return std::nullopt;
      if (!queue_.empty()) {
        Lease lease = queue_.front();
        queue_.pop_front();
        return lease;
      }
      if (leasing_) {
        changed_.wait(lock);
        continue;
      }
      if (creating_ && found_nothing_at_ == generation_) {
        // Another driver's lease found nothing since the creator's last
        // news: wait for more instead of asking again (each lease is a
        // write transaction).
        WaitForNews(lock, generation_);
        continue;
      }
      // Whether the creator was still at work is read before leasing, so
      // that a lease that finds nothing has seen all it made.
      const bool creator_at_work = creating_;
      const uint64_t seen = generation_;
      leasing_ = true;
      lock.unlock();
      auto leased = lease_some_(batch_);
      lock.lock();
      leasing_ = false;
      changed_.notify_all();
      if (!leased) {
        if (!failure_) failure_ = leased.error();
        return std::nullopt;
      }
      for (const Lease& lease : *leased) {
        if (driven_.insert({lease.task_id, lease.job_id}).second) {
          queue_.push_back(lease);
        } else {
          repeats_.push_back(lease);
        }
      }
      if (!leased->empty()) continue;
      if (!creator_at_work) {
        over_ = true;
        return std::nullopt;
      }
      found_nothing_at_ = seen;
      WaitForNews(lock, seen);
    }
  }

  // Wakes the drivers waiting for new jobs (the creator made some).
  void Created() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      ++generation_;
    }
    changed_.notify_all();
  }

  // The creator is done: drivers that find nothing more to lease stop.
  void CreatorDone() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      creating_ = false;
      ++generation_;
    }
    changed_.notify_all();
  }

  // Records the pass's first failure (the datastore's); drivers stop
  // leasing.
  void Fail(const Error& error) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!failure_) failure_ = error;
    }
    changed_.notify_all();
  }

  std::optional<Error> failure() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return failure_;
  }

  // Leases to give back at the pass's end: the jobs that came round again,
  // and those leased but not driven (the pass failed or the service is
  // stopping).
  std::vector<Lease> TakeLeasesToGiveBack() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Lease> leases = std::move(repeats_);
    leases.insert(leases.end(), queue_.begin(), queue_.end());
    queue_.clear();
    return leases;
  }

 private:
  // Waits until the creator has news since `generation`, jobs are queued or
  // the pass failed.
  void WaitForNews(std::unique_lock<std::mutex>& lock, uint64_t generation) {
    changed_.wait(lock, [&] { return generation_ != generation || failure_ || !queue_.empty(); });
  }

  const LeaseSome lease_some_;
  const size_t batch_;
  const std::function<bool()> stopping_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  bool creating_;
  bool leasing_ = false;  // A driver is leasing; the others wait for it.
  bool over_ = false;
  uint64_t generation_ = 0;  // Counts the creator's news.
  // The generation at which a lease last found nothing to lease.
  std::optional<uint64_t> found_nothing_at_;
  std::deque<Lease> queue_;
  std::vector<Lease> repeats_;
  std::set<std::pair<TaskId, JobId>> driven_;
  std::optional<Error> failure_;
};

}  // namespace

Result<size_t> LeaderDrivers::DriveAggregationJobs() { return DriveLeasedJobs(nullptr); }

Result<size_t> LeaderDrivers::CreateAndDriveAggregationJobs() {
  Result<size_t> created = 0;
  Result<size_t> driven = DriveLeasedJobs(&created);
  if (!created) return created;
  if (!driven) return driven;
  return *created + *driven;
}

Result<size_t> LeaderDrivers::CreateWhileDriving(const std::function<bool()>& jobs_created) {
  // The creator makes pass after pass while it finds reports to put into
  // jobs, and the drivers lease the jobs as soon as they are committed. The
  // bound keeps a steady stream of uploads (Prio3) from holding back the
  // collection driver and the garbage collector, which run between these
  // calls.
  constexpr int kMaxCreatorPasses = 16;
  size_t total = 0;
  for (int i = 0; i < kMaxCreatorPasses && !Stopping(); ++i) {
    auto created = CreateAggregationJobs();
    if (!created) return created;
    if (*created == 0) break;
    total += *created;
    if (!jobs_created()) break;
  }
  return total;
}

Result<size_t> LeaderDrivers::DriveLeasedJobs(Result<size_t>* created) {
  const size_t workers = std::max<size_t>(1, options_.parallel_jobs);
  PassLeases pass(
      [&](size_t limit) {
        std::vector<Lease> leases;
        auto leased = datastore_.Run([&](Transaction& tx) -> Result<void> {
          auto taken = tx.LeaseAggregationJobs(internal::NowMilliseconds(),
                                               options_.lease_duration.count(), limit);
          if (!taken) return std::unexpected(taken.error());
          leases = std::move(*taken);
          return {};
        });
        if (!leased) return Result<std::vector<Lease>>(std::unexpected(leased.error()));
        return Result<std::vector<Lease>>(std::move(leases));
      },
      workers, created != nullptr, [this] { return Stopping(); });
  // Jobs are driven several at a time: while one waits for the helper,
  // another verifies or writes, so both aggregators keep the cores busy.
  std::atomic<size_t> driven{0};
  auto drive_leases = [&] {
    while (std::optional<Lease> lease = pass.Next()) {
      auto result = DriveLeasedJob(*lease);
      if (result && *result) ++driven;
      if (!result) pass.Fail(result.error());
    }
  };
  std::vector<std::thread> threads;
  // With jobs to create meanwhile, every driver gets a thread of its own
  // and this thread only creates (it drives only if no thread could be
  // had); otherwise it is one of the drivers.
  for (size_t w = created != nullptr ? 0 : 1; w < workers; ++w) {
    try {
      threads.emplace_back(drive_leases);
    } catch (const std::system_error&) {
      break;  // No more threads to be had: the ones running share the work.
    }
  }
  if (created != nullptr) {
    *created = CreateWhileDriving([&] {
      pass.Created();
      return !pass.failure();  // Nothing would drive more jobs.
    });
    pass.CreatorDone();
  }
  if (created == nullptr || threads.empty()) drive_leases();
  for (std::thread& thread : threads) thread.join();
  // Jobs that came round again in this pass (a failure's retry delay that
  // ran out) were kept out of the other drivers' leases until now.
  if (const std::vector<Lease> leases = pass.TakeLeasesToGiveBack(); !leases.empty()) {
    auto released = datastore_.Run([&](Transaction& tx) -> Result<void> {
      for (const Lease& lease : leases) {
        if (Result<void> one = tx.ReleaseAggregationJob(lease, 0); !one) return one;
      }
      return {};
    });
    if (!released) pass.Fail(released.error());
  }
  if (auto failure = pass.failure()) return std::unexpected(*failure);
  return driven.load();
}

Result<bool> LeaderDrivers::DriveLeasedJob(const Lease& lease) {
  if (Stopping()) {
    // Shutting down: the job is left for the next start, at once.
    auto released =
        datastore_.Run([&](Transaction& tx) { return tx.ReleaseAggregationJob(lease, 0); });
    if (!released) return std::unexpected(released.error());
    return false;
  }
  auto done = DriveAggregationJob(lease);
  if (done) return true;
  Log("aggregation job " + dap::Base64UrlEncode(lease.job_id) + ": " + done.error().message());
  // Another attempt after the back-off. Nothing of the failed attempt was
  // committed, so it resends the same request.
  const int64_t retry_at = internal::NowMilliseconds() + options_.retry_delay.count();
  auto released =
      datastore_.Run([&](Transaction& tx) { return tx.ReleaseAggregationJob(lease, retry_at); });
  if (!released) return std::unexpected(released.error());
  return false;
}

Result<void> LeaderDrivers::DriveAggregationJob(const Lease& lease) {
  JobContext context;
  context.task = tasks_.Find(lease.task_id);
  if (context.task == nullptr) return MakeError(ErrorCode::kInvalidArgument, "unknown task");
  std::optional<AggregationJobRow> job;
  auto read = datastore_.Read([&](Transaction& tx) -> Result<void> {
    auto found = tx.GetAggregationJob(lease.task_id, lease.job_id);
    if (!found) return std::unexpected(found.error());
    job = std::move(*found);
    if (!job) return {};
    auto rows = tx.GetJobReports(lease.task_id, lease.job_id);
    if (!rows) return std::unexpected(rows.error());
    context.rows = std::move(*rows);
    return {};
  });
  if (!read) return read;
  if (!job || job->state != JobState::kInProgress) return {};
  context.job = std::move(*job);
  auto agg_param = agg_params_.Decode(*context.task, context.job.agg_param);
  if (!agg_param) return MakeError(ErrorCode::kInternal, "stored aggregation parameter");
  context.agg_param = *agg_param;
  auto driven = context.job.step == 0 ? StartJob(context) : ContinueJob(context);
  if (!driven) return driven;
  return datastore_.Run([&](Transaction& tx) { return tx.ReleaseAggregationJob(lease, 0); });
}

Result<void> LeaderDrivers::StartJob(JobContext& context) {
  const Task& task = *context.task;
  const auto& verify_key = *task.verify_keys.begin();
  std::vector<const dap::AggregatorHpkeKey*> keys;
  for (const auto& key : hpke_keys_) keys.push_back(&key);

  // Multi-level: reports still prepared in memory from an earlier level. In
  // a held_reports job such a report needs nothing from the datastore (the
  // request carries only its metadata), which spares reading kilobytes per
  // report at every level of a walk.
  std::vector<std::unique_ptr<poplar::PreparedReport>> prepared(context.rows.size());
  const std::vector<ReportId> report_ids =
      task.multi_level() ? ReportIdsOf(context.rows) : std::vector<ReportId>();
  if (task.multi_level()) report_cache_.TakeMany(task.id, report_ids, prepared);
  auto from_memory = [&](size_t i) { return context.job.held_reports && prepared[i] != nullptr; };

  // Load the other reports (and, multi-level, whether the helper holds them:
  // the leader's held_reports mark).
  std::vector<std::optional<ClientReportRow>> reports(context.rows.size());
  // Rows in the opened form hold the leader's share: wiped however this
  // function leaves (DecodeStoredReport wipes those it decodes).
  struct WipeOpenedRows {
    std::vector<std::optional<ClientReportRow>>& rows;
    ~WipeOpenedRows() {
      for (auto& row : rows) {
        if (row) internal::WipeIfOpened(*row);
      }
    }
  } wipe_opened_rows{reports};
  std::vector<bool> held(context.rows.size());
  // Kilobytes a report, which a large datastore reads from the disk: on a
  // reader connection, so that the writer's transactions go on meanwhile.
  auto read = datastore_.Read([&](Transaction& tx) -> Result<void> {
    for (size_t i = 0; i < context.rows.size(); ++i) {
      if (from_memory(i)) continue;
      auto report = tx.GetClientReport(task.id, context.rows[i].report_id);
      if (!report) return std::unexpected(report.error());
      if (reports[i]) internal::WipeIfOpened(*reports[i]);  // A transaction run again.
      reports[i] = std::move(*report);
      if (task.multi_level()) {
        // Only the mark counts (a share stored in it by an earlier version
        // is not read).
        auto marked = tx.IsHeld(task.id, context.rows[i].report_id);
        if (!marked) return std::unexpected(marked.error());
        held[i] = *marked;
      }
    }
    return {};
  });
  if (!read) return read;

  // The leader's first step for every report, and the request.
  dap::AggregationJobInitReq init;
  init.verification_key_id = verify_key.first;
  init.agg_param = context.job.agg_param;
  if (task.leader_selected()) {
    init.extensions.push_back({dap::kLeaderSelectedBatchIdExtension, context.job.batch_key});
  }
  if (context.job.held_reports) init.extensions.push_back({dap::kHeldReportsExtension, {}});
  std::vector<dap::PingPongState> states(context.rows.size());
  std::vector<std::optional<HeldReportRow>> to_hold(context.rows.size());
  std::vector<std::optional<dap::Report>> reports_in_job(context.rows.size());
  std::vector<size_t> sent;  // Row indexes, in request order.
  for (size_t i = 0; i < context.rows.size(); ++i) {
    ReportAggregationRow& row = context.rows[i];
    auto fail = [&](ReportError error) {
      row.state = ReportAggregationState::kFailed;
      row.error = error;
    };
    if (from_memory(i)) {
      // Uploads carry no public extensions (they are refused), so the
      // metadata is the row's.
      dap::Report metadata_only;
      metadata_only.metadata.report_id = row.report_id;
      metadata_only.metadata.time = row.time;
      reports_in_job[i] = std::move(metadata_only);
      continue;
    }
    if (!reports[i]) {
      fail(ReportError::kReportDropped);  // Expired and deleted meanwhile.
      continue;
    }
    auto stored = internal::DecodeStoredReport(*reports[i]);
    if (!stored) {
      fail(ReportError::kInvalidMessage);
      continue;
    }
    const dap::Report& report = stored->report;
    if (prepared[i] == nullptr) {
      // Prepared at the report's first level, and again at a later one when
      // it is no longer prepared in memory (after a restart, or evicted from
      // a cache smaller than the batch), from the stored report: its share
      // opened at upload, or (a report stored by an earlier build) opened
      // now. (Shares stored by earlier versions in held rows are not used.)
      std::span<const uint8_t> leader_input_share = stored->leader_input_share;
      Bytes opened_now;
      if (leader_input_share.empty()) {
        auto opened = internal::OpenInputSharePayload(
            task.id, task.configuration, report.metadata, report.public_share,
            report.leader_encrypted_input_share, dap::Role::kLeader, keys);
        if (auto* error = std::get_if<ReportError>(&opened)) {
          fail(*error);
          continue;
        }
        metrics_.InputShareOpened();
        opened_now = std::move(std::get<Bytes>(opened));
        leader_input_share = opened_now;
      }
      auto decoded = task.vdaf->PrepareReport(0, task.vdaf_context, row.report_id,
                                              report.public_share, leader_input_share);
      crypto::SecureWipeVector(opened_now);
      if (!decoded) {
        fail(ReportError::kInvalidMessage);
        continue;
      }
      prepared[i] = std::move(*decoded);
    }
    if (task.multi_level() && !held[i]) {
      // A mark that the helper holds the report once this level accepts it
      // (later levels name it by ID); no shares: the leader's client_reports
      // row has the report, and later levels prepare it from there if they
      // must.
      to_hold[i] = HeldReportRow{task.id, row.report_id, row.time, row.bucket_key, {}, {}};
    }
    reports_in_job[i] = std::move(stored->report);
  }
  // The leader's first VDAF step for every report at once (the VDAF shares
  // the per-parameter work and hashes four reports together), then the
  // request: reports in the job's order, without the failed ones.
  {
    std::vector<poplar::PreparedReport*> batch(context.rows.size(), nullptr);
    size_t verified = 0;
    for (size_t i = 0; i < context.rows.size(); ++i) {
      if (context.rows[i].state == ReportAggregationState::kFailed || !reports_in_job[i]) {
        continue;
      }
      batch[i] = prepared[i].get();
      ++verified;
    }
    auto start = std::chrono::steady_clock::now();
    if (verified > 0) {
      dap::PingPongLeaderInitBatch(*task.vdaf, verify_key.second.span(), task.vdaf_context,
                                   *context.agg_param, batch, states);
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (size_t i = 0; i < context.rows.size(); ++i) {
      if (batch[i] == nullptr) continue;
      metrics_.Verified(seconds / static_cast<double>(verified));
      if (states[i].kind != PingKind::kContinued) {
        context.rows[i].state = ReportAggregationState::kFailed;
        context.rows[i].error = ReportError::kVdafVerifyError;
        to_hold[i].reset();
        continue;
      }
      dap::VerifyInit verify_init;
      verify_init.report_share.metadata = reports_in_job[i]->metadata;
      if (context.job.held_reports) {
        verify_init.report_share.encrypted_input_share = HeldPlaceholder();
      } else {
        verify_init.report_share.public_share = reports_in_job[i]->public_share;
        verify_init.report_share.encrypted_input_share =
            reports_in_job[i]->helper_encrypted_input_share;
      }
      verify_init.payload = states[i].outbound;
      init.verify_inits.push_back(std::move(verify_init));
      sent.push_back(i);
    }
  }

  // The helper's answer (the request is the same on every attempt, so a
  // retry after a crash gets the helper's stored answer).
  std::optional<dap::AggregationJobResp> response;
  std::string helper_location;
  bool abandon = false;
  if (!sent.empty()) {
    auto body = dap::Encode(init);
    if (!body) return std::unexpected(body.error());
    auto answer = SendToHelper(
        dap::HttpMethod::kPost,
        HelperUrl(task, "tasks/" + dap::Base64UrlEncode(task.id) + "/aggregation_jobs"),
        internal::DapMediaType("aggregation-job-init-req"), *body);
    if (!answer) {
      if (answer.error().code() != ErrorCode::kVerifyFailed) return std::unexpected(answer.error());
      Log("abandoning aggregation job: " + answer.error().message());
      abandon = true;
    } else if (std::optional<std::string> location =
                   internal::LocationOnOrigin(HelperUrl(task, ""), answer->location);
               !location) {
      // Not abandoned: the helper has taken the job, and would not take its
      // reports again. Tried again later (the helper answers from what it
      // stored), with the error in the log for an operator.
      return MakeError(ErrorCode::kIoError,
                       "the helper's Location is not on its own origin: " + answer->location);
    } else {
      helper_location = std::move(*location);
      auto decoded = dap::Decode<dap::AggregationJobResp>(answer->body);
      if (!decoded || decoded->verify_resps.size() != sent.size()) {
        abandon = true;
      } else {
        for (size_t k = 0; k < sent.size(); ++k) {
          if (decoded->verify_resps[k].report_id != context.rows[sent[k]].report_id) abandon = true;
        }
        if (!abandon) response = std::move(*decoded);
      }
    }
  }
  if (abandon) {
    // DAP-19: the job's reports may go into a new job.
    context.job.state = JobState::kAbandoned;
    metrics_.AggregationJob(Metrics::JobEvent::kAbandoned);
    std::lock_guard<std::mutex> no_creator_meanwhile(claims_change_mutex_);
    auto released = datastore_.Run([&](Transaction& tx) -> Result<void> {
      auto deleted = tx.DeleteReportAggregations(task.id, context.job.job_id);
      if (!deleted) return deleted;
      for (const ReportAggregationRow& row : context.rows) {
        auto forgotten = tx.ForgetAggregatedReport(task.id, row.report_id, context.job.agg_param);
        if (!forgotten) return forgotten;
      }
      return tx.PutAggregationJob(context.job);
    });
    if (released && task.multi_level()) {
      level_claims_.Release(task.id, context.job.agg_param, ReportIdsOf(context.rows));
    }
    // Released reports may lie behind where listings ended: list anew (once
    // they are released, so that no listing can miss them).
    if (released) releases_.fetch_add(1);
    return released;
  }

  // Each report's next state.
  internal::OutputAccumulator accumulator(task, *context.agg_param, context.job.agg_param);
  std::vector<size_t> dropped;  // Held reports the helper no longer has.
  bool waiting = false;
  for (size_t k = 0; k < sent.size(); ++k) {
    ReportAggregationRow& row = context.rows[sent[k]];
    const dap::VerifyResp& verify_resp = response->verify_resps[k];
    if (verify_resp.type == dap::VerifyRespType::kReject) {
      row.state = ReportAggregationState::kFailed;
      row.error = verify_resp.report_error;
      if (context.job.held_reports && verify_resp.report_error == ReportError::kReportDropped) {
        dropped.push_back(sent[k]);
      }
      continue;
    }
    if (verify_resp.type != dap::VerifyRespType::kContinue) {
      row.state = ReportAggregationState::kFailed;
      row.error = ReportError::kVdafVerifyError;
      continue;
    }
    dap::PingPongState& state = states[sent[k]];
    dap::PingPongState next =
        dap::PingPongContinued(*task.vdaf, true, task.vdaf_context, *context.agg_param,
                               std::move(state.verify_state), state.round, verify_resp.payload);
    switch (next.kind) {
      case PingKind::kFinished: {
        auto added = accumulator.Add(row.bucket_key, row.time, row.report_id, next.out_share);
        if (!added) return added;
        row.state = ReportAggregationState::kFinished;
        break;
      }
      case PingKind::kFinishedWithOutbound:
        // Poplar1: the output share waits for the helper's confirmation, in
        // memory (ContinueJob runs next, in this pass).
        row.state = ReportAggregationState::kWaiting;
        if (context.pending_out_shares.empty()) {
          context.pending_out_shares.resize(context.rows.size());
        }
        context.pending_out_shares[sent[k]] = std::move(next.out_share);
        row.last_message = next.outbound;
        waiting = true;
        break;
      case PingKind::kContinued:
        row.state = ReportAggregationState::kWaiting;
        row.verify_state = internal::EncodeContinuedState(next.round, next.verify_state);
        row.last_message = next.outbound;
        waiting = true;
        break;
      case PingKind::kRejected:
        row.state = ReportAggregationState::kFailed;
        row.error = ReportError::kVdafVerifyError;
        break;
    }
  }

  // What the first step decided. A job that continues writes it together
  // with the next step's outcome (which writes the rows then), so nothing of
  // a job is stored between its steps.
  const Writes start_writes = [&](Transaction& tx) -> Result<void> {
    for (size_t i = 0; i < context.rows.size(); ++i) {
      const ReportAggregationRow& row = context.rows[i];
      const bool was_dropped = std::find(dropped.begin(), dropped.end(), i) != dropped.end();
      // A refused report is kept out of the batch for good; one the helper
      // found too early is not, but it stays taken for this level: released,
      // it would go into a job identical to this one, which the helper
      // answers again from its stored answer.
      if (row.state == ReportAggregationState::kFailed && !was_dropped &&
          row.error != ReportError::kReportTooEarly) {
        auto recorded = tx.RecordRejectedReport(task.id, row.report_id, row.error);
        if (!recorded) return recorded;
      } else if (row.state != ReportAggregationState::kFailed && to_hold[i]) {
        auto kept = tx.PutHeldReport(*to_hold[i]);
        if (!kept) return kept;
      }
    }
    auto committed = accumulator.Commit(tx);
    if (!committed) return committed;
    if (!waiting) {
      auto stored = tx.PutJobReports(task.id, context.job.job_id, context.rows);
      if (!stored) return stored;
      context.job.helper_url = helper_location;
      context.job.state = JobState::kFinished;
      auto put = tx.PutAggregationJob(context.job);
      if (!put) return put;
    }
    // Sent again in full, in jobs of their own (the extension's fallback):
    // jobs of full reports' size, since a held job is larger and the
    // reports' shares would make its request too large for the helper.
    const size_t retry_jobs = JobsFor(dropped.size(), /*held=*/false);
    for (size_t j = 0; j < retry_jobs; ++j) {
      auto job_id = RandomJobId();
      if (!job_id) return std::unexpected(job_id.error());
      AggregationJobRow retry = context.job;
      retry.job_id = *job_id;
      retry.held_reports = false;
      retry.step = 0;
      retry.state = JobState::kInProgress;
      retry.helper_url.clear();
      auto created = tx.PutAggregationJob(retry);
      if (!created) return created;
      std::vector<ReportAggregationRow> retried;
      const auto [start, end] = JobRange(dropped.size(), retry_jobs, j);
      for (size_t k = start; k < end; ++k) {
        ReportAggregationRow row = context.rows[dropped[k]];
        row.job_id = *job_id;
        row.ord = static_cast<uint32_t>(k - start);
        row.state = ReportAggregationState::kStart;
        row.verify_state.clear();
        row.last_message.clear();
        retried.push_back(std::move(row));
      }
      auto stored = tx.PutJobReports(task.id, *job_id, retried);
      if (!stored) return stored;
    }
    return {};
  };
  Result<void> done;
  if (waiting) {
    context.job.helper_url = helper_location;
    context.job.step = 1;
    metrics_.AggregationJob(Metrics::JobEvent::kStepped);
    done = ContinueJob(context, &start_writes);
  } else {
    done = datastore_.Run(start_writes);
    if (done) metrics_.AggregationJob(Metrics::JobEvent::kFinished);
  }
  if (!done) return done;
  if (task.multi_level()) report_cache_.PutMany(task.id, report_ids, prepared);
  return {};
}

Result<void> LeaderDrivers::ContinueJob(JobContext& context, const Writes* start_writes) {
  const Task& task = *context.task;
  dap::AggregationJobContinueReq continue_req;
  continue_req.step = context.job.step;
  std::vector<size_t> sent;
  for (size_t i = 0; i < context.rows.size(); ++i) {
    if (context.rows[i].state != ReportAggregationState::kWaiting) continue;
    continue_req.verify_continues.push_back(
        {context.rows[i].report_id, context.rows[i].last_message});
    sent.push_back(i);
  }
  std::optional<dap::AggregationJobResp> response;
  if (!sent.empty()) {
    auto body = dap::Encode(continue_req);
    if (!body) return std::unexpected(body.error());
    auto answer = SendToHelper(dap::HttpMethod::kPost, context.job.helper_url,
                               internal::DapMediaType("aggregation-job-continue-req"), *body);
    if (!answer) {
      if (answer.error().code() != ErrorCode::kVerifyFailed) return std::unexpected(answer.error());
      Log("abandoning aggregation job: " + answer.error().message());
      context.job.state = JobState::kAbandoned;
      metrics_.AggregationJob(Metrics::JobEvent::kAbandoned);
      context.EncodePendingOutShares();
      return datastore_.Run([&](Transaction& tx) -> Result<void> {
        if (start_writes != nullptr) {
          auto written = (*start_writes)(tx);
          if (!written) return written;
          auto stored = tx.PutJobReports(task.id, context.job.job_id, context.rows);
          if (!stored) return stored;
        }
        return tx.PutAggregationJob(context.job);
      });
    }
    auto decoded = dap::Decode<dap::AggregationJobResp>(answer->body);
    if (!decoded) return MakeError(ErrorCode::kVerifyFailed, "malformed helper response");
    response = std::move(*decoded);
  }
  // The helper's answer for each continued report: the k-th answer when
  // the answers name the sent reports in order, as the helper is to give
  // them (a map of thousands of IDs was 4 % of the leader); otherwise
  // looked up by ID, and a report without one failed.
  std::span<const dap::VerifyResp> answers;
  if (response) answers = response->verify_resps;
  bool in_order = answers.size() == sent.size();
  for (size_t k = 0; in_order && k < sent.size(); ++k) {
    in_order = answers[k].report_id == context.rows[sent[k]].report_id;
  }
  std::map<dap::ReportId, const dap::VerifyResp*> by_id;
  if (!in_order) {
    for (const dap::VerifyResp& verify_resp : answers) by_id[verify_resp.report_id] = &verify_resp;
  }
  internal::OutputAccumulator accumulator(task, *context.agg_param, context.job.agg_param);
  bool waiting = false;
  for (size_t k = 0; k < sent.size(); ++k) {
    const size_t i = sent[k];
    ReportAggregationRow& row = context.rows[i];
    const dap::VerifyResp* answer = nullptr;
    if (in_order) {
      answer = &answers[k];
    } else if (auto found = by_id.find(row.report_id); found != by_id.end()) {
      answer = found->second;
    }
    if (answer == nullptr || answer->type == dap::VerifyRespType::kReject) {
      row.state = ReportAggregationState::kFailed;
      row.error = answer == nullptr ? ReportError::kVdafVerifyError : answer->report_error;
      continue;
    }
    if (answer->type == dap::VerifyRespType::kFinish) {
      // The output share of a FinishedWithOutbound state: in memory, or
      // stored in the row.
      poplar::FieldVector pending = i < context.pending_out_shares.size()
                                        ? std::move(context.pending_out_shares[i])
                                        : poplar::FieldVector();
      Result<poplar::FieldVector> out_share = std::move(pending);
      if (poplar::FieldVectorSize(*out_share) == 0) {
        out_share = task.vdaf->DecodeAggShare(*context.agg_param, row.verify_state);
      }
      if (!out_share) {
        row.state = ReportAggregationState::kFailed;
        row.error = ReportError::kVdafVerifyError;
        continue;
      }
      auto added = accumulator.Add(row.bucket_key, row.time, row.report_id, *out_share);
      if (!added) return added;
      row.state = ReportAggregationState::kFinished;
      row.verify_state.clear();
      continue;
    }
    // A VDAF with more rounds than Poplar1's two would continue here.
    auto stored = internal::DecodeContinuedState(row.verify_state);
    dap::PingPongState next;
    if (stored) {
      next = dap::PingPongContinued(*task.vdaf, true, task.vdaf_context, *context.agg_param,
                                    std::move(stored->state), stored->round, answer->payload);
    }
    if (next.kind == PingKind::kFinished) {
      auto added = accumulator.Add(row.bucket_key, row.time, row.report_id, next.out_share);
      if (!added) return added;
      row.state = ReportAggregationState::kFinished;
    } else if (next.kind == PingKind::kRejected) {
      row.state = ReportAggregationState::kFailed;
      row.error = ReportError::kVdafVerifyError;
    } else {
      row.state = ReportAggregationState::kWaiting;
      row.verify_state = next.kind == PingKind::kContinued
                             ? internal::EncodeContinuedState(next.round, next.verify_state)
                             : poplar::EncodeFieldVector(next.out_share);
      row.last_message = next.outbound;
      waiting = true;
    }
  }
  auto commit = datastore_.Run([&](Transaction& tx) -> Result<void> {
    if (start_writes != nullptr) {
      auto written = (*start_writes)(tx);
      if (!written) return written;
    }
    // Every row of the job, as this step leaves it, in one record.
    auto stored = tx.PutJobReports(task.id, context.job.job_id, context.rows);
    if (!stored) return stored;
    for (size_t i : sent) {
      const ReportAggregationRow& row = context.rows[i];
      if (row.state == ReportAggregationState::kFailed) {
        auto recorded = tx.RecordRejectedReport(task.id, row.report_id, row.error);
        if (!recorded) return recorded;
      }
    }
    auto committed = accumulator.Commit(tx);
    if (!committed) return committed;
    context.job.step = static_cast<uint16_t>(context.job.step + (waiting ? 1 : 0));
    context.job.state = waiting ? JobState::kInProgress : JobState::kFinished;
    return tx.PutAggregationJob(context.job);
  });
  if (!commit) return commit;
  metrics_.AggregationJob(waiting ? Metrics::JobEvent::kStepped : Metrics::JobEvent::kFinished);
  return {};
}

// --- The collection job driver.

Result<size_t> LeaderDrivers::DriveCollectionJobs() {
  std::vector<Lease> leases;
  auto leased = datastore_.Run([&](Transaction& tx) -> Result<void> {
    auto taken =
        tx.LeaseCollectionJobs(internal::NowMilliseconds(), options_.lease_duration.count(), 8);
    if (!taken) return std::unexpected(taken.error());
    leases = std::move(*taken);
    return {};
  });
  if (!leased) return std::unexpected(leased.error());
  size_t finished = 0;
  for (const Lease& lease : leases) {
    if (Stopping()) {
      auto released =
          datastore_.Run([&](Transaction& tx) { return tx.ReleaseCollectionJob(lease, 0); });
      if (!released) return std::unexpected(released.error());
      continue;
    }
    auto done = DriveCollectionJob(lease);
    int64_t retry_at = 0;
    if (!done) {
      Log("collection job " + dap::Base64UrlEncode(lease.job_id) + ": " + done.error().message());
      retry_at = internal::NowMilliseconds() + options_.retry_delay.count();
    } else if (*done) {
      ++finished;
      if (options_.collection_waiters != nullptr) {
        options_.collection_waiters->Notify(lease.task_id, lease.job_id);
      }
    }
    auto released =
        datastore_.Run([&](Transaction& tx) { return tx.ReleaseCollectionJob(lease, retry_at); });
    if (!released) return std::unexpected(released.error());
  }
  return finished;
}

Result<bool> LeaderDrivers::DriveCollectionJob(const Lease& lease) {
  std::shared_ptr<const Task> task = tasks_.Find(lease.task_id);
  if (task == nullptr) return MakeError(ErrorCode::kInvalidArgument, "unknown task");
  std::optional<CollectionJobRow> job;
  auto read = datastore_.Run([&](Transaction& tx) -> Result<void> {
    auto found = tx.GetCollectionJob(lease.task_id, lease.job_id);
    if (!found) return std::unexpected(found.error());
    job = std::move(*found);
    return {};
  });
  if (!read) return std::unexpected(read.error());
  if (!job || job->state != CollectionState::kStart) return false;
  auto request = dap::Decode<dap::CollectionJobReq>(job->request);
  if (!request) return MakeError(ErrorCode::kInternal, "stored collection request");
  auto agg_param = task->vdaf->DecodeAggParam(job->agg_param, nullptr);
  if (!agg_param) return MakeError(ErrorCode::kInternal, "stored aggregation parameter");
  auto fail = [&](dap::ProblemType type, const std::string& detail) -> Result<bool> {
    job->state = CollectionState::kFailed;
    job->error = internal::CollectionFailure(type, detail);
    metrics_.CollectionJob(Metrics::JobEvent::kAbandoned);
    auto stored = datastore_.Run([&](Transaction& tx) { return tx.PutCollectionJob(*job); });
    if (!stored) return std::unexpected(stored.error());
    return true;
  };

  // leader_selected: choose the batch at the first collection of a walk.
  if (task->leader_selected() && job->bucket_keys.empty()) {
    Bytes walk_id;
    for (const auto& extension : request->extensions) {
      if (extension.type == dap::kWalkIdExtension) walk_id = extension.data;
    }
    bool chosen = false;
    auto choose = datastore_.Run([&](Transaction& tx) -> Result<void> {
      chosen = false;
      Bytes batch_key;
      if (IsPoplar1(*task)) {
        // Heavy hitters: every report not yet in a batch forms the batch
        // (one statement: a million reports' rows in memory, and a
        // statement each, took minutes).
        auto unbatched = tx.CountUnbatchedReports(task->id);
        if (!unbatched) return std::unexpected(unbatched.error());
        if (*unbatched < task->configuration.min_batch_size) return {};
        batch_key.assign(32, 0);
        auto filled = crypto::RandomBytes(batch_key);
        if (!filled) return std::unexpected(filled.error());
        auto assigned = tx.AssignUnbatchedReports(task->id, batch_key);
        if (!assigned) return std::unexpected(assigned.error());
      } else {
        auto batches = tx.LeaderSelectedBatches(task->id);
        if (!batches) return std::unexpected(batches.error());
        for (const auto& batch : *batches) {
          if (batch.reports < task->configuration.min_batch_size) continue;
          auto collected = tx.IsBucketCollected(task->id, batch.batch_key);
          if (!collected) return std::unexpected(collected.error());
          if (!*collected) {
            batch_key = batch.batch_key;
            break;
          }
        }
        if (batch_key.empty()) return {};
      }
      auto marked = tx.MarkBucketCollected(task->id, batch_key);
      if (!marked) return marked;
      auto appended = tx.AppendBucketAggParam(task->id, batch_key, job->agg_param);
      if (!appended) return appended;
      if (!walk_id.empty()) {
        auto bound = tx.BindWalk(task->id, walk_id, batch_key);
        if (!bound) return bound;
      }
      job->bucket_keys = {batch_key};
      chosen = true;
      return tx.PutCollectionJob(*job);
    });
    if (!choose) return std::unexpected(choose.error());
    if (!chosen) return false;  // Not enough reports yet.
  }

  // Ready when every report of the batch has been aggregated.
  Bytes first_key = job->bucket_keys.front();
  Bytes last_key = job->bucket_keys.back();
  // Stopping at the first report that still awaits; only past where the
  // creator's listing ended while that position holds (see listing_ends_),
  // the whole batch otherwise.
  auto listing = listing_ends_.find(ListingKey(task->id, job->agg_param, job->bucket_keys));
  const BatchScope scope = ScopeOf(*task, job->bucket_keys);
  const uint64_t after = listing != listing_ends_.end() && PositionHolds(listing->second, task)
                             ? listing->second.position
                             : 0;
  bool ready = false;
  bool ask_claims = false;
  internal::BatchTotal total;
  auto sum = [&](Transaction& tx) -> Result<void> {
    auto summed = internal::SumBatch(tx, *task, **agg_param, job->agg_param, first_key, last_key);
    if (!summed) return std::unexpected(summed.error());
    total = std::move(*summed);
    ready = true;
    return {};
  };
  auto check = datastore_.Run([&](Transaction& tx) -> Result<void> {
    ready = false;
    ask_claims = false;
    auto unfinished = tx.CountUnfinishedJobs(task->id, job->agg_param);
    if (!unfinished) return std::unexpected(unfinished.error());
    if (*unfinished > 0) return {};
    // The job creator's last listing of this batch and parameter filled its
    // page: it has more jobs to create, so the batch is not ready (checking
    // would read past every report taken so far).
    if (listing != listing_ends_.end() && listing->second.more) return {};
    if (task->multi_level()) {
      // Which reports the level took is in memory: asked outside the
      // transaction (a level's first use reads it from the datastore).
      ask_claims = true;
      return {};
    }
    auto awaiting = tx.AnyReportAwaitingAggregation(task->id, job->agg_param, scope.time_start,
                                                    scope.time_end, scope.batch_key, after);
    if (!awaiting) return std::unexpected(awaiting.error());
    if (*awaiting) return {};
    return sum(tx);
  });
  if (!check) return std::unexpected(check.error());
  if (ask_claims) {
    // No job can be created or finished meanwhile: the job creator and the
    // aggregation driver run on this thread, between collection passes.
    auto awaiting = AnyUnclaimedReport(*task, job->agg_param, job->bucket_keys, after);
    if (!awaiting) return std::unexpected(awaiting.error());
    if (*awaiting) return false;
    auto summed = datastore_.Run(sum);
    if (!summed) return std::unexpected(summed.error());
  }
  if (!ready) return false;
  if (total.count < task->configuration.min_batch_size) {
    return fail(dap::ProblemType::kInvalidBatchSize,
                "the batch holds " + std::to_string(total.count) +
                    " verified reports, fewer than min_batch_size " +
                    std::to_string(task->configuration.min_batch_size));
  }

  // The helper's aggregate share.
  dap::AggregateShareReq share_req;
  share_req.collection_job_req = *request;
  if (task->leader_selected()) {
    dap::BatchId batch_id;
    std::copy(first_key.begin(), first_key.end(), batch_id.begin());
    share_req.batch_selector = dap::LeaderSelectedBatchSelector(batch_id);
  } else {
    share_req.batch_selector = request->query;
  }
  share_req.report_count = total.count;
  share_req.checksum = total.checksum;
  auto body = dap::Encode(share_req);
  if (!body) return std::unexpected(body.error());
  auto answer = SendToHelper(
      dap::HttpMethod::kPost,
      HelperUrl(*task, "tasks/" + dap::Base64UrlEncode(task->id) + "/aggregate_shares"),
      internal::DapMediaType("aggregate-share-req"), *body);
  if (!answer) {
    if (answer.error().code() != ErrorCode::kVerifyFailed) return std::unexpected(answer.error());
    // The helper refused: the collector sees the helper's reason.
    std::string message = answer.error().message();
    dap::ProblemType type = dap::ProblemType::kBatchMismatch;
    for (int t = 0; t < static_cast<int>(dap::ProblemType::kUnauthorized); ++t) {
      std::string token(dap::ProblemToken(static_cast<dap::ProblemType>(t)));
      if (!token.empty() && message.find(" " + token + ":") != std::string::npos) {
        type = static_cast<dap::ProblemType>(t);
      }
    }
    return fail(type, message);
  }
  auto helper_share = dap::Decode<dap::AggregateShare>(answer->body);
  if (!helper_share) return MakeError(ErrorCode::kVerifyFailed, "malformed aggregate share");

  // The leader's own share, encrypted to the collector.
  dap::AggregateShareAad aad{task->id, task->configuration, *request};
  auto aad_bytes = dap::Encode(aad);
  if (!aad_bytes) return std::unexpected(aad_bytes.error());
  Bytes plaintext = poplar::EncodeFieldVector(total.aggregate);
  auto sealed = crypto::hpke::Seal(
      dap::SuiteOf(task->collector_hpke_config), task->collector_hpke_config.public_key,
      dap::AggregateShareInfo(dap::Role::kLeader), *aad_bytes, plaintext);
  if (!sealed) return std::unexpected(sealed.error());
  dap::CollectionJobResp collection_resp;
  collection_resp.report_count = total.count;
  collection_resp.interval = {total.min_time, total.max_time - total.min_time + 1};
  collection_resp.leader_encrypted_agg_share = {
      task->collector_hpke_config.id, std::move(sealed->enc), std::move(sealed->ciphertext)};
  collection_resp.helper_encrypted_agg_share = std::move(helper_share->encrypted_aggregate_share);
  auto encoded = dap::Encode(collection_resp);
  if (!encoded) return std::unexpected(encoded.error());
  job->state = CollectionState::kFinished;
  job->response = std::move(*encoded);
  auto stored = datastore_.Run([&](Transaction& tx) { return tx.PutCollectionJob(*job); });
  if (!stored) return std::unexpected(stored.error());
  metrics_.CollectionJob(Metrics::JobEvent::kFinished);
  return true;
}

// --- Garbage collection and the loop.

Result<size_t> LeaderDrivers::CollectGarbage() {
  auto deleted =
      CollectExpired(datastore_, tasks_, internal::NowSeconds(), options_.report_expiry_seconds);
  // Listings go on from where they ended only while nothing behind that
  // changed. Deleting a task's newest reports also lets upload positions be
  // given again (a new report takes the largest one left plus one): start
  // the listings anew, also after a failure (an earlier task's deletions may
  // have been committed).
  if (!deleted || *deleted > 0) releases_.fetch_add(1);
  return deleted;
}

void LeaderDrivers::Run(const std::atomic<bool>& stop) {
  stop_ = &stop;
  while (!stop.load()) {
    size_t work = 0;
    auto log_failure = [](const char* what, const Result<size_t>& result) {
      if (!result) Log(std::string(what) + ": " + result.error().message());
      return result ? *result : 0;
    };
    // The job creator's passes run beside the drivers, which also take the
    // jobs it makes: run one after the other, the helper idled while the
    // leader listed and created (about a tenth of a walk's later rounds at a
    // million reports).
    Result<size_t> created = 0;
    work += log_failure("aggregation driver", DriveLeasedJobs(&created));
    work += log_failure("job creator", created);
    work += log_failure("collection driver", DriveCollectionJobs());
    auto now = std::chrono::steady_clock::now();
    if (now - last_garbage_collection_ > options_.garbage_collection_interval) {
      last_garbage_collection_ = now;
      log_failure("garbage collector", CollectGarbage());
    }
    if (work != 0) continue;
    if (options_.work_signal != nullptr) {
      options_.work_signal->WaitFor(options_.idle_interval);
    } else {
      std::this_thread::sleep_for(options_.idle_interval);
    }
  }
}

}  // namespace canopy::aggregator
