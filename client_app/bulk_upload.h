// Uploading many reports to one task fast: several threads, each with its own
// dap::UploadClient over one shared HTTP connection pool, take chunks of
// reports_per_request measurements in turn, build their reports and POST
// each chunk as one request. Reports are built chunk by chunk, so memory
// holds at most threads * reports_per_request reports whatever the total.
#ifndef CANOPY_CLIENT_APP_BULK_UPLOAD_H_
#define CANOPY_CLIENT_APP_BULK_UPLOAD_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "crypto/error.h"
#include "dap/http_client.h"
#include "dap/messages.h"
#include "dap/upload_client.h"
#include "poplar/vdaf.h"

namespace canopy::client {

// 500 Poplar1 reports of BITS = 256 (about 16.4 KB each) make an 8 MB
// request, well under an aggregator's default 32 MiB body limit, and enough
// reports per request that the leader's per-request cost stays small.
inline constexpr size_t kDefaultReportsPerRequest = 500;

// Where an upload stands; given to the progress callback.
struct BulkProgress {
  uint64_t total = 0;     // Reports to upload.
  uint64_t sent = 0;      // Reports whose request the leader answered.
  uint64_t accepted = 0;  // Of those sent.
  uint64_t refused = 0;   // Of those sent.
  std::chrono::steady_clock::duration elapsed{};
};

struct BulkUploadOptions {
  // Upload threads (each builds its reports); 0 means one per hardware
  // thread. Never more than the number of requests.
  size_t threads = 0;
  size_t reports_per_request = kDefaultReportsPerRequest;
  // Sent as a bearer token to both aggregators when not empty.
  std::string bearer_token;
  // The reports' time in POSIX seconds, rounded down to the task's
  // time_precision; the current time when unset.
  std::optional<uint64_t> time_seconds;
  // Called on the calling thread every progress_interval while the upload
  // runs, and once at the end.
  std::function<void(const BulkProgress&)> on_progress;
  std::chrono::milliseconds progress_interval{250};
  // The HTTP client's settings; max_idle_connections_per_host is raised to
  // the thread count.
  dap::HttpClientOptions http;
};

// What a bulk upload achieved.
struct BulkUploadSummary {
  uint64_t total = 0;     // Reports to upload.
  uint64_t accepted = 0;  // Acknowledged by the leader.
  uint64_t refused = 0;   // Refused by the leader, report by report.
  std::map<dap::ReportError, uint64_t> refused_by_reason;
  // Every refused report, by measurement index (into the whole upload).
  std::vector<dap::RejectedReport> refused_reports;
  uint64_t requests = 0;  // POSTs answered.
  bool refetched_hpke_configs = false;
  std::chrono::steady_clock::duration elapsed{};
  // Set when the upload stopped early: the first request that failed (the
  // HTTP client's error, a request the leader refused as a whole, a
  // measurement the VDAF refused). Reports not yet answered then are neither
  // accepted nor refused.
  std::optional<Error> failure;

  // Reports neither accepted nor refused (only after a failure).
  uint64_t unanswered() const { return total - accepted - refused; }
  // True when every report was accepted.
  bool all_accepted() const { return !failure && accepted == total; }
};

// Measurement `index` of an upload. Called from several threads at once, for
// distinct indices; must be safe for that.
using MeasurementSource = std::function<poplar::Measurement(size_t index)>;

// Uploads `count` measurements, taken from `source`, to `task` (whose
// leader_url and helper_url, when set, replace the task configuration's
// endpoints). First fetches the aggregators' HPKE configurations once per
// thread. Errors, before any report is sent: kInvalidArgument for
// reports_per_request of 0, and the errors of dap::HttpClient::Create,
// dap::UploadClient::Create and dap::UploadClient::RefreshHpkeConfigs (a
// bad URL, an unknown VDAF, an aggregator that does not answer). Failures
// after the first request are in BulkUploadSummary::failure.
Result<BulkUploadSummary> BulkUpload(const dap::UploadTask& task, size_t count,
                                     const MeasurementSource& source,
                                     const BulkUploadOptions& options);

// The same for measurements in memory.
Result<BulkUploadSummary> BulkUpload(const dap::UploadTask& task,
                                     std::span<const poplar::Measurement> measurements,
                                     const BulkUploadOptions& options);

// "accepted 998 of 1000 reports in 2.1 s (476/s); refused: 2 report_replayed"
// and, after a failure, what stopped the upload. One line per fact, each
// ending in a newline.
std::string DescribeSummary(const BulkUploadSummary& summary);

}  // namespace canopy::client

#endif  // CANOPY_CLIENT_APP_BULK_UPLOAD_H_
