#include "tests/testing/local_deployment.h"

#include <arpa/inet.h>
#include <google/protobuf/text_format.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "crypto/random.h"
#include "dap/base64url.h"
#include "tests/testing/temp_folder.h"

namespace canopy::testing {
namespace {

// The collector_hpke_config ID every task names the collector's key by.
constexpr uint32_t kCollectorConfigId = 9;

Result<void> WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return MakeError(ErrorCode::kIoError, "cannot write " + path);
  return {};
}

Result<std::string> RandomBase64Url(size_t bytes) {
  std::vector<uint8_t> random(bytes);
  if (auto filled = crypto::RandomBytes(random); !filled) return std::unexpected(filled.error());
  return dap::Base64UrlEncode(random);
}

template <typename Message>
Result<std::string> PrintText(const Message& message) {
  std::string text;
  if (!google::protobuf::TextFormat::PrintToString(message, &text)) {
    return MakeError(ErrorCode::kInternal, "cannot print a " + message.GetTypeName());
  }
  return text;
}

// The last lines of a program's error output, for a message.
std::string Tail(const std::string& text, size_t max_chars = 2000) {
  return text.size() <= max_chars ? text : "..." + text.substr(text.size() - max_chars);
}

Result<Uploaded> CheckUpload(Result<ProgramRun> run, std::string true_counts_path) {
  if (!run) return std::unexpected(run.error());
  if (!run->succeeded()) {
    return MakeError(ErrorCode::kIoError, "canopy-client upload failed (" + run->status_text() +
                                              "): " + Tail(run->Stderr()));
  }
  return Uploaded{std::move(*run), std::move(true_counts_path)};
}

// Undoes the backslash escapes of both programs' CSV strings.
Result<std::string> Unescape(std::string_view text) {
  std::string raw;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\') {
      raw += text[i];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '\\') {
      raw += '\\';
      ++i;
    } else if (i + 3 < text.size() && text[i + 1] == 'x' &&
               std::isxdigit(static_cast<unsigned char>(text[i + 2])) &&
               std::isxdigit(static_cast<unsigned char>(text[i + 3]))) {
      raw += static_cast<char>(std::stoi(std::string(text.substr(i + 2, 2)), nullptr, 16));
      i += 3;
    } else {
      return MakeError(ErrorCode::kInvalidArgument, "a malformed escape");
    }
  }
  return raw;
}

// One RFC 4180 field (the whole rest of a line).
Result<std::string> Unquote(std::string_view field) {
  if (field.empty() || field.front() != '"') return std::string(field);
  if (field.size() < 2 || field.back() != '"') {
    return MakeError(ErrorCode::kInvalidArgument, "an unterminated quoted field");
  }
  std::string text;
  for (size_t i = 1; i + 1 < field.size(); ++i) {
    if (field[i] == '"') {
      if (i + 2 >= field.size() || field[i + 1] != '"') {
        return MakeError(ErrorCode::kInvalidArgument, "a lone quote inside a quoted field");
      }
      ++i;
    }
    text += field[i];
  }
  return text;
}

}  // namespace

// --- ProgramRun.

bool ProgramRun::succeeded() const {
  return WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
}

std::optional<int> ProgramRun::exit_code() const {
  if (!WIFEXITED(wait_status)) return std::nullopt;
  return WEXITSTATUS(wait_status);
}

std::string ProgramRun::status_text() const { return DescribeWaitStatus(wait_status); }

std::string ProgramRun::Stdout() const { return ReadTextFile(stdout_path).value_or(""); }

std::string ProgramRun::Stderr() const { return ReadTextFile(stderr_path).value_or(""); }

// --- LocalDeployment.

LocalDeployment::LocalDeployment(LocalDeploymentOptions options) : options_(std::move(options)) {}

