// A whole Canopy deployment on this machine, every party a real program: a
// leader and a helper (`canopy-aggregator`) on free loopback ports, each with
// its own SQLite file, and the client (`canopy-client`) and collector
// (`canopy-collector`) run as processes against them, exactly as an operator
// would run them (scripts/demo.sh does the same in shell).
//
// Everything lives in one folder, by default a fresh temporary one removed
// at destruction:
//   keys/                 the HPKE key files of both aggregators and the
//                         collector (made in-process, base64url);
//   tasks-aggregators.textproto
//                         every task, with its verify keys;
//   task-<n>.textproto    task n without verify keys, for clients and the
//                         collector;
//   leader.textproto, helper.textproto, leader.sqlite, helper.sqlite;
//   leader.log, helper.log
//                         each aggregator's output, appended across restarts;
//   <name>.stdout, <name>.stderr, <name>.*
//                         each client or collector run's output and files.
// Logs() gathers every log for a failure message.
//
// The harness depends on no test framework: errors are Result<> values.
#ifndef CANOPY_TESTS_TESTING_LOCAL_DEPLOYMENT_H_
#define CANOPY_TESTS_TESTING_LOCAL_DEPLOYMENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/error.h"
#include "crypto/hpke.h"
#include "proto/canopy_config.pb.h"
#include "tests/testing/aggregator_process.h"

namespace canopy::testing {

// The executables the deployment runs.
struct Programs {
  std::string aggregator;  // canopy-aggregator
  std::string client;      // canopy-client
  std::string collector;   // canopy-collector
};

// Settings of one aggregator's configuration; 0 means the service's default.
struct AggregatorSettings {
  // Threads doing VDAF work. Tests run on small machines: 2 by default.
  uint32_t worker_threads = 2;
  // Leader only: reports per aggregation job.
  uint32_t max_reports_per_aggregation_job = 0;
  // Leader only: reports per held_reports job (a walk's later levels).
  uint32_t max_reports_per_held_aggregation_job = 0;
  // Poplar1 reports kept in memory across the levels of a walk.
  uint64_t report_cache_reports = 0;
  // Their levels too, instead of level files beside the database.
  bool report_levels_in_memory = false;
  // The database's write-ahead log size at which it is checkpointed, in MiB;
  // 0: the aggregator's default.
  uint32_t wal_checkpoint_mib = 0;
};

struct LocalDeploymentOptions {
  Programs programs;
  // The folder for every file; empty: a fresh folder in the system's
  // temporary directory, named "<folder_prefix>-XXXXXX".
  std::string folder;
  std::string folder_prefix = "canopy-deployment";
  // Keep the folder at destruction (for a look at the files afterwards).
  // A folder given in `folder` is always kept.
  bool keep_folder = false;
  AggregatorSettings leader;
  AggregatorSettings helper;
};

// A task of the deployment.
struct LocalTask {
  // The full definition, with the verify keys.
  config::TaskDefinition definition;
  // Its ID, unpadded base64url.
  std::string task_id;
  // The task file for clients and the collector (no verify keys).
  std::string task_file;
  // Whether its batches are leader_selected (else time_interval).
  bool leader_selected() const {
    return definition.batch_mode() == config::TaskDefinition::LEADER_SELECTED;
  }
};

// A finished run of the client or the collector.
struct ProgramRun {
  int wait_status = 0;
  std::string stdout_path;
  std::string stderr_path;

