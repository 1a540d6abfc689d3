#include "idpf/idpf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>

#include "crypto/secure_wipe.h"
#include "idpf/internal/level_xofs.h"
#include "idpf/internal/scratch.h"

namespace canopy::idpf {
namespace {

using internal::Extended;
using internal::LevelXofs;
using internal::XorSeedMasked;

std::string Str(size_t value) { return std::to_string(value); }

// All-ones when `bit` is 1, zero when it is 0.
uint8_t MaskOf(uint8_t bit) { return static_cast<uint8_t>(-bit); }

// The value correction of `level` in the field of that level.
template <typename Value>
const Value& ValueCorrection(const PublicShare& public_share, size_t level);
template <>
const InnerValue& ValueCorrection<InnerValue>(const PublicShare& public_share, size_t level) {
  return public_share.inner_value_corrections[level];
}
template <>
const LeafValue& ValueCorrection<LeafValue>(const PublicShare& public_share, size_t) {
  return public_share.leaf_value_correction;
}

// y + ctrl * correction, then negated for aggregator 1; branch-free in ctrl
// (agg_id is public).
template <typename Value>
inline Value FinishValue(const Value& y, uint8_t ctrl, const Value& correction, int agg_id) {
  Value out;
  for (size_t i = 0; i < kValueLen; ++i) {
    // Masking is a constant-time multiplication by the control bit, far
    // cheaper than a field multiplication.
    const uint64_t mask = static_cast<uint64_t>(0) - (ctrl & 1);
    out[i] = y[i] + correction[i].Masked(mask);
    if (agg_id == 1) out[i] = -out[i];
  }
  return out;
}

// The working buffers of CachedEvaluator::Walk, shared by every evaluator
// of a thread: with hundreds of reports verified per batch, per-evaluator
// buffers would multiply the memory a level streams through (about 20 KB
// per report at 256 candidates); shared ones stay in cache. They are wiped
// after every walk, or when a batch under a DeferredScratchWipe ends, so
// they never hold a seed past the call or batch that computed it.
struct WalkScratch {
  internal::ScratchBuffer<Seed> parent_seeds;
  internal::ScratchBuffer<uint8_t> parent_ctrl;
  internal::ScratchBuffer<Seed> extended_seeds;
  internal::ScratchBuffer<Seed> child_inputs;
  internal::ScratchBuffer<Seed> child_seeds;
  internal::ScratchBuffer<uint8_t> child_ctrl;

