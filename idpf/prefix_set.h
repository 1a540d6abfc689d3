// Candidate prefix sets and evaluation plans, prepared once per level and
// shared by every report's evaluator.
//
// In a heavy-hitters walk all reports of a batch are evaluated at the same
// candidate prefixes, level after level. Everything that depends only on the
// prefixes - validation, which tree nodes lie between one level's candidates
// and the next, which parent each node hangs from - is computed here once, so
// that the per-report work is AES and field arithmetic only.
#ifndef CANOPY_IDPF_PREFIX_SET_H_
#define CANOPY_IDPF_PREFIX_SET_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "crypto/error.h"
#include "idpf/bit_string.h"

namespace canopy::idpf {

// An immutable, validated set of candidate prefixes of one level: strictly
// increasing (sorted, unique), each level + 1 bits long.
class PrefixSet {
 public:
  // Errors (kInvalidArgument): a prefix of the wrong length, or prefixes not
  // strictly increasing.
  static Result<std::shared_ptr<const PrefixSet>> Create(size_t level,
                                                         std::vector<BitString> prefixes);

  size_t level() const { return level_; }
  size_t size() const { return prefixes_.size(); }
  const std::vector<BitString>& prefixes() const { return prefixes_; }

  // For i > 0, the first bit at which prefix i - 1 and prefix i differ.
  const std::vector<uint32_t>& first_difference() const { return first_difference_; }

  // A digest of the level and the prefixes: two sets are equal exactly when
  // their digests are (up to TurboSHAKE128 collisions). It lets an evaluator
  // recognise the set it cached even when the set was decoded anew, as each
  // aggregation job of a walk does.
  const std::array<uint8_t, 32>& digest() const { return digest_; }

  friend bool operator==(const PrefixSet& a, const PrefixSet& b) { return a.digest_ == b.digest_; }

 private:
  PrefixSet() = default;

  size_t level_ = 0;
  std::vector<BitString> prefixes_;
  std::vector<uint32_t> first_difference_;
  std::array<uint8_t, 32> digest_{};
};

// How to compute the tree nodes of a target prefix set, level by level,
// starting from the nodes of a source prefix set (the set the previous plan
// had the evaluator keep) or from the root.
class EvaluationPlan {
 public:
  // One level of the descent: node c of this depth is child `bit[c]` of node
  // `parent[c]` of the previous depth.
  struct Step {
    size_t depth;
    std::vector<uint32_t> parent;
    std::vector<uint8_t> bit;
    // True when this depth holds both children of every parent, in order
    // (node c is child c % 2 of parent c / 2), as the levels a round adds
    // below its survivors do: an evaluator can then correct the extended
    // seeds where they lie instead of gathering them.
    bool every_child = false;
  };

  // A plan from `source` when every target prefix extends one of its
  // prefixes (and source->level() < target->level()), otherwise from the
  // root. `source` may be null.
  //
  // `cache_level` is the level whose nodes an evaluator keeps after running
  // the plan, for the next plan to start from: the target's (the default, and
  // whenever the plan does not compute that level). A walk of several levels
  // a round keeps its round's first level: two nodes per survivor of the last
  // round instead of 2^stride, which is most of a cached report's memory at a
  // stride of 4; the next round computes the few levels in between again for
  // its own survivors' paths only.
  static std::shared_ptr<const EvaluationPlan> Create(std::shared_ptr<const PrefixSet> target,
                                                      std::shared_ptr<const PrefixSet> source,
                                                      size_t cache_level = SIZE_MAX);

  const std::shared_ptr<const PrefixSet>& target() const { return target_; }

  // The set whose nodes an evaluator keeps after running this plan (the
  // target's prefixes cut to cache_level + 1 bits; the target itself at its
  // own level), and the index in steps() of the step that computes them.
  const std::shared_ptr<const PrefixSet>& cache_set() const { return cache_set_; }
  size_t cache_step() const { return cache_step_; }

  // The set this plan starts from, or null when it starts from the root.
  const PrefixSet* source() const { return source_.get(); }

  // When starting from the source: the source nodes the first step's parent
  // indices refer to.
  const std::vector<uint32_t>& source_nodes() const { return source_nodes_; }

  const std::vector<Step>& steps() const { return steps_; }

  // The same target from the root, for an evaluator whose cache does not
  // hold the source (this plan itself when it starts from the root).
  const EvaluationPlan& FromRoot() const { return root_plan_ ? *root_plan_ : *this; }

 private:
  EvaluationPlan() = default;
  static std::shared_ptr<EvaluationPlan> Build(std::shared_ptr<const PrefixSet> target,
                                               std::shared_ptr<const PrefixSet> source,
                                               size_t cache_level);

  std::shared_ptr<const PrefixSet> target_;
  std::shared_ptr<const PrefixSet> cache_set_;
  size_t cache_step_ = 0;
  std::shared_ptr<const PrefixSet> source_;
  std::vector<uint32_t> source_nodes_;
  std::vector<Step> steps_;
  std::shared_ptr<const EvaluationPlan> root_plan_;
};

}  // namespace canopy::idpf

#endif  // CANOPY_IDPF_PREFIX_SET_H_
