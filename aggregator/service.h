// The DAP-19 endpoints of one aggregator process, leader or helper, for any
// number of tasks: routing, authentication and the protocol logic, on a
// Datastore. The HTTP server (aggregator/http_server.h) calls Handle; tests
// may call it directly.
//
// Endpoints (paths relative to the aggregator's URL):
//   GET  hpke_config                                  both
//   POST tasks/{task}/reports                         leader (clients)
//   POST tasks/{task}/collection_jobs                 leader (collector token)
//   GET|DELETE tasks/{task}/collection_jobs/{job}     leader (collector token)
//   POST tasks/{task}/aggregation_jobs                helper (peer token)
//   POST|GET|DELETE tasks/{task}/aggregation_jobs/{job}   helper (peer token)
//   POST tasks/{task}/aggregate_shares                helper (peer token)
//   GET|DELETE tasks/{task}/aggregate_shares/{id}     helper (peer token)
//   GET healthz, GET metrics                          both, no token
//   GET|POST admin/tasks, DELETE admin/tasks/{task}   both (admin token)
// Every refusal is a DAP problem document (dap/problem.h).
#ifndef CANOPY_AGGREGATOR_SERVICE_H_
#define CANOPY_AGGREGATOR_SERVICE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aggregator/datastore.h"
#include "aggregator/http_types.h"
#include "aggregator/internal/agg_param_memo.h"
#include "aggregator/level_claims.h"
#include "aggregator/metrics.h"
#include "aggregator/report_cache.h"
#include "aggregator/step_state_cache.h"
#include "aggregator/task_registry.h"
#include "aggregator/upload_writer.h"
#include "dap/report.h"

namespace canopy::aggregator {

class CollectionWaiters;  // aggregator/collection_waiters.h
class WorkSignal;         // aggregator/work_signal.h

struct ServiceOptions {
  dap::Role role = dap::Role::kLeader;
  // Bearer tokens: between the aggregators, from the collector (leader), and
  // of the admin endpoint (empty disables it).
  std::string peer_token;
  std::string collector_token;
  std::string admin_token;
  uint64_t tolerable_clock_skew_seconds = 60;
  // Helper: garbage collection deletes reports older than this (seconds),
  // and jobs created longer ago with their records, which are what stops a
  // multi-level report from being verified twice at one level. So a report
  // whose jobs may be gone (older than this, less the clock skew a report
  // may have had) is refused with report_dropped. 0: reports never expire.
  uint64_t report_expiry_seconds = 7 * 24 * 3600;
  // POSIX seconds; tests replace it.
  std::function<uint64_t()> clock;
  // Reports whose decoded shares are kept in memory across levels.
  size_t report_cache_capacity = 100000;
  // Where the cached reports' per-level data waits between levels (null:
  // in memory, about 15 KB more a report at 256 bits).
  std::shared_ptr<LevelFiles> level_files;
  // Notified when a collection job is created (leader), so that the drivers
  // start on it at once. May be null.
  WorkSignal* work_signal = nullptr;
  // Holds polls of collection jobs in progress (leader) until the job
  // finishes or the hold ends. May be null: polls are answered at once.
  CollectionWaiters* collection_waiters = nullptr;
};

class AggregatorService final : public RequestHandler {
 public:
  // `datastore`, `tasks` and `metrics` must outlive the service.
  AggregatorService(ServiceOptions options, Datastore& datastore, TaskRegistry& tasks,
                    std::vector<dap::AggregatorHpkeKey> hpke_keys, Metrics& metrics);
  ~AggregatorService() override;

  void Handle(ServerRequest request, Responder respond) override;

  // The same, synchronously (a poll of a collection job is never held).
  ServerResponse HandleNow(const ServerRequest& request);

  // Adds a task (persisting it); used at start for task files and by the
  // admin endpoint. Errors: the definition's (kInvalidArgument), the
  // datastore's.
  Result<void> AddTask(const config::TaskDefinition& definition, const std::string& source);

  // Loads every task persisted in the datastore into the registry. Errors:
  // the datastore's; a stored definition that no longer builds is skipped
  // and reported in the returned list of warnings.
  Result<std::vector<std::string>> LoadStoredTasks();