  void Wipe() {
    parent_seeds.Wipe();
    parent_ctrl.Wipe();
    extended_seeds.Wipe();
    child_inputs.Wipe();
    child_seeds.Wipe();
    child_ctrl.Wipe();
  }
};

WalkScratch& ThreadScratch() {
  thread_local WalkScratch scratch;
  return scratch;
}

// How many DeferredScratchWipe objects are alive on this thread.
thread_local int deferred_wipes = 0;

// Wipes every working buffer of this thread's evaluations.
void WipeThreadScratch() { ThreadScratch().Wipe(); }

// The control bit is the low bit of a seed's byte 0: bit 0 or bit 56 of its
// first 64-bit word, depending on byte order.
constexpr uint64_t kCtrlBit =
    std::endian::native == std::endian::little ? uint64_t{1} : uint64_t{1} << 56;
constexpr int kCtrlShift = std::endian::native == std::endian::little ? 0 : 56;

// One child of a node: its extended seed (control bit still inside) taken
// out of `extended`, the control bit split off, the seed correction applied
// under `mask` (all ones when the parent's control bit is set) and written
// to `input`; returns the extended control bit. Works on 64-bit words in
// registers: storing a seed and reloading it for the correction would stall
// on store forwarding.
inline uint8_t CorrectChild(const Seed& extended, const uint64_t seed_cw_words[2], uint64_t mask,
                            Seed& input) {
  uint64_t words[2];
  std::memcpy(words, extended.data(), kKeySize);
  const uint8_t extended_ctrl = static_cast<uint8_t>((words[0] >> kCtrlShift) & 1);
  words[0] &= ~kCtrlBit;
  words[0] ^= seed_cw_words[0] & mask;
  words[1] ^= seed_cw_words[1] & mask;
  std::memcpy(input.data(), words, kKeySize);
  return extended_ctrl;
}

// The children of a step that takes some children of some parents: child c
// is side step.bit[c] of parent step.parent[c], gathered out of `extended`
// (two seeds per parent) into `inputs`, with its control bit in `ctrl`.
void GatherChildren(const EvaluationPlan::Step& step, const Seed& seed_cw,
                    const std::array<uint8_t, 2>& ctrl_cw, std::span<const Seed> extended,
                    std::span<const uint8_t> parent_ctrl, std::span<Seed> inputs,
                    std::span<uint8_t> ctrl) {
  uint64_t seed_cw_words[2];
  std::memcpy(seed_cw_words, seed_cw.data(), kKeySize);
  for (size_t c = 0; c < inputs.size(); ++c) {
    const uint32_t parent = step.parent[c];
    const uint8_t bit = step.bit[c];
    const uint8_t parent_control = parent_ctrl[parent];
    const uint64_t mask = static_cast<uint64_t>(0) - parent_control;
    const uint8_t extended_ctrl =
        CorrectChild(extended[2 * parent + bit], seed_cw_words, mask, inputs[c]);
    ctrl[c] = extended_ctrl ^ (ctrl_cw[bit] & parent_control);
  }
}

// The children of a step that takes both children of every parent: the
// extended seeds are the children in order, corrected where they lie
// (no gather, no second buffer), with their control bits in `ctrl`.
void CorrectEveryChild(const Seed& seed_cw, const std::array<uint8_t, 2>& ctrl_cw,
                       std::span<const uint8_t> parent_ctrl, std::span<Seed> children,
                       std::span<uint8_t> ctrl) {
  uint64_t seed_cw_words[2];
  std::memcpy(seed_cw_words, seed_cw.data(), kKeySize);
  for (size_t parent = 0; parent < parent_ctrl.size(); ++parent) {
    const uint8_t parent_control = parent_ctrl[parent];
    const uint64_t mask = static_cast<uint64_t>(0) - parent_control;
    Seed& left = children[2 * parent];
    Seed& right = children[2 * parent + 1];
    const uint8_t left_ctrl = CorrectChild(left, seed_cw_words, mask, left);
    const uint8_t right_ctrl = CorrectChild(right, seed_cw_words, mask, right);
    ctrl[2 * parent] = left_ctrl ^ (ctrl_cw[0] & parent_control);
    ctrl[2 * parent + 1] = right_ctrl ^ (ctrl_cw[1] & parent_control);
  }
}

// The capacity of a few levels outlives HoldLevels(0, 0): a walk holds a
// round's few levels, drops them and holds the next round's, and would
// otherwise free and allocate four vectors per report and round.
constexpr size_t kLevelsKeptAllocated = 8;

template <typename T>
void ResizeKeepingSmall(std::vector<T>& values, size_t size) {
  values.resize(size);
  if (values.capacity() > std::max(size, kLevelsKeptAllocated)) values.shrink_to_fit();
}

Result<void> CheckPublicShareShape(const PublicShare& public_share, size_t bits) {
  if (public_share.seed_corrections.size() != bits ||
      public_share.ctrl_corrections.size() != bits ||
      public_share.inner_value_corrections.size() != bits - 1) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "public share is not for " + Str(bits) + "-bit strings");
  }
  return {};
}

}  // namespace

// ---- Idpf ------------------------------------------------------------------

Result<Idpf> Idpf::Create(size_t bits) {
  if (bits == 0 || bits > kMaxBits) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "IDPF bit length must be in [1, " + Str(kMaxBits) + "], got " + Str(bits));
  }
  return Idpf(bits);
}

size_t Idpf::PublicShareSize() const {
  return (2 * bits_ + 7) / 8 + kKeySize * bits_ + Field64::kEncodedSize * kValueLen * (bits_ - 1) +
         Field255::kEncodedSize * kValueLen;
}

