// IdpfBBCGGI21, the incremental distributed point function of VDAF draft-20
// (section "The IDPF Construction"), as Poplar1 uses it: two shares, VALUE_LEN
// = 2, Field64 values with XofFixedKeyAes128 at the inner levels and Field255
// values with XofTurboShake128 at the leaf level.
//
// Two evaluation paths give identical outputs:
// - `Idpf::EvalInner` / `Idpf::EvalLeaf` are the draft's `eval`: every prefix
//   is walked from the root. Simple; the reference the fast path is tested
//   against.
// - `CachedEvaluator` holds one report's key and, between calls, the node
//   states of one level it evaluated last (the plan's cache level: the
//   target's, or in a walk of several levels a round the round's first). A
//   heavy-hitters walk asks for descendants of the previous candidates, so a
//   tree node is computed once or, for the few levels between a round's first
//   and its last, twice per walk, with the AES work of a whole level batched.
#ifndef CANOPY_IDPF_IDPF_H_
#define CANOPY_IDPF_IDPF_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "crypto/error.h"
#include "crypto/field255.h"
#include "crypto/field64.h"
#include "idpf/bit_string.h"
#include "idpf/prefix_set.h"

namespace canopy::idpf {

using crypto::Field255;
using crypto::Field64;

inline constexpr size_t kKeySize = 16;
inline constexpr size_t kNonceSize = 16;
inline constexpr size_t kRandSize = 2 * kKeySize;
inline constexpr size_t kValueLen = 2;
// Poplar1 encodes a level as a uint16, so strings are at most 2^16 bits.
inline constexpr size_t kMaxBits = 1 << 16;

using Seed = std::array<uint8_t, kKeySize>;
using Nonce = std::span<const uint8_t, kNonceSize>;
using InnerValue = std::array<Field64, kValueLen>;
using LeafValue = std::array<Field255, kValueLen>;

// The public share: the correction words of every level.
struct PublicShare {
  std::vector<Seed> seed_corrections;                    // One per level.
  std::vector<std::array<uint8_t, 2>> ctrl_corrections;  // One pair of bits per level.
  std::vector<InnerValue> inner_value_corrections;       // One per inner level.
  LeafValue leaf_value_correction;
};

// The output of key generation: the public share and each aggregator's key.
struct GeneratedKeys {
  PublicShare public_share;
  std::array<Seed, 2> keys;
};

namespace internal {
class LevelXofs;
}  // namespace internal

// The IDPF for strings of a fixed number of bits.
class Idpf {
 public:
  // Errors (kInvalidArgument): bits is 0 or above kMaxBits.
  static Result<Idpf> Create(size_t bits);

  size_t bits() const { return bits_; }

  // The size in bytes of an encoded public share.
  size_t PublicShareSize() const;

  // The draft's gen: the point function that is `beta_inner[l]` on the
  // level-l prefix of `alpha` (beta_leaf at the leaf) and zero elsewhere.
  // Errors (kInvalidArgument): alpha is not `bits` long, or beta_inner does
  // not have bits - 1 entries.
  Result<GeneratedKeys> Gen(const BitString& alpha, std::span<const InnerValue> beta_inner,
                            const LeafValue& beta_leaf, std::span<const uint8_t> ctx, Nonce nonce,
                            std::span<const uint8_t, kRandSize> rand) const;

  // The draft's encoding: packed control bits, seeds, inner and leaf payloads.
  std::vector<uint8_t> EncodePublicShare(const PublicShare& public_share) const;

  // Errors (kDecodeError): wrong length, non-zero padding bits, or a field
  // element out of range.
  Result<PublicShare> DecodePublicShare(std::span<const uint8_t> encoded) const;

