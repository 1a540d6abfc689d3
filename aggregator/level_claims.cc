#include "aggregator/level_claims.h"

#include <algorithm>

#include "aggregator/internal/common.h"

namespace canopy::aggregator {

LevelClaims::LevelClaims(size_t claims_kept) : claims_kept_(claims_kept) {}

LevelClaims::Reservation::Reservation(LevelClaims* owner, std::shared_ptr<Level> level,
                                      std::vector<ReportId> ids, std::vector<bool> taken)
    : owner_(owner), level_(std::move(level)), ids_(std::move(ids)), taken_(std::move(taken)) {}

LevelClaims::Reservation::Reservation(Reservation&& other) noexcept
    : owner_(other.owner_),
      level_(std::move(other.level_)),
      ids_(std::move(other.ids_)),
      taken_(std::move(other.taken_)) {
  other.level_ = nullptr;
}

LevelClaims::Reservation::~Reservation() { Settle(nullptr); }

void LevelClaims::Reservation::Keep(const std::vector<bool>& keep) { Settle(&keep); }

void LevelClaims::Reservation::KeepAll() {
  const std::vector<bool> all(ids_.size(), true);
  Settle(&all);
}

void LevelClaims::Reservation::Settle(const std::vector<bool>* keep) {
  if (level_ == nullptr) return;
  {
    std::lock_guard<std::mutex> lock(owner_->mutex_);
    for (size_t i = 0; i < ids_.size(); ++i) {
      if (!taken_[i]) continue;
      const bool kept = keep != nullptr && i < keep->size() && (*keep)[i];
      bool* claim = level_->claimed.Find(ids_[i]);
      if (claim == nullptr) continue;  // Never: a pending claim stays.
      if (kept) {
        *claim = false;
      } else {
        level_->claimed.Erase(ids_[i]);
      }
      --level_->pending;
    }
    --level_->reservations;
    level_ = nullptr;
  }
  owner_->settled_.notify_all();
}

LevelClaims::LevelKey LevelClaims::KeyOf(const TaskId& task_id, const Bytes& agg_param) {
  // A Poplar1 parameter deep in a walk is kilobytes: the key holds its digest.
  return {task_id, internal::Sha256(agg_param)};
}

Result<std::shared_ptr<LevelClaims::Level>> LevelClaims::FindOrLoad(const LevelKey& key,
                                                                    const Loader& load) {
  auto found = levels_.find(key);
  if (found == levels_.end()) {
    auto loaded = load();
    if (!loaded) return std::unexpected(loaded.error());
    auto level = std::make_shared<Level>();
    // A walk's levels take about the same reports: sized like the task's
    // most recently used level (the walk's previous one), a new level's
    // map does not grow (each growth rehashes every claim so far). Not the
    // largest: that may be another, larger batch's, and reserved slots are
    // memory the claims budget does not count.
    size_t expected = loaded->size();
    uint64_t latest_use = 0;
    for (const auto& [other_key, other] : levels_) {
      if (other_key.first == key.first && other->last_used > latest_use) {
        latest_use = other->last_used;
        expected = std::max(loaded->size(), other->claimed.size());
      }
    }
    level->claimed.Reserve(std::min(expected, claims_kept_));
    for (const ReportId& id : *loaded) level->claimed.TryEmplace(id, false);
    found = levels_.emplace(key, std::move(level)).first;
  }
  found->second->last_used = ++uses_;
  std::shared_ptr<Level> level = found->second;
  EvictBeyondCapacity(level.get());
  return level;
}

void LevelClaims::EvictBeyondCapacity(const Level* in_use) {
  size_t claims = 0;
  for (const auto& [key, level] : levels_) claims += level->claimed.size();
  while (claims > claims_kept_) {
    auto oldest = levels_.end();
    for (auto it = levels_.begin(); it != levels_.end(); ++it) {
      if (it->second.get() == in_use || it->second->reservations > 0) continue;
      if (oldest == levels_.end() || it->second->last_used < oldest->second->last_used) {
        oldest = it;
      }
    }
    if (oldest == levels_.end()) return;  // All in use: kept beyond the capacity.
    claims -= oldest->second->claimed.size();
    levels_.erase(oldest);
  }
}

Result<std::shared_ptr<LevelClaims::Level>> LevelClaims::FindSettled(
    std::unique_lock<std::mutex>& lock, const LevelKey& key, std::span<const ReportId> ids,
    const Loader& load) {
  for (;;) {
    auto level = FindOrLoad(key, load);
    if (!level) return level;
    const auto& claimed = (*level)->claimed;
    const bool waiting =
        (*level)->pending > 0 && std::any_of(ids.begin(), ids.end(), [&](const ReportId& id) {
          const bool* claim = claimed.Find(id);
          return claim != nullptr && *claim;
        });
    if (!waiting) return level;
    settled_.wait(lock);
  }
}

Result<LevelClaims::Reservation> LevelClaims::Reserve(const TaskId& task_id, const Bytes& agg_param,
                                                      std::span<const ReportId> ids,
                                                      const Loader& load) {
  const LevelKey key = KeyOf(task_id, agg_param);
  std::unique_lock<std::mutex> lock(mutex_);
  auto level = FindSettled(lock, key, ids, load);
  if (!level) return std::unexpected(level.error());
  std::vector<bool> taken(ids.size());
  // A job's claims land at random places in a table of a million: each
  // slot is asked for a few claims ahead.
  constexpr size_t kAhead = 8;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i + kAhead < ids.size()) (*level)->claimed.Prefetch(ids[i + kAhead]);
    taken[i] = (*level)->claimed.TryEmplace(ids[i], true);
    if (taken[i]) ++(*level)->pending;
  }
  ++(*level)->reservations;
  EvictBeyondCapacity(level->get());
  return Reservation(this, *level, std::vector<ReportId>(ids.begin(), ids.end()), std::move(taken));
}

