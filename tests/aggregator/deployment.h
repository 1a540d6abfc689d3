// A leader and a helper in one process, each with its own SQLite file and
// HTTP server on a loopback port, and a collector's view: upload reports,
// collect a batch, decrypt and unshard. The leader's drivers run when the
// test says so, which keeps the tests deterministic.
#ifndef CANOPY_TESTS_AGGREGATOR_DEPLOYMENT_H_
#define CANOPY_TESTS_AGGREGATOR_DEPLOYMENT_H_

#include <memory>
#include <string>
#include <vector>

#include "aggregator/http_server.h"
#include "aggregator/leader_drivers.h"
#include "aggregator/metrics.h"
#include "aggregator/service.h"
#include "aggregator/sqlite_datastore.h"
#include "aggregator/task_registry.h"
#include "crypto/hpke.h"
#include "dap/http_client.h"
#include "dap/report.h"
#include "proto/canopy_config.pb.h"

namespace canopy::aggregator::testing {

inline constexpr char kPeerToken[] = "peer-token-for-tests";
inline constexpr char kCollectorToken[] = "collector-token-for-tests";
inline constexpr char kAdminToken[] = "admin-token-for-tests";

// One aggregator process's parts.
struct Party {
  std::unique_ptr<Datastore> datastore;
  Metrics metrics;
  TaskRegistry tasks;
  std::unique_ptr<AggregatorService> service;
  std::unique_ptr<HttpServer> server;
  std::string url;  // "http://127.0.0.1:<port>/"
};

// What a test may change about the deployment.
struct DeploymentOptions {
  // The HTTP servers' request body limit (both parties).
  size_t max_body_bytes = size_t{32} << 20;
  // The leader's reports per aggregation job.
  uint32_t max_reports_per_job = 40;
  // Its reports per held_reports job; 0: max_reports_per_job, so that the
  // tests' later levels also take many jobs.
  uint32_t max_reports_per_held_job = 0;
  // The leader's jobs per pass: fewer than the default 256, so that tests
  // see a level created in several passes with a few hundred reports.
  size_t jobs_per_pass = 64;
  // The leader's jobs in a level's first pass (LeaderDriverOptions); 0: no
  // bound.
  size_t first_pass_jobs = 0;
  // DriveLeader creates jobs beside the drivers of those created before
  // (LeaderDrivers::CreateAndDriveAggregationJobs, as the service's loop
  // does) instead of creating, then driving what it created.
  bool create_beside_drivers = false;
  // Cached reports keep their levels in memory instead of level files in the
  // deployment's folder.
  bool report_levels_in_memory = false;
};

class Deployment {
 public:
  // Starts both aggregators in a fresh temporary folder.
  explicit Deployment(DeploymentOptions options = {});
  ~Deployment();

  // A task definition with the deployment's URLs, keys and a random task ID;
  // the caller sets the VDAF and batch mode, then calls AddTask.
  config::TaskDefinition NewTaskDefinition(uint64_t min_batch_size = 1);
  // Adds the task to both aggregators. Returns its ID.
  dap::TaskId AddTask(const config::TaskDefinition& definition);

  // Builds and uploads reports (one request); returns the upload response.
  Result<dap::HttpResponse> Upload(const dap::TaskId& task_id,
                                   const std::vector<poplar::Measurement>& measurements,
                                   dap::Time time);
  // Builds reports without uploading them.
  std::vector<dap::Report> BuildReports(const dap::TaskId& task_id,
                                        const std::vector<poplar::Measurement>& measurements,
                                        dap::Time time);

  // Creates a collection job; returns its URL or the error response.
  Result<dap::HttpResponse> CreateCollectionJob(const dap::TaskId& task_id,
                                                const dap::CollectionJobReq& request);

  // Runs the leader's drivers and polls the job until it finishes (or
  // fails). On success returns the unsharded result and the report count.
  struct Collected {
    poplar::AggregateResult result;
    uint64_t report_count = 0;
    int status = 0;            // The final poll's status.
    std::string problem_type;  // When it failed.
  };
  Result<Collected> Collect(const dap::TaskId& task_id, const dap::CollectionJobReq& request);

  // One pass of every leader driver.
  void DriveLeader();
  // The leader's drivers (DriveLeader runs their passes).
  LeaderDrivers& leader_drivers() { return *drivers_; }

  // Decrypts and unshards a finished collection job's response.
  Result<poplar::AggregateResult> Unshard(const dap::TaskId& task_id,
                                          const dap::CollectionJobReq& request,
                                          const dap::CollectionJobResp& response);

  Party& leader() { return *leader_; }
  Party& helper() { return *helper_; }
  dap::HttpClient& http() { return *http_; }
  const std::string& folder() const { return folder_; }
  // The current time in the task's time_precision units.
  dap::Time NowUnits(const dap::TaskId& task_id);

  // Restarts one party on the same database (as after a crash), keeping its
  // port.
  void RestartHelper();
  void RestartLeader();

 private:
  std::unique_ptr<Party> StartParty(dap::Role role, const std::string& database, uint16_t port);

  DeploymentOptions options_;
  std::string folder_;
  std::unique_ptr<Party> leader_;
  std::unique_ptr<Party> helper_;
  std::unique_ptr<dap::HttpClient> http_;
  std::unique_ptr<LeaderDrivers> drivers_;
  crypto::hpke::KeyPair leader_key_;
  crypto::hpke::KeyPair helper_key_;
  crypto::hpke::KeyPair collector_key_;
  std::vector<config::TaskDefinition> definitions_;
};

}  // namespace canopy::aggregator::testing

#endif  // CANOPY_TESTS_AGGREGATOR_DEPLOYMENT_H_