Result<std::unique_ptr<LocalDeployment>> LocalDeployment::Create(LocalDeploymentOptions options) {
  if (options.programs.aggregator.empty() || options.programs.client.empty() ||
      options.programs.collector.empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "the paths of the three programs are required");
  }
  std::unique_ptr<LocalDeployment> deployment(new LocalDeployment(std::move(options)));
  LocalDeployment& d = *deployment;
  if (d.options_.folder.empty()) {
    auto folder = CreateTempFolder(d.options_.folder_prefix);
    if (!folder) return std::unexpected(folder.error());
    d.folder_ = *folder;
    d.remove_folder_ = !d.options_.keep_folder;
  } else {
    d.folder_ = d.options_.folder;
    std::error_code error;
    std::filesystem::create_directories(d.folder_, error);
    if (error) return MakeError(ErrorCode::kIoError, "cannot create " + d.folder_);
  }
  std::error_code error;
  std::filesystem::create_directories(d.Path("keys"), error);
  if (error) return MakeError(ErrorCode::kIoError, "cannot create " + d.Path("keys"));

  for (crypto::hpke::KeyPair* key : {&d.leader_key_, &d.helper_key_, &d.collector_key_}) {
    auto pair = crypto::hpke::GenerateKeyPair(crypto::hpke::KemId::kX25519HkdfSha256);
    if (!pair) return std::unexpected(pair.error());
    *key = std::move(*pair);
  }
  const std::pair<const crypto::hpke::KeyPair*, const char*> keys[] = {
      {&d.leader_key_, "leader"}, {&d.helper_key_, "helper"}, {&d.collector_key_, "collector"}};
  for (const auto& [key, name] : keys) {
    auto written = WriteFile(d.Path("keys/" + std::string(name) + ".key"),
                             dap::Base64UrlEncode(key->private_key.span()));
    if (!written) return std::unexpected(written.error());
  }
  for (std::string* token : {&d.peer_token_, &d.collector_token_}) {
    auto random = RandomBase64Url(24);
    if (!random) return std::unexpected(random.error());
    *token = *random;
  }

  auto leader_port = FreeLoopbackPort();
  if (!leader_port) return std::unexpected(leader_port.error());
  d.leader_port_ = *leader_port;
  do {
    auto helper_port = FreeLoopbackPort();
    if (!helper_port) return std::unexpected(helper_port.error());
    d.helper_port_ = *helper_port;
  } while (d.helper_port_ == d.leader_port_);
  d.leader_ = std::make_unique<AggregatorProcess>("leader", d.options_.programs.aggregator,
                                                  d.Path("leader.textproto"), d.Path("leader.log"),
                                                  d.leader_port_);
  d.helper_ = std::make_unique<AggregatorProcess>("helper", d.options_.programs.aggregator,
                                                  d.Path("helper.textproto"), d.Path("helper.log"),
                                                  d.helper_port_);
  return deployment;
}

LocalDeployment::~LocalDeployment() {
  if (leader_) leader_->Kill();
  if (helper_) helper_->Kill();
  if (remove_folder_) {
    std::error_code ignored;
    std::filesystem::remove_all(folder_, ignored);
  }
}

std::string LocalDeployment::Path(const std::string& name) const { return folder_ + "/" + name; }

Result<config::TaskDefinition> LocalDeployment::NewTaskDefinition(uint64_t min_batch_size) const {
  config::TaskDefinition definition;
  auto task_id = RandomBase64Url(32);
  auto verify_key = RandomBase64Url(32);
  if (!task_id || !verify_key) {
    return std::unexpected(!task_id ? task_id.error() : verify_key.error());
  }
  definition.set_task_id(*task_id);
  definition.set_leader_url(leader_->url());
  definition.set_helper_url(helper_->url());
  definition.set_time_precision_seconds(3600);
  definition.set_min_batch_size(min_batch_size);
  definition.set_batch_mode(config::TaskDefinition::TIME_INTERVAL);
  config::VerifyKey* key = definition.add_verify_keys();
  key->set_id(0);
  key->set_key(*verify_key);
  config::CollectorHpkeConfig* collector = definition.mutable_collector_hpke_config();
  collector->set_id(kCollectorConfigId);
  collector->set_public_key(dap::Base64UrlEncode(collector_key_.public_key));
  return definition;
}

