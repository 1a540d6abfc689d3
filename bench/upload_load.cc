// The upload load driver: a leader (canopy's service, HTTP server and SQLite
// database on disk, as canopy-aggregator runs them) and client threads that
// upload reports to it over loopback, and the upload rate it sustains.
//
//   upload_load [--vdaf prio3count|poplar1] [--bits N] [--reports N]
//               [--per-request N] [--clients N] [--workers N] [--dir PATH]
//
// Reports are built (sharded and encrypted) before the clock starts: the
// figure is what the leader accepts, not what one machine's clients can
// encrypt. The leader's drivers do not run, so nothing competes with uploads.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "aggregator/http_server.h"
#include "aggregator/metrics.h"
#include "aggregator/service.h"
#include "aggregator/sqlite_datastore.h"
#include "aggregator/task_registry.h"
#include "crypto/hpke.h"
#include "crypto/random.h"
#include "dap/base64url.h"
#include "dap/http_client.h"
#include "dap/report.h"
#include "idpf/bit_string.h"

namespace canopy {
namespace {

struct Options {
  std::string vdaf = "prio3count";
  size_t bits = 256;
  size_t reports = 20000;
  size_t per_request = 1;
  int clients = 4;
  int workers = 2;
  std::string dir;
};

[[noreturn]] void Usage(const std::string& problem) {
  std::cerr << "upload_load: " << problem << "\n"
            << "usage: upload_load [--vdaf prio3count|poplar1] [--bits N] [--reports N]\n"
               "                   [--per-request N] [--clients N] [--workers N] [--dir PATH]\n";
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) Usage("missing value for " + flag);
    std::string value = argv[++i];
    if (flag == "--vdaf") {
      options.vdaf = value;
    } else if (flag == "--bits") {
      options.bits = std::stoul(value);
    } else if (flag == "--reports") {
      options.reports = std::stoul(value);
    } else if (flag == "--per-request") {
      options.per_request = std::max<size_t>(1, std::stoul(value));
    } else if (flag == "--clients") {
      options.clients = std::max(1, std::stoi(value));
    } else if (flag == "--workers") {
      options.workers = std::max(1, std::stoi(value));
    } else if (flag == "--dir") {
      options.dir = value;
    } else {
      Usage("unknown flag " + flag);
    }
  }
  if (options.vdaf != "prio3count" && options.vdaf != "poplar1") Usage("unknown VDAF");
  return options;
}

template <typename T>
T OrDie(Result<T> result, const char* what) {
  if (!result) {
    std::cerr << "upload_load: " << what << ": " << result.error().ToString() << "\n";
    std::exit(1);
  }
  return std::move(*result);
}