Result<GeneratedKeys> Idpf::Gen(const BitString& alpha, std::span<const InnerValue> beta_inner,
                                const LeafValue& beta_leaf, std::span<const uint8_t> ctx,
                                Nonce nonce, std::span<const uint8_t, kRandSize> rand) const {
  if (alpha.size() != bits_) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "alpha has " + Str(alpha.size()) + " bits, the IDPF takes " + Str(bits_));
  }
  if (beta_inner.size() != bits_ - 1) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "beta_inner must have " + Str(bits_ - 1) + " entries");
  }
  LevelXofs xofs(bits_, ctx, nonce);
  GeneratedKeys out;
  std::copy_n(rand.begin(), kKeySize, out.keys[0].begin());
  std::copy_n(rand.begin() + kKeySize, kKeySize, out.keys[1].begin());
  PublicShare& public_share = out.public_share;
  public_share.seed_corrections.resize(bits_);
  public_share.ctrl_corrections.resize(bits_);
  public_share.inner_value_corrections.resize(bits_ - 1);

  std::array<Seed, 2> seed = out.keys;
  std::array<uint8_t, 2> ctrl = {0, 1};
  for (size_t level = 0; level < bits_; ++level) {
    // alpha is the client's secret: every choice below is a masked select.
    const uint8_t keep = alpha.Bit(level);
    const uint8_t keep_mask = MaskOf(keep);
    Extended e0 = xofs.Extend(level, seed[0]);
    Extended e1 = xofs.Extend(level, seed[1]);

    Seed seed_cw;  // s0[lose] ^ s1[lose]
    for (size_t i = 0; i < kKeySize; ++i) {
      uint8_t lose0 = (e0.seeds[1][i] & ~keep_mask) | (e0.seeds[0][i] & keep_mask);
      uint8_t lose1 = (e1.seeds[1][i] & ~keep_mask) | (e1.seeds[0][i] & keep_mask);
      seed_cw[i] = lose0 ^ lose1;
    }
    const std::array<uint8_t, 2> ctrl_cw = {
        static_cast<uint8_t>(e0.ctrl[0] ^ e1.ctrl[0] ^ keep ^ 1),
        static_cast<uint8_t>(e0.ctrl[1] ^ e1.ctrl[1] ^ keep)};
    const uint8_t ctrl_cw_keep = (ctrl_cw[0] & ~keep_mask & 1) | (ctrl_cw[1] & keep_mask & 1);

    std::array<Seed, 2> x;
    const Extended* extended[2] = {&e0, &e1};
    for (int j = 0; j < 2; ++j) {
      const Extended& e = *extended[j];
      for (size_t i = 0; i < kKeySize; ++i) {
        x[j][i] = (e.seeds[0][i] & ~keep_mask) | (e.seeds[1][i] & keep_mask);
      }
      XorSeedMasked(x[j], seed_cw, MaskOf(ctrl[j]));
      const uint8_t t_keep = (e.ctrl[0] & ~keep_mask & 1) | (e.ctrl[1] & keep_mask & 1);
      ctrl[j] = t_keep ^ (ctrl[j] & ctrl_cw_keep);
    }

    public_share.seed_corrections[level] = seed_cw;
    public_share.ctrl_corrections[level] = ctrl_cw;
    if (xofs.IsLeaf(level)) {
      LeafValue w0, w1;
      xofs.ConvertLeaf(x[0], &seed[0], &w0);
      xofs.ConvertLeaf(x[1], &seed[1], &w1);
      const Field255 sign = Field255::One() - Field255::FromUint64(2 * ctrl[1]);
      for (size_t i = 0; i < kValueLen; ++i) {
        public_share.leaf_value_correction[i] = (beta_leaf[i] - w0[i] + w1[i]) * sign;
      }
    } else {
      InnerValue w0, w1;
      xofs.ConvertInner(x[0], &seed[0], &w0);
      xofs.ConvertInner(x[1], &seed[1], &w1);
      const Field64 sign = Field64::One() - Field64::FromUint64(2 * ctrl[1]);
      for (size_t i = 0; i < kValueLen; ++i) {
        public_share.inner_value_corrections[level][i] =
            (beta_inner[level][i] - w0[i] + w1[i]) * sign;
      }
    }
    crypto::SecureWipeObject(x);
    crypto::SecureWipeObject(e0);
    crypto::SecureWipeObject(e1);
  }
  crypto::SecureWipeObject(seed);
  return out;
}

