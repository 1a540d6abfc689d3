// The leader's upload endpoint (DAP-19, "Uploading Reports"): checks each
// report, stores the good ones and answers the others' errors.
#include <algorithm>
#include <utility>

#include "aggregator/internal/common.h"
#include "aggregator/service.h"
#include "dap/http_client.h"

namespace canopy::aggregator {

using dap::ProblemType;
using dap::ReportError;
using internal::Problem;

ServerResponse AggregatorService::Upload(const Task& task, const ServerRequest& request) {
  if (!internal::HasMediaType(request, "upload-req"))
    return internal::WrongMediaType("upload-req", task.id);
  auto upload = dap::Decode<dap::UploadRequest>(request.body);
  if (!upload) return Problem(ProblemType::kInvalidMessage, upload.error().message(), &task.id);
  const uint64_t now = Now();

  // Checks that need no datastore.
  std::vector<std::optional<ReportError>> errors(upload->reports.size());
  std::vector<ClientReportRow> rows(upload->reports.size());
  for (size_t i = 0; i < upload->reports.size(); ++i) {
    const dap::Report& report = upload->reports[i];
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
    const uint8_t config_id = report.leader_encrypted_input_share.config_id;
    bool known =
        std::any_of(hpke_keys_.begin(), hpke_keys_.end(),
                    [&](const dap::AggregatorHpkeKey& key) { return key.config.id == config_id; });
    if (!known) {
      errors[i] = ReportError::kHpkeUnknownConfigId;
      continue;
    }
    auto encoded = dap::Encode(report);
    if (!encoded) {
      errors[i] = ReportError::kInvalidMessage;
      continue;
    }
    rows[i] = {task.id, report.metadata.report_id, report.metadata.time, std::move(*encoded), {}};
  }

  // Store, refusing replays and reports for collected batches. A report
  // uploaded again byte for byte is accepted again: uploads are idempotent.
  std::vector<std::optional<ReportError>> stored_errors;
  auto stored = datastore_.Run([&](Transaction& tx) -> Result<void> {
    stored_errors = errors;
    for (size_t i = 0; i < rows.size(); ++i) {
      if (stored_errors[i]) continue;
      if (!task.leader_selected()) {
        auto collected = tx.IsBucketCollected(task.id, TimeBucketKey(rows[i].time));
        if (!collected) return std::unexpected(collected.error());
        if (*collected) {
          stored_errors[i] = ReportError::kBatchCollected;
          continue;
        }
      }
      auto inserted = tx.InsertClientReport(rows[i]);
      if (!inserted) return std::unexpected(inserted.error());
      if (*inserted) continue;
      auto existing = tx.GetClientReport(task.id, rows[i].report_id);
      if (!existing) return std::unexpected(existing.error());
      if (!existing->has_value() || (*existing)->encoded_report != rows[i].encoded_report) {
        stored_errors[i] = ReportError::kReportReplayed;
      }
    }
    return {};
  });
  if (!stored) {
    return Problem(ProblemType::kInternal, "datastore: " + stored.error().message(), &task.id);
  }
  dap::UploadErrors upload_errors;
  for (size_t i = 0; i < stored_errors.size(); ++i) {
    if (stored_errors[i]) {
      upload_errors.statuses.push_back({upload->reports[i].metadata.report_id, *stored_errors[i]});
      metrics_.ReportRejected(*stored_errors[i]);
    } else {
      metrics_.ReportUploaded();
    }
  }
  ServerResponse response;
  response.status = 200;
  if (!upload_errors.statuses.empty()) {
    auto encoded = dap::Encode(upload_errors);
    if (!encoded) return Problem(ProblemType::kInternal, "cannot encode upload errors", &task.id);
    response.SetBody(internal::DapMediaType("upload-errors"), std::move(*encoded));
  }
  return response;
}

}  // namespace canopy::aggregator