  ReportCache& report_cache() { return report_cache_; }
  // Which reports each level of the multi-level tasks' walks took (the
  // leader's drivers use it too).
  LevelClaims& level_claims() { return level_claims_; }
  const std::vector<dap::AggregatorHpkeKey>& hpke_keys() const { return hpke_keys_; }

 private:
  struct Route;
  ServerResponse Dispatch(const ServerRequest& request);
  // Helper: the verification states the first step of a job left for its
  // continued reports (`continued`: positions in `rows`), from the job's
  // stored rows, from memory, or computed again from the held shares and the
  // leader's first messages. A report whose state cannot be had is left
  // rejected (kRejected). Errors: the datastore's.
  Result<std::vector<dap::PingPongState>> ContinuedStates(
      const Task& task, const JobId& job_id, const poplar::AggregationParameter& agg_param,
      const std::vector<ReportAggregationRow>& rows, const std::vector<size_t>& continued);
  // Helper: whether a report (its time in the task's units) is too old to
  // aggregate (see ServiceOptions::report_expiry_seconds).
  bool Expired(const Task& task, dap::Time report_time, uint64_t now) const;
  // Helper, multi-level tasks: reads a level's claims from its stored jobs.
  LevelClaims::Loader LevelLoader(const TaskId& task_id, const Bytes& agg_param);
  // Dispatch, with anything thrown turned into an internal error.
  ServerResponse DispatchSafely(const ServerRequest& request);
  // Whether `response` to `request` is a poll of a collection job in
  // progress that the waiters took over (they answer it later).
  bool HoldCollectionPoll(const std::shared_ptr<ServerRequest>& request,
                          const ServerResponse& response, const Responder& respond);
  ServerResponse DispatchTask(const ServerRequest& request, std::string_view rest);
  // The helper's resources the leader calls: aggregation jobs, aggregate shares.
  ServerResponse DispatchPeer(const Task& task, std::string_view resource,
                              const std::optional<JobId>& job_id, const ServerRequest& request);

  // Both roles.
  ServerResponse GetHpkeConfig();
  ServerResponse Healthz();
  ServerResponse MetricsPage();
  ServerResponse Admin(const ServerRequest& request, std::string_view rest);

  // Leader.
  // Uploads are answered when their reports are committed, which the
  // upload writer does for many requests at once (group commit).
  ServerResponse Upload(const Task& task, const ServerRequest& request);
  void UploadAsync(std::shared_ptr<const Task> task, const ServerRequest& request,
                   Responder respond);
  // The task of an upload request ("POST .../tasks/{id}/reports" at the
  // leader), or null for any other request.
  std::shared_ptr<const Task> UploadTask(const ServerRequest& request) const;
  ServerResponse CreateCollectionJob(const Task& task, const ServerRequest& request);
  ServerResponse GetCollectionJob(const Task& task, const JobId& job_id);
  ServerResponse DeleteCollectionJob(const Task& task, const JobId& job_id);

  // Helper.
  ServerResponse InitAggregationJob(const Task& task, const ServerRequest& request);
  ServerResponse ContinueAggregationJob(const Task& task, const JobId& job_id,
                                        const ServerRequest& request);
  ServerResponse GetAggregationJob(const Task& task, const JobId& job_id,
                                   const ServerRequest& request);
  ServerResponse DeleteAggregationJob(const Task& task, const JobId& job_id);
  ServerResponse CreateAggregateShare(const Task& task, const ServerRequest& request);
  ServerResponse GetAggregateShare(const Task& task, const JobId& share_id);

  bool Authorized(const ServerRequest& request, const std::string& token) const;
  uint64_t Now() const;

  ServiceOptions options_;
  Datastore& datastore_;
  TaskRegistry& tasks_;
  std::vector<dap::AggregatorHpkeKey> hpke_keys_;
  Metrics& metrics_;
  ReportCache report_cache_;
  LevelClaims level_claims_;
  // Helper: verification states between the steps of its jobs (multi-level).
  StepStateCache step_states_{16};
  // Helper: the aggregation parameters of its latest jobs, decoded.
  internal::AggParamMemo agg_params_;
  // Last, so that it is destroyed (flushing what is queued) first.
  std::unique_ptr<UploadWriter> upload_writer_;
};

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_SERVICE_H_