  // True when the program exited with status 0.
  bool succeeded() const;
  // The exit status; nullopt when a signal ended it.
  std::optional<int> exit_code() const;
  // "exit status 1", "signal 9".
  std::string status_text() const;
  // The output files' contents ("" when unreadable).
  std::string Stdout() const;
  std::string Stderr() const;
};

// A synthetic Poplar1 workload for `canopy-client upload --zipf-reports`.
struct ZipfUpload {
  uint64_t reports = 1000;
  uint64_t seed = 1;
  uint64_t distinct = 1000;
  double exponent = 1.03;
  // Longest string in bytes; 0: the client's default (the task's BITS / 8).
  uint32_t max_length = 0;
  // The reports' time, POSIX seconds; nullopt: now.
  std::optional<uint64_t> time_seconds;
  // Upload threads; 0: the client's default (one per hardware thread).
  uint32_t threads = 2;
  // Reports per upload request; 0: the client's default.
  uint32_t reports_per_request = 0;
};

// What an upload left behind.
struct Uploaded {
  ProgramRun run;
  // The client's true-counts CSV ("count,string"); empty for --input uploads.
  std::string true_counts_path;
};

// A string (its raw bytes) and a count, as the true-counts and heavy-hitters
// CSV files hold them.
struct StringCount {
  std::string string;
  uint64_t count = 0;
  friend bool operator==(const StringCount&, const StringCount&) = default;
};

class LocalDeployment {
 public:
  // Creates the folder and the keys and picks two free loopback ports;
  // starts nothing. Errors: kInvalidArgument when a program path is empty;
  // kIoError when the folder cannot be made; the key generation's.
  static Result<std::unique_ptr<LocalDeployment>> Create(LocalDeploymentOptions options);
  // Kills both aggregators and any collector still running; removes the
  // folder unless it is kept.
  ~LocalDeployment();
  LocalDeployment(const LocalDeployment&) = delete;
  LocalDeployment& operator=(const LocalDeployment&) = delete;

  // --- Tasks: defined before Start (the aggregators load them at start).

  // A Poplar1 task over strings of `bits` bits with the multi-level
  // collection extension (`max_collections_per_batch` rounds), time precision
  // one hour. Errors: as AddTask's.
  Result<LocalTask> AddPoplar1Task(uint32_t bits, bool leader_selected, uint64_t min_batch_size,
                                   uint32_t max_collections_per_batch = 256);
  // A task definition with the deployment's URLs and collector key, a random
  // task ID and verify key, time precision one hour and TIME_INTERVAL
  // batches; the caller sets the VDAF (and may change the rest), then calls
  // AddTask.
  Result<config::TaskDefinition> NewTaskDefinition(uint64_t min_batch_size) const;
  // Adds a task and writes its client/collector task file. Errors:
  // kInvalidArgument after Start; kIoError when the file cannot be written.
  Result<LocalTask> AddTask(const config::TaskDefinition& definition);

  // --- The aggregators.

  // Writes the aggregators' task file and configurations, then starts the
  // helper and the leader and waits until both answer /healthz. Errors: those
  // of writing the files and AggregatorProcess::Start.
  Result<void> Start();
  // SIGTERM to both; errors: a party that did not stop in time (it is then
  // killed).
  Result<void> Stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  AggregatorProcess& leader() { return *leader_; }
  AggregatorProcess& helper() { return *helper_; }

  // --- The client.

  // Runs `canopy-client` with `arguments` (after the program name); its
  // output goes to <name>.stdout and <name>.stderr. Errors: kIoError when it
  // cannot be started or still runs after `timeout` (it is then killed). A
  // non-zero exit is not an error: see ProgramRun.
  Result<ProgramRun> RunClient(const std::vector<std::string>& arguments, const std::string& name,
                               std::chrono::milliseconds timeout = std::chrono::seconds(120));
  // `canopy-client upload --zipf-reports ... --true-counts <name>.true-counts.csv`
  // for `task`. Errors: RunClient's, and kIoError when the client fails
  // (naming its status and quoting its error output).
  Result<Uploaded> UploadZipf(const LocalTask& task, const ZipfUpload& workload,
                              const std::string& name);
  // `canopy-client upload --input <name>.input` with one measurement a line
  // (strings for Poplar1, numbers for Prio3). Errors: as UploadZipf's.
  Result<Uploaded> UploadInput(const LocalTask& task, const std::vector<std::string>& lines,
                               std::optional<uint64_t> time_seconds, const std::string& name);

