#include "idpf/idpf.h"

#include <algorithm>
#include <bit>
#include <string>

#include "crypto/secure_wipe.h"
#include "idpf/internal/level_xofs.h"

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

// y + ctrl * correction, then negated for aggregator 1; branch-free in ctrl.
template <typename Value>
Value FinishValue(const Value& y, uint8_t ctrl, const Value& correction, int agg_id) {
  using F = typename Value::value_type;
  const F ctrl_element = F::FromUint64(ctrl);
  Value out;
  for (size_t i = 0; i < kValueLen; ++i) {
    out[i] = y[i] + correction[i] * ctrl_element;
    if (agg_id == 1) out[i] = -out[i];
  }
  return out;
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

// The index of the first bit where two distinct equal-length strings differ.
size_t FirstDifferingBit(const BitString& a, const BitString& b) {
  std::span<const uint8_t> x = a.bytes(), y = b.bytes();
  for (size_t i = 0; i < x.size(); ++i) {
    if (uint8_t diff = x[i] ^ y[i]; diff != 0) return 8 * i + std::countl_zero(diff);
  }
  return a.size();
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
    return MakeError(ErrorCode::kInvalidArgument, "alpha has " + Str(alpha.size()) +
                                                      " bits, the IDPF takes " + Str(bits_));
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
        public_share.inner_value_corrections[level][i] = (beta_inner[level][i] - w0[i] + w1[i]) * sign;
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
      out[index / 8] |= static_cast<uint8_t>((public_share.ctrl_corrections[level][j] & 1)
                                             << (index % 8));
    }
  }
  for (const Seed& seed : public_share.seed_corrections) out.insert(out.end(), seed.begin(), seed.end());
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
  if (!cached_nodes_.empty()) {
    crypto::SecureWipe(cached_nodes_.data(), cached_nodes_.size() * sizeof(Node));
  }
}

CachedEvaluator::CachedEvaluator(CachedEvaluator&& other) noexcept { *this = std::move(other); }

CachedEvaluator& CachedEvaluator::operator=(CachedEvaluator&& other) noexcept {
  if (this != &other) {
    bits_ = other.bits_;
    agg_id_ = other.agg_id_;
    public_share_ = std::move(other.public_share_);
    key_ = other.key_;
    crypto::SecureWipeObject(other.key_);
    xofs_ = std::move(other.xofs_);
    cached_level_ = std::exchange(other.cached_level_, -1);
    nodes_computed_ = other.nodes_computed_;
    cached_prefixes_ = std::move(other.cached_prefixes_);
    cached_nodes_ = std::move(other.cached_nodes_);
  }
  return *this;
}

Result<void> CachedEvaluator::CheckPrefixes(size_t level, std::span<const BitString> prefixes) const {
  for (size_t i = 0; i < prefixes.size(); ++i) {
    if (prefixes[i].size() != level + 1) {
      return MakeError(ErrorCode::kInvalidArgument, "a prefix at level " + Str(level) +
                                                        " must have " + Str(level + 1) + " bits");
    }
    if (i > 0 && !(prefixes[i - 1] < prefixes[i])) {
      return MakeError(ErrorCode::kInvalidArgument, "prefixes must be sorted and unique");
    }
  }
  return {};
}

Result<std::vector<InnerValue>> CachedEvaluator::EvaluateInner(size_t level,
                                                               std::span<const BitString> prefixes) {
  if (level + 1 >= bits_) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "inner level " + Str(level) + " out of range for " + Str(bits_) + " bits");
  }
  if (Result<void> checked = CheckPrefixes(level, prefixes); !checked) {
    return std::unexpected(checked.error());
  }
  std::vector<InnerValue> values;
  Walk(level, prefixes, &values, nullptr);
  return values;
}

Result<std::vector<LeafValue>> CachedEvaluator::EvaluateLeaf(std::span<const BitString> prefixes) {
  if (Result<void> checked = CheckPrefixes(bits_ - 1, prefixes); !checked) {
    return std::unexpected(checked.error());
  }
  std::vector<LeafValue> values;
  Walk(bits_ - 1, prefixes, nullptr, &values);
  return values;
}

