// The end-to-end heavy-hitters benchmark: a leader and a helper as
// `canopy-aggregator` processes on loopback (each with its SQLite file), N
// reports of URL-like strings drawn from a Zipf law uploaded as a client
// does, then the collector's whole walk, as canopy-collector runs it. Prints
// the time of each phase and, per round, the candidates, survivors, time,
// the bytes the aggregators exchanged (the helper's counters of request and
// response bodies) and each aggregator's processor time, and checks the
// result against the true counts.
//
//   build/bench/discovery_load --reports 100000 [--bits 256] [--stride 3]
//       [--first-round-bits 3] [--threshold 0.01] [--distinct 1000]
//       [--exponent 1.03] [--seed 1] [--job-size 500] [--held-job-size 4000]
//       [--workers 0] [--wal-checkpoint-mib 0]
//       [--levels-in-memory] [--stop-after-round N] [--keep] [--force]
//
// Both aggregators keep every report cached between levels (about 5 KB of
// memory each, and 12.6 KB in level files, at 256 bits), and their databases
// take about 52 KB a report together; a run that would not fit in the memory
// or the disk available is refused unless --force.
//
// --stop-after-round N ends the run once round N is done, with the sums of
// rounds 2 to N (the rounds alike in a walk: paired runs compare them). A
// run stopped that way or by SIGINT or SIGTERM kills the aggregators and
// removes its folder (unless --keep), as a finished run does; SIGKILL
// leaves the folder in the temporary directory.
//
// Exit status: 0 when the heavy hitters equal the true counts or the run
// stopped after the round asked, 1 otherwise or on any failure, 2 for bad
// arguments, 130 when interrupted by a signal.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "client_app/bulk_upload.h"
#include "client_app/measurement_input.h"
#include "client_app/task_file.h"
#include "client_app/workload.h"
#include "collector_app/collector.h"
#include "collector_app/configured_walk.h"
#include "collector_app/walk_output.h"
#include "config/config.h"
#include "dap/http_client.h"
#include "tests/testing/local_deployment.h"

namespace canopy::bench {
namespace {

struct Options {
  uint64_t reports = 10000;
  uint32_t bits = 256;
  uint32_t stride = config::kDefaultBitsPerRound;  // The walk's own default.
  uint32_t first_round_bits = 0;                   // 0: the stride.
  double threshold = 0.01;
  size_t distinct = 1000;
  double exponent = 1.03;
  uint64_t seed = 1;
  uint32_t job_size = 500;
  uint32_t held_job_size = 0;       // 0: the aggregator's default.
  uint32_t workers = 0;             // Each aggregator's VDAF threads; 0: its default.
  uint32_t wal_checkpoint_mib = 0;  // The aggregators' wal_checkpoint_mib; 0: their default.
  uint32_t stop_after_round = 0;    // 0: the whole walk.
  bool keep = false;
  bool force = false;             // Run even when the caches would not fit in memory.
  bool levels_in_memory = false;  // The aggregators' report_levels_in_memory.
};

bool ParseOptions(int argc, char** argv, Options& options) {
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (flag == "--keep") {
      options.keep = true;
      continue;
    }
    if (flag == "--force") {
      options.force = true;
      continue;
    }
    if (flag == "--levels-in-memory") {
      options.levels_in_memory = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::cerr << "discovery_load: " << flag << " needs a value\n";
      return false;
    }
    std::string value = argv[++i];
    if (flag == "--reports") {
      options.reports = std::stoull(value);
    } else if (flag == "--bits") {
      options.bits = static_cast<uint32_t>(std::stoul(value));
    } else if (flag == "--stride") {
      options.stride = static_cast<uint32_t>(std::stoul(value));
    } else if (flag == "--first-round-bits") {
      options.first_round_bits = static_cast<uint32_t>(std::stoul(value));
    } else if (flag == "--threshold") {
      options.threshold = std::stod(value);
    } else if (flag == "--distinct") {
      options.distinct = std::stoull(value);
    } else if (flag == "--exponent") {
      options.exponent = std::stod(value);
    } else if (flag == "--seed") {
      options.seed = std::stoull(value);
    } else if (flag == "--workers") {
      options.workers = static_cast<uint32_t>(std::stoul(value));
    } else if (flag == "--job-size") {
      options.job_size = static_cast<uint32_t>(std::stoul(value));
    } else if (flag == "--wal-checkpoint-mib") {
      options.wal_checkpoint_mib = static_cast<uint32_t>(std::stoul(value));
    } else if (flag == "--held-job-size") {
      options.held_job_size = static_cast<uint32_t>(std::stoul(value));
    } else if (flag == "--stop-after-round") {
      options.stop_after_round = static_cast<uint32_t>(std::stoul(value));
    } else {
      std::cerr << "discovery_load: unknown flag " << flag << "\n";
      return false;
    }
  }
  return options.reports > 0 && options.bits % 8 == 0 && options.stride >= 1 &&
         options.stride <= 16 && options.workers <= 1024;
}

// Ends a run early (SIGINT, SIGTERM, --stop-after-round) the way a finished
// run ends: the aggregators killed, the folder removed unless --keep. At a million reports the
// folder holds tens of gigabytes, and a run interrupted without this left them behind, so that the
// next run refused to start for want of disk.
class EarlyExit {
 public:
  // Routes SIGINT and SIGTERM to a thread that ends the process through
  // Exit(130). Handlers, unlike a blocked signal mask, do not carry over
  // into the aggregators the run starts (exec resets them).
  static void Install() {
    // Close-on-exec: the aggregators get neither end. The handler's end
    // does not block: a second signal before the first is read is dropped.
    if (pipe2(signal_pipe_, O_CLOEXEC) != 0) return;  // Signals then end the process.
    fcntl(signal_pipe_[1], F_SETFL, O_NONBLOCK);
    std::thread([] {
      char byte = 0;
      while (read(signal_pipe_[0], &byte, 1) != 1) {
      }
      std::cerr << "discovery_load: interrupted; stopping the aggregators\n";
      Exit(130);
    }).detach();
    struct sigaction action = {};
    action.sa_handler = [](int) {
      const int saved_errno = errno;  // The interrupted code's.
      const char byte = 1;
      [[maybe_unused]] ssize_t written = write(signal_pipe_[1], &byte, 1);
      errno = saved_errno;
    };
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
  }

