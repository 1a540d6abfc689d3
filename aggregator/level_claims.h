// Which reports each level of a multi-level walk has taken, kept in memory
// (docs/multi-level-collection.md: each report is verified at most once per
// level).
//
// The leader takes a report for a level when it puts it into an aggregation
// job; the helper when it accepts it in a job's first step. Both used to
// record that as a database row per report and level, and those rows were
// the largest part of a walk's database work: random report IDs spread a
// job's 500 inserts over hundreds of B-tree pages, so each (report, level)
// cost about 2 KB of writes, twice (log and checkpoint). The claims now live
// here, and the job records both aggregators write anyway (one per job,
// naming its reports, in the transaction that makes the job count) are their
// durable form: after a restart, a level's claims are read back from its
// jobs' records the first time the level is used (the `Loader`).
//
// Callers reserve claims before the transaction that commits them and keep
// them once it has committed; a reservation dropped without Keep gives its
// claims back. While reserved, a claim is pending: whoever asks about that
// report waits until it is kept or given back, so that no one decides on a
// claim that may still vanish (a leader's retry of a job still being
// committed would otherwise find its own reports taken, and refuse them as
// replays for good). A level with reservations outstanding is never evicted,
// so a claim that is not yet in the datastore cannot be lost to a reload.
// Not for use inside a datastore transaction: a level's first use runs its
// loader, which opens one.
#ifndef CANOPY_AGGREGATOR_LEVEL_CLAIMS_H_
#define CANOPY_AGGREGATOR_LEVEL_CLAIMS_H_

#include <array>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

#include "aggregator/datastore.h"
#include "aggregator/internal/flat_id_map.h"

namespace canopy::aggregator {

class LevelClaims {
 public:
  // Reads a level's claims from the datastore (the report IDs its stored
  // jobs took). Errors: the datastore's.
  using Loader = std::function<Result<std::vector<ReportId>>()>;

  // Keeps about `claims_kept` claims in memory (about 50 bytes each): beyond
  // that, the least recently used levels without reservations outstanding are
  // evicted (never the level in use), and loaded again when used. The default
  // holds two levels of a million reports (a walk needs its current one).
  explicit LevelClaims(size_t claims_kept = size_t{1} << 21);
  LevelClaims(const LevelClaims&) = delete;
  LevelClaims& operator=(const LevelClaims&) = delete;

 private:
  struct Level;

 public:
  // Claims taken for one job, given back unless kept.
  class Reservation {
   public:
    Reservation(Reservation&& other) noexcept;
    Reservation& operator=(Reservation&&) = delete;
    ~Reservation();

    // Whether ids[i] of the Reserve call was free and is now claimed here.
    bool taken(size_t i) const { return taken_[i]; }
    // Keeps the claims of the ids whose `keep` entry is true and gives back
    // the others (keep is indexed like the Reserve call's ids).
    void Keep(const std::vector<bool>& keep);
    void KeepAll();

   private:
    friend class LevelClaims;
    Reservation(LevelClaims* owner, std::shared_ptr<Level> level, std::vector<ReportId> ids,
                std::vector<bool> taken);
    // Gives back the taken claims whose `keep` entry is false (all when
    // `keep` is null) and ends the reservation.
    void Settle(const std::vector<bool>* keep);

    LevelClaims* owner_;
    std::shared_ptr<Level> level_;  // Null once settled.
    std::vector<ReportId> ids_;
    std::vector<bool> taken_;
  };

  // Claims each of `ids` not yet claimed for (task, agg_param), once no other
  // reservation holds any of them pending. Errors: the loader's, when the
  // level is used for the first time.
  Result<Reservation> Reserve(const TaskId& task_id, const Bytes& agg_param,
                              std::span<const ReportId> ids, const Loader& load);
  // Whether each of `ids` is claimed for (task, agg_param), once none of them
  // is pending. Errors: the loader's.
  Result<std::vector<bool>> Claimed(const TaskId& task_id, const Bytes& agg_param,
                                    std::span<const ReportId> ids, const Loader& load);
  // Gives back claims whose job is gone (an abandoned job at the leader).
  // Claims of a level not in memory are gone already.
  void Release(const TaskId& task_id, const Bytes& agg_param, std::span<const ReportId> ids);
  // Forgets every level of a task (the task was removed). Reservations
  // outstanding settle on their own copy.
  void EraseTask(const TaskId& task_id);
  // How many levels are in memory (for tests).
  size_t levels() const;

 private:
  using Digest = std::array<uint8_t, 32>;
  using LevelKey = std::pair<TaskId, Digest>;
  struct Level {
    // Each claim, and whether it is pending (its reservation not settled).
    // One map, not a set of claims and one of pending ones: settling a claim
    // is then one lookup.
    internal::FlatIdMap<16, bool> claimed;
    size_t pending = 0;
    size_t reservations = 0;
    uint64_t last_used = 0;
  };

  static LevelKey KeyOf(const TaskId& task_id, const Bytes& agg_param);
  // The level's claims, loaded when absent, once none of `ids` is pending
  // (waiting on `settled_` releases the lock, so the level is looked up
  // again after each wait: it may have been evicted and loaded anew).
  // Evicts least recently used levels beyond the capacity.
  Result<std::shared_ptr<Level>> FindSettled(std::unique_lock<std::mutex>& lock,
                                             const LevelKey& key, std::span<const ReportId> ids,
                                             const Loader& load);
  // The level's claims, loaded when absent. Under `mutex_`.
  Result<std::shared_ptr<Level>> FindOrLoad(const LevelKey& key, const Loader& load);
  void EvictBeyondCapacity(const Level* in_use);

  const size_t claims_kept_;
  mutable std::mutex mutex_;
  std::condition_variable settled_;  // A reservation settled.
  std::map<LevelKey, std::shared_ptr<Level>> levels_;
  uint64_t uses_ = 0;
};

// Which rows of a job record hold a claim on their report. The leader's:
// every report it put into a job, except those the helper no longer held
// (rule 8's report_dropped: they went into a new job, which holds the claim,
// and are free again if that job is abandoned). The helper's: every report
// it accepted at the job's first step, whatever a later step decided (and
// those its verification refused, which are recorded as rejected anyway).
bool LeaderRowHoldsClaim(const ReportAggregationRow& row);
bool HelperRowHoldsClaim(const ReportAggregationRow& row);

// Reads the claims of (task, agg_param) from the datastore: the reports of
// every job stored with that parameter that satisfy `claims` (the leader's
// jobs claim all their reports; the helper's only those it accepted), and
// the per-report records older versions wrote. Errors: the datastore's.
Result<std::vector<ReportId>> LoadLevelClaims(
    Datastore& datastore, const TaskId& task_id, const Bytes& agg_param,
    const std::function<bool(const ReportAggregationRow&)>& claims);

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_LEVEL_CLAIMS_H_