std::vector<uint8_t> Idpf::EncodePublicShare(const PublicShare& public_share) const {
  std::vector<uint8_t> out((2 * bits_ + 7) / 8, 0);
  for (size_t level = 0; level < bits_; ++level) {
    for (size_t j = 0; j < 2; ++j) {
      size_t index = 2 * level + j;
      out[index / 8] |=
          static_cast<uint8_t>((public_share.ctrl_corrections[level][j] & 1) << (index % 8));
    }
  }
  for (const Seed& seed : public_share.seed_corrections)
    out.insert(out.end(), seed.begin(), seed.end());
  for (const InnerValue& value : public_share.inner_value_corrections) {
    crypto::EncodeVec<Field64>(value, out);
  }
  crypto::EncodeVec<Field255>(public_share.leaf_value_correction, out);
  return out;
}

Result<PublicShare> Idpf::DecodePublicShare(std::span<const uint8_t> encoded) const {
  if (encoded.size() != PublicShareSize()) {
    return MakeError(ErrorCode::kDecodeError, "IDPF public share for " + Str(bits_) +
                                                  " bits must be " + Str(PublicShareSize()) +
                                                  " bytes, got " + Str(encoded.size()));
  }
  PublicShare out;
  const size_t control_bytes = (2 * bits_ + 7) / 8;
  const size_t used_bits = 2 * bits_ - 8 * (control_bytes - 1);  // Bits used in the last byte.
  if (used_bits < 8 && (encoded[control_bytes - 1] >> used_bits) != 0) {
    return MakeError(ErrorCode::kDecodeError, "IDPF public share has non-zero padding bits");
  }
  out.ctrl_corrections.resize(bits_);
  for (size_t level = 0; level < bits_; ++level) {
    for (size_t j = 0; j < 2; ++j) {
      size_t index = 2 * level + j;
      out.ctrl_corrections[level][j] = (encoded[index / 8] >> (index % 8)) & 1;
    }
  }
  size_t offset = control_bytes;
  out.seed_corrections.resize(bits_);
  for (Seed& seed : out.seed_corrections) {
    std::copy_n(encoded.begin() + static_cast<ptrdiff_t>(offset), kKeySize, seed.begin());
    offset += kKeySize;
  }
  out.inner_value_corrections.resize(bits_ - 1);
  for (InnerValue& value : out.inner_value_corrections) {
    for (Field64& element : value) {
      Result<Field64> decoded = Field64::Decode(encoded.subspan(offset, Field64::kEncodedSize));
      if (!decoded) return std::unexpected(decoded.error());
      element = *decoded;
      offset += Field64::kEncodedSize;
    }
  }
  for (Field255& element : out.leaf_value_correction) {
    Result<Field255> decoded = Field255::Decode(encoded.subspan(offset, Field255::kEncodedSize));
    if (!decoded) return std::unexpected(decoded.error());
    element = *decoded;
    offset += Field255::kEncodedSize;
  }
  return out;
}

template <typename Value>
Result<std::vector<Value>> Idpf::EvalFromRoot(int agg_id, const PublicShare& public_share,
                                              const Seed& key, size_t level,
                                              std::span<const BitString> prefixes,
                                              std::span<const uint8_t> ctx, Nonce nonce) const {
  if (agg_id != 0 && agg_id != 1) {
    return MakeError(ErrorCode::kInvalidArgument, "aggregator id must be 0 or 1");
  }
  if (Result<void> shape = CheckPublicShareShape(public_share, bits_); !shape) {
    return std::unexpected(shape.error());
  }
  std::vector<BitString> sorted(prefixes.begin(), prefixes.end());
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return MakeError(ErrorCode::kInvalidArgument, "prefixes must be unique");
  }
  LevelXofs xofs(bits_, ctx, nonce);
  std::vector<Value> out;
  out.reserve(prefixes.size());
  for (const BitString& prefix : prefixes) {
    if (prefix.size() != level + 1) {
      return MakeError(ErrorCode::kInvalidArgument, "a prefix at level " + Str(level) +
                                                        " must have " + Str(level + 1) + " bits");
    }
    Seed seed = key;
    uint8_t ctrl = static_cast<uint8_t>(agg_id);
    Value y;
    for (size_t depth = 0; depth <= level; ++depth) {
      const uint8_t bit = prefix.Bit(depth);
      Extended e = xofs.Extend(depth, seed);
      const uint8_t mask = MaskOf(ctrl);
      XorSeedMasked(e.seeds[0], public_share.seed_corrections[depth], mask);
      XorSeedMasked(e.seeds[1], public_share.seed_corrections[depth], mask);
      e.ctrl[0] ^= public_share.ctrl_corrections[depth][0] & ctrl;
      e.ctrl[1] ^= public_share.ctrl_corrections[depth][1] & ctrl;
      ctrl = e.ctrl[bit];
      const bool want_value = depth == level;
      if constexpr (std::is_same_v<Value, LeafValue>) {
        if (xofs.IsLeaf(depth)) {
          xofs.ConvertLeaf(e.seeds[bit], &seed, &y);  // The leaf is always the last depth.
        } else {
          xofs.ConvertInner(e.seeds[bit], &seed, nullptr);
        }
      } else {
        xofs.ConvertInner(e.seeds[bit], &seed, want_value ? &y : nullptr);
      }
      crypto::SecureWipeObject(e);
    }
    out.push_back(FinishValue(y, ctrl, ValueCorrection<Value>(public_share, level), agg_id));
    crypto::SecureWipeObject(seed);
  }
  return out;
}

