#include "collector_app/heavy_hitters_walk.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

#include "config/config.h"

namespace canopy::collector {
namespace {

using Clock = std::chrono::steady_clock;

Result<void> Invalid(const std::string& field, const std::string& problem) {
  return MakeError(ErrorCode::kInvalidArgument, "heavy_hitters." + field + ": " + problem);
}

std::string FractionText(double fraction) {
  char text[64];
  std::snprintf(text, sizeof text, "%.17g", fraction);
  // Prefer the shortest form that reads back as the same number.
  for (int digits = 1; digits <= 17; ++digits) {
    char shorter[64];
    std::snprintf(shorter, sizeof shorter, "%.*g", digits, fraction);
    if (std::strtod(shorter, nullptr) == fraction) return shorter;
  }
  return text;
}

Result<void> CheckThreshold(const std::string& field, const Threshold& threshold) {
  if (threshold.is_fraction) {
    if (!(threshold.fraction > 0.0 && threshold.fraction <= 1.0)) {
      return Invalid(
          field, "a relative threshold must be in (0, 1], got " + FractionText(threshold.fraction));
    }
  } else if (threshold.count == 0) {
    return Invalid(field, "a threshold must be at least 1, got 0");
  }
  return {};
}

// Survivors ranked for the cap: highest count first, then the smaller prefix.
bool RanksBefore(const CandidateOutcome& a, const CandidateOutcome& b) {
  if (a.count != b.count) return a.count > b.count;
  return a.prefix < b.prefix;
}

}  // namespace

uint64_t Threshold::Resolve(uint64_t report_count) const {
  if (!is_fraction) return std::max<uint64_t>(count, 1);
  long double product = static_cast<long double>(fraction) * static_cast<long double>(report_count);
  // A fraction written in decimal is rarely exact in binary: 0.07 * 100 comes
  // out a hair above 7, and its ceiling would demand a count nobody meant.
  const long double nearest = std::round(product);
  if (std::fabs(product - nearest) <= 1e-9L * std::max(1.0L, product)) product = nearest;
  const long double ceiling = std::ceil(product);
  if (ceiling >= 18446744073709551615.0L) return std::numeric_limits<uint64_t>::max();
  return std::max<uint64_t>(static_cast<uint64_t>(ceiling), 1);
}

std::string Threshold::ToString() const {
  if (!is_fraction) return std::to_string(count);
  return FractionText(fraction) + " of the reports";
}

std::string_view CandidateStatusName(CandidateStatus status) {
  switch (status) {
    case CandidateStatus::kKept:
      return "kept";
    case CandidateStatus::kBelowThreshold:
      return "below threshold";
    case CandidateStatus::kCutByCap:
      return "cut by cap";
  }
  return "unknown";
}

Result<WalkSettings> WalkSettings::FromConfig(const config::HeavyHitters& config) {
  WalkSettings settings;
  settings.bits = config.bits();
  settings.bits_per_round =
      config.bits_per_round() == 0 ? config::kDefaultBitsPerRound : config.bits_per_round();
  settings.first_round_bits = config.first_round_bits() != 0
                                  ? config.first_round_bits()
                                  : std::min(settings.bits_per_round, std::max(settings.bits, 1u));
  settings.max_candidates_per_level = config.max_candidates_per_level();
  switch (config.threshold_case()) {
    case config::HeavyHitters::kDefaultThreshold:
      settings.default_threshold = Threshold::Count(config.default_threshold());
      if (auto ok = CheckThreshold("default_threshold", settings.default_threshold); !ok) {
        return std::unexpected(ok.error());
      }
      break;
    case config::HeavyHitters::kRelativeThreshold:
      settings.default_threshold = Threshold::Fraction(config.relative_threshold());
      if (auto ok = CheckThreshold("relative_threshold", settings.default_threshold); !ok) {
        return std::unexpected(ok.error());
      }
      break;
    case config::HeavyHitters::THRESHOLD_NOT_SET:
      return std::unexpected(
          Invalid("threshold", "required: default_threshold (a count) or relative_threshold")
              .error());
  }
  for (int i = 0; i < config.prefix_thresholds_size(); ++i) {
    const config::PrefixThreshold& entry = config.prefix_thresholds(i);
    const std::string field = "prefix_thresholds[" + std::to_string(i) + "]";
    PrefixThresholdRule rule;
    switch (entry.prefix_case()) {
      case config::PrefixThreshold::kBits: {
        Result<idpf::BitString> parsed = idpf::BitString::Parse(entry.bits());
        if (!parsed)
          return std::unexpected(Invalid(field + ".bits", parsed.error().message()).error());
        rule.prefix = std::move(*parsed);
        break;
      }
      case config::PrefixThreshold::kText:
        for (bool bit : config::PrefixBits(entry)) rule.prefix = rule.prefix.Extended(bit);
        break;
      case config::PrefixThreshold::PREFIX_NOT_SET:
        return std::unexpected(
            Invalid(field + ".prefix", "required: bits (\"0110\") or text (\"ab\")").error());
    }
    const std::string prefix_field = field + (entry.has_bits() ? ".bits" : ".text");
    if (rule.prefix.empty()) {
      return std::unexpected(Invalid(prefix_field, "must not be empty").error());
    }
    if (rule.prefix.size() > settings.bits) {
      return std::unexpected(Invalid(prefix_field, "is " + std::to_string(rule.prefix.size()) +
                                                       " bits long, longer than bits (" +
                                                       std::to_string(settings.bits) + ")")
                                 .error());
    }
    switch (entry.value_case()) {
      case config::PrefixThreshold::kThreshold:
        rule.threshold = Threshold::Count(entry.threshold());
        break;
      case config::PrefixThreshold::kRelativeThreshold:
        rule.threshold = Threshold::Fraction(entry.relative_threshold());
        break;
      case config::PrefixThreshold::VALUE_NOT_SET:
        return std::unexpected(
            Invalid(field + ".value", "required: threshold (a count) or relative_threshold")
                .error());
    }
    const std::string value_field =
        field + (entry.has_threshold() ? ".threshold" : ".relative_threshold");
    if (auto ok = CheckThreshold(value_field, rule.threshold); !ok) {
      return std::unexpected(ok.error());
    }
    for (int j = 0; j < i; ++j) {
      if (settings.prefix_thresholds[static_cast<size_t>(j)].prefix == rule.prefix) {
        return std::unexpected(
            Invalid(prefix_field, "the same prefix as prefix_thresholds[" + std::to_string(j) + "]")
                .error());
      }
    }
    settings.prefix_thresholds.push_back(std::move(rule));
  }
  std::sort(settings.prefix_thresholds.begin(), settings.prefix_thresholds.end(),
            [](const PrefixThresholdRule& a, const PrefixThresholdRule& b) {
              return a.prefix < b.prefix;
            });
  if (auto ok = settings.Check(); !ok) return std::unexpected(ok.error());
  return settings;
}

Result<void> WalkSettings::Check() const {
  if (bits < 1 || bits > 65535) {
    return Invalid("bits", "must be in 1..65535, got " + std::to_string(bits));
  }
  if (bits_per_round < 1 || bits_per_round > 16) {
    return Invalid("bits_per_round", "must be in 1..16, got " + std::to_string(bits_per_round));
  }
  if (first_round_bits < 1 || first_round_bits > 16 || first_round_bits > bits) {
    return Invalid("first_round_bits",
                   "must be in 1..16 and at most bits, got " + std::to_string(first_round_bits));
  }
  if (auto ok =
          CheckThreshold(default_threshold.is_fraction ? "relative_threshold" : "default_threshold",
                         default_threshold);
      !ok) {
    return ok;
  }
  for (size_t i = 0; i < prefix_thresholds.size(); ++i) {
    const PrefixThresholdRule& rule = prefix_thresholds[i];
    const std::string field = "prefix_thresholds[" + std::to_string(i) + "]";
    if (rule.prefix.empty() || rule.prefix.size() > bits) {
      return Invalid(field, "the prefix must be 1.." + std::to_string(bits) + " bits long");
    }
    if (i > 0 && !(prefix_thresholds[i - 1].prefix < rule.prefix)) {
      return Invalid(field, "prefixes must be sorted and unique");
    }
    if (auto ok = CheckThreshold(field, rule.threshold); !ok) return ok;
  }
  if (max_candidates_per_level != 0) {
    const uint64_t least = uint64_t{1} << std::max(first_round_bits, bits_per_round);
    if (max_candidates_per_level < least) {
      return Invalid("max_candidates_per_level",
                     "must be 0 (no cap) or at least " + std::to_string(least) +
                         " (2^first_round_bits and 2^bits_per_round), got " +
                         std::to_string(max_candidates_per_level));
    }
    if (max_candidates_per_level > kMaxCandidatesPerRound) {
      return Invalid("max_candidates_per_level",
                     "must be at most " + std::to_string(kMaxCandidatesPerRound) + ", got " +
                         std::to_string(max_candidates_per_level));
    }
  }
  return {};
}

size_t WalkSettings::PlannedRounds() const {
  if (bits <= first_round_bits) return 1;
  return 1 + (bits - first_round_bits + bits_per_round - 1) / bits_per_round;
}

size_t WalkSettings::RoundPrefixBits(size_t round) const {
  const uint64_t length = uint64_t{first_round_bits} + uint64_t{round} * bits_per_round;
  return static_cast<size_t>(std::min<uint64_t>(length, bits));
}

size_t WalkRound::Survivors() const {
  return static_cast<size_t>(
      std::count_if(candidates.begin(), candidates.end(), [](const CandidateOutcome& candidate) {
        return candidate.status == CandidateStatus::kKept;
      }));
}

HeavyHittersWalk::HeavyHittersWalk(WalkSettings settings) : settings_(std::move(settings)) {
  if (!settings_.Check()) return;
  next_bits_ = settings_.first_round_bits;
  const uint64_t count = uint64_t{1} << next_bits_;
  next_candidates_.reserve(count);
  for (uint64_t value = 0; value < count; ++value) {
    next_candidates_.push_back(idpf::BitString::FromUint64(value, next_bits_));
  }
}

std::optional<uint64_t> HeavyHittersWalk::report_count() const {
  if (rounds_.empty()) return std::nullopt;
  return rounds_.front().report_count;
}

uint64_t HeavyHittersWalk::KeepThreshold(const idpf::BitString& candidate,
                                         uint64_t report_count) const {
  const Threshold* own = &settings_.default_threshold;
  size_t own_length = 0;
  uint64_t lowest_below = std::numeric_limits<uint64_t>::max();
  for (const PrefixThresholdRule& rule : settings_.prefix_thresholds) {
    if (rule.prefix.size() <= candidate.size()) {
      if (rule.prefix.size() > own_length && candidate.StartsWith(rule.prefix)) {
        own = &rule.threshold;
        own_length = rule.prefix.size();
      }
    } else if (rule.prefix.StartsWith(candidate)) {
      lowest_below = std::min(lowest_below, rule.threshold.Resolve(report_count));
    }
  }
  return std::min(own->Resolve(report_count), lowest_below);
}

Result<void> HeavyHittersWalk::AddRound(const RoundResult& result,
                                        std::chrono::milliseconds duration) {
  if (finished()) {
    return MakeError(ErrorCode::kInvalidArgument, "the walk is finished: no round is pending");
  }
  if (result.counts.size() != next_candidates_.size()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "round " + std::to_string(rounds_.size() + 1) + " asked for " +
                         std::to_string(next_candidates_.size()) + " counts, got " +
                         std::to_string(result.counts.size()));
  }
  if (!rounds_.empty() && result.report_count > rounds_.back().report_count) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "round " + std::to_string(rounds_.size() + 1) + " counted " +
                         std::to_string(result.report_count) +
                         " reports, more than the previous round's " +
                         std::to_string(rounds_.back().report_count) +
                         ": the batch was frozen at its first collection");
  }
  WalkRound round;
  round.level = next_level();
  round.report_count = result.report_count;
  round.duration = duration;
  round.candidates.reserve(next_candidates_.size());
  const uint64_t batch_reports = rounds_.empty() ? result.report_count : *report_count();
  for (size_t i = 0; i < next_candidates_.size(); ++i) {
    const uint64_t count = result.counts[i];
    if (count > result.report_count) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "round " + std::to_string(rounds_.size() + 1) + ": prefix " +
                           next_candidates_[i].ToString() + " has a count of " +
                           std::to_string(count) + ", more than the " +
                           std::to_string(result.report_count) + " reports counted");
    }
    CandidateOutcome outcome;
    outcome.prefix = next_candidates_[i];
    outcome.count = count;
    outcome.threshold = KeepThreshold(outcome.prefix, batch_reports);
    outcome.status =
        count >= outcome.threshold ? CandidateStatus::kKept : CandidateStatus::kBelowThreshold;
    round.candidates.push_back(std::move(outcome));
  }

  std::vector<idpf::BitString> next;
  const size_t bits_now = next_bits_;
  const size_t bits_next = std::min<size_t>(bits_now + settings_.bits_per_round, settings_.bits);
  if (bits_now < settings_.bits) {
    const size_t extra_bits = bits_next - bits_now;
    const uint64_t per_survivor = uint64_t{1} << extra_bits;
    std::vector<CandidateOutcome*> survivors;
    for (CandidateOutcome& candidate : round.candidates) {
      if (candidate.status == CandidateStatus::kKept) survivors.push_back(&candidate);
    }
    const uint64_t cap = settings_.max_candidates_per_level;
    if (cap != 0 && survivors.size() * per_survivor > cap) {
      const size_t room = static_cast<size_t>(cap / per_survivor);
      std::stable_sort(
          survivors.begin(), survivors.end(),
          [](const CandidateOutcome* a, const CandidateOutcome* b) { return RanksBefore(*a, *b); });
      for (size_t i = room; i < survivors.size(); ++i) {
        survivors[i]->status = CandidateStatus::kCutByCap;
      }
      survivors.resize(room);
    }
    if (survivors.size() * per_survivor > kMaxCandidatesPerRound) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "round " + std::to_string(rounds_.size() + 2) + " would ask for " +
                           std::to_string(survivors.size() * per_survivor) +
                           " candidates, more than " + std::to_string(kMaxCandidatesPerRound) +
                           ": set max_candidates_per_level or raise the thresholds");
    }
    next.reserve(survivors.size() * per_survivor);
    // The candidates are sorted, so extending them in that order keeps the
    // next round's candidates sorted, as the aggregation parameter needs.
    for (const CandidateOutcome& candidate : round.candidates) {
      if (candidate.status == CandidateStatus::kKept) {
        idpf::AppendExtensions(candidate.prefix, extra_bits, next);
      }
    }
  }

  rounds_.push_back(std::move(round));
  next_candidates_ = std::move(next);
  next_bits_ = next_candidates_.empty() ? 0 : bits_next;
  return {};
}

