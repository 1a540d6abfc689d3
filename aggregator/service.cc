// Routing, authentication and the endpoints both roles serve. The leader's
// and the helper's protocol endpoints are in leader_endpoints.cc and
// helper_endpoints.cc.
#include "aggregator/service.h"

#include <google/protobuf/text_format.h>

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "aggregator/collection_waiters.h"
#include "aggregator/internal/common.h"
#include "config/config.h"
#include "crypto/secure_wipe.h"
#include "dap/base64url.h"
#include "dap/http_client.h"

namespace canopy::aggregator {

using dap::ProblemType;
using internal::MethodNotAllowed;
using internal::Problem;

AggregatorService::AggregatorService(ServiceOptions options, Datastore& datastore,
                                     TaskRegistry& tasks,
                                     std::vector<dap::AggregatorHpkeKey> hpke_keys,
                                     Metrics& metrics)
    : options_(std::move(options)),
      datastore_(datastore),
      tasks_(tasks),
      hpke_keys_(std::move(hpke_keys)),
      metrics_(metrics),
      report_cache_(options_.report_cache_capacity, options_.level_files) {
  if (options_.role == dap::Role::kLeader) {
    upload_writer_ = std::make_unique<UploadWriter>(datastore_);
  }
}

AggregatorService::~AggregatorService() = default;

uint64_t AggregatorService::Now() const {
  return options_.clock ? options_.clock() : internal::NowSeconds();
}

void AggregatorService::Handle(ServerRequest request, Responder respond) {
  if (std::shared_ptr<const Task> task = UploadTask(request)) {
    UploadAsync(std::move(task), request,
                [this, respond = std::move(respond)](ServerResponse response) {
                  metrics_.Response(response.status);
                  respond(std::move(response));
                });
    return;
  }
  auto shared_request = std::make_shared<ServerRequest>(std::move(request));
  ServerResponse response = DispatchSafely(*shared_request);
  if (HoldCollectionPoll(shared_request, response, respond)) return;
  metrics_.Response(response.status);
  respond(std::move(response));
}

ServerResponse AggregatorService::HandleNow(const ServerRequest& request) {
  ServerResponse response = DispatchSafely(request);
  metrics_.Response(response.status);
  return response;
}

ServerResponse AggregatorService::DispatchSafely(const ServerRequest& request) {
  try {
    return Dispatch(request);
  } catch (const std::exception&) {
    // Library code does not throw; this guards against allocation failure
    // and the like, without echoing anything from the request.
    return Problem(ProblemType::kInternal, "internal error");
  }
}

bool AggregatorService::Authorized(const ServerRequest& request, const std::string& token) const {
  if (token.empty()) return false;
  std::string_view header = request.Header("authorization");
  // The scheme's name is case-insensitive (RFC 9110, section 11.1).
  constexpr std::string_view kBearer = "bearer ";
  if (header.size() <= kBearer.size() ||
      dap::AsciiLowercase(header.substr(0, kBearer.size())) != kBearer) {
    return false;
  }
  return internal::ConstantTimeEquals(header.substr(kBearer.size()), token);
}

ServerResponse AggregatorService::Dispatch(const ServerRequest& request) {
  std::string_view path = request.path;
  // The aggregator's URL may carry a path prefix: route on what follows it.
  if (path.ends_with("/hpke_config")) {
    if (request.method != "GET") return MethodNotAllowed("GET");
    return GetHpkeConfig();
  }
  if (path == "/healthz") return Healthz();
  if (path == "/metrics") return MetricsPage();
  if (path == "/admin/tasks" || path.starts_with("/admin/tasks/")) {
    return Admin(request, path.substr(std::string_view("/admin/tasks").size()));
  }
  size_t tasks = path.find("/tasks/");
  if (tasks != std::string_view::npos) {
    return DispatchTask(request, path.substr(tasks + std::string_view("/tasks/").size()));
  }
  return internal::NotFound("no such resource");
}

namespace {

// Splits "a/b/c" into its segments.
std::vector<std::string_view> Segments(std::string_view rest) {
  std::vector<std::string_view> segments;
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    segments.push_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return segments;
}

template <size_t N>
std::optional<std::array<uint8_t, N>> DecodeId(std::string_view text) {
  auto bytes = dap::Base64UrlDecode(text);
  if (!bytes || bytes->size() != N) return std::nullopt;
  std::array<uint8_t, N> id;
  std::copy(bytes->begin(), bytes->end(), id.begin());
  return id;
}

// The task and job a collection job poll names ("GET .../tasks/{task}/
// collection_jobs/{job}"), if it is one.
std::optional<std::pair<TaskId, JobId>> CollectionJobPolled(const ServerRequest& request) {
  if (request.method != "GET") return std::nullopt;
  std::string_view path = request.path;
  size_t tasks = path.find("/tasks/");
  if (tasks == std::string_view::npos) return std::nullopt;
  std::vector<std::string_view> segments =
      Segments(path.substr(tasks + std::string_view("/tasks/").size()));
  if (segments.size() != 3 || segments[1] != "collection_jobs") return std::nullopt;
  auto task_id = DecodeId<32>(segments[0]);
  auto job_id = DecodeId<16>(segments[2]);
  if (!task_id || !job_id) return std::nullopt;
  return std::make_pair(*task_id, *job_id);
}

}  // namespace

bool AggregatorService::HoldCollectionPoll(const std::shared_ptr<ServerRequest>& request,
                                           const ServerResponse& response,
                                           const Responder& respond) {
  // 202 answers only a poll of a job in progress, which the caller is
  // entitled to see (the dispatch checked the token).
  if (options_.collection_waiters == nullptr || response.status != 202) return false;
  auto polled = CollectionJobPolled(*request);
  if (!polled) return false;
  auto answer = [this, request, respond] { respond(HandleNow(*request)); };
  if (options_.collection_waiters->Wait(polled->first, polled->second, answer)) return true;
  // Not held: the job may have finished just now, so look again.
  answer();
  return true;
}

ServerResponse AggregatorService::DispatchTask(const ServerRequest& request,
                                               std::string_view rest) {
  std::vector<std::string_view> segments = Segments(rest);
  if (segments.size() < 2 || segments.size() > 3) return internal::NotFound("no such resource");
  std::string_view resource = segments[1];
  const bool leader = options_.role == dap::Role::kLeader;
  // Authentication comes first, so that a caller without the token cannot
  // learn which task IDs exist.
  const std::string* token = nullptr;
  if (leader && resource == "collection_jobs") token = &options_.collector_token;
  if (!leader && (resource == "aggregation_jobs" || resource == "aggregate_shares")) {
    token = &options_.peer_token;
  }
  if (token != nullptr && !Authorized(request, *token)) {
    return Problem(ProblemType::kUnauthorized, "missing or wrong bearer token");
  }
  auto task_id = DecodeId<32>(segments[0]);
  if (!task_id) return Problem(ProblemType::kInvalidMessage, "malformed task ID");
  std::shared_ptr<const Task> task = tasks_.Find(*task_id);
  if (task == nullptr) {
    return Problem(ProblemType::kUnrecognizedTask, "no such task", &*task_id);
  }
  std::optional<JobId> job_id;
  if (segments.size() == 3) {
    job_id = DecodeId<16>(segments[2]);
    if (!job_id) return Problem(ProblemType::kInvalidMessage, "malformed resource ID", &task->id);
  }
  const std::string& method = request.method;

  if (leader && resource == "reports" && !job_id) {
    if (method != "POST") return MethodNotAllowed("POST");
    return Upload(*task, request);
  }
  if (leader && resource == "collection_jobs") {
    if (!job_id) {
      if (method != "POST") return MethodNotAllowed("POST");
      return CreateCollectionJob(*task, request);
    }
    if (method == "GET") return GetCollectionJob(*task, *job_id);
    if (method == "DELETE") return DeleteCollectionJob(*task, *job_id);
    return MethodNotAllowed("GET, DELETE");
  }
  if (!leader && (resource == "aggregation_jobs" || resource == "aggregate_shares")) {
    ServerResponse response = DispatchPeer(*task, resource, job_id, request);
    metrics_.PeerExchange(request.body.size(), response.body.size());
    return response;
  }
  return internal::NotFound("this aggregator does not serve that resource", &task->id);
}

ServerResponse AggregatorService::DispatchPeer(const Task& task, std::string_view resource,
                                               const std::optional<JobId>& job_id,
                                               const ServerRequest& request) {
  const std::string& method = request.method;
  if (resource == "aggregation_jobs") {
    if (!job_id) {
      if (method != "POST") return MethodNotAllowed("POST");
      return InitAggregationJob(task, request);
    }
    if (method == "POST") return ContinueAggregationJob(task, *job_id, request);
    if (method == "GET") return GetAggregationJob(task, *job_id, request);
    if (method == "DELETE") return DeleteAggregationJob(task, *job_id);
    return MethodNotAllowed("POST, GET, DELETE");
  }
  if (!job_id) {
    if (method != "POST") return MethodNotAllowed("POST");
    return CreateAggregateShare(task, request);
  }
  if (method == "GET") return GetAggregateShare(task, *job_id);
  if (method == "DELETE") {
    ServerResponse response;
    response.status = 204;
    return response;
  }
  return MethodNotAllowed("GET, DELETE");
}

ServerResponse AggregatorService::GetHpkeConfig() {
  dap::HpkeConfigList list;
  for (const dap::AggregatorHpkeKey& key : hpke_keys_) list.configs.push_back(key.config);
  auto encoded = dap::Encode(list);
  if (!encoded) return Problem(ProblemType::kInternal, "cannot encode HPKE configurations");
  ServerResponse response = internal::Message(200, "hpke-config-list", std::move(*encoded));
  response.SetHeader("Cache-Control", "max-age=86400");
  return response;
}

ServerResponse AggregatorService::Healthz() {
  // Healthy when the datastore answers.
  Result<void> probe = datastore_.Run([](Transaction& tx) -> Result<void> {
    auto tasks = tx.ListTasks();
    if (!tasks) return std::unexpected(tasks.error());
    return {};
  });
  ServerResponse response;
  response.status = probe ? 200 : 503;
  response.SetBody("text/plain", probe ? "ok\n" : "datastore unavailable\n");
  return response;
}

ServerResponse AggregatorService::MetricsPage() {
  ServerResponse response;
  response.SetBody("text/plain; version=0.0.4", metrics_.Render());
  return response;
}

Result<void> AggregatorService::AddTask(const config::TaskDefinition& definition,
                                        const std::string& source) {
  auto task = BuildTask(definition);
  if (!task) return std::unexpected(task.error());
  TaskRow row;
  row.task_id = (*task)->id;
  row.source = source;
  std::string serialized;
  if (!definition.SerializeToString(&serialized)) {
    return MakeError(ErrorCode::kInternal, "cannot serialise the task definition");
  }
  row.definition.assign(serialized.begin(), serialized.end());
  // Both copies hold the verification keys.
  crypto::SecureWipe(serialized.data(), serialized.size());
  auto stored = datastore_.Run([&](Transaction& tx) { return tx.PutTask(row); });
  crypto::SecureWipeVector(row.definition);
  if (!stored) return stored;
  tasks_.Put(std::move(*task));
  return {};
}

Result<std::vector<std::string>> AggregatorService::LoadStoredTasks() {
  std::vector<TaskRow> rows;
  auto read = datastore_.Run([&](Transaction& tx) -> Result<void> {
    auto listed = tx.ListTasks();
    if (!listed) return std::unexpected(listed.error());
    rows = std::move(*listed);
    return {};
  });
  if (!read) return std::unexpected(read.error());
  std::vector<std::string> warnings;
  for (TaskRow& row : rows) {
    // The stored definition and its parsed copy hold the verification keys;
    // the task keeps its own.
    crypto::WipeOnExit wipe_stored(row.definition);
    config::TaskDefinition definition;
    Result<std::shared_ptr<const Task>> task =
        MakeError(ErrorCode::kDecodeError, "stored definition does not parse");
    if (definition.ParseFromArray(row.definition.data(), static_cast<int>(row.definition.size()))) {
      task = BuildTask(definition);
    }
    config::WipeVerifyKeys(definition);
    if (!task) {
      warnings.push_back("task " + dap::Base64UrlEncode(row.task_id) + ": " +
                         task.error().message() + "; skipped");
      continue;
    }
    tasks_.Put(std::move(*task));
  }
  return warnings;
}

ServerResponse AggregatorService::Admin(const ServerRequest& request, std::string_view rest) {
  if (!Authorized(request, options_.admin_token)) {
    return Problem(ProblemType::kUnauthorized, "missing or wrong admin token");
  }
  if (rest.empty() || rest == "/") {
    if (request.method == "GET") {
      // The IDs, VDAFs and sources of the tasks; never their keys.
      std::string text;
      for (const auto& task : tasks_.All()) {
        text += dap::Base64UrlEncode(task->id) + " " + task->vdaf->name() + " " +
                (task->leader_selected() ? "leader_selected" : "time_interval") +
                (task->multi_level() ? " multi_level" : "") + "\n";
      }
      ServerResponse response;
      response.SetBody("text/plain", text);
      return response;
    }
    if (request.method == "POST") {
      // The body is a TaskDefinition or TaskList in text format, as in task files.
      std::string text(request.body.begin(), request.body.end());
      auto definitions = config::ParseTaskFile(text, "request body");
      crypto::SecureWipe(text.data(), text.size());  // It holds verification keys.
      // Refusals are problem documents, like every other refusal on the wire.
      if (!definitions) {
        return Problem(ProblemType::kInvalidMessage, definitions.error().message());
      }
      std::optional<ServerResponse> refused;
      for (const config::TaskDefinition& definition : *definitions) {
        auto added = AddTask(definition, "admin");
        if (!added) {
          refused =
              Problem(added.error().code() == ErrorCode::kIoError ? ProblemType::kInternal
                                                                  : ProblemType::kInvalidMessage,
                      "task " + definition.task_id() + ": " + added.error().message());
          break;
        }
      }
      // The tasks keep their own copies of the verification keys.
      for (config::TaskDefinition& definition : *definitions) config::WipeVerifyKeys(definition);
      if (refused) return std::move(*refused);
      ServerResponse response;
      response.status = 201;
      response.SetBody("text/plain", std::to_string(definitions->size()) + " task(s) added\n");
      return response;
    }
    return MethodNotAllowed("GET, POST");
  }
  if (request.method != "DELETE") return MethodNotAllowed("DELETE");
  auto task_id = DecodeId<32>(rest.substr(1));
  if (!task_id) return Problem(ProblemType::kInvalidMessage, "malformed task ID");
  bool existed = false;
  auto removed = datastore_.Run([&](Transaction& tx) -> Result<void> {
    auto deleted = tx.DeleteTask(*task_id);
    if (!deleted) return std::unexpected(deleted.error());
    existed = *deleted;
    return {};
  });
  if (!removed) return Problem(ProblemType::kInternal, "datastore: " + removed.error().message());
  existed = tasks_.Remove(*task_id) || existed;
  report_cache_.EraseTask(*task_id);
  level_claims_.EraseTask(*task_id);
  if (!existed) return Problem(ProblemType::kUnrecognizedTask, "no such task", &*task_id);
  ServerResponse response;
  response.status = 204;
  return response;
}

}  // namespace canopy::aggregator
