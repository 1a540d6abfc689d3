#include "dap/upload_client.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "dap/base64url.h"
#include "dap/problem.h"
#include "dap/task.h"

namespace canopy::dap {
namespace {

// At most 200 printable characters of a body, for an error message.
std::string Snippet(std::span<const uint8_t> body) {
  std::string text;
  for (uint8_t byte : body.first(std::min<size_t>(body.size(), 200))) {
    text.push_back(byte >= 0x20 && byte < 0x7f ? static_cast<char>(byte) : '?');
  }
  if (body.size() > 200) text += "...";
  return text;
}

// "HTTP <status>" and, for a problem document, its type and detail, else a
// snippet of the body.
std::string DescribeFailure(const HttpResponse& response) {
  std::string text = "HTTP " + std::to_string(response.status);
  if (MediaTypeMatches(response.content_type, kProblemMediaType)) {
    std::string_view json(reinterpret_cast<const char*>(response.body.data()),
                          response.body.size());
    if (auto problem = ProblemDocument::FromJson(json)) {
      text += ", problem " + ProblemTypeUri(problem->type);
      if (!problem->detail.empty()) text += ": " + problem->detail;
      return text;
    }
  }
  if (!response.body.empty()) text += ": " + Snippet(response.body);
  return text;
}

std::unexpected<Error> WithContext(const Error& error, std::string_view context) {
  return std::unexpected(Error(error.code(), std::string(context) + ": " + error.message()));
}

std::string UrlOf(const std::string& given, const Bytes& endpoint) {
  return given.empty() ? std::string(endpoint.begin(), endpoint.end()) : given;
}

}  // namespace

struct UploadClient::State {
  UploadTask task;
  HttpClient* http = nullptr;
  UploadClientOptions options;
  std::unique_ptr<poplar::Vdaf> vdaf;
  std::string leader_url;
  std::string helper_url;
  std::string reports_url;
  std::optional<UploadTarget> target;