Result<std::vector<InnerValue>> Idpf::EvalInner(int agg_id, const PublicShare& public_share,
                                                const Seed& key, size_t level,
                                                std::span<const BitString> prefixes,
                                                std::span<const uint8_t> ctx, Nonce nonce) const {
  if (level + 1 >= bits_) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "inner level " + Str(level) + " out of range for " + Str(bits_) + " bits");
  }
  return EvalFromRoot<InnerValue>(agg_id, public_share, key, level, prefixes, ctx, nonce);
}

Result<std::vector<LeafValue>> Idpf::EvalLeaf(int agg_id, const PublicShare& public_share,
                                              const Seed& key, std::span<const BitString> prefixes,
                                              std::span<const uint8_t> ctx, Nonce nonce) const {
  return EvalFromRoot<LeafValue>(agg_id, public_share, key, bits_ - 1, prefixes, ctx, nonce);
}

// ---- CachedEvaluator -----------------------------------------------------------

Result<CachedEvaluator> CachedEvaluator::Create(const Idpf& idpf, int agg_id,
                                                PublicShare public_share, const Seed& key,
                                                std::span<const uint8_t> ctx, Nonce nonce) {
  if (agg_id != 0 && agg_id != 1) {
    return MakeError(ErrorCode::kInvalidArgument, "aggregator id must be 0 or 1");
  }
  if (Result<void> shape = CheckPublicShareShape(public_share, idpf.bits()); !shape) {
    return std::unexpected(shape.error());
  }
  CachedEvaluator evaluator;
  evaluator.bits_ = idpf.bits();
  evaluator.agg_id_ = agg_id;
  evaluator.public_share_ = std::move(public_share);
  evaluator.key_ = key;
  evaluator.xofs_ = std::make_unique<LevelXofs>(idpf.bits(), ctx, nonce);
  return evaluator;
}

CachedEvaluator::~CachedEvaluator() {
  crypto::SecureWipeObject(key_);
  crypto::SecureWipeVector(cached_seeds_);
  crypto::SecureWipeVector(cached_ctrl_);
}

CachedEvaluator::CachedEvaluator(CachedEvaluator&& other) noexcept { *this = std::move(other); }

CachedEvaluator& CachedEvaluator::operator=(CachedEvaluator&& other) noexcept {
  if (this != &other) {
    bits_ = other.bits_;
    agg_id_ = other.agg_id_;
    public_share_ = std::move(other.public_share_);
    levels_first_ = other.levels_first_;
    key_ = other.key_;
    crypto::SecureWipeObject(other.key_);
    xofs_ = std::move(other.xofs_);
    nodes_computed_ = other.nodes_computed_;
    cached_set_ = std::move(other.cached_set_);
    // This evaluator's own nodes are freed by the moves: wiped first.
    crypto::SecureWipeVector(cached_seeds_);
    crypto::SecureWipeVector(cached_ctrl_);
    cached_seeds_ = std::move(other.cached_seeds_);
    cached_ctrl_ = std::move(other.cached_ctrl_);
  }
  return *this;
}

