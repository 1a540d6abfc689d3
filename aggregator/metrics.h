// Counters the aggregator exports at /metrics in the Prometheus text format:
// reports uploaded and rejected (by DAP report error), aggregation and
// collection jobs by what happened to them, verification time, and HTTP
// responses by status class. Safe to update from any thread.
#ifndef CANOPY_AGGREGATOR_METRICS_H_
#define CANOPY_AGGREGATOR_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "dap/messages.h"

namespace canopy::aggregator {

class Metrics {
 public:
  enum class JobEvent { kCreated = 0, kFinished, kAbandoned, kStepped, kCount };

  void ReportUploaded() { uploaded_.fetch_add(1, std::memory_order_relaxed); }
  // An input share decrypted (HPKE opened). With multi-level collection this
  // happens once per report per walk, not once per level.
  void InputShareOpened() { opened_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t input_shares_opened() const { return opened_.load(); }
  void ReportRejected(dap::ReportError error);
  void AggregationJob(JobEvent event);
  void CollectionJob(JobEvent event);
  // One report verified (one VDAF step of one report), taking `seconds`.
  void Verified(double seconds);
  void Response(int status);
  // Helper: one request from the leader (aggregation jobs, aggregate shares)
  // and its answer, by body size: the traffic between the aggregators.
  void PeerExchange(uint64_t request_bytes, uint64_t response_bytes) {
    peer_requests_.fetch_add(1, std::memory_order_relaxed);
    peer_request_bytes_.fetch_add(request_bytes, std::memory_order_relaxed);
    peer_response_bytes_.fetch_add(response_bytes, std::memory_order_relaxed);
  }

  // The Prometheus text exposition of every counter.
  std::string Render() const;

 private:
  static constexpr size_t kReportErrors = 11;  // ReportError values 1..10.
  static constexpr size_t kEvents = static_cast<size_t>(JobEvent::kCount);
  std::atomic<uint64_t> uploaded_{0};
  std::atomic<uint64_t> opened_{0};
  std::array<std::atomic<uint64_t>, kReportErrors> rejected_{};
  std::array<std::atomic<uint64_t>, kEvents> aggregation_jobs_{};
  std::array<std::atomic<uint64_t>, kEvents> collection_jobs_{};
  std::atomic<uint64_t> peer_requests_{0};
  std::atomic<uint64_t> peer_request_bytes_{0};
  std::atomic<uint64_t> peer_response_bytes_{0};
  std::atomic<uint64_t> verified_{0};
  std::atomic<uint64_t> verify_nanoseconds_{0};
  std::array<std::atomic<uint64_t>, 6> responses_{};  // By status / 100.
};

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_METRICS_H_