  Result<HpkeConfig> FetchHpkeConfig(const std::string& aggregator_url, std::string_view name);
  // Builds and uploads the reports of `indices`. Rejections are added to
  // `summary`, except hpke_unknown_config_id ones when `unknown_config` is
  // given: those indices go there instead.
  Result<void> UploadBatch(std::span<const size_t> indices,
                           std::span<const poplar::Measurement> measurements, Time time,
                           UploadSummary& summary, std::vector<size_t>* unknown_config);
  // POSTs one UploadRequest; returns the leader's per-report failures.
  Result<std::vector<ReportUploadStatus>> Post(const UploadRequest& request);
};

Result<HpkeConfig> UploadClient::State::FetchHpkeConfig(const std::string& aggregator_url,
                                                        std::string_view name) {
  const std::string url = JoinUrl(aggregator_url, "hpke_config");
  const std::string context = "HPKE configuration of the " + std::string(name) + " (" + url + ")";
  HttpRequest request;
  request.method = HttpMethod::kGet;
  request.url = url;
  request.accept = kHpkeConfigListMediaType;
  request.bearer_token = options.bearer_token;
  auto response = http->Send(request);
  if (!response) return WithContext(response.error(), context);
  if (response->status != 200) {
    return MakeError(ErrorCode::kIoError, context + ": " + DescribeFailure(*response));
  }
  if (!response->content_type.empty() &&
      !MediaTypeMatches(response->content_type, kHpkeConfigListMediaType)) {
    return MakeError(ErrorCode::kDecodeError,
                     context + ": unexpected content type \"" + response->content_type + "\"");
  }
  auto list = Decode<HpkeConfigList>(response->body);
  if (!list) return WithContext(list.error(), context);
  std::set<uint8_t> ids;
  for (const HpkeConfig& config : list->configs) {
    if (!ids.insert(config.id).second) {
      return MakeError(ErrorCode::kDecodeError,
                       context + ": config ID " + std::to_string(config.id) + " appears twice");
    }
  }
  auto chosen = ChooseHpkeConfig(*list);
  if (!chosen) return WithContext(chosen.error(), context);
  return std::move(*chosen);
}

Result<std::vector<ReportUploadStatus>> UploadClient::State::Post(const UploadRequest& request) {
  auto body = Encode(request);
  if (!body) return WithContext(body.error(), "encoding the upload request");
  HttpRequest http_request;
  http_request.method = HttpMethod::kPost;
  http_request.url = reports_url;
  http_request.content_type = kUploadRequestMediaType;
  http_request.body = *body;
  http_request.bearer_token = options.bearer_token;
  auto response = http->Send(http_request);
  if (!response) return std::unexpected(response.error());
  const std::string context = "upload to " + reports_url;
  if (response->status >= 400 && response->status < 500) {
    return MakeError(ErrorCode::kInvalidArgument,
                     context + ": the leader refused the request: " + DescribeFailure(*response));
  }
  if (response->status < 200 || response->status >= 300) {
    return MakeError(ErrorCode::kIoError,
                     context + ": unexpected answer " + DescribeFailure(*response));
  }
  if (response->body.empty()) return std::vector<ReportUploadStatus>{};
  if (!response->content_type.empty() &&
      !MediaTypeMatches(response->content_type, kUploadErrorsMediaType)) {
    return MakeError(ErrorCode::kDecodeError,
                     context + ": unexpected content type \"" + response->content_type + "\"");
  }
  auto errors = Decode<UploadErrors>(response->body);
  if (!errors) return WithContext(errors.error(), context);
  return std::move(errors->statuses);
}

Result<void> UploadClient::State::UploadBatch(std::span<const size_t> indices,
                                              std::span<const poplar::Measurement> measurements,
                                              Time time, UploadSummary& summary,
                                              std::vector<size_t>* unknown_config) {
  if (!target) {
    return MakeError(ErrorCode::kInternal, "upload: no HPKE configurations");
  }
  UploadRequest request;
  request.reports.reserve(indices.size());
  std::map<ReportId, size_t> index_of;
  for (size_t index : indices) {
    auto report = BuildReport(*target, *vdaf, measurements[index], time);
    if (!report) {
      return WithContext(report.error(), "measurement #" + std::to_string(index));
    }
    if (!index_of.emplace(report->metadata.report_id, index).second) {
      return MakeError(ErrorCode::kInternal, "upload: a report ID repeated within a request");
    }
    request.reports.push_back(std::move(*report));
  }
  auto failures = Post(request);
  ++summary.requests;
  if (!failures) return std::unexpected(failures.error());
  std::set<ReportId> seen;
  for (const ReportUploadStatus& status : *failures) {
    auto it = index_of.find(status.report_id);
    if (it == index_of.end() || !seen.insert(status.report_id).second) {
      return MakeError(ErrorCode::kDecodeError,
                       "upload to " + reports_url + ": the leader's upload-errors names report " +
                           Base64UrlEncode(status.report_id) +
                           (it == index_of.end() ? ", which was not in the request" : " twice"));
    }
  }
  for (const ReportUploadStatus& status : *failures) {
    const size_t index = index_of.at(status.report_id);
    if (status.error == ReportError::kHpkeUnknownConfigId && unknown_config != nullptr) {
      unknown_config->push_back(index);
    } else {
      summary.rejected.push_back({index, status.report_id, status.error});
    }
  }
  summary.accepted += indices.size() - failures->size();
  return {};
}

UploadClient::UploadClient(std::unique_ptr<State> state) : state_(std::move(state)) {}
UploadClient::UploadClient(UploadClient&&) noexcept = default;
UploadClient& UploadClient::operator=(UploadClient&&) noexcept = default;
UploadClient::~UploadClient() = default;

Result<UploadClient> UploadClient::Create(UploadTask task, HttpClient& http,
                                          UploadClientOptions options) {
  if (options.reports_per_request == 0) {
    return MakeError(ErrorCode::kInvalidArgument, "upload: reports_per_request must be positive");
  }
  auto state = std::make_unique<State>();
  state->leader_url = UrlOf(task.leader_url, task.task_configuration.leader_aggregator_endpoint);
  state->helper_url = UrlOf(task.helper_url, task.task_configuration.helper_aggregator_endpoint);
  for (const std::string* url : {&state->leader_url, &state->helper_url}) {
    auto parsed = HttpUrl::Parse(*url);
    if (!parsed) {
      return WithContext(parsed.error(), url == &state->leader_url ? "leader URL" : "helper URL");
    }
  }
  auto vdaf =
      MakeVdaf(task.task_configuration.vdaf_type, task.task_configuration.vdaf_configuration);
  if (!vdaf) return WithContext(vdaf.error(), "task VDAF");
  state->vdaf = std::move(*vdaf);
  state->reports_url =
      JoinUrl(state->leader_url, "tasks/" + Base64UrlEncode(task.task_id) + "/reports");
  state->task = std::move(task);
  state->http = &http;
  state->options = std::move(options);
  return UploadClient(std::move(state));
}

Result<void> UploadClient::RefreshHpkeConfigs() {
  auto leader = state_->FetchHpkeConfig(state_->leader_url, "leader");
  if (!leader) return std::unexpected(leader.error());
  auto helper = state_->FetchHpkeConfig(state_->helper_url, "helper");
  if (!helper) return std::unexpected(helper.error());
  UploadTarget target;
  target.task_id = state_->task.task_id;
  target.task_configuration = state_->task.task_configuration;
  target.leader_hpke_config = std::move(*leader);
  target.helper_hpke_config = std::move(*helper);
  state_->target = std::move(target);
  return {};
}

Result<UploadTarget> UploadClient::Target() {
  if (!state_->target) {
    if (auto refreshed = RefreshHpkeConfigs(); !refreshed) {
      return std::unexpected(refreshed.error());
    }
  }
  return *state_->target;
}

Result<Report> UploadClient::MakeReport(const poplar::Measurement& measurement, Time time) {
  if (!state_->target) {
    if (auto refreshed = RefreshHpkeConfigs(); !refreshed) {
      return std::unexpected(refreshed.error());
    }
  }
  return BuildReport(*state_->target, *state_->vdaf, measurement, time);
}

Result<UploadSummary> UploadClient::Upload(std::span<const poplar::Measurement> measurements,
                                           Time time) {
  UploadSummary summary;
  auto fail = [&summary](const Error& error) -> std::unexpected<Error> {
    if (summary.requests == 0) return std::unexpected(error);
    return std::unexpected(
        Error(error.code(), error.message() + " (" + std::to_string(summary.accepted) +
                                " reports were accepted by " + std::to_string(summary.requests) +
                                " earlier requests)"));
  };
  if (measurements.empty()) return summary;
  if (!state_->target) {
    if (auto refreshed = RefreshHpkeConfigs(); !refreshed) return fail(refreshed.error());
  }
  const size_t chunk = state_->options.reports_per_request;
  std::vector<size_t> indices;
  for (size_t start = 0; start < measurements.size(); start += chunk) {
    const size_t end = std::min(measurements.size(), start + chunk);
    indices.clear();
    for (size_t i = start; i < end; ++i) indices.push_back(i);
    std::vector<size_t> unknown_config;
    auto uploaded = state_->UploadBatch(indices, measurements, time, summary,
                                        summary.refetched_hpke_configs ? nullptr : &unknown_config);
    if (!uploaded) return fail(uploaded.error());
    if (unknown_config.empty()) continue;
    // DAP-19 section 4.4.2: refetch the configurations and retry once with
    // new reports.
    summary.refetched_hpke_configs = true;
    if (auto refreshed = RefreshHpkeConfigs(); !refreshed) return fail(refreshed.error());
    auto retried = state_->UploadBatch(unknown_config, measurements, time, summary, nullptr);
    if (!retried) return fail(retried.error());
  }
  std::stable_sort(summary.rejected.begin(), summary.rejected.end(),
                   [](const RejectedReport& a, const RejectedReport& b) {
                     return a.measurement_index < b.measurement_index;
                   });
  return summary;
}

const UploadTask& UploadClient::task() const { return state_->task; }

}  // namespace canopy::dap