Result<void> CachedEvaluator::EvaluateInner(const EvaluationPlan& plan, std::span<InnerValue> out) {
  const PrefixSet& target = *plan.target();
  if (target.level() + 1 >= bits_) {
    return MakeError(ErrorCode::kInvalidArgument, "inner level " + Str(target.level()) +
                                                      " out of range for " + Str(bits_) + " bits");
  }
  if (out.size() != target.size()) {
    return MakeError(ErrorCode::kInvalidArgument, "output span does not match the prefix count");
  }
  const EvaluationPlan& run = PlanToRun(plan);
  if (Result<void> held = CheckLevelsHeld(run); !held) return held;
  Walk(run, out, {});
  return {};
}

Result<void> CachedEvaluator::EvaluateLeaf(const EvaluationPlan& plan, std::span<LeafValue> out) {
  const PrefixSet& target = *plan.target();
  if (target.level() + 1 != bits_) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        "level " + Str(target.level()) + " is not the leaf of " + Str(bits_) + " bits");
  }
  if (out.size() != target.size()) {
    return MakeError(ErrorCode::kInvalidArgument, "output span does not match the prefix count");
  }
  const EvaluationPlan& run = PlanToRun(plan);
  if (Result<void> held = CheckLevelsHeld(run); !held) return held;
  Walk(run, {}, out);
  return {};
}

Result<std::shared_ptr<const EvaluationPlan>> CachedEvaluator::PlanFor(
    size_t level, std::span<const BitString> prefixes) const {
  if (level >= bits_) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "level " + Str(level) + " out of range for " + Str(bits_) + " bits");
  }
  Result<std::shared_ptr<const PrefixSet>> set =
      PrefixSet::Create(level, std::vector<BitString>(prefixes.begin(), prefixes.end()));
  if (!set) return std::unexpected(set.error());
  return EvaluationPlan::Create(std::move(*set), cached_set_);
}

Result<std::vector<InnerValue>> CachedEvaluator::EvaluateInner(
    size_t level, std::span<const BitString> prefixes) {
  auto plan = PlanFor(level, prefixes);
  if (!plan) return std::unexpected(plan.error());
  std::vector<InnerValue> values(prefixes.size());
  if (Result<void> done = EvaluateInner(**plan, values); !done) {
    return std::unexpected(done.error());
  }
  return values;
}

Result<std::vector<LeafValue>> CachedEvaluator::EvaluateLeaf(std::span<const BitString> prefixes) {
  auto plan = PlanFor(bits_ - 1, prefixes);
  if (!plan) return std::unexpected(plan.error());
  std::vector<LeafValue> values(prefixes.size());
  if (Result<void> done = EvaluateLeaf(**plan, values); !done) {
    return std::unexpected(done.error());
  }
  return values;
}