Result<std::vector<bool>> LevelClaims::Claimed(const TaskId& task_id, const Bytes& agg_param,
                                               std::span<const ReportId> ids, const Loader& load) {
  const LevelKey key = KeyOf(task_id, agg_param);
  std::unique_lock<std::mutex> lock(mutex_);
  auto level = FindSettled(lock, key, ids, load);
  if (!level) return std::unexpected(level.error());
  std::vector<bool> claimed(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) claimed[i] = (*level)->claimed.Contains(ids[i]);
  return claimed;
}

void LevelClaims::Release(const TaskId& task_id, const Bytes& agg_param,
                          std::span<const ReportId> ids) {
  const LevelKey key = KeyOf(task_id, agg_param);
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = levels_.find(key);
  if (found == levels_.end()) return;
  auto& claimed = found->second->claimed;
  for (const ReportId& id : ids) {
    const bool* claim = claimed.Find(id);
    if (claim != nullptr && !*claim) claimed.Erase(id);
  }
}

void LevelClaims::EraseTask(const TaskId& task_id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::erase_if(levels_, [&](const auto& entry) { return entry.first.first == task_id; });
  }
  settled_.notify_all();  // Waiters look their level up again.
}

size_t LevelClaims::levels() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return levels_.size();
}

bool LeaderRowHoldsClaim(const ReportAggregationRow& row) {
  return !(row.state == ReportAggregationState::kFailed &&
           row.error == dap::ReportError::kReportDropped);
}

bool HelperRowHoldsClaim(const ReportAggregationRow& row) {
  return row.state != ReportAggregationState::kFailed ||
         row.error == dap::ReportError::kVdafVerifyError;
}

Result<std::vector<ReportId>> LoadLevelClaims(
    Datastore& datastore, const TaskId& task_id, const Bytes& agg_param,
    const std::function<bool(const ReportAggregationRow&)>& claims) {
  std::vector<ReportId> ids;
  auto read = datastore.Run([&](Transaction& tx) -> Result<void> {
    ids.clear();
    auto recorded = tx.AggregatedReportsWithParam(task_id, agg_param);
    if (!recorded) return std::unexpected(recorded.error());
    ids = std::move(*recorded);
    auto jobs = tx.JobsWithParam(task_id, agg_param);
    if (!jobs) return std::unexpected(jobs.error());
    for (const JobId& job_id : *jobs) {
      auto rows = tx.GetJobReports(task_id, job_id);
      if (!rows) return std::unexpected(rows.error());
      for (const ReportAggregationRow& row : *rows) {
        if (claims(row)) ids.push_back(row.report_id);
      }
    }
    return {};
  });
  if (!read) return std::unexpected(read.error());
  return ids;
}

}  // namespace canopy::aggregator