  // --- The collector.

  // A collector configuration for `task`: the leader's URL, the task ID and
  // file, the collector token and key, and a poll interval of one second,
  // with everything `settings` sets (the batch, heavy_hitters, output) merged
  // over them. The caller sets the batch (BatchOf helps).
  config::CollectorConfig CollectorConfigFor(const LocalTask& task,
                                             const config::CollectorConfig& settings = {}) const;
  // The batch of a task's reports uploaded at `time_seconds`: the task's
  // time-precision interval holding it (time_interval), or the leader's next
  // batch (leader_selected), set in `config`.
  static void SetBatch(const LocalTask& task, uint64_t time_seconds,
                       config::CollectorConfig& config);
  // Writes `config` to <name>.textproto and returns its path. Errors:
  // kInternal when it cannot be printed; kIoError when it cannot be written.
  Result<std::string> WriteCollectorConfig(const config::CollectorConfig& config,
                                           const std::string& name);
  // Starts `canopy-collector` with `arguments` (after the program name);
  // output to <name>.stdout and <name>.stderr. The caller waits for it or
  // kills it. Errors: ChildProcess::Start's.
  Result<ChildProcess> StartCollector(const std::vector<std::string>& arguments,
                                      const std::string& name);
  // StartCollector, then waits. Errors: as RunClient's.
  Result<ProgramRun> RunCollector(const std::vector<std::string>& arguments,
                                  const std::string& name,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(120));
  // The ProgramRun of a collector started with StartCollector and reaped.
  ProgramRun CollectorRun(const ChildProcess& process, const std::string& name) const;

  // --- Files and logs.

  const std::string& folder() const { return folder_; }
  // <folder>/<name>.
  std::string Path(const std::string& name) const;
  // Every log file so far: the aggregators' and each program run's.
  std::vector<std::string> LogPaths() const;
  // Their contents, each under a header line naming it.
  std::string Logs() const;

 private:
  explicit LocalDeployment(LocalDeploymentOptions options);
  Result<void> WriteAggregatorConfig(bool leader) const;
  ChildOutput OutputOf(const std::string& name);

  LocalDeploymentOptions options_;
  std::string folder_;
  bool remove_folder_ = false;
  uint16_t leader_port_ = 0;
  uint16_t helper_port_ = 0;
  crypto::hpke::KeyPair leader_key_;
  crypto::hpke::KeyPair helper_key_;
  crypto::hpke::KeyPair collector_key_;
  std::string peer_token_;
  std::string collector_token_;
  std::vector<LocalTask> tasks_;
  bool started_ = false;
  std::unique_ptr<AggregatorProcess> leader_;
  std::unique_ptr<AggregatorProcess> helper_;
  std::vector<std::string> run_logs_;
};

// --- Files the programs write.

// The contents of a file. Errors: kIoError when it cannot be read.
Result<std::string> ReadTextFile(const std::string& path);

// Reads a "count,string" CSV file, as the client writes true counts and the
// collector writes heavy hitters (CSV format), and returns its rows in file
// order with each string's raw bytes: RFC 4180 quoting is undone, then the
// backslash escapes both programs use ("\\" for a backslash, "\xHH" for any
// other byte); the collector's dropping of trailing zero padding needs no
// undoing, as strings hold no zero byte. Errors (kInvalidArgument): a missing
// header, a malformed line or escape, naming the file and line; ReadTextFile's.
Result<std::vector<StringCount>> ReadCountsCsv(const std::string& path);

// A free TCP port on 127.0.0.1 now (the kernel's choice of an ephemeral
// port). Errors: kIoError when no socket can be bound.
Result<uint16_t> FreeLoopbackPort();

}  // namespace canopy::testing

#endif  // CANOPY_TESTS_TESTING_LOCAL_DEPLOYMENT_H_