Result<LocalTask> LocalDeployment::AddPoplar1Task(uint32_t bits, bool leader_selected,
                                                  uint64_t min_batch_size,
                                                  uint32_t max_collections_per_batch) {
  auto definition = NewTaskDefinition(min_batch_size);
  if (!definition) return std::unexpected(definition.error());
  definition->mutable_poplar1()->set_bits(bits);
  definition->set_batch_mode(leader_selected ? config::TaskDefinition::LEADER_SELECTED
                                             : config::TaskDefinition::TIME_INTERVAL);
  definition->mutable_multi_level_collection()->set_max_collections_per_batch(
      max_collections_per_batch);
  return AddTask(*definition);
}

Result<LocalTask> LocalDeployment::AddTask(const config::TaskDefinition& definition) {
  if (started_) {
    return MakeError(ErrorCode::kInvalidArgument, "tasks are added before the aggregators start");
  }
  LocalTask task;
  task.definition = definition;
  task.task_id = definition.task_id();
  task.task_file = Path("task-" + std::to_string(tasks_.size()) + ".textproto");
  // Clients and the collector get the task without the aggregators' secret.
  config::TaskDefinition public_copy = definition;
  public_copy.clear_verify_keys();
  auto text = PrintText(public_copy);
  if (!text) return std::unexpected(text.error());
  if (auto written = WriteFile(task.task_file, *text); !written) {
    return std::unexpected(written.error());
  }
  tasks_.push_back(task);
  return task;
}

Result<void> LocalDeployment::WriteAggregatorConfig(bool leader) const {
  const AggregatorSettings& settings = leader ? options_.leader : options_.helper;
  config::AggregatorConfig config;
  config.set_role(leader ? config::AggregatorConfig::LEADER : config::AggregatorConfig::HELPER);
  config.set_listen_address("127.0.0.1:" + std::to_string(leader ? leader_port_ : helper_port_));
  config.set_database_path(Path(leader ? "leader.sqlite" : "helper.sqlite"));
  config.set_peer_token(peer_token_);
  if (leader) {
    config.set_peer_url(helper_->url());
    config.set_collector_token(collector_token_);
    config.set_max_reports_per_aggregation_job(settings.max_reports_per_aggregation_job);
    config.set_max_reports_per_held_aggregation_job(settings.max_reports_per_held_aggregation_job);
  }
  config.set_report_cache_reports(settings.report_cache_reports);
  config.set_report_levels_in_memory(settings.report_levels_in_memory);
  config.set_wal_checkpoint_mib(settings.wal_checkpoint_mib);
  config.mutable_limits()->set_worker_threads(settings.worker_threads);
  config::HpkeKeyFiles* key = config.add_hpke_keys();
  key->set_config_id(leader ? 1 : 2);
  key->set_private_key_file(Path(leader ? "keys/leader.key" : "keys/helper.key"));
  config.add_task_files(Path("tasks-aggregators.textproto"));
  auto text = PrintText(config);
  if (!text) return std::unexpected(text.error());
  return WriteFile(leader ? leader_->config_path() : helper_->config_path(), *text);
}

Result<void> LocalDeployment::Start() {
  started_ = true;
  config::TaskList list;
  for (const LocalTask& task : tasks_) *list.add_task() = task.definition;
  auto text = PrintText(list);
  if (!text) return std::unexpected(text.error());
  if (auto written = WriteFile(Path("tasks-aggregators.textproto"), *text); !written) {
    return written;
  }
  for (bool leader : {true, false}) {
    if (auto written = WriteAggregatorConfig(leader); !written) return written;
  }
  if (auto started = helper_->Start(); !started) return started;
  return leader_->Start();
}

Result<void> LocalDeployment::Stop(std::chrono::milliseconds timeout) {
  Result<void> outcome;
  for (AggregatorProcess* process : {leader_.get(), helper_.get()}) {
    if (!process->Running()) continue;
    auto stopped = process->Terminate(timeout);
    if (!stopped && outcome) outcome = std::unexpected(stopped.error());
  }
  return outcome;
}

