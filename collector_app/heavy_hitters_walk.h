// The heavy-hitters tree walk, as a state machine that knows nothing of the
// network: it says which prefixes the next round asks for, and it is told
// their counts. Each round is one collection of the same batch (see
// docs/multi-level-collection.md); the collector drives the rounds, this
// walk decides what they ask for and what survives.
//
// The rules (proto/canopy_config.proto, message HeavyHitters, is the spec):
// - the first round asks for all 2^first_round_bits prefixes; each later round
//   extends every survivor by bits_per_round bits (the last round by what
//   remains to reach `bits`);
// - a candidate survives when its count meets its threshold; a candidate
//   above some prefix_thresholds entries survives on the lowest threshold of
//   the entries below it, because its count bounds theirs;
// - when the survivors' extensions would exceed max_candidates_per_level, the
//   survivors with the highest counts are kept (ties: the smaller prefix);
// - the walk stops early when nothing survives; the survivors of the round at
//   full length are the heavy hitters.
#ifndef CANOPY_COLLECTOR_APP_HEAVY_HITTERS_WALK_H_
#define CANOPY_COLLECTOR_APP_HEAVY_HITTERS_WALK_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "crypto/error.h"
#include "idpf/bit_string.h"
#include "proto/canopy_config.pb.h"

namespace canopy::collector {

// The most candidates one round may ask for: more would exhaust the
// collector's memory long before the aggregators could evaluate them. A walk
// whose next round would exceed it fails; max_candidates_per_level avoids it.
inline constexpr uint64_t kMaxCandidatesPerRound = uint64_t{1} << 22;

// A threshold: an absolute count, or a fraction of the batch's report count.
struct Threshold {
  // An absolute count (at least 1 in a valid setting).
  static Threshold Count(uint64_t count) { return Threshold{false, count, 0.0}; }
  // A fraction of the report count, in (0, 1].
  static Threshold Fraction(double fraction) { return Threshold{true, 0, fraction}; }

  // The count a candidate needs: the count itself, or ceil(fraction *
  // report_count), where a product within rounding error of a whole number is
  // that number (0.07 of 100 reports is 7, not 8), and never less than 1: a
  // prefix nobody holds is never a heavy hitter.
  uint64_t Resolve(uint64_t report_count) const;

  // "100", or "0.001 of the reports", for messages.
  std::string ToString() const;

  friend bool operator==(const Threshold&, const Threshold&) = default;

  bool is_fraction = false;
  uint64_t count = 0;
  double fraction = 0.0;
};

// A threshold for one prefix and its descendants.
struct PrefixThresholdRule {
  idpf::BitString prefix;
  Threshold threshold;
  friend bool operator==(const PrefixThresholdRule&, const PrefixThresholdRule&) = default;
};

// The walk's settings, resolved from the configuration's heavy_hitters block.
struct WalkSettings {
  // Builds and checks the settings of `config` (defaults applied as the
  // configuration loader does: bits_per_round 0 means 1, first_round_bits 0
  // means bits_per_round, capped at bits). Errors (kInvalidArgument, naming
  // the field, for example "heavy_hitters.prefix_thresholds[2].bits: ..."): any
  // value out of the schema's ranges, a missing threshold, a duplicate
  // prefix, a prefix longer than bits, a cap below 2^first_round_bits or
  // 2^bits_per_round or above kMaxCandidatesPerRound.
  static Result<WalkSettings> FromConfig(const config::HeavyHitters& config);

  // Checks settings built by hand with the same rules as FromConfig.
  // Errors: as FromConfig's.
  Result<void> Check() const;

  // The rounds of a walk that does not stop early.
  size_t PlannedRounds() const;

  // Length in bits of round `round`'s candidates (0-based), as planned.
  size_t RoundPrefixBits(size_t round) const;

  friend bool operator==(const WalkSettings&, const WalkSettings&) = default;

  uint32_t bits = 0;
  uint32_t bits_per_round = 1;
  uint32_t first_round_bits = 1;
  // 0: no cap.
  uint32_t max_candidates_per_level = 0;
  Threshold default_threshold = Threshold::Count(1);
  // Sorted by prefix, unique.
  std::vector<PrefixThresholdRule> prefix_thresholds;
};

// What one round of collection returned.
struct RoundResult {
  // The count of each candidate, in the order the candidates were asked for.
  std::vector<uint64_t> counts;
  // The number of reports this collection aggregated.
  uint64_t report_count = 0;
};

// What became of a candidate.
enum class CandidateStatus {
  kKept,            // It met its threshold and was extended (or is a heavy hitter).
  kBelowThreshold,  // Its count was below its threshold.
  kCutByCap,        // It met its threshold, but max_candidates_per_level left it out.
};

// "kept", "below threshold", "cut by cap".
std::string_view CandidateStatusName(CandidateStatus status);

// One candidate of a finished round.
struct CandidateOutcome {
  idpf::BitString prefix;
  uint64_t count = 0;
  // The count it needed (its own threshold, or lower for a prefix above
  // prefix_thresholds entries with lower thresholds).
  uint64_t threshold = 0;
  CandidateStatus status = CandidateStatus::kBelowThreshold;
};

// One finished round: a level of the pruned prefix tree.
struct WalkRound {
  size_t level = 0;  // The candidates are level + 1 bits long.
  uint64_t report_count = 0;
  std::vector<CandidateOutcome> candidates;  // Sorted by prefix.
  // How long the collection took; zero when unknown.
  std::chrono::milliseconds duration{0};