int Run(const Options& options) {
  std::string dir = options.dir;
  if (dir.empty()) {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "canopy-upload-load-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      std::cerr << "upload_load: cannot create a folder in the temporary directory\n";
      return 1;
    }
    dir = pattern;
  }
  // The leader.
  aggregator::SqliteOptions sqlite;
  sqlite.path = dir + "/leader.sqlite";
  auto datastore = OrDie(aggregator::OpenSqliteDatastore(sqlite), "database");
  aggregator::Metrics metrics;
  aggregator::TaskRegistry tasks;
  auto leader_pair =
      OrDie(crypto::hpke::GenerateKeyPair(crypto::hpke::KemId::kX25519HkdfSha256), "key");
  auto helper_pair =
      OrDie(crypto::hpke::GenerateKeyPair(crypto::hpke::KemId::kX25519HkdfSha256), "key");
  std::vector<dap::AggregatorHpkeKey> keys;
  keys.push_back({{1, 0x20, 1, 1, leader_pair.public_key},
                  OrDie(crypto::hpke::RecipientKey::Create(crypto::hpke::KemId::kX25519HkdfSha256,
                                                           leader_pair.private_key.span()),
                        "key")});
  aggregator::ServiceOptions service_options;
  service_options.role = dap::Role::kLeader;
  service_options.peer_token = "load";
  service_options.collector_token = "load";
  aggregator::AggregatorService service(service_options, *datastore, tasks, std::move(keys),
                                        metrics);
  aggregator::HttpServerOptions server_options;
  server_options.worker_threads = options.workers;
  auto server = OrDie(aggregator::HttpServer::Start(server_options, service), "server");
  const std::string url = "http://127.0.0.1:" + std::to_string(server->port()) + "/";

  // The task.
  config::TaskDefinition definition;
  std::vector<uint8_t> id = OrDie(crypto::RandomVector(32), "random");
  definition.set_task_id(dap::Base64UrlEncode(id));
  definition.set_leader_url(url);
  definition.set_helper_url("http://127.0.0.1:1/");
  definition.set_time_precision_seconds(3600);
  definition.set_min_batch_size(100);
  definition.set_batch_mode(config::TaskDefinition::TIME_INTERVAL);
  if (options.vdaf == "poplar1") {
    definition.mutable_poplar1()->set_bits(static_cast<uint32_t>(options.bits));
  } else {
    definition.mutable_prio3_count();
  }
  auto* verify_key = definition.add_verify_keys();
  verify_key->set_id(0);
  verify_key->set_key(dap::Base64UrlEncode(OrDie(crypto::RandomVector(32), "random")));
  auto* collector = definition.mutable_collector_hpke_config();
  collector->set_id(1);
  collector->set_public_key(dap::Base64UrlEncode(helper_pair.public_key));
  if (auto added = service.AddTask(definition, "load"); !added) {
    std::cerr << "upload_load: task: " << added.error().ToString() << "\n";
    return 1;
  }
  auto task = tasks.Find(*reinterpret_cast<const dap::TaskId*>(id.data()));

  // Reports, built up front on every core.
  std::cerr << "building " << options.reports << " " << task->vdaf->name() << " reports...\n";
  dap::UploadTarget target{task->id,
                           task->configuration,
                           service.hpke_keys()[0].config,
                           {1, 0x20, 1, 1, helper_pair.public_key}};
  const dap::Time now =
      static_cast<dap::Time>(std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count()) /
      3600;
  const size_t requests = (options.reports + options.per_request - 1) / options.per_request;
  std::vector<std::vector<uint8_t>> bodies(requests);
  std::atomic<size_t> next_request{0};
  auto build = [&] {
    for (size_t r; (r = next_request.fetch_add(1)) < requests;) {
      dap::UploadRequest upload;
      size_t count = std::min(options.per_request, options.reports - r * options.per_request);
      for (size_t i = 0; i < count; ++i) {
        poplar::Measurement measurement = uint64_t{i & 1};
        if (options.vdaf == "poplar1") {
          auto bits = OrDie(crypto::RandomVector((options.bits + 7) / 8), "random");
          idpf::BitString string;
          for (size_t b = 0; b < options.bits; ++b) {
            string = string.Extended((bits[b / 8] >> (7 - b % 8)) & 1);
          }
          measurement = string;
        }
        upload.reports.push_back(
            OrDie(dap::BuildReport(target, *task->vdaf, measurement, now), "report"));
      }
      bodies[r] = OrDie(dap::Encode(upload), "encode");
    }
  };
  {
    std::vector<std::thread> builders;
    for (unsigned t = 0; t < std::max(1u, std::thread::hardware_concurrency()); ++t) {
      builders.emplace_back(build);
    }
    for (auto& builder : builders) builder.join();
  }
  size_t total_bytes = 0;
  for (const auto& body : bodies) total_bytes += body.size();

  // The timed part: clients upload every request once.
  std::cerr << "uploading " << requests << " requests of " << options.per_request
            << " report(s) with " << options.clients << " client thread(s)...\n";
  std::atomic<size_t> next{0};
  std::atomic<size_t> failures{0};
  const std::string upload_url = url + "tasks/" + dap::Base64UrlEncode(task->id) + "/reports";
  auto start = std::chrono::steady_clock::now();
  {
    std::vector<std::thread> clients;
    for (int c = 0; c < options.clients; ++c) {
      clients.emplace_back([&] {
        auto http = OrDie(dap::HttpClient::Create(), "client");
        for (size_t r; (r = next.fetch_add(1)) < requests;) {
          auto response = http.Send(dap::HttpMethod::kPost, upload_url,
                                    "application/ppm-dap;message=upload-req", bodies[r]);
          if (!response || response->status != 200 || !response->body.empty()) ++failures;
        }
      });
    }
    for (auto& client : clients) client.join();
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  server->Stop();
  std::cout << task->vdaf->name() << ": " << options.reports << " reports in " << requests
            << " requests (" << options.per_request << " per request, " << options.clients
            << " clients, " << options.workers << " server workers, " << total_bytes / 1024
            << " KiB): " << seconds << " s, " << static_cast<uint64_t>(options.reports / seconds)
            << " uploads/s, " << static_cast<uint64_t>(requests / seconds) << " requests/s, "
            << failures.load() << " failed\n";
  if (options.dir.empty()) std::filesystem::remove_all(dir);
  return failures.load() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace canopy

int main(int argc, char** argv) { return canopy::Run(canopy::Parse(argc, argv)); }
