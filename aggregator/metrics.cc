#include "aggregator/metrics.h"

#include <sstream>
#include <string_view>

namespace canopy::aggregator {
namespace {

std::string_view EventName(size_t event) {
  static constexpr std::string_view kNames[] = {"created", "finished", "abandoned", "stepped"};
  return kNames[event];
}

}  // namespace

void Metrics::ReportRejected(dap::ReportError error) {
  size_t index = static_cast<size_t>(error);
  if (index < kReportErrors) rejected_[index].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::AggregationJob(JobEvent event) {
  aggregation_jobs_[static_cast<size_t>(event)].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::CollectionJob(JobEvent event) {
  collection_jobs_[static_cast<size_t>(event)].fetch_add(1, std::memory_order_relaxed);
}

void Metrics::Verified(double seconds) {
  verified_.fetch_add(1, std::memory_order_relaxed);
  verify_nanoseconds_.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
}

void Metrics::Response(int status) {
  size_t index = static_cast<size_t>(status / 100);
  if (index < responses_.size()) responses_[index].fetch_add(1, std::memory_order_relaxed);
}

std::string Metrics::Render() const {
  std::ostringstream out;
  out << "# HELP canopy_reports_uploaded_total Reports accepted at upload.\n"
      << "# TYPE canopy_reports_uploaded_total counter\n"
      << "canopy_reports_uploaded_total " << uploaded_.load() << "\n";
  out << "# HELP canopy_input_shares_opened_total Input shares decrypted (HPKE).\n"
      << "# TYPE canopy_input_shares_opened_total counter\n"
      << "canopy_input_shares_opened_total " << opened_.load() << "\n";
  out << "# HELP canopy_reports_rejected_total Reports refused, by DAP report error.\n"
      << "# TYPE canopy_reports_rejected_total counter\n";
  for (size_t i = 1; i < kReportErrors; ++i) {
    out << "canopy_reports_rejected_total{reason=\""
        << dap::ReportErrorName(static_cast<dap::ReportError>(i)) << "\"} " << rejected_[i].load()
        << "\n";
  }
  out << "# HELP canopy_aggregation_jobs_total Aggregation jobs, by event.\n"
      << "# TYPE canopy_aggregation_jobs_total counter\n";
  for (size_t i = 0; i < kEvents; ++i) {
    out << "canopy_aggregation_jobs_total{event=\"" << EventName(i) << "\"} "
        << aggregation_jobs_[i].load() << "\n";
  }
  out << "# HELP canopy_collection_jobs_total Collection jobs, by event.\n"
      << "# TYPE canopy_collection_jobs_total counter\n";
  for (size_t i = 0; i < kEvents; ++i) {
    out << "canopy_collection_jobs_total{event=\"" << EventName(i) << "\"} "
        << collection_jobs_[i].load() << "\n";
  }
  out << "# HELP canopy_verification_seconds Time spent verifying reports (VDAF steps).\n"
      << "# TYPE canopy_verification_seconds summary\n"
      << "canopy_verification_seconds_sum " << static_cast<double>(verify_nanoseconds_.load()) / 1e9
      << "\n"
      << "canopy_verification_seconds_count " << verified_.load() << "\n";
  out << "# HELP canopy_peer_requests_total Requests from the leader (helper only).\n"
      << "# TYPE canopy_peer_requests_total counter\n"
      << "canopy_peer_requests_total " << peer_requests_.load() << "\n";
  out << "# HELP canopy_peer_request_bytes_total Body bytes received from the leader.\n"
      << "# TYPE canopy_peer_request_bytes_total counter\n"
      << "canopy_peer_request_bytes_total " << peer_request_bytes_.load() << "\n";
  out << "# HELP canopy_peer_response_bytes_total Body bytes sent to the leader.\n"
      << "# TYPE canopy_peer_response_bytes_total counter\n"
      << "canopy_peer_response_bytes_total " << peer_response_bytes_.load() << "\n";
  out << "# HELP canopy_http_responses_total HTTP responses, by status class.\n"
      << "# TYPE canopy_http_responses_total counter\n";
  for (size_t i = 1; i < responses_.size(); ++i) {
    out << "canopy_http_responses_total{class=\"" << i << "xx\"} " << responses_[i].load() << "\n";
  }
  return out.str();
}

}  // namespace canopy::aggregator