ChildOutput LocalDeployment::OutputOf(const std::string& name) {
  ChildOutput output{Path(name + ".stdout"), Path(name + ".stderr")};
  for (const std::string& path : {output.stdout_path, output.stderr_path}) {
    if (std::find(run_logs_.begin(), run_logs_.end(), path) == run_logs_.end()) {
      run_logs_.push_back(path);
    }
  }
  return output;
}

Result<ProgramRun> LocalDeployment::RunClient(const std::vector<std::string>& arguments,
                                              const std::string& name,
                                              std::chrono::milliseconds timeout) {
  std::vector<std::string> argv = {options_.programs.client};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  const ChildOutput output = OutputOf(name);
  auto process = ChildProcess::Start(argv, output);
  if (!process) return std::unexpected(process.error());
  auto status = process->Wait(timeout);
  if (!status) {
    return MakeError(ErrorCode::kIoError,
                     "canopy-client (" + name + "): " + status.error().message());
  }
  return ProgramRun{*status, output.stdout_path, output.stderr_path};
}

Result<Uploaded> LocalDeployment::UploadZipf(const LocalTask& task, const ZipfUpload& workload,
                                             const std::string& name) {
  const std::string true_counts = Path(name + ".true-counts.csv");
  std::vector<std::string> arguments = {"upload",
                                        "--task",
                                        task.task_file,
                                        "--zipf-reports",
                                        std::to_string(workload.reports),
                                        "--seed",
                                        std::to_string(workload.seed),
                                        "--distinct",
                                        std::to_string(workload.distinct),
                                        "--zipf-exponent",
                                        std::to_string(workload.exponent),
                                        "--true-counts",
                                        true_counts,
                                        "--progress",
                                        "off"};
  if (workload.max_length != 0) {
    arguments.insert(arguments.end(), {"--max-length", std::to_string(workload.max_length)});
  }
  if (workload.time_seconds) {
    arguments.insert(arguments.end(), {"--time", std::to_string(*workload.time_seconds)});
  }
  if (workload.threads != 0) {
    arguments.insert(arguments.end(), {"--threads", std::to_string(workload.threads)});
  }
  if (workload.reports_per_request != 0) {
    arguments.insert(arguments.end(),
                     {"--reports-per-request", std::to_string(workload.reports_per_request)});
  }
  return CheckUpload(RunClient(arguments, name), true_counts);
}

Result<Uploaded> LocalDeployment::UploadInput(const LocalTask& task,
                                              const std::vector<std::string>& lines,
                                              std::optional<uint64_t> time_seconds,
                                              const std::string& name) {
  const std::string input = Path(name + ".input");
  std::string text;
  for (const std::string& line : lines) text += line + "\n";
  if (auto written = WriteFile(input, text); !written) return std::unexpected(written.error());
  std::vector<std::string> arguments = {"upload",     "--task", task.task_file, "--input", input,
                                        "--progress", "off",    "--threads",    "2"};
  if (time_seconds) arguments.insert(arguments.end(), {"--time", std::to_string(*time_seconds)});
  return CheckUpload(RunClient(arguments, name), "");
}

config::CollectorConfig LocalDeployment::CollectorConfigFor(
    const LocalTask& task, const config::CollectorConfig& settings) const {
  config::CollectorConfig config;
  config.set_leader_url(leader_->url());
  config.set_task_id(task.task_id);
  config.set_collector_token(collector_token_);
  config.mutable_hpke_key()->set_config_id(kCollectorConfigId);
  config.mutable_hpke_key()->set_private_key_file(Path("keys/collector.key"));
  config.set_task_file(task.task_file);
  config.set_poll_interval_seconds(1);
  config.MergeFrom(settings);
  return config;
}

void LocalDeployment::SetBatch(const LocalTask& task, uint64_t time_seconds,
                               config::CollectorConfig& config) {
  if (task.leader_selected()) {
    config.mutable_leader_selected();
    return;
  }
  const uint64_t precision = std::max<uint64_t>(1, task.definition.time_precision_seconds());
  config.mutable_time_interval()->set_start_seconds(time_seconds / precision * precision);
  config.mutable_time_interval()->set_duration_seconds(precision);
}