void CachedEvaluator::Walk(const EvaluationPlan& plan, std::span<InnerValue> inner_out,
                           std::span<LeafValue> leaf_out) {
  WalkScratch& scratch = ThreadScratch();
  const size_t target_level = plan.target()->level();

  // The starting nodes: cached ones, or the root.
  std::span<Seed> parent_seeds;
  std::span<uint8_t> parent_ctrl;
  if (plan.source() != nullptr) {
    const std::vector<uint32_t>& sources = plan.source_nodes();
    parent_seeds = scratch.parent_seeds.Take(sources.size());
    parent_ctrl = scratch.parent_ctrl.Take(sources.size());
    for (size_t k = 0; k < sources.size(); ++k) {
      parent_seeds[k] = cached_seeds_[sources[k]];
      parent_ctrl[k] = cached_ctrl_[sources[k]];
    }
  } else {
    parent_seeds = scratch.parent_seeds.Take(1);
    parent_ctrl = scratch.parent_ctrl.Take(1);
    parent_seeds[0] = key_;
    parent_ctrl[0] = static_cast<uint8_t>(agg_id_);
  }

  const std::vector<EvaluationPlan::Step>& steps = plan.steps();
  for (size_t s = 0; s < steps.size(); ++s) {
    const EvaluationPlan::Step& step = steps[s];
    const size_t depth = step.depth;
    const bool last = depth == target_level;
    const bool leaf = xofs_->IsLeaf(depth);
    const size_t parents = parent_seeds.size();
    const size_t children = step.parent.size();

    // extend every parent. The control bits are split off in the children's
    // loop below, which reads every extended seed it uses anyway.
    std::span<Seed> extended_seeds = scratch.extended_seeds.Take(2 * parents);
    if (parents > 0) {
      if (leaf) {
        xofs_->ExtendLeafBatch(parent_seeds, extended_seeds.data());
      } else {
        xofs_->ExtendInnerBatch(parent_seeds, extended_seeds.data());
      }
    }
    // Each child takes its side of its parent, corrected when the parent's
    // control bit is set; then all children are converted.
    const Seed& seed_cw = public_share_.seed_corrections[depth - levels_first_];
    const std::array<uint8_t, 2>& ctrl_cw = public_share_.ctrl_corrections[depth - levels_first_];
    std::span<Seed> child_seeds = scratch.child_seeds.Take(children);
    std::span<uint8_t> child_ctrl = scratch.child_ctrl.Take(children);
    std::span<Seed> child_inputs;
    if (step.every_child) {
      // The extended seeds are the children, in order: corrected in place.
      child_inputs = extended_seeds;
      CorrectEveryChild(seed_cw, ctrl_cw, parent_ctrl, child_inputs, child_ctrl);
    } else {
      child_inputs = scratch.child_inputs.Take(children);
      GatherChildren(step, seed_cw, ctrl_cw, extended_seeds, parent_ctrl, child_inputs, child_ctrl);
    }
    // The target's next seeds are only needed when the plan caches them;
    // otherwise convert computes the values alone (half its AES work).
    const bool seeds_needed = !last || s == plan.cache_step();
    Seed* next_seeds = seeds_needed ? child_seeds.data() : nullptr;
    if (leaf) {
      xofs_->ConvertLeafBatch(child_inputs, next_seeds, last ? leaf_out.data() : nullptr);
    } else if (children > 0) {
      xofs_->ConvertInnerBatch(child_inputs, next_seeds, last ? inner_out.data() : nullptr);
    }
    nodes_computed_ += children;
    scratch.parent_seeds.swap(scratch.child_seeds);
    scratch.parent_ctrl.swap(scratch.child_ctrl);
    parent_seeds = child_seeds;
    parent_ctrl = child_ctrl;
    if (s == plan.cache_step()) {
      // The nodes the next plan starts from (the walk read the old ones
      // before its first step). The set goes first: if an allocation below
      // fails, no plan finds wiped nodes under its name.
      cached_set_.reset();
      crypto::SecureWipeVector(cached_seeds_);
      crypto::SecureWipeVector(cached_ctrl_);
      cached_seeds_.assign(parent_seeds.begin(), parent_seeds.end());
      cached_ctrl_.assign(parent_ctrl.begin(), parent_ctrl.end());
      cached_set_ = plan.cache_set();
    }
  }

  // parent_ctrl now holds one control bit per target prefix, in order.
  if (!inner_out.empty()) {
    const InnerValue& correction =
        public_share_.inner_value_corrections[target_level - levels_first_];
    // FinishValue for every prefix, four elements at a time, over the values
    // seen as one array of 2 * n elements (std::array has no padding: the
    // assertion below; ConvertInnerBatch writes these same bytes).
    static_assert(sizeof(InnerValue) == kValueLen * sizeof(Field64));
    crypto::AddSelectedPairs(std::span<Field64>(inner_out.front().data(), 2 * inner_out.size()),
                             parent_ctrl.first(inner_out.size()), correction, agg_id_ == 1);
  }
  for (size_t i = 0; i < leaf_out.size(); ++i) {
    leaf_out[i] =
        FinishValue(leaf_out[i], parent_ctrl[i], public_share_.leaf_value_correction, agg_id_);
  }
  if (deferred_wipes == 0) WipeThreadScratch();
}

void CachedEvaluator::Prefetch(size_t level) const {
  if (xofs_ != nullptr) xofs_->Prefetch();
  __builtin_prefetch(cached_seeds_.data());
  __builtin_prefetch(cached_ctrl_.data());
  if (level < levels_first_) return;
  const size_t index = level - levels_first_;
  if (index < public_share_.seed_corrections.size()) {
    __builtin_prefetch(&public_share_.seed_corrections[index]);
    __builtin_prefetch(&public_share_.ctrl_corrections[index]);
  }
  if (index < public_share_.inner_value_corrections.size()) {
    __builtin_prefetch(&public_share_.inner_value_corrections[index]);
  }
}