  // While an Armed object lives, Exit cleans up after the deployment with
  // this folder; the aggregators' processes are added once started. Its
  // destructor hands the cleanup back to the deployment's own destructor (a
  // signal then waits for the run to finish ending).
  class Armed {
   public:
    Armed(std::string folder, bool keep) {
      std::lock_guard<std::mutex> lock(mutex_);
      state_ = State::kArmed;
      folder_ = std::move(folder);
      keep_ = keep;
    }
    ~Armed() {
      std::lock_guard<std::mutex> lock(mutex_);
      state_ = State::kFinishing;
    }
    Armed(const Armed&) = delete;
    Armed& operator=(const Armed&) = delete;
    void SetProcesses(std::vector<pid_t> pids) {
      std::lock_guard<std::mutex> lock(mutex_);
      pids_ = std::move(pids);
    }
  };

  // Kills the aggregators and waits for them (so that nothing writes in the
  // folder afterwards), removes the folder unless kept, and ends the process
  // with `status`. While the run is finishing on its own, waits for it instead.
  [[noreturn]] static void Exit(int status) {
    std::cout.flush();
    std::fflush(stdout);
    std::unique_lock<std::mutex> lock(mutex_);
    if (state_ == State::kFinishing) {
      lock.unlock();
      for (;;) pause();
    }
    if (state_ == State::kArmed) {
      for (pid_t pid : pids_) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
      if (!keep_) {
        std::error_code ignored;
        std::filesystem::remove_all(folder_, ignored);
      }
    }
    std::_Exit(status);
  }