Result<std::string> LocalDeployment::WriteCollectorConfig(const config::CollectorConfig& config,
                                                          const std::string& name) {
  auto text = PrintText(config);
  if (!text) return std::unexpected(text.error());
  const std::string path = Path(name + ".textproto");
  if (auto written = WriteFile(path, *text); !written) return std::unexpected(written.error());
  return path;
}

Result<ChildProcess> LocalDeployment::StartCollector(const std::vector<std::string>& arguments,
                                                     const std::string& name) {
  std::vector<std::string> argv = {options_.programs.collector};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  return ChildProcess::Start(argv, OutputOf(name));
}

Result<ProgramRun> LocalDeployment::RunCollector(const std::vector<std::string>& arguments,
                                                 const std::string& name,
                                                 std::chrono::milliseconds timeout) {
  auto process = StartCollector(arguments, name);
  if (!process) return std::unexpected(process.error());
  auto status = process->Wait(timeout);
  if (!status) {
    return MakeError(ErrorCode::kIoError,
                     "canopy-collector (" + name + "): " + status.error().message());
  }
  return CollectorRun(*process, name);
}

ProgramRun LocalDeployment::CollectorRun(const ChildProcess& process,
                                         const std::string& name) const {
  return ProgramRun{process.wait_status().value_or(0), Path(name + ".stdout"),
                    Path(name + ".stderr")};
}

std::vector<std::string> LocalDeployment::LogPaths() const {
  std::vector<std::string> paths = {leader_->log_path(), helper_->log_path()};
  paths.insert(paths.end(), run_logs_.begin(), run_logs_.end());
  return paths;
}

std::string LocalDeployment::Logs() const {
  std::string logs;
  for (const std::string& path : LogPaths()) {
    logs += "----- " + path + " -----\n";
    logs += ReadTextFile(path).value_or("(unreadable)\n");
  }
  return logs;
}

// --- Files.

Result<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return MakeError(ErrorCode::kIoError, "cannot read " + path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

Result<std::vector<StringCount>> ReadCountsCsv(const std::string& path) {
  auto text = ReadTextFile(path);
  if (!text) return std::unexpected(text.error());
  std::istringstream lines(*text);
  std::string line;
  if (!std::getline(lines, line) || line != "count,string") {
    return MakeError(ErrorCode::kInvalidArgument, path + ": no \"count,string\" header");
  }
  std::vector<StringCount> rows;
  for (size_t number = 2; std::getline(lines, line); ++number) {
    // The collector's --tree output follows the heavy hitters after a blank line.
    if (line.empty()) break;
    auto bad = [&](const std::string& what) {
      return MakeError(ErrorCode::kInvalidArgument,
                       path + ":" + std::to_string(number) + ": " + what);
    };
    const size_t comma = line.find(',');
    if (comma == std::string::npos || comma == 0) return bad("no count");
    StringCount row;
    for (char digit : line.substr(0, comma)) {
      if (digit < '0' || digit > '9') return bad("the count is not a number");
      row.count = row.count * 10 + static_cast<uint64_t>(digit - '0');
    }
    auto unquoted = Unquote(std::string_view(line).substr(comma + 1));
    if (!unquoted) return bad(unquoted.error().message());
    auto raw = Unescape(*unquoted);
    if (!raw) return bad(raw.error().message());
    row.string = std::move(*raw);
    rows.push_back(std::move(row));
  }
  return rows;
}

Result<uint16_t> FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return MakeError(ErrorCode::kIoError, "cannot open a socket");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  uint16_t port = 0;
  // The port is free once the socket is closed; the aggregator binds it a
  // moment later, and the kernel does not hand the same ephemeral port out
  // again that soon.
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  if (port == 0) return MakeError(ErrorCode::kIoError, "cannot bind a loopback port");
  return port;
}

}  // namespace canopy::testing