WalkResult HeavyHittersWalk::Outcome() const {
  WalkResult result;
  result.bits = settings_.bits;
  result.rounds = rounds_;
  result.report_count = report_count().value_or(0);
  for (const WalkRound& round : rounds_) result.elapsed += round.duration;
  if (!finished() || rounds_.empty()) return result;
  const WalkRound& last = rounds_.back();
  if (last.level + 1 < settings_.bits) {
    result.stopped_early = true;
    return result;
  }
  for (const CandidateOutcome& candidate : last.candidates) {
    if (candidate.status == CandidateStatus::kKept) {
      result.heavy_hitters.push_back({candidate.prefix, candidate.count});
    }
  }
  std::sort(result.heavy_hitters.begin(), result.heavy_hitters.end(),
            [](const HeavyHitter& a, const HeavyHitter& b) {
              if (a.count != b.count) return a.count > b.count;
              return a.string < b.string;
            });
  return result;
}

Result<WalkResult> RunWalk(HeavyHittersWalk walk, const RoundRunner& runner,
                           const WalkObserver& observer, const RoundRecorder& recorder,
                           size_t resumed_rounds) {
  const Clock::time_point start = Clock::now();
  auto since_start = [&start] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  };
  const size_t planned_rounds = walk.settings().PlannedRounds();
  if (observer && resumed_rounds > 0) {
    WalkProgress progress;
    progress.stage = WalkProgress::Stage::kResumed;
    progress.round = resumed_rounds;
    progress.planned_rounds = planned_rounds;
    if (!walk.rounds().empty()) {
      const WalkRound& last = walk.rounds().back();
      progress.level = last.level;
      progress.candidates = last.candidates.size();
      progress.survivors = last.Survivors();
      progress.report_count = last.report_count;
    }
    observer(progress);
  }
  while (!walk.finished()) {
    WalkProgress progress;
    progress.round = walk.rounds().size() + 1;
    progress.planned_rounds = planned_rounds;
    progress.level = walk.next_level();
    progress.candidates = walk.next_candidates().size();
    progress.total_time = since_start();
    if (observer) observer(progress);

    const Clock::time_point round_start = Clock::now();
    Result<RoundResult> result = runner(walk.next_level(), walk.next_candidates());
    if (!result) return std::unexpected(result.error());
    const auto round_time =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - round_start);
    if (auto added = walk.AddRound(*result, round_time); !added) {
      return std::unexpected(added.error());
    }
    if (recorder) {
      if (auto recorded = recorder(walk); !recorded) return std::unexpected(recorded.error());
    }
    if (observer) {
      progress.stage = WalkProgress::Stage::kRoundFinished;
      progress.survivors = walk.rounds().back().Survivors();
      progress.report_count = walk.rounds().back().report_count;
      progress.round_time = round_time;
      progress.total_time = since_start();
      observer(progress);
    }
  }
  WalkResult outcome = walk.Outcome();
  outcome.resumed_rounds = resumed_rounds;
  return outcome;
}

Result<WalkResult> RunWalk(const WalkSettings& settings, const RoundRunner& runner,
                           const WalkObserver& observer) {
  if (auto ok = settings.Check(); !ok) return std::unexpected(ok.error());
  return RunWalk(HeavyHittersWalk(settings), runner, observer);
}

}  // namespace canopy::collector