// ---- Levels in memory -------------------------------------------------------

const EvaluationPlan& CachedEvaluator::PlanToRun(const EvaluationPlan& requested) const {
  // The cache serves the plan when it holds the plan's source set; the set may
  // be another object with the same prefixes (decoded by another job).
  const bool cache_serves =
      requested.source() != nullptr && cached_set_ != nullptr &&
      (requested.source() == cached_set_.get() || *requested.source() == *cached_set_);
  return requested.source() != nullptr && !cache_serves ? requested.FromRoot() : requested;
}

std::pair<size_t, size_t> CachedEvaluator::LevelsRead(const EvaluationPlan& plan) const {
  return LevelsOfRun(PlanToRun(plan));
}

std::pair<size_t, size_t> CachedEvaluator::LevelsOfRun(const EvaluationPlan& run) {
  const size_t first = run.source() != nullptr ? run.source()->level() + 1 : 0;
  return {first, run.target()->level() + 1};
}

Result<void> CachedEvaluator::CheckLevelsHeld(const EvaluationPlan& run) const {
  const auto [first, end] = LevelsOfRun(run);
  if (first < levels_first() || end > levels_end()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the evaluation reads levels " + Str(first) + " to " + Str(end - 1) +
                         ", the evaluator holds the corrections of " + Str(levels_first()) +
                         " to " + Str(levels_end()) + " (exclusive)");
  }
  return {};
}

size_t CachedEvaluator::LevelBytes(size_t level) const {
  const size_t value_bytes =
      level + 1 == bits_ ? kValueLen * Field255::kEncodedSize : kValueLen * Field64::kEncodedSize;
  return kKeySize + 1 + value_bytes;
}

void CachedEvaluator::ExportLevel(size_t level, std::span<uint8_t> out) const {
  const size_t index = level - levels_first_;
  uint8_t* at = out.data();
  at = std::copy_n(public_share_.seed_corrections[index].begin(), kKeySize, at);
  const std::array<uint8_t, 2>& ctrl = public_share_.ctrl_corrections[index];
  *at++ = static_cast<uint8_t>((ctrl[0] & 1) | (ctrl[1] & 1) << 1);
  if (level + 1 == bits_) {
    for (const Field255& element : public_share_.leaf_value_correction) {
      element.Encode(at);
      at += Field255::kEncodedSize;
    }
  } else {
    for (const Field64& element : public_share_.inner_value_corrections[index]) {
      element.Encode(at);
      at += Field64::kEncodedSize;
    }
  }
}

void CachedEvaluator::HoldLevels(size_t first, size_t end) {
  levels_first_ = first;
  const size_t inner_end = std::min(end, bits_ - 1);
  ResizeKeepingSmall(public_share_.seed_corrections, end - first);
  ResizeKeepingSmall(public_share_.ctrl_corrections, end - first);
  ResizeKeepingSmall(public_share_.inner_value_corrections,
                     inner_end > first ? inner_end - first : 0);
}

Result<void> CachedEvaluator::ImportLevel(size_t level, std::span<const uint8_t> in) {
  const size_t index = level - levels_first_;
  const uint8_t* at = in.data();
  std::copy_n(at, kKeySize, public_share_.seed_corrections[index].begin());
  at += kKeySize;
  public_share_.ctrl_corrections[index] = {static_cast<uint8_t>(*at & 1),
                                           static_cast<uint8_t>((*at >> 1) & 1)};
  ++at;
  auto decode_into = [&](auto& values) -> Result<void> {
    using F = std::decay_t<decltype(values[0])>;
    for (F& element : values) {
      Result<F> decoded = F::Decode(std::span<const uint8_t>(at, F::kEncodedSize));
      if (!decoded) return std::unexpected(decoded.error());
      element = *decoded;
      at += F::kEncodedSize;
    }
    return {};
  };
  return level + 1 == bits_ ? decode_into(public_share_.leaf_value_correction)
                            : decode_into(public_share_.inner_value_corrections[index]);
}

DeferredScratchWipe::DeferredScratchWipe() { ++deferred_wipes; }

DeferredScratchWipe::~DeferredScratchWipe() {
  if (--deferred_wipes == 0) WipeThreadScratch();
}

}  // namespace canopy::idpf