  // The draft's eval at an inner level (level < bits - 1), from the root.
  // Prefixes must be unique and level + 1 bits long. Errors
  // (kInvalidArgument): agg_id not 0 or 1, level out of range, a prefix of
  // the wrong length or repeated, a public share for another size.
  Result<std::vector<InnerValue>> EvalInner(int agg_id, const PublicShare& public_share,
                                            const Seed& key, size_t level,
                                            std::span<const BitString> prefixes,
                                            std::span<const uint8_t> ctx, Nonce nonce) const;

  // The draft's eval at the leaf level (bits - 1); errors as EvalInner.
  Result<std::vector<LeafValue>> EvalLeaf(int agg_id, const PublicShare& public_share,
                                          const Seed& key, std::span<const BitString> prefixes,
                                          std::span<const uint8_t> ctx, Nonce nonce) const;

 private:
  explicit Idpf(size_t bits) : bits_(bits) {}

  template <typename Value>
  Result<std::vector<Value>> EvalFromRoot(int agg_id, const PublicShare& public_share,
                                          const Seed& key, size_t level,
                                          std::span<const BitString> prefixes,
                                          std::span<const uint8_t> ctx, Nonce nonce) const;

  size_t bits_;
};

// Evaluates one report's key level after level, caching node states.
//
// Each call evaluates the prefixes of an EvaluationPlan's target set. The
// node states of the plan's cache set (the target, or the target cut to the
// plan's cache level) are kept for the next call: a plan whose source is the
// cached set starts from them; any other plan is run from the root, so the
// results never depend on the order of calls. The plans are shared by all
// reports of a level; per report only AES and field arithmetic remain.
// Move-only; secrets are wiped on destruction. Not thread-safe: one evaluator
// is used by one thread at a time.
class CachedEvaluator {
 public:
  // Copies what it needs and derives the report's two AES key schedules.
  // Errors (kInvalidArgument): agg_id not 0 or 1, a public share for another
  // number of bits.
  static Result<CachedEvaluator> Create(const Idpf& idpf, int agg_id, PublicShare public_share,
                                        const Seed& key, std::span<const uint8_t> ctx, Nonce nonce);

  ~CachedEvaluator();
  CachedEvaluator(CachedEvaluator&&) noexcept;
  CachedEvaluator& operator=(CachedEvaluator&&) noexcept;

  // Writes the values of the plan's target prefixes, an inner level, to
  // `out`. Errors (kInvalidArgument): the target is not at an inner level, or
  // out.size() differs from the target's size.
  Result<void> EvaluateInner(const EvaluationPlan& plan, std::span<InnerValue> out);

  // The same at the leaf level.
  Result<void> EvaluateLeaf(const EvaluationPlan& plan, std::span<LeafValue> out);

  // Convenience forms that build the prefix set and plan on the spot.
  // Errors (kInvalidArgument): level out of range, prefixes of the wrong
  // length or not strictly increasing.
  Result<std::vector<InnerValue>> EvaluateInner(size_t level, std::span<const BitString> prefixes);
  Result<std::vector<LeafValue>> EvaluateLeaf(std::span<const BitString> prefixes);

  // The level of the cached node states, or -1 when nothing is cached.
  long cached_level() const { return cached_set_ ? static_cast<long>(cached_set_->level()) : -1; }

  // How many node states are cached.
  size_t cached_nodes() const { return cached_seeds_.size(); }

  // How many tree nodes this evaluator has computed over its lifetime; a walk
  // that only ever extends cached prefixes computes each node once.
  uint64_t nodes_computed() const { return nodes_computed_; }

  // ---- Levels in memory ----
  // A cache of many reports can keep each evaluator's corrections only for
  // the levels its next evaluation reads (Poplar1 moves the others out to a
  // LevelSlot): about 33 bytes a level, 8 KB a report at 256 bits.

  // The evaluator holds the corrections of levels [levels_first(),
  // levels_end()): every level after Create. Evaluating a plan that reads
  // another level fails with kInvalidArgument.
  size_t levels_first() const { return levels_first_; }
  size_t levels_end() const { return levels_first_ + public_share_.seed_corrections.size(); }

