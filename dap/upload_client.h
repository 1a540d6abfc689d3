// The client's side of DAP-19 upload (section 4.4): fetch each aggregator's
// HPKE configuration, build reports, and POST them in bulk to the leader.
#ifndef CANOPY_DAP_UPLOAD_CLIENT_H_
#define CANOPY_DAP_UPLOAD_CLIENT_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/error.h"
#include "dap/http_client.h"
#include "dap/messages.h"
#include "dap/report.h"
#include "poplar/vdaf.h"

namespace canopy::dap {

// The DAP media types of the upload path.
inline constexpr std::string_view kHpkeConfigListMediaType =
    "application/ppm-dap;message=hpke-config-list";
inline constexpr std::string_view kUploadRequestMediaType =
    "application/ppm-dap;message=upload-req";
inline constexpr std::string_view kUploadErrorsMediaType =
    "application/ppm-dap;message=upload-errors";

// The task a client uploads to.
struct UploadTask {
  TaskId task_id{};
  TaskConfiguration task_configuration;
  // Base URLs ("http://host:port/prefix"). When empty, the task
  // configuration's endpoint is used.
  std::string leader_url;
  std::string helper_url;
};

struct UploadClientOptions {
  // Reports per POST (at least 1).
  size_t reports_per_request = 1000;
  // Sent as "Authorization: Bearer <token>" to both aggregators when set
  // (DAP does not require clients to authenticate).
  std::string bearer_token;
};

// A report the leader refused.
struct RejectedReport {
  size_t measurement_index = 0;  // Into the measurements given to Upload.
  ReportId report_id{};
  ReportError error = ReportError::kInvalidMessage;
  friend bool operator==(const RejectedReport&, const RejectedReport&) = default;
};

// What an upload achieved.
struct UploadSummary {
  size_t accepted = 0;
  std::vector<RejectedReport> rejected;  // In measurement order.
  size_t requests = 0;                   // POSTs sent.
  bool refetched_hpke_configs = false;   // After hpke_unknown_config_id.
};

// Uploads measurements for one task. Not safe for concurrent use; the
// HttpClient it is given must outlive it (it may be shared).
class UploadClient {
 public:
  // Errors: kInvalidArgument for a bad leader or helper URL or
  // reports_per_request of 0; kUnsupported for an https URL; the VDAF's
  // errors (MakeVdaf) for a task configuration naming no VDAF Canopy builds.
  static Result<UploadClient> Create(UploadTask task, HttpClient& http,
                                     UploadClientOptions options = {});

  UploadClient(UploadClient&&) noexcept;
  UploadClient& operator=(UploadClient&&) noexcept;
  ~UploadClient();

  // Fetches both aggregators' HPKE configuration lists again (GET
  // {aggregator}/hpke_config) and chooses one of each. Errors: the HTTP
  // client's (kIoError, ...); kIoError for an answer other than 200 (the
  // problem document's type and detail when there is one); kDecodeError for
  // a body that is not an HpkeConfigList or has repeated IDs; kUnsupported
  // when no configuration has a supported suite. Each names the aggregator.
  Result<void> RefreshHpkeConfigs();

  // The report target, fetching the configurations on first use. Errors: as
  // RefreshHpkeConfigs.
  Result<UploadTarget> Target();

  // Builds one report for `measurement` at `time` (in time_precision units).
  // Errors: as Target, then BuildReport's.
  Result<Report> MakeReport(const poplar::Measurement& measurement, Time time);

  // Builds a report for each measurement, all at `time`, and uploads them to
  // the leader, reports_per_request at a time. When the leader answers
  // hpke_unknown_config_id, refetches the configurations once per call and
  // uploads those reports again, rebuilt with new report IDs; reports still
  // refused are listed as rejected. Errors (when one occurs, earlier
  // requests may already have been accepted; the message says how many):
  //   a measurement the VDAF refuses (the VDAF's error, naming its index);
  //   the HTTP client's errors, kIoError for a final 5xx;
  //   kInvalidArgument when the leader refuses a request (4xx): the problem
  //     document's type and detail, or the status;
  //   kDecodeError for a 2xx body that is not an UploadErrors or names a
  //     report not in the request.
  Result<UploadSummary> Upload(std::span<const poplar::Measurement> measurements, Time time);

  const UploadTask& task() const;

 private:
  struct State;
  explicit UploadClient(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace canopy::dap

#endif  // CANOPY_DAP_UPLOAD_CLIENT_H_
