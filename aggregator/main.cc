// canopy-aggregator: runs a DAP-19 leader or helper for the tasks of its
// configuration file (docs/examples/aggregator-*.textproto).
//
//   canopy-aggregator --config FILE          serve until SIGTERM or SIGINT
//   canopy-aggregator --config FILE --check  check the configuration, exit
//
// Exit status: 0 after a clean shutdown or a good check, 1 for a bad
// configuration (the message names the file, line and field), 2 for bad
// arguments, 3 when the service cannot start (database, address in use).
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "aggregator/collection_waiters.h"
#include "aggregator/garbage_collector.h"
#include "aggregator/http_server.h"
#include "aggregator/leader_drivers.h"
#include "aggregator/metrics.h"
#include "aggregator/service.h"
#include "aggregator/sqlite_datastore.h"
#include "aggregator/task_registry.h"
#include "aggregator/work_signal.h"
#include "config/config.h"
#include "dap/base64url.h"
#include "dap/http_client.h"

namespace canopy::aggregator {
namespace {

constexpr const char* kUsage =
    "usage: canopy-aggregator --config FILE [--check]\n"
    "  --config FILE  the aggregator's configuration (text-format Protobuf)\n"
    "  --check        check the configuration and its task and key files, then exit\n";

// The memory allocator the build linked in (CMakeLists.txt), named at start
// so that an operator can tell a build that fell back to the system's.
#ifdef CANOPY_ALLOCATOR
constexpr const char* kAllocator = CANOPY_ALLOCATOR;
#else
constexpr const char* kAllocator = "system";
#endif

// The aggregator's HPKE keys, read from their files.
Result<std::vector<dap::AggregatorHpkeKey>> LoadHpkeKeys(const config::AggregatorConfig& config) {
  std::vector<dap::AggregatorHpkeKey> keys;
  for (const config::HpkeKeyFiles& files : config.hpke_keys()) {
    auto private_key = config::ReadKeyFile(files.private_key_file());
    if (!private_key) return std::unexpected(private_key.error());
    dap::HpkeConfig hpke_config;
    hpke_config.id = static_cast<uint8_t>(files.config_id());
    hpke_config.kem_id = static_cast<uint16_t>(files.kem_id());
    hpke_config.kdf_id = static_cast<uint16_t>(files.kdf_id());
    hpke_config.aead_id = static_cast<uint16_t>(files.aead_id());
    auto key = crypto::hpke::RecipientKey::Create(crypto::hpke::KemId::kX25519HkdfSha256,
                                                  private_key->span());
    if (!key) {
      return MakeError(ErrorCode::kInvalidArgument,
                       files.private_key_file() + ": " + key.error().message());
    }
    hpke_config.public_key.assign(key->public_key().begin(), key->public_key().end());
    keys.push_back({std::move(hpke_config), std::move(*key)});
  }
  return keys;
}

// Raises the soft limit on open files to the hard one: connections, the
// database and the level files (up to 32 a Poplar1 task) all take
// descriptors, and the usual soft limit of 1024 is a default, not a policy.
void RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

int Serve(const std::string& config_path, bool check_only) {
  config::LoadOptions load_options;
  load_options.check_key_files = true;
  auto config = config::LoadAggregatorConfig(config_path, load_options);
  if (!config) {
    std::cerr << config.error().message() << "\n";
    return 1;
  }
  auto task_definitions = config::LoadAggregatorTasks(*config);
  if (!task_definitions) {
    std::cerr << task_definitions.error().message() << "\n";
    return 1;
  }
  for (const auto& definition : *task_definitions) {
    auto task = BuildTask(definition);
    if (!task) {
      std::cerr << "task " << definition.task_id() << ": " << task.error().message() << "\n";
      return 1;
    }
  }
  auto hpke_keys = LoadHpkeKeys(*config);
  if (!hpke_keys) {
    std::cerr << hpke_keys.error().message() << "\n";
    return 1;
  }
  if (check_only) {
    std::cout << config_path << ": ok (" << task_definitions->size() << " task(s))\n";
    return 0;
  }

  // Signals are taken by a waiting thread, so block them everywhere first.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  RaiseOpenFileLimit();
  SqliteOptions sqlite_options;
  sqlite_options.path = config->database_path();
  sqlite_options.checkpoint_bytes = int64_t{config->wal_checkpoint_mib()} << 20;
  sqlite_options.synchronous_full = config->synchronous_full();
  auto datastore = OpenSqliteDatastore(sqlite_options);
  if (!datastore) {
    std::cerr << datastore.error().message() << "\n";
    return 3;
  }
  const bool leader = config->role() == config::AggregatorConfig::LEADER;
  Metrics metrics;
  TaskRegistry tasks;
  ServiceOptions service_options;
  service_options.role = leader ? dap::Role::kLeader : dap::Role::kHelper;
  service_options.peer_token = config->peer_token();
  service_options.collector_token = config->collector_token();
  service_options.admin_token = config->admin_token();
  service_options.tolerable_clock_skew_seconds = config->tolerable_clock_skew_seconds();
  service_options.report_expiry_seconds = config->garbage_collection().report_expiry_seconds();
  service_options.report_cache_capacity = config->report_cache_reports();
  if (!config->report_levels_in_memory()) {
    auto level_files = LevelFiles::Open(config->level_files_directory());
    if (!level_files) {
      std::cerr << config_path << ": level_files_directory: " << level_files.error().message()
                << "\n";
      return 3;
    }
    service_options.level_files = std::move(*level_files);
  }
  WorkSignal work_signal;
  service_options.work_signal = &work_signal;
  // A poll of a collection job in progress is answered when the job
  // finishes, or after a second (well within any client's timeout).
  CollectionWaiters collection_waiters(std::chrono::seconds(1));
  if (leader) service_options.collection_waiters = &collection_waiters;
  AggregatorService service(service_options, **datastore, tasks, std::move(*hpke_keys), metrics);
  // Held polls are answered while the service lives, whichever way Serve
  // returns (Shutdown may be called again).
  struct AnswerHeldPolls {
    CollectionWaiters& waiters;
    ~AnswerHeldPolls() { waiters.Shutdown(); }
  } answer_held_polls{collection_waiters};
  auto warnings = service.LoadStoredTasks();
  if (!warnings) {
    std::cerr << warnings.error().message() << "\n";
    return 3;
  }
  for (const std::string& warning : *warnings)
    std::cerr << "canopy-aggregator: " << warning << "\n";
  for (const auto& definition : *task_definitions) {
    auto added = service.AddTask(definition, "file");
    if (!added) {
      std::cerr << "task " << definition.task_id() << ": " << added.error().message() << "\n";
      return 3;
    }
  }
  // The tasks keep their own copies of the verification keys.
  for (config::TaskDefinition& definition : *task_definitions) config::WipeVerifyKeys(definition);

  HttpServerOptions server_options;
  server_options.listen_address = config->listen_address();
  server_options.max_body_bytes = config->limits().max_request_body_bytes();
  server_options.max_connections = config->limits().max_connections();
  server_options.request_timeout = std::chrono::seconds(config->limits().request_timeout_seconds());
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  // Two per core by default: a worker also waits for the datastore (one
  // connection), and a second one keeps the core verifying meanwhile.
  server_options.worker_threads = config->limits().worker_threads() > 0
                                      ? static_cast<int>(config->limits().worker_threads())
                                      : static_cast<int>(2 * cores);
  server_options.network_threads = 1;
  auto server = HttpServer::Start(server_options, service);
  if (!server) {
    std::cerr << server.error().message() << "\n";
    return 3;
  }
  std::cerr << "canopy-aggregator: " << (leader ? "leader" : "helper") << " serving "
            << tasks.All().size() << " task(s) on port " << (*server)->port() << " (allocator "
            << kAllocator << ")\n";

  std::atomic<bool> stop{false};
  std::unique_ptr<dap::HttpClient> http;
  std::unique_ptr<LeaderDrivers> drivers;
  std::thread driver_thread;
  if (leader) {
    auto client = dap::HttpClient::Create();
    if (!client) {
      std::cerr << client.error().message() << "\n";
      return 3;
    }
    http = std::make_unique<dap::HttpClient>(std::move(*client));
    auto released = (*datastore)->Run([](Transaction& tx) { return tx.ReleaseAllLeases(); });
    if (!released) {
      std::cerr << released.error().message() << "\n";
      return 3;
    }
    LeaderDriverOptions driver_options;
    driver_options.helper_url = config->peer_url();
    driver_options.peer_token = config->peer_token();
    driver_options.max_reports_per_job = config->max_reports_per_aggregation_job();
    driver_options.max_reports_per_held_job = config->max_reports_per_held_aggregation_job();
    // Two jobs per core (at least four): a job spends much of its time
    // waiting for the helper, and another can verify meanwhile.
    driver_options.parallel_jobs = std::max(4u, 2 * cores);
    driver_options.first_pass_jobs = driver_options.parallel_jobs;
    driver_options.work_signal = &work_signal;
    driver_options.collection_waiters = &collection_waiters;
    driver_options.report_expiry_seconds = config->garbage_collection().report_expiry_seconds();
    driver_options.garbage_collection_interval =
        std::chrono::seconds(config->garbage_collection().interval_seconds());
    drivers = std::make_unique<LeaderDrivers>(driver_options, **datastore, tasks,
                                              service.hpke_keys(), *http, metrics,
                                              service.report_cache(), service.level_claims());
    driver_thread = std::thread([&] { drivers->Run(stop); });
  } else {
    // The helper has no drivers: its held shares, jobs and their stored
    // answers expire on a thread of their own.
    driver_thread = std::thread([&] {
      RunGarbageCollection(**datastore, tasks, config->garbage_collection().report_expiry_seconds(),
                           std::chrono::seconds(config->garbage_collection().interval_seconds()),
                           stop);
    });
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::cerr << "canopy-aggregator: shutting down\n";
  stop = true;
  collection_waiters.Shutdown();  // Held polls are answered before the server stops.
  (*server)->Stop();
  if (driver_thread.joinable()) driver_thread.join();
  return 0;
}

}  // namespace
}  // namespace canopy::aggregator

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string argument = argv[i];
    if (argument == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (argument == "--check") {
      check_only = true;
    } else if (argument == "--help" || argument == "-h") {
      std::cout << canopy::aggregator::kUsage;
      return 0;
    } else {
      std::cerr << "canopy-aggregator: unknown argument " << argument << "\n"
                << canopy::aggregator::kUsage;
      return 2;
    }
  }
  if (config_path.empty()) {
    std::cerr << canopy::aggregator::kUsage;
    return 2;
  }
  return canopy::aggregator::Serve(config_path, check_only);
}
