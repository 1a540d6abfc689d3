// The leader's upload endpoint (DAP-19, "Uploading Reports"): checks each
// report, opens the leader's input share, stores the good ones (with that
// share opened) and answers the others' errors.
#include <future>
#include <utility>
#include <variant>

#include "aggregator/internal/common.h"
#include "aggregator/internal/opened_report.h"
#include "aggregator/service.h"
#include "crypto/secure_wipe.h"
#include "dap/base64url.h"
#include "dap/http_client.h"

namespace canopy::aggregator {

using dap::ProblemType;
using dap::ReportError;
using internal::Problem;

void AggregatorService::UploadAsync(std::shared_ptr<const Task> task_pointer,
                                    const ServerRequest& request, Responder respond) {
  const Task& task = *task_pointer;
  if (!internal::HasMediaType(request, "upload-req")) {
    respond(internal::WrongMediaType("upload-req", task.id));
    return;
  }
  std::vector<dap::Report> reports;
  dap::Reader reader(request.body);
  while (!reader.empty()) {
    dap::Report report;
    if (!dap::Read(reader, report)) {
      respond(Problem(ProblemType::kInvalidMessage,
                      "report " + std::to_string(reports.size()) + ": " + reader.error(),
                      &task.id));
      return;
    }
    reports.push_back(std::move(report));
  }
  const uint64_t now = Now();
  std::vector<const dap::AggregatorHpkeKey*> keys;
  for (const auto& key : hpke_keys_) keys.push_back(&key);

  // Checks that need no datastore; the writer does the rest.
  std::vector<std::optional<ReportError>> errors(reports.size());
  std::vector<ClientReportRow> rows(reports.size());
  std::vector<dap::ReportId> ids(reports.size());
  for (size_t i = 0; i < reports.size(); ++i) {
    const dap::Report& report = reports[i];
    ids[i] = report.metadata.report_id;
    if (auto time_error = dap::CheckReportTime(task.configuration, task.rules, report.metadata.time,
                                               now, options_.tolerable_clock_skew_seconds)) {
      errors[i] = *time_error;
      continue;
    }
    if (!dap::ExtensionsStrictlyIncreasing(report.metadata.public_extensions)) {
      errors[i] = ReportError::kInvalidMessage;
      continue;
    }
    if (!report.metadata.public_extensions.empty()) {
      errors[i] = ReportError::kUnsupportedExtension;
      continue;
    }
    // The leader's share is opened now, once, rather than at the report's
    // first aggregation (DAP-19 allows either): the walk's first round then
    // does no HPKE, and a report that cannot be opened is refused to its
    // client instead of failing later.
    auto opened = internal::OpenInputSharePayload(
        task.id, task.configuration, report.metadata, report.public_share,
        report.leader_encrypted_input_share, dap::Role::kLeader, keys);
    if (auto* error = std::get_if<ReportError>(&opened)) {
      errors[i] = *error;
      continue;
    }
    Bytes& payload = std::get<Bytes>(opened);
    Result<Bytes> stored = internal::EncodeOpenedReport(report, payload);
    crypto::SecureWipeVector(payload);
    if (!stored) {
      errors[i] = ReportError::kInvalidMessage;
      continue;
    }
    metrics_.InputShareOpened();
    rows[i].task_id = task.id;
    rows[i].report_id = report.metadata.report_id;
    rows[i].time = report.metadata.time;
    rows[i].encoded_report = std::move(*stored);
    rows[i].form = StoredReportForm::kLeaderShareOpened;
  }

  UploadWriter::Pending pending;
  pending.task = std::move(task_pointer);
  pending.rows = std::move(rows);
  pending.errors = std::move(errors);
  pending.done = [this, task_id = pending.task->id, ids = std::move(ids),
                  respond =
                      std::move(respond)](Result<std::vector<std::optional<ReportError>>> stored) {
    if (!stored) {
      respond(Problem(ProblemType::kInternal, "datastore: " + stored.error().message(), &task_id));
      return;
    }
    dap::UploadErrors upload_errors;
    for (size_t i = 0; i < stored->size(); ++i) {
      if ((*stored)[i]) {
        upload_errors.statuses.push_back({ids[i], *(*stored)[i]});
        metrics_.ReportRejected(*(*stored)[i]);
      } else {
        metrics_.ReportUploaded();
      }
    }
    ServerResponse response;
    response.status = 200;
    if (!upload_errors.statuses.empty()) {
      auto encoded = dap::Encode(upload_errors);
      if (!encoded) {
        respond(Problem(ProblemType::kInternal, "cannot encode upload errors", &task_id));
        return;
      }
      response.SetBody(internal::DapMediaType("upload-errors"), std::move(*encoded));
    }
    respond(std::move(response));
  };
  upload_writer_->Submit(std::move(pending));
}

ServerResponse AggregatorService::Upload(const Task& task, const ServerRequest& request) {
  std::promise<ServerResponse> answer;
  std::future<ServerResponse> answered = answer.get_future();
  UploadAsync(tasks_.Find(task.id), request,
              [&answer](ServerResponse response) { answer.set_value(std::move(response)); });
  return answered.get();
}

std::shared_ptr<const Task> AggregatorService::UploadTask(const ServerRequest& request) const {
  if (options_.role != dap::Role::kLeader || request.method != "POST") return nullptr;
  std::string_view path = request.path;
  constexpr std::string_view kSuffix = "/reports";
  constexpr std::string_view kTasks = "/tasks/";
  size_t tasks = path.find(kTasks);
  if (!path.ends_with(kSuffix) || tasks == std::string_view::npos) return nullptr;
  std::string_view id = path.substr(tasks + kTasks.size());
  id.remove_suffix(kSuffix.size());
  auto bytes = dap::Base64UrlDecode(id);
  if (!bytes || bytes->size() != 32) return nullptr;
  dap::TaskId task_id;
  std::copy(bytes->begin(), bytes->end(), task_id.begin());
  return tasks_.Find(task_id);
}

}  // namespace canopy::aggregator