// The walk goes down one depth at a time over the distinct ancestors of the
// requested prefixes. Because the prefixes are sorted, the ancestors at depth
// d are runs of consecutive prefixes: prefix i opens a new run exactly when it
// first differs from prefix i - 1 at a bit <= d. So each depth is a list of
// "run starts", and a node's parent is the run of depth d - 1 that contains it.
void CachedEvaluator::Walk(size_t level, std::span<const BitString> prefixes,
                           std::vector<InnerValue>* inner_values,
                           std::vector<LeafValue>* leaf_values) {
  const size_t count = prefixes.size();
  std::vector<size_t> first_difference(count, 0);
  for (size_t i = 1; i < count; ++i) {
    first_difference[i] = FirstDifferingBit(prefixes[i - 1], prefixes[i]);
  }
  auto run_starts_at = [&](size_t depth) {
    std::vector<size_t> starts;
    for (size_t i = 0; i < count; ++i) {
      if (i == 0 || first_difference[i] <= depth) starts.push_back(i);
    }
    return starts;
  };

  // Start from the cache when every run at the cached depth is cached.
  std::vector<Node> parents;
  std::vector<size_t> parent_starts;
  size_t start_depth = 0;
  if (cached_level_ >= 0 && static_cast<size_t>(cached_level_) < level && count > 0) {
    const size_t cached_depth = static_cast<size_t>(cached_level_);
    parent_starts = run_starts_at(cached_depth);
    size_t cursor = 0;
    for (size_t start : parent_starts) {
      BitString ancestor = prefixes[start].Prefix(cached_depth + 1);
      while (cursor < cached_prefixes_.size() && cached_prefixes_[cursor] < ancestor) ++cursor;
      if (cursor == cached_prefixes_.size() || !(cached_prefixes_[cursor] == ancestor)) break;
      parents.push_back(cached_nodes_[cursor]);
    }
    if (parents.size() == parent_starts.size()) start_depth = cached_depth + 1;
  }
  if (start_depth == 0) {
    parents.assign(1, Node{key_, static_cast<uint8_t>(agg_id_)});
    parent_starts.assign(1, 0);
  }

  std::vector<Seed> extended;
  std::vector<Seed> child_inputs;
  std::vector<Node> children;
  std::vector<Seed> parent_seeds;
  for (size_t depth = start_depth; depth <= level; ++depth) {
    const bool last = depth == level;
    const bool leaf = xofs_->IsLeaf(depth);
    std::vector<size_t> child_starts = last ? std::vector<size_t>() : run_starts_at(depth);
    if (last) {
      child_starts.resize(count);
      for (size_t i = 0; i < count; ++i) child_starts[i] = i;
    }

    // extend every parent (batched at inner levels), then apply its
    // correction words when its control bit is set.
    extended.resize(2 * parents.size());
    std::vector<std::array<uint8_t, 2>> parent_ctrl(parents.size());
    if (leaf) {
      for (size_t p = 0; p < parents.size(); ++p) {
        Extended e = xofs_->Extend(depth, parents[p].seed);
        extended[2 * p] = e.seeds[0];
        extended[2 * p + 1] = e.seeds[1];
        parent_ctrl[p] = e.ctrl;
      }
    } else {
      parent_seeds.resize(parents.size());
      for (size_t p = 0; p < parents.size(); ++p) parent_seeds[p] = parents[p].seed;
      xofs_->ExtendInnerBatch(parent_seeds, extended.data());
      for (size_t p = 0; p < parents.size(); ++p) {
        parent_ctrl[p][0] = internal::SplitControlBit(extended[2 * p]);
        parent_ctrl[p][1] = internal::SplitControlBit(extended[2 * p + 1]);
      }
    }
    const Seed& seed_cw = public_share_.seed_corrections[depth];
    const std::array<uint8_t, 2>& ctrl_cw = public_share_.ctrl_corrections[depth];
    for (size_t p = 0; p < parents.size(); ++p) {
      const uint8_t ctrl = parents[p].ctrl;
      XorSeedMasked(extended[2 * p], seed_cw, MaskOf(ctrl));
      XorSeedMasked(extended[2 * p + 1], seed_cw, MaskOf(ctrl));
      parent_ctrl[p][0] ^= ctrl_cw[0] & ctrl;
      parent_ctrl[p][1] ^= ctrl_cw[1] & ctrl;
    }

    // Pick each child's side of its parent, then convert all children.
    child_inputs.resize(child_starts.size());
    children.resize(child_starts.size());
    size_t parent = 0;
    for (size_t c = 0; c < child_starts.size(); ++c) {
      while (parent + 1 < parent_starts.size() && parent_starts[parent + 1] <= child_starts[c]) {
        ++parent;
      }
      const uint8_t bit = prefixes[child_starts[c]].Bit(depth);
      child_inputs[c] = extended[2 * parent + bit];
      children[c].ctrl = parent_ctrl[parent][bit];
    }
    if (leaf) {
      if (last) leaf_values->resize(children.size());
      for (size_t c = 0; c < children.size(); ++c) {
        xofs_->ConvertLeaf(child_inputs[c], &children[c].seed,
                           last ? &(*leaf_values)[c] : nullptr);
      }
    } else {
      std::vector<Seed> next_seeds(children.size());
      if (last) inner_values->resize(children.size());
      if (!children.empty()) {
        xofs_->ConvertInnerBatch(child_inputs, next_seeds.data(),
                                 last ? inner_values->data() : nullptr);
      }
      for (size_t c = 0; c < children.size(); ++c) children[c].seed = next_seeds[c];
      crypto::SecureWipe(next_seeds.data(), next_seeds.size() * sizeof(Seed));
    }
    nodes_computed_ += children.size();
    std::swap(parents, children);
    parent_starts = std::move(child_starts);
  }

  // parents now holds one node per requested prefix.
  if (inner_values != nullptr) {
    const InnerValue& correction = public_share_.inner_value_corrections[level];
    for (size_t i = 0; i < count; ++i) {
      (*inner_values)[i] = FinishValue((*inner_values)[i], parents[i].ctrl, correction, agg_id_);
    }
  } else {
    for (size_t i = 0; i < count; ++i) {
      (*leaf_values)[i] = FinishValue((*leaf_values)[i], parents[i].ctrl,
                                      public_share_.leaf_value_correction, agg_id_);
    }
  }
  if (!cached_nodes_.empty()) {
    crypto::SecureWipe(cached_nodes_.data(), cached_nodes_.size() * sizeof(Node));
  }
  cached_nodes_ = std::move(parents);
  cached_prefixes_.assign(prefixes.begin(), prefixes.end());
  cached_level_ = static_cast<long>(level);
  auto wipe = [](std::vector<Seed>& seeds) {
    if (!seeds.empty()) crypto::SecureWipe(seeds.data(), seeds.size() * sizeof(Seed));
  };
  wipe(extended);
  wipe(child_inputs);
  wipe(parent_seeds);
  if (!children.empty()) crypto::SecureWipe(children.data(), children.size() * sizeof(Node));
}

}  // namespace canopy::idpf
