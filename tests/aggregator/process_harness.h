// A leader and a helper as real `canopy-aggregator` processes on loopback
// ports, each with its own SQLite file, and a collector's view of them: the
// tests start, kill (SIGKILL), restart and stop (SIGTERM) the processes while
// reports are aggregated and collected, and check the counts.
//
// Everything lives in a fresh temporary folder: the HPKE key files of both
// aggregators, one task file with every task, both configuration files, both
// databases, and each process's output (appended across restarts). The
// collector's key pair stays in memory. When the running test has failed, the
// processes' output is printed as the deployment is destroyed.
#ifndef CANOPY_TESTS_AGGREGATOR_PROCESS_HARNESS_H_
#define CANOPY_TESTS_AGGREGATOR_PROCESS_HARNESS_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "aggregator/task_registry.h"
#include "crypto/error.h"
#include "crypto/hpke.h"
#include "dap/http_client.h"
#include "dap/messages.h"
#include "poplar/vdaf.h"
#include "proto/canopy_config.pb.h"
#include "tests/testing/aggregator_process.h"

namespace canopy::aggregator::testing {

// The canopy-aggregator process class lives with the other test programs'
// helpers; the tests here name it as before.
using canopy::testing::AggregatorProcess;

// A finished (or failed) collection, from the collector's side.
struct Collection {
  int status = 0;            // The final answer's HTTP status: 200 when collected.
  std::string problem_type;  // Its problem type, when it failed.
  uint64_t report_count = 0;
  poplar::AggregateResult result;  // Decrypted and unsharded.
};

struct ProcessDeploymentOptions {
  // The leader's max_reports_per_aggregation_job, and its
  // max_reports_per_held_aggregation_job too: a walk's later levels then
  // also take many jobs, each a moment for a test to kill a party in.
  uint32_t max_reports_per_aggregation_job = 50;
};

class ProcessDeployment {
 public:
  // Creates the folder, the keys and picks two free loopback ports; starts
  // nothing yet.
  explicit ProcessDeployment(ProcessDeploymentOptions options = {});
  // Kills both processes, prints their output when the test failed, removes
  // the folder.
  ~ProcessDeployment();

  // A task definition with the deployment's URLs and collector key and a
  // random task ID and verify key; the caller sets the VDAF (and batch mode,
  // extensions), then calls AddTask. Time-interval batches, time precision
  // one hour.
  config::TaskDefinition NewTaskDefinition(uint64_t min_batch_size) const;
  // Adds a task to the task file. Only before Start. Returns its ID.
  Result<dap::TaskId> AddTask(const config::TaskDefinition& definition);

  // Writes the task file and both configurations, then starts the helper and
  // the leader. Errors: those of writing the files and AggregatorProcess::Start.
  Result<void> Start();

  AggregatorProcess& leader() { return *leader_; }
  AggregatorProcess& helper() { return *helper_; }

  // The current time in the task's time_precision units.
  dap::Time NowUnits(const dap::TaskId& task_id) const;

  // Uploads one report per measurement, at `time`, as a DAP client does
  // (fetching both aggregators' /hpke_config first). Errors: the upload
  // client's, and kIoError when a report is refused.
  Result<void> Upload(const dap::TaskId& task_id,
                      const std::vector<poplar::Measurement>& measurements, dap::Time time);

  // Creates a collection job. Returns its URL, or the refusal (status and
  // problem type) as a Collection. Errors: the HTTP client's.
  struct Created {
    std::string job_url;                // Set when the leader answered 201.
    std::optional<Collection> refused;  // Set otherwise.
  };
  Result<Created> CreateCollectionJob(const dap::TaskId& task_id,
                                      const dap::CollectionJobReq& request);
  // Polls a collection job until it is no longer pending, then decrypts both
  // aggregate shares and unshards them. Errors: the HTTP client's; kIoError
  // when it is still pending after `timeout` (a stuck job); the decryption's
  // and unsharding's.
  Result<Collection> WaitForCollection(
      const dap::TaskId& task_id, const dap::CollectionJobReq& request, const std::string& job_url,
      std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Whether the collection job is still pending (the leader answers 202).
  // Errors: the HTTP client's.
  Result<bool> IsPending(const std::string& job_url);
  // CreateCollectionJob, then WaitForCollection.
  Result<Collection> Collect(const dap::TaskId& task_id, const dap::CollectionJobReq& request);

  // Both processes' output so far.
  std::string Logs() const;
  const std::string& folder() const { return folder_; }
  std::shared_ptr<const Task> task(const dap::TaskId& task_id) const;

 private:
  Result<Collection> Decode(const dap::TaskId& task_id, const dap::CollectionJobReq& request,
                            const dap::HttpResponse& answer);

  ProcessDeploymentOptions options_;
  std::string folder_;
  uint16_t leader_port_ = 0;
  uint16_t helper_port_ = 0;
  crypto::hpke::KeyPair leader_key_;
  crypto::hpke::KeyPair helper_key_;
  crypto::hpke::KeyPair collector_key_;
  std::vector<config::TaskDefinition> definitions_;
  std::vector<std::shared_ptr<const Task>> tasks_;
  std::unique_ptr<AggregatorProcess> leader_;
  std::unique_ptr<AggregatorProcess> helper_;
  std::unique_ptr<dap::HttpClient> http_;
};

}  // namespace canopy::aggregator::testing

#endif  // CANOPY_TESTS_AGGREGATOR_PROCESS_HARNESS_H_