  // The levels evaluating `plan` reads, [first, end): from the level after
  // the cached one (or from the root when the cache does not serve the
  // plan) to the plan's target.
  std::pair<size_t, size_t> LevelsRead(const EvaluationPlan& plan) const;

  // The size of level `level`'s corrections as ExportLevel writes them: the
  // seed correction, a byte of the two control-bit corrections, the value
  // correction.
  size_t LevelBytes(size_t level) const;
  // Writes a held level's corrections to `out`, LevelBytes(level) bytes.
  void ExportLevel(size_t level, std::span<uint8_t> out) const;
  // Holds the levels [first, end) from now on, their corrections to be set
  // by ImportLevel, and frees those of every other level. first == end
  // holds none.
  void HoldLevels(size_t first, size_t end);
  // Sets a held level's corrections from ExportLevel's bytes. Errors
  // (kDecodeError): a value correction out of its field's range.
  Result<void> ImportLevel(size_t level, std::span<const uint8_t> in);

  // Asks the CPU to bring into cache what evaluating at inner level `level`
  // from the cached nodes reads first: the round keys, the first cached
  // nodes and the level's corrections (a hint; no effect on results). A batch
  // calls it for the next reports while it evaluates the current ones, since
  // each report's state is cold after a level.
  void Prefetch(size_t level) const;

 private:
  CachedEvaluator() = default;

  Result<std::shared_ptr<const EvaluationPlan>> PlanFor(size_t level,
                                                        std::span<const BitString> prefixes) const;
  // `requested`, or its from-root form when the cache does not hold its source.
  const EvaluationPlan& PlanToRun(const EvaluationPlan& requested) const;
  // The levels running `run` (a PlanToRun result) reads, [first, end).
  static std::pair<size_t, size_t> LevelsOfRun(const EvaluationPlan& run);
  // kInvalidArgument when running `run` (a PlanToRun result) reads a level
  // not held.
  Result<void> CheckLevelsHeld(const EvaluationPlan& run) const;
  // Runs `plan` (a PlanToRun result, whose levels are held), caches the
  // nodes of its cache set and writes the target's values to exactly one of
  // `inner_out` and `leaf_out`.
  void Walk(const EvaluationPlan& plan, std::span<InnerValue> inner_out,
            std::span<LeafValue> leaf_out);

  size_t bits_ = 0;
  int agg_id_ = 0;
  // The corrections of the held levels: entry i of each vector is level
  // levels_first_ + i (inner_value_corrections has no leaf entry); the leaf
  // correction is meaningful while the leaf level is held.
  PublicShare public_share_;
  size_t levels_first_ = 0;
  Seed key_{};
  std::unique_ptr<internal::LevelXofs> xofs_;
  uint64_t nodes_computed_ = 0;

  // The cache: the last plan's cache set and its nodes, in the set's order.
  std::shared_ptr<const PrefixSet> cached_set_;
  std::vector<Seed> cached_seeds_;
  std::vector<uint8_t> cached_ctrl_;
};

// Evaluations share a few working buffers per thread, which hold the seeds
// of the nodes just computed; by default every evaluation wipes them before
// it returns. While a DeferredScratchWipe is alive on a thread, that
// thread's evaluations leave them for the next one to overwrite, and the
// last DeferredScratchWipe to end wipes them: a batch of many reports wipes
// once instead of once per report. Create it on the stack of the thread
// that evaluates; it must end on that thread.
class DeferredScratchWipe {
 public:
  DeferredScratchWipe();
  ~DeferredScratchWipe();
  DeferredScratchWipe(const DeferredScratchWipe&) = delete;
  DeferredScratchWipe& operator=(const DeferredScratchWipe&) = delete;
};

}  // namespace canopy::idpf

#endif  // CANOPY_IDPF_IDPF_H_
