#include "aggregator/upload_writer.h"

#include <utility>

#include "aggregator/internal/opened_report.h"

namespace canopy::aggregator {
namespace {

// Stores one request's reports in `tx`, refusing replays and reports for
// collected batches. A report uploaded again byte for byte is accepted
// again: uploads are idempotent.
Result<void> StoreRequest(Transaction& tx, const UploadWriter::Pending& pending,
                          std::vector<std::optional<dap::ReportError>>& errors) {
  const Task& task = *pending.task;
  errors = pending.errors;
  for (size_t i = 0; i < pending.rows.size(); ++i) {
    if (errors[i]) continue;
    const ClientReportRow& row = pending.rows[i];
    if (!task.leader_selected()) {
      auto collected = tx.IsBucketCollected(task.id, TimeBucketKey(row.time));
      if (!collected) return std::unexpected(collected.error());
      if (*collected) {
        errors[i] = dap::ReportError::kBatchCollected;
        continue;
      }
    }
    auto inserted = tx.InsertClientReport(row);
    if (!inserted) return std::unexpected(inserted.error());
    if (*inserted) continue;
    auto existing = tx.GetClientReport(task.id, row.report_id);
    if (!existing) return std::unexpected(existing.error());
    if (!existing->has_value() || !internal::SameUploadedReport(**existing, row)) {
      errors[i] = dap::ReportError::kReportReplayed;
    }
    if (existing->has_value()) internal::WipeIfOpened(**existing);
  }
  return {};
}

}  // namespace

UploadWriter::UploadWriter(Datastore& datastore)
    : datastore_(datastore), thread_([this] { Loop(); }) {}

UploadWriter::~UploadWriter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void UploadWriter::Submit(Pending pending) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(pending));
  }
  wake_.notify_one();
}

void UploadWriter::Loop() {
  for (;;) {
    std::vector<Pending> batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // Stopping, and nothing left.
      batch.swap(queue_);
    }
    Store(batch);
  }
}

void UploadWriter::Store(std::vector<Pending>& batch) {
  std::vector<std::vector<std::optional<dap::ReportError>>> errors(batch.size());
  auto stored = datastore_.Run([&](Transaction& tx) -> Result<void> {
    for (size_t i = 0; i < batch.size(); ++i) {
      auto one = StoreRequest(tx, batch[i], errors[i]);
      if (!one) return one;
    }
    return {};
  });
  // The rows hold the leader's opened shares: wiped before the requests go.
  for (Pending& pending : batch) {
    for (ClientReportRow& row : pending.rows) internal::WipeIfOpened(row);
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (stored) {
      batch[i].done(std::move(errors[i]));
    } else {
      batch[i].done(std::unexpected(stored.error()));
    }
  }
}

}  // namespace canopy::aggregator
