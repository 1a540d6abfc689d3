#include "client_app/bulk_upload.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <thread>
#include <utility>

namespace canopy::client {
namespace {

// What the workers share.
struct SharedState {
  size_t count = 0;
  size_t chunk = 0;
  dap::Time time = 0;
  const MeasurementSource* source = nullptr;

  std::atomic<size_t> next_chunk{0};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> refused{0};

  std::mutex mutex;  // Guards what follows.
  std::condition_variable finished;
  size_t running = 0;
  BulkUploadSummary summary;
};

void Work(dap::UploadClient& client, SharedState& shared) {
  std::vector<poplar::Measurement> measurements;
  while (!shared.stop.load(std::memory_order_relaxed)) {
    const size_t start = shared.next_chunk.fetch_add(1) * shared.chunk;
    if (start >= shared.count) break;
    const size_t end = std::min(shared.count, start + shared.chunk);
    measurements.clear();
    for (size_t i = start; i < end; ++i) measurements.push_back((*shared.source)(i));
    auto uploaded = client.Upload(measurements, shared.time);
    std::lock_guard lock(shared.mutex);
    if (!uploaded) {
      if (!shared.summary.failure) {
        shared.summary.failure =
            Error(uploaded.error().code(), "reports " + std::to_string(start) + " to " +
                                               std::to_string(end - 1) + ": " +
                                               uploaded.error().message());
      }
      shared.stop = true;
      break;
    }
    BulkUploadSummary& summary = shared.summary;
    summary.accepted += uploaded->accepted;
    summary.requests += uploaded->requests;
    summary.refetched_hpke_configs |= uploaded->refetched_hpke_configs;
    for (dap::RejectedReport rejected : uploaded->rejected) {
      rejected.measurement_index += start;
      ++summary.refused_by_reason[rejected.error];
      summary.refused_reports.push_back(rejected);
    }
    summary.refused += uploaded->rejected.size();
    shared.accepted += uploaded->accepted;
    shared.refused += uploaded->rejected.size();
    shared.sent += uploaded->accepted + uploaded->rejected.size();
  }
  std::lock_guard lock(shared.mutex);
  --shared.running;
  shared.finished.notify_all();
}

uint64_t NowSeconds() { return static_cast<uint64_t>(std::time(nullptr)); }

std::string FormatSeconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1f s", seconds);
  return text;
}

}  // namespace

Result<BulkUploadSummary> BulkUpload(const dap::UploadTask& task, size_t count,
                                     const MeasurementSource& source,
                                     const BulkUploadOptions& options) {
  if (options.reports_per_request == 0) {
    return MakeError(ErrorCode::kInvalidArgument, "upload: reports per request must be positive");
  }
  if (task.task_configuration.time_precision == 0) {
    return MakeError(ErrorCode::kInvalidArgument, "upload: the task's time precision is 0");
  }
  const size_t requests = (count + options.reports_per_request - 1) / options.reports_per_request;
  size_t threads = options.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  threads = std::max<size_t>(1, std::min(threads, requests));

  dap::HttpClientOptions http_options = options.http;
  http_options.max_idle_connections_per_host =
      std::max(http_options.max_idle_connections_per_host, threads);
  auto http = dap::HttpClient::Create(http_options);
  if (!http) return std::unexpected(http.error());

  dap::UploadClientOptions client_options;
  client_options.reports_per_request = options.reports_per_request;
  client_options.bearer_token = options.bearer_token;
  std::vector<dap::UploadClient> clients;
  for (size_t i = 0; i < threads; ++i) {
    auto client = dap::UploadClient::Create(task, *http, client_options);
    if (!client) return std::unexpected(client.error());
    // Fetched here, one thread after another, so that an unreachable
    // aggregator is reported once, before anything is sent.
    if (auto fetched = client->RefreshHpkeConfigs(); !fetched) {
      return std::unexpected(fetched.error());
    }
    clients.push_back(std::move(*client));
  }

  SharedState shared;
  shared.count = count;
  shared.chunk = options.reports_per_request;
  shared.time =
      options.time_seconds.value_or(NowSeconds()) / task.task_configuration.time_precision;
  shared.source = &source;
  shared.summary.total = count;
  shared.running = threads;

  const auto started = std::chrono::steady_clock::now();
  auto progress = [&] {
    BulkProgress now;
    now.total = count;
    now.sent = shared.sent.load();
    now.accepted = shared.accepted.load();
    now.refused = shared.refused.load();
    now.elapsed = std::chrono::steady_clock::now() - started;
    return now;
  };
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (dap::UploadClient& client : clients) {
    workers.emplace_back([&client, &shared] { Work(client, shared); });
  }
  {
    std::unique_lock lock(shared.mutex);
    while (shared.running > 0) {
      shared.finished.wait_for(lock, options.progress_interval);
      if (options.on_progress && shared.running > 0) {
        lock.unlock();
        options.on_progress(progress());
        lock.lock();
      }
    }
  }
  for (std::thread& worker : workers) worker.join();
  if (options.on_progress) options.on_progress(progress());

  BulkUploadSummary summary = std::move(shared.summary);
  summary.elapsed = std::chrono::steady_clock::now() - started;
  std::sort(summary.refused_reports.begin(), summary.refused_reports.end(),
            [](const dap::RejectedReport& a, const dap::RejectedReport& b) {
              return a.measurement_index < b.measurement_index;
            });
  return summary;
}

Result<BulkUploadSummary> BulkUpload(const dap::UploadTask& task,
                                     std::span<const poplar::Measurement> measurements,
                                     const BulkUploadOptions& options) {
  const MeasurementSource source = [measurements](size_t index) { return measurements[index]; };
  return BulkUpload(task, measurements.size(), source, options);
}

std::string DescribeSummary(const BulkUploadSummary& summary) {
  const double seconds = std::chrono::duration<double>(summary.elapsed).count();
  // Sent: the leader answered for them (the reports of a request that
  // failed are counted below, as not acknowledged).
  const uint64_t sent = summary.accepted + summary.refused;
  std::string text = "sent " + std::to_string(sent) + " of " + std::to_string(summary.total) +
                     " reports in " + FormatSeconds(seconds);
  if (seconds > 0 && sent > 0) {
    text += " (" + std::to_string(static_cast<uint64_t>(sent / seconds)) + " reports/s, " +
            std::to_string(summary.requests) + (summary.requests == 1 ? " request)" : " requests)");
  }
  text += ": " + std::to_string(summary.accepted) + " accepted, " +
          std::to_string(summary.refused) + " refused\n";
  if (summary.refused > 0) {
    text += "refused " + std::to_string(summary.refused) + ":";
    for (const auto& [reason, count] : summary.refused_by_reason) {
      // Appended piece by piece: g++ 12 warns (-Wrestrict) about " " + string.
      text += ' ';
      text += std::to_string(count);
      text += ' ';
      text += dap::ReportErrorName(reason);
    }
    text += "\n";
  }
  if (summary.failure) {
    text += "stopped: " + summary.failure->message() + "\n";
    text += std::to_string(summary.unanswered()) + " reports were not acknowledged\n";
  }
  return text;
}

}  // namespace canopy::client