 private:
  enum class State { kNothingYet, kArmed, kFinishing };
  static inline int signal_pipe_[2] = {-1, -1};
  static inline std::mutex mutex_;
  static inline State state_ = State::kNothingYet;
  static inline std::string folder_;
  static inline bool keep_ = false;
  static inline std::vector<pid_t> pids_;
};

double Seconds(std::chrono::steady_clock::duration duration) {
  return std::chrono::duration<double>(duration).count();
}

// The helper's counters of traffic with the leader: request and response
// body bytes.
struct PeerBytes {
  uint64_t from_leader = 0;
  uint64_t to_leader = 0;
};

Result<PeerBytes> ReadPeerBytes(dap::HttpClient& http, const std::string& helper_url) {
  auto answer = http.Send(dap::HttpMethod::kGet, dap::JoinUrl(helper_url, "metrics"));
  if (!answer) return std::unexpected(answer.error());
  std::string text(answer->body.begin(), answer->body.end());
  PeerBytes bytes;
  auto counter = [&](std::string_view name) -> uint64_t {
    size_t at = text.find(std::string("\n") + std::string(name) + " ");
    if (at == std::string::npos) return 0;
    return std::stoull(text.substr(at + name.size() + 2));
  };
  bytes.from_leader = counter("canopy_peer_request_bytes_total");
  bytes.to_leader = counter("canopy_peer_response_bytes_total");
  return bytes;
}

// What a walk needs per report, measured at 256 bits and a stride of 4
// (docs/PERFORMANCE.md, "Level claims in memory, and a round's first level of
// nodes"): in each aggregator's memory about 5 KB (the report object, and the
// IDPF node states of the round's first level, two per survivor of the last
// round), 50 bytes a bit more with --levels-in-memory; on disk, each
// aggregator's level files
// (50 bytes a bit) and both databases (the reports, the held shares, the jobs' records
// and answers: about 200 bytes a bit together), and each database's
// write-ahead log at its largest.
constexpr uint64_t kMemoryPerReport = 5'000;
constexpr uint64_t kLevelBytesPerReportBit = 50;
constexpr uint64_t kDatabaseBytesPerReportBit = 200;

struct Needs {
  uint64_t memory = 0;
  uint64_t disk = 0;
};

Needs NeedsOf(const Options& options) {
  const uint64_t report_bits = options.reports * options.bits;
  const uint64_t levels = 2 * report_bits * kLevelBytesPerReportBit;
  Needs needs;
  needs.memory = 2 * options.reports * kMemoryPerReport + (options.levels_in_memory ? levels : 0);
  const uint64_t log_mib = options.wal_checkpoint_mib == 0 ? config::kDefaultWalCheckpointMib
                                                           : options.wal_checkpoint_mib;
  needs.disk = report_bits * kDatabaseBytesPerReportBit + (options.levels_in_memory ? 0 : levels) +
               2 * (log_mib << 20);
  return needs;
}

// MemAvailable of /proc/meminfo, in bytes; nullopt where it cannot be read.
std::optional<uint64_t> AvailableMemory() {
  std::ifstream meminfo("/proc/meminfo");
  std::string name;
  uint64_t kilobytes = 0;
  std::string unit;
  while (meminfo >> name >> kilobytes >> unit) {
    if (name == "MemAvailable:") return kilobytes * 1024;
  }
  return std::nullopt;
}

// A process's anonymous resident memory (RssAnon of /proc/PID/status), in
// bytes; 0 where it cannot be read. Anonymous memory is what the process
// itself holds; its resident file pages (SQLite maps up to 1 GB of its
// database) are the kernel's to drop.
uint64_t AnonymousMemoryOf(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("RssAnon:")) return std::stoull(line.substr(8)) * 1024;
  }
  return 0;
}

// A process's processor time so far, user and system (fields 14 and 15 of
// /proc/PID/stat), in seconds; 0 where it cannot be read. On a shared
// machine a round's processor time moves less from run to run than its wall
// time, and it says which aggregator did the work.
double CpuSecondsOf(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  std::getline(stat, content);
  // Field 2, the command, is in parentheses and may hold spaces: count the
  // fields after its closing one (field 3 first).
  const size_t close = content.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(content.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(field);
  if (fields.size() < 13) return 0;
  const double ticks = static_cast<double>(std::stoull(fields[11]) + std::stoull(fields[12]));
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Samples the anonymous memory of some processes every second, keeping the
// largest figure of each, until destroyed.
class PeakMemorySampler {
 public:
  explicit PeakMemorySampler(std::vector<pid_t> pids)
      : pids_(std::move(pids)), peaks_(pids_.size()) {
    thread_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mutex_);
      do {
        for (size_t i = 0; i < pids_.size(); ++i) {
          peaks_[i] = std::max(peaks_[i], AnonymousMemoryOf(pids_[i]));
        }
      } while (!stop_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; }));
    });
  }
  ~PeakMemorySampler() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    stop_.notify_all();
    thread_.join();
  }
  std::vector<uint64_t> peaks() {
    std::lock_guard<std::mutex> lock(mutex_);
    return peaks_;
  }

 private:
  std::vector<pid_t> pids_;
  std::vector<uint64_t> peaks_;
  std::mutex mutex_;
  std::condition_variable stop_;
  bool stopping_ = false;
  std::thread thread_;
};