  // The candidates with status kKept.
  size_t Survivors() const;
};

// A full-length string that met its threshold.
struct HeavyHitter {
  idpf::BitString string;
  uint64_t count = 0;
  friend bool operator==(const HeavyHitter&, const HeavyHitter&) = default;
};

// Everything a walk found.
struct WalkResult {
  uint32_t bits = 0;
  // Sorted by count, highest first, then by string.
  std::vector<HeavyHitter> heavy_hitters;
  std::vector<WalkRound> rounds;
  // The batch's report count: that of the first round (0 before any round).
  uint64_t report_count = 0;
  // True when a round before the full length had no survivor.
  bool stopped_early = false;
  // Rounds taken from a resume state file rather than collected now.
  size_t resumed_rounds = 0;
  // The rounds' durations added up.
  std::chrono::milliseconds elapsed{0};
};

// The walk. Copyable and movable; not thread-safe.
class HeavyHittersWalk {
 public:
  // A walk at its first round. `settings` must pass Check() (FromConfig's
  // result does); otherwise the walk asks for nothing and is finished.
  explicit HeavyHittersWalk(WalkSettings settings);

  const WalkSettings& settings() const { return settings_; }

  // True when no round is left: the full length was reached or nothing
  // survived.
  bool finished() const { return next_candidates_.empty(); }

  // The next round's level (its candidates are next_level() + 1 bits long)
  // and candidates, sorted and unique. Meaningless once finished().
  size_t next_level() const { return next_bits_ == 0 ? 0 : next_bits_ - 1; }
  std::span<const idpf::BitString> next_candidates() const { return next_candidates_; }

  // Takes the next round's result: applies the thresholds and the cap and
  // computes the round after it. `duration` is recorded for the summary.
  // Errors (kInvalidArgument; the walk is unchanged): the walk is finished;
  // the number of counts is not the number of candidates; a count above the
  // round's report count; a report count above an earlier round's (the
  // batch is frozen at its first collection, so it can only shrink, when
  // reports fail verification at a deeper level); the next round would ask
  // for more than kMaxCandidatesPerRound candidates.
  Result<void> AddRound(const RoundResult& result,
                        std::chrono::milliseconds duration = std::chrono::milliseconds(0));

  // The finished rounds, oldest first.
  const std::vector<WalkRound>& rounds() const { return rounds_; }

  // The batch's report count, from the first round; relative thresholds are
  // fractions of it. nullopt before the first round.
  std::optional<uint64_t> report_count() const;

  // The threshold a candidate must meet to be kept, for a batch of
  // `report_count` reports (see the file comment).
  uint64_t KeepThreshold(const idpf::BitString& candidate, uint64_t report_count) const;

  // The walk's findings so far: the heavy hitters once finished at full
  // length, none before.
  WalkResult Outcome() const;

 private:
  WalkSettings settings_;
  std::vector<WalkRound> rounds_;
  size_t next_bits_ = 0;
  std::vector<idpf::BitString> next_candidates_;
};

// A progress event of RunWalk, for a line on standard error.
struct WalkProgress {
  enum class Stage {
    kResumed,        // Rounds taken from a state file: `round` of them.
    kRoundStarted,   // `round` is about to be collected.
    kRoundFinished,  // `round` was collected and pruned.
  };
  Stage stage = Stage::kRoundStarted;
  size_t round = 0;           // 1-based.
  size_t planned_rounds = 0;  // If the walk does not stop early.
  size_t level = 0;
  size_t candidates = 0;
  size_t survivors = 0;                     // kRoundFinished.
  uint64_t report_count = 0;                // kRoundFinished.
  std::chrono::milliseconds round_time{0};  // kRoundFinished.
  std::chrono::milliseconds total_time{0};  // Since RunWalk started.
};

// Collects one round: the counts of `candidates` (all level + 1 bits long,
// sorted) over the walk's batch. Its errors end the walk and are returned by
// RunWalk as they are.
using RoundRunner =
    std::function<Result<RoundResult>(size_t level, std::span<const idpf::BitString> candidates)>;

// Told of progress; may be empty.
using WalkObserver = std::function<void(const WalkProgress&)>;

// Called after each round is added, for example to save the walk's state;
// an error ends the walk and is returned by RunWalk. May be empty.
using RoundRecorder = std::function<Result<void>(const HeavyHittersWalk&)>;

// Runs `walk` to its end: asks `runner` for each remaining round, adds the
// results, calls `recorder`, and reports progress to `observer`.
// `resumed_rounds` rounds of `walk` are reported as taken from a state file.
// Errors: the runner's or the recorder's, as they are; AddRound's.
Result<WalkResult> RunWalk(HeavyHittersWalk walk, const RoundRunner& runner,
                           const WalkObserver& observer = {}, const RoundRecorder& recorder = {},
                           size_t resumed_rounds = 0);

// Runs a fresh walk with `settings`. Errors: as above, and Check()'s.
Result<WalkResult> RunWalk(const WalkSettings& settings, const RoundRunner& runner,
                           const WalkObserver& observer = {});

}  // namespace canopy::collector

#endif  // CANOPY_COLLECTOR_APP_HEAVY_HITTERS_WALK_H_
