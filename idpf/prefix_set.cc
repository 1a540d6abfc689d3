#include "idpf/prefix_set.h"

#include <bit>
#include <string>

#include "crypto/turboshake128.h"

namespace canopy::idpf {
namespace {

uint32_t FirstDifferingBit(const BitString& a, const BitString& b) {
  std::span<const uint8_t> x = a.bytes(), y = b.bytes();
  for (size_t i = 0; i < x.size(); ++i) {
    if (uint8_t diff = x[i] ^ y[i]; diff != 0) {
      return static_cast<uint32_t>(8 * i + std::countl_zero(diff));
    }
  }
  return static_cast<uint32_t>(a.size());
}

// Because the prefixes are sorted, the distinct ancestors at `depth` are runs
// of consecutive prefixes: prefix i opens a new run exactly when it first
// differs from prefix i - 1 at a bit <= depth. Returns each run's first index.
std::vector<uint32_t> RunStarts(const PrefixSet& set, size_t depth) {
  std::vector<uint32_t> starts;
  const std::vector<uint32_t>& first_difference = set.first_difference();
  for (uint32_t i = 0; i < set.size(); ++i) {
    if (i == 0 || first_difference[i] <= depth) starts.push_back(i);
  }
  return starts;
}

// TurboSHAKE128 (domain byte 0x03, unused by the VDAF) over the level, the
// count and each prefix's bytes; all lengths are fixed by the level, so the
// input is unambiguous.
std::array<uint8_t, 32> Digest(const PrefixSet& set) {
  crypto::TurboShake128 sponge(0x03);
  uint8_t header[16];
  const uint64_t level = set.level(), count = set.size();
  for (int i = 0; i < 8; ++i) {
    header[i] = static_cast<uint8_t>(level >> (8 * i));
    header[8 + i] = static_cast<uint8_t>(count >> (8 * i));
  }
  sponge.Absorb(header);
  for (const BitString& prefix : set.prefixes()) sponge.Absorb(prefix.bytes());
  std::array<uint8_t, 32> digest;
  sponge.Squeeze(digest);
  return digest;
}

// Whether `step` holds both children of each of `parents` nodes, in order.
bool IsEveryChild(const EvaluationPlan::Step& step, size_t parents) {
  if (step.parent.size() != 2 * parents) return false;
  for (size_t c = 0; c < step.parent.size(); ++c) {
    if (step.parent[c] != c / 2 || step.bit[c] != c % 2) return false;
  }
  return true;
}

}  // namespace

Result<std::shared_ptr<const PrefixSet>> PrefixSet::Create(size_t level,
                                                           std::vector<BitString> prefixes) {
  auto set = std::shared_ptr<PrefixSet>(new PrefixSet());
  set->level_ = level;
  set->first_difference_.assign(prefixes.size(), 0);
  for (size_t i = 0; i < prefixes.size(); ++i) {
    if (prefixes[i].size() != level + 1) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "a prefix at level " + std::to_string(level) + " must have " +
                           std::to_string(level + 1) + " bits, prefix " + std::to_string(i) +
                           " has " + std::to_string(prefixes[i].size()));
    }
    if (i > 0) {
      if (!(prefixes[i - 1] < prefixes[i])) {
        return MakeError(ErrorCode::kInvalidArgument, "prefixes must be sorted and unique");
      }
      set->first_difference_[i] = FirstDifferingBit(prefixes[i - 1], prefixes[i]);
    }
  }
  set->prefixes_ = std::move(prefixes);
  set->digest_ = Digest(*set);
  return std::shared_ptr<const PrefixSet>(std::move(set));
}

std::shared_ptr<EvaluationPlan> EvaluationPlan::Build(std::shared_ptr<const PrefixSet> target,
                                                      std::shared_ptr<const PrefixSet> source,
                                                      size_t cache_level) {
  auto plan = std::shared_ptr<EvaluationPlan>(new EvaluationPlan());
  const PrefixSet& set = *target;
  // Parents of the first step, as run starts at the depth above it.
  std::vector<uint32_t> parent_starts;
  size_t start_depth = 0;
  if (source != nullptr && source->level() < set.level() && set.size() > 0) {
    const size_t source_depth = source->level();
    parent_starts = RunStarts(set, source_depth);
    size_t cursor = 0;
    const std::vector<BitString>& cached = source->prefixes();
    for (uint32_t start : parent_starts) {
      BitString ancestor = set.prefixes()[start].Prefix(source_depth + 1);
      while (cursor < cached.size() && cached[cursor] < ancestor) ++cursor;
      if (cursor == cached.size() || !(cached[cursor] == ancestor)) break;
      plan->source_nodes_.push_back(static_cast<uint32_t>(cursor));
    }
    if (plan->source_nodes_.size() == parent_starts.size()) {
      start_depth = source_depth + 1;
      plan->source_ = std::move(source);
    } else {
      plan->source_nodes_.clear();
    }
  }
  if (plan->source_ == nullptr) parent_starts.assign(1, 0);  // The root.
  if (cache_level < start_depth || cache_level >= set.level()) cache_level = set.level();

  for (size_t depth = start_depth; depth <= set.level(); ++depth) {
    std::vector<uint32_t> child_starts = RunStarts(set, depth);
    if (depth == cache_level) {
      plan->cache_step_ = plan->steps_.size();
      if (depth < set.level()) {
        // The distinct prefixes of this depth, in order: one per node.
        std::vector<BitString> cut;
        cut.reserve(child_starts.size());
        for (uint32_t start : child_starts) cut.push_back(set.prefixes()[start].Prefix(depth + 1));
        plan->cache_set_ = *PrefixSet::Create(depth, std::move(cut));  // Sorted and unique.
      }
    }
    Step step{depth, std::vector<uint32_t>(child_starts.size()),
              std::vector<uint8_t>(child_starts.size())};
    uint32_t parent = 0;
    for (size_t c = 0; c < child_starts.size(); ++c) {
      while (parent + 1 < parent_starts.size() && parent_starts[parent + 1] <= child_starts[c]) {
        ++parent;
      }
      step.parent[c] = parent;
      step.bit[c] = set.prefixes()[child_starts[c]].Bit(depth);
    }
    step.every_child = IsEveryChild(step, parent_starts.size());
    plan->steps_.push_back(std::move(step));
    parent_starts = std::move(child_starts);
  }
  if (plan->cache_set_ == nullptr) plan->cache_set_ = target;
  plan->target_ = std::move(target);
  return plan;
}

std::shared_ptr<const EvaluationPlan> EvaluationPlan::Create(
    std::shared_ptr<const PrefixSet> target, std::shared_ptr<const PrefixSet> source,
    size_t cache_level) {
  std::shared_ptr<EvaluationPlan> plan = Build(target, std::move(source), cache_level);
  if (plan->source_ != nullptr) {
    std::shared_ptr<EvaluationPlan> root =
        Build(std::move(target), nullptr, plan->cache_set_->level());
    // The same level from the root (it starts above the source): the same
    // set, shared, so that either run leaves the cache the next plan expects.
    root->cache_set_ = plan->cache_set_;
    plan->root_plan_ = std::move(root);
  }
  return plan;
}

}  // namespace canopy::idpf