std::string Gigabytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", static_cast<double>(bytes) / 1e9);
  return text;
}

std::string Megabytes(uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f", static_cast<double>(bytes) / 1e6);
  return text;
}

int Run(const Options& options) {
  using Clock = std::chrono::steady_clock;
  const auto begin = Clock::now();
  // A walk whose caches do not fit in memory would swap, or re-prepare
  // every report at every level; one that fills the disk fails late.
  const Needs needs = NeedsOf(options);
  const auto memory = AvailableMemory();
  std::error_code no_space;
  const uint64_t disk =
      std::filesystem::space(std::filesystem::temp_directory_path(), no_space).available;
  std::string refusal;
  if (memory && needs.memory > *memory) {
    refusal += " about " + Gigabytes(needs.memory) + " GB of memory for the two aggregators' " +
               "report caches (" + Gigabytes(*memory) + " GB available);";
  }
  if (!no_space && needs.disk > disk) {
    refusal += " about " + Gigabytes(needs.disk) + " GB of disk for the databases and level " +
               "files (" + Gigabytes(disk) + " GB free in " +
               std::filesystem::temp_directory_path().string() + ");";
  }
  if (!refusal.empty() && !options.force) {
    std::cerr << "discovery_load: " << options.reports << " reports of " << options.bits
              << " bits need" << refusal << " not started (--force runs it)\n";
    return 1;
  }
  testing::LocalDeploymentOptions deployment_options;
  deployment_options.programs = {CANOPY_AGGREGATOR_BINARY, CANOPY_CLIENT_BINARY,
                                 CANOPY_COLLECTOR_BINARY};
  deployment_options.folder_prefix = "canopy-discovery";
  deployment_options.keep_folder = options.keep;
  for (testing::AggregatorSettings* settings :
       {&deployment_options.leader, &deployment_options.helper}) {
    settings->worker_threads = options.workers;
    settings->report_levels_in_memory = options.levels_in_memory;
    settings->report_cache_reports = std::max<uint64_t>(options.reports, 100000);
    settings->max_reports_per_aggregation_job = options.job_size;
    settings->max_reports_per_held_aggregation_job = options.held_job_size;
    settings->wal_checkpoint_mib = options.wal_checkpoint_mib;
  }
  auto deployment = testing::LocalDeployment::Create(deployment_options);
  if (!deployment) {
    std::cerr << deployment.error().message() << "\n";
    return 1;
  }
  EarlyExit::Armed early_exit((*deployment)->folder(), options.keep);
  config::HeavyHitters walk;
  walk.set_bits(options.bits);
  walk.set_relative_threshold(options.threshold);
  walk.set_bits_per_round(options.stride);
  walk.set_first_round_bits(options.first_round_bits == 0 ? std::min(options.stride, options.bits)
                                                          : options.first_round_bits);
  const uint32_t rounds = collector::WalkRounds(walk);
  auto task = (*deployment)
                  ->AddPoplar1Task(options.bits, /*leader_selected=*/true,
                                   /*min_batch_size=*/100, std::max<uint32_t>(2, rounds));
  if (!task) {
    std::cerr << task.error().message() << "\n";
    return 1;
  }
  auto started = (*deployment)->Start();
  if (!started) {
    std::cerr << started.error().message() << "\n" << (*deployment)->Logs();
    return 1;
  }
  early_exit.SetProcesses({(*deployment)->leader().pid(), (*deployment)->helper().pid()});
  PeakMemorySampler sampler({(*deployment)->leader().pid(), (*deployment)->helper().pid()});
  std::cout << "discovery_load: " << options.reports << " reports of " << options.bits / 8
            << "-byte strings (Zipf " << options.exponent << " over " << options.distinct
            << " strings), threshold " << options.threshold << " of the reports, " << options.stride
            << " bits per round (" << rounds << " rounds at most), folder "
            << (*deployment)->folder() << "\n";

  // Upload, as canopy-client does.
  client::WorkloadOptions workload_options;
  workload_options.reports = options.reports;
  workload_options.exponent = options.exponent;
  workload_options.distinct = options.distinct;
  workload_options.seed = options.seed;
  workload_options.max_length = options.bits / 8;
  auto workload = client::GenerateWorkload(workload_options);
  auto client_task = client::LoadClientTask(task->task_file);
  if (!workload || !client_task) {
    std::cerr << (!workload ? workload.error() : client_task.error()).message() << "\n";
    return 1;
  }
  std::vector<idpf::BitString> encoded;
  encoded.reserve(workload->strings.size());
  for (const std::string& string : workload->strings) {
    auto bits = client::EncodeString(string, options.bits);
    if (!bits) {
      std::cerr << bits.error().message() << "\n";
      return 1;
    }
    encoded.push_back(std::move(*bits));
  }
  client::BulkUploadOptions upload_options;
  upload_options.threads = 2;
  const auto upload_start = Clock::now();
  auto uploaded = client::BulkUpload(
      client_task->upload, options.reports,
      [&](size_t index) { return poplar::Measurement(encoded[workload->draws[index]]); },
      upload_options);
  const auto upload_time = Clock::now() - upload_start;
  if (!uploaded || uploaded->accepted != options.reports) {
    std::cerr << "upload failed: "
              << (uploaded ? client::DescribeSummary(*uploaded) : uploaded.error().message())
              << "\n";
    return 1;
  }
  std::cout << "upload: " << options.reports << " reports in " << Seconds(upload_time) << " s ("
            << static_cast<uint64_t>(static_cast<double>(options.reports) / Seconds(upload_time))
            << " reports/s)\n";

  // The walk, as canopy-collector runs it, with the helper's counters read
  // after each round.
  config::CollectorConfig settings;
  *settings.mutable_heavy_hitters() = walk;
  config::CollectorConfig collector_config = (*deployment)->CollectorConfigFor(*task, settings);
  testing::LocalDeployment::SetBatch(*task, 0, collector_config);
  auto config_path = (*deployment)->WriteCollectorConfig(collector_config, "collector");
  if (!config_path) {
    std::cerr << config_path.error().message() << "\n";
    return 1;
  }
  auto setup = collector::LoadCollectorSetup(*config_path);
  auto http = dap::HttpClient::Create();
  if (!setup || !http) {
    std::cerr << (!setup ? setup.error() : http.error()).message() << "\n";
    return 1;
  }
  const std::string helper_url = (*deployment)->helper().url();
  auto before = ReadPeerBytes(*http, helper_url);
  if (!before) {
    std::cerr << before.error().message() << "\n";
    return 1;
  }
  std::vector<PeerBytes> round_bytes;
  PeerBytes last = *before;
  const pid_t leader_pid = (*deployment)->leader().pid();
  const pid_t helper_pid = (*deployment)->helper().pid();
  const double walk_cpu_start[2] = {CpuSecondsOf(leader_pid), CpuSecondsOf(helper_pid)};
  double last_cpu[2] = {walk_cpu_start[0], walk_cpu_start[1]};
  // Rounds 2 on: alike from one to the next, unlike round 1 (which carries
  // the reports' shares) and the leaf.
  struct {
    double seconds = 0, leader_cpu = 0, helper_cpu = 0;
  } later_rounds;
  std::printf("%6s %6s %10s %9s %8s %14s %14s %10s %10s\n", "round", "level", "candidates",
              "survivors", "seconds", "MB to helper", "MB to leader", "leader CPU", "helper CPU");
  collector::WalkObserver observer = [&](const collector::WalkProgress& progress) {
    if (progress.stage != collector::WalkProgress::Stage::kRoundFinished) return;
    auto now = ReadPeerBytes(*http, helper_url);
    PeerBytes delta;
    if (now) {
      delta = {now->from_leader - last.from_leader, now->to_leader - last.to_leader};
      last = *now;
    }
    round_bytes.push_back(delta);
    const double cpu[2] = {CpuSecondsOf(leader_pid), CpuSecondsOf(helper_pid)};
    const double seconds = static_cast<double>(progress.round_time.count()) / 1000.0;
    const double leader_cpu = cpu[0] - last_cpu[0];
    const double helper_cpu = cpu[1] - last_cpu[1];
    std::printf("%6zu %6zu %10zu %9zu %8.2f %14s %14s %10.2f %10.2f\n", progress.round,
                progress.level, progress.candidates, progress.survivors, seconds,
                Megabytes(delta.from_leader).c_str(), Megabytes(delta.to_leader).c_str(),
                leader_cpu, helper_cpu);
    if (progress.round >= 2) {
      later_rounds.seconds += seconds;
      later_rounds.leader_cpu += leader_cpu;
      later_rounds.helper_cpu += helper_cpu;
    }
    last_cpu[0] = cpu[0];
    last_cpu[1] = cpu[1];
    std::fflush(stdout);
    if (progress.round == options.stop_after_round) {
      std::printf("stopped after round %zu (--stop-after-round)", progress.round);
      if (progress.round >= 2) {
        const double cpu_total = later_rounds.leader_cpu + later_rounds.helper_cpu;
        std::printf(
            ": rounds 2 to %zu took %.2f s, processor time %.2f s leader + %.2f s "
            "helper = %.2f s (%.3f s a processor second)",
            progress.round, later_rounds.seconds, later_rounds.leader_cpu, later_rounds.helper_cpu,
            cpu_total, cpu_total > 0 ? later_rounds.seconds / cpu_total : 0.0);
      }
      std::printf("\n");
      EarlyExit::Exit(0);
    }
  };
  const auto walk_start = Clock::now();
  auto result = collector::RunConfiguredWalk(*setup, *http, observer);
  const auto walk_time = Clock::now() - walk_start;
  if (!result) {
    std::cerr << "walk failed: " << result.error().message() << "\n" << (*deployment)->Logs();
    return 1;
  }
  const auto output_start = Clock::now();
  collector::OutputOptions output;
  output.format = collector::OutputFormat::kCsv;
  const std::string csv = collector::FormatWalkResult(*result, output);
  const auto output_time = Clock::now() - output_start;

  // The heavy hitters must be exactly the strings whose true count meets the
  // threshold, with their counts.
  const uint64_t limit =
      static_cast<uint64_t>(std::ceil(options.threshold * static_cast<double>(options.reports)));
  std::map<std::string, uint64_t> expected;
  for (const client::TrueCount& count : workload->TrueCounts()) {
    if (count.count >= std::max<uint64_t>(limit, 1)) expected[count.string] = count.count;
  }
  std::map<std::string, uint64_t> found;
  for (const collector::HeavyHitter& hitter : result->heavy_hitters) {
    found[client::DecodeString(hitter.string)] = hitter.count;
  }
  const bool exact = found == expected;
  PeerBytes total{last.from_leader - before->from_leader, last.to_leader - before->to_leader};
  char walk_cpu[96];
  std::snprintf(walk_cpu, sizeof(walk_cpu), "%.1f s leader, %.1f s helper",
                CpuSecondsOf(leader_pid) - walk_cpu_start[0],
                CpuSecondsOf(helper_pid) - walk_cpu_start[1]);
  std::cout << "walk: " << result->rounds.size() << " rounds in " << Seconds(walk_time)
            << " s; the aggregators exchanged " << Megabytes(total.from_leader) << " MB + "
            << Megabytes(total.to_leader) << " MB; processor time " << walk_cpu << "\n"
            << "output: " << result->heavy_hitters.size() << " heavy hitters in "
            << Seconds(output_time) * 1000.0 << " ms; "
            << (exact ? "exactly the strings whose true count meets the threshold"
                      : "DIFFERENT from the true counts")
            << "\n"
            << "total: " << Seconds(Clock::now() - begin) << " s (upload " << Seconds(upload_time)
            << " s, discovery " << Seconds(walk_time + output_time) << " s)\n";
  const std::vector<uint64_t> peaks = sampler.peaks();
  std::cout << "memory (anonymous, largest of one-second samples): leader " << Megabytes(peaks[0])
            << " MB, helper " << Megabytes(peaks[1]) << " MB\n";
  auto stopped = (*deployment)->Stop();
  if (!stopped) std::cerr << stopped.error().message() << "\n";
  return exact ? 0 : 1;
}

}  // namespace
}  // namespace canopy::bench

int main(int argc, char** argv) {
  canopy::bench::Options options;
  bool parsed = false;
  try {
    parsed = canopy::bench::ParseOptions(argc, argv, options);
  } catch (const std::exception&) {  // std::stoull and std::stod on bad numbers.
    parsed = false;
  }
  if (!parsed) {
    std::cerr
        << "usage: discovery_load [--reports N] [--bits B] [--stride S] "
           "[--first-round-bits F] [--threshold T] [--distinct D] [--exponent E] "
           "[--seed S] [--job-size J] [--held-job-size H] [--workers W] [--wal-checkpoint-mib M] "
           "[--levels-in-memory] "
           "[--stop-after-round N] [--keep] [--force]\n";
    return 2;
  }
  canopy::bench::EarlyExit::Install();
  return canopy::bench::Run(options);
}
