#include "poplar/poplar1.h"

#include <algorithm>
#include <cstring>
#include <ranges>
#include <set>
#include <typeinfo>

#include "crypto/keccak_x4.h"
#include "crypto/secure_wipe.h"

namespace canopy::poplar {

using idpf::BitString;
using idpf::InnerValue;
using idpf::LeafValue;

namespace {

constexpr uint16_t kUsageShardRand = 1;
constexpr uint16_t kUsageCorrInner = 2;
constexpr uint16_t kUsageCorrLeaf = 3;
constexpr uint16_t kUsageVerifyRand = 4;

constexpr size_t kIdpfKeySize = idpf::kKeySize;
constexpr size_t kSeedSize = crypto::XofTurboShake128::kSeedSize;
constexpr size_t kNonceSize = 16;
constexpr size_t kVerifyKeySize = 32;

// Verification steps of the draft's state machine. The first step's memory
// holds the output share and three more elements: (A, B, aggregator ID)
// after the share (kStepEvaluateSketchTail, written now: dropping them
// leaves the share where it is) or before it (kStepEvaluateSketch, written
// by earlier versions into states a datastore may still hold).
constexpr uint8_t kStepEvaluateSketch = 0;
constexpr uint8_t kStepRevealSketch = 1;
constexpr uint8_t kStepEvaluateSketchTail = 2;

std::string Str(size_t value) { return std::to_string(value); }

std::vector<uint8_t> Dst(uint16_t usage, std::span<const uint8_t> ctx) {
  return VdafDomainSeparationTag(Poplar1::kAlgorithmId, usage, ctx);
}

// The decoded input share of one aggregator.
struct InputShare {
  idpf::Seed key;
  std::array<uint8_t, kSeedSize> corr_seed;
  std::vector<Field64> corr_inner;  // (A, B) shares of every inner level.
  std::array<Field255, 2> corr_leaf;
};

void AppendInputShare(const InputShare& share, std::vector<uint8_t>& out) {
  out.insert(out.end(), share.key.begin(), share.key.end());
  out.insert(out.end(), share.corr_seed.begin(), share.corr_seed.end());
  crypto::EncodeVec<Field64>(share.corr_inner, out);
  crypto::EncodeVec<Field255>(share.corr_leaf, out);
}

// The field of a level's values: Field64 at inner levels, Field255 at the leaf.
template <typename F>
Result<std::vector<F>> DecodeExactly(std::span<const uint8_t> encoded, size_t count,
                                     const char* what) {
  if (encoded.size() != count * F::kEncodedSize) {
    return MakeError(ErrorCode::kDecodeError, std::string(what) + " must be " +
                                                  Str(count * F::kEncodedSize) + " bytes, got " +
                                                  Str(encoded.size()));
  }
  return crypto::DecodeVec<F>(encoded);
}

const Poplar1AggParam* AsPoplar1(const AggregationParameter& agg_param) {
  // Poplar1AggParam is final, so comparing the dynamic type is exact, and far
  // cheaper than dynamic_cast on the per-report path.
  return typeid(agg_param) == typeid(Poplar1AggParam)
             ? static_cast<const Poplar1AggParam*>(&agg_param)
             : nullptr;
}

Result<unsigned __int128> ToUint128(const auto& element) {
  using F = std::decay_t<decltype(element)>;
  uint8_t bytes[F::kEncodedSize];
  element.Encode(bytes);
  for (size_t i = 16; i < F::kEncodedSize; ++i) {
    if (bytes[i] != 0) {
      return MakeError(ErrorCode::kVerifyFailed, "an aggregate count does not fit 128 bits");
    }
  }
  unsigned __int128 value = 0;
  for (size_t i = std::min<size_t>(16, F::kEncodedSize); i-- > 0;) value = (value << 8) | bytes[i];
  return value;
}

}  // namespace

// One report as one aggregator holds it across the levels of a walk.
class Poplar1Report final : public PreparedReport {
 public:
  Poplar1Report(int agg_id, std::span<const uint8_t> ctx, std::span<const uint8_t> nonce,
                InputShare share, idpf::CachedEvaluator evaluator)
      : agg_id_(agg_id),
        ctx_(ctx.begin(), ctx.end()),
        corr_inner_dst_(Dst(kUsageCorrInner, ctx)),
        corr_leaf_dst_(Dst(kUsageCorrLeaf, ctx)),
        verify_rand_dst_(Dst(kUsageVerifyRand, ctx)),
        share_(std::move(share)),
        evaluator_(std::move(evaluator)),
        bits_(evaluator_.levels_end()) {
    std::copy_n(nonce.begin(), kNonceSize, nonce_.begin());
  }
  ~Poplar1Report() override {
    crypto::SecureWipeObject(share_.key);
    crypto::SecureWipeObject(share_.corr_seed);
    crypto::SecureWipeVector(share_.corr_inner);
    crypto::SecureWipeObject(share_.corr_leaf);
  }

  int agg_id() const { return agg_id_; }
  std::span<const uint8_t> ctx() const { return ctx_; }
  std::span<const uint8_t> nonce() const { return nonce_; }
  const InputShare& share() const { return share_; }
  idpf::CachedEvaluator& evaluator() { return evaluator_; }

  // The (A, B) shares of a held inner level.
  std::array<Field64, 2> InnerAB(size_t level) const {
    const size_t index = 2 * (level - evaluator_.levels_first());
    return {share_.corr_inner[index], share_.corr_inner[index + 1]};
  }

  // ---- Per-level data in a LevelSlot ----
  // A level's record: the IDPF corrections (CachedEvaluator::ExportLevel),
  // then the level's (A, B) shares.

  std::vector<size_t> LevelRecordSizes() const override {
    std::vector<size_t> sizes(bits_);
    for (size_t level = 0; level < bits_; ++level) sizes[level] = RecordSize(level);
    return sizes;
  }

  Result<void> MoveLevelsTo(std::unique_ptr<LevelSlot> slot) override {
    if (slot_ != nullptr || evaluator_.levels_first() != 0 || evaluator_.levels_end() != bits_) {
      return MakeError(ErrorCode::kUnsupported, "the report's levels are not all in memory");
    }
    std::vector<uint8_t> records(RecordsSize(0, bits_));
    uint8_t* at = records.data();
    for (size_t level = 0; level < bits_; ++level) {
      ExportRecord(level, std::span<uint8_t>(at, RecordSize(level)));
      at += RecordSize(level);
    }
    Result<void> written = slot->Write(0, records);
    crypto::SecureWipeVector(records);
    if (!written) return written;
    slot_ = std::move(slot);
    HoldLevels(0, 0);
    return {};
  }

  bool levels_in_slot() const override { return slot_ != nullptr; }

  void DropLevelsRead() override {
    if (slot_ != nullptr) HoldLevels(0, 0);
  }

  // Makes sure the levels [range.first, range.second) are in memory, reading
  // them back from the slot when they are not. Errors (kInvalidArgument):
  // they are not held and there is no slot; the slot's read errors;
  // (kDecodeError): a record that does not decode.
  Result<void> EnsureLevels(std::pair<size_t, size_t> range) {
    const auto [first, end] = range;
    if (first >= evaluator_.levels_first() && end <= evaluator_.levels_end()) return {};
    if (slot_ == nullptr) {
      return MakeError(ErrorCode::kInvalidArgument, "the levels to verify are not held");
    }
    // Per-thread: every verification of a walk reads a few levels.
    thread_local std::vector<uint8_t> records;
    records.resize(RecordsSize(first, end));
    Result<void> read = slot_->Read(first, end, records);
    Result<void> imported = read;
    if (read) {
      HoldLevels(first, end);
      const uint8_t* at = records.data();
      for (size_t level = first; level < end && imported; ++level) {
        imported = ImportRecord(level, std::span<const uint8_t>(at, RecordSize(level)));
        at += RecordSize(level);
      }
      if (!imported) HoldLevels(0, 0);
    }
    crypto::SecureWipeVector(records);
    return imported;
  }

  // The three correlated-randomness elements (a, b, c) of an inner level. The
  // XOF is kept between calls, so a walk samples each level's elements once
  // instead of fast-forwarding from the start at every level (which is
  // quadratic in BITS). Going back to an earlier level restarts it.
  std::array<Field64, 3> InnerCorrelation(size_t level) {
    const uint64_t wanted = 3 * static_cast<uint64_t>(level);
    if (!corr_xof_ || corr_consumed_ > wanted) {
      const uint8_t agg_byte = static_cast<uint8_t>(agg_id_);
      corr_xof_.emplace(share_.corr_seed, corr_inner_dst_,
                        crypto::BinderParts{std::span<const uint8_t>(&agg_byte, 1), nonce_});
      corr_consumed_ = 0;
    }
    // Skipping must sample: rejection sampling makes element sizes variable.
    for (; corr_consumed_ < wanted; ++corr_consumed_) corr_xof_->NextElement<Field64>();
    std::array<Field64, 3> abc;
    corr_xof_->NextVec<Field64>(abc);
    corr_consumed_ += 3;
    return abc;
  }

  // Cache hint for what verifying at inner level `level` reads first (no
  // effect on results): the IDPF state, this level's (A, B) shares and the
  // correlated-randomness XOF.
  void Prefetch(size_t level) const {
    evaluator_.Prefetch(level);
    const size_t index = 2 * (level - evaluator_.levels_first());
    if (level >= evaluator_.levels_first() && index + 1 < share_.corr_inner.size()) {
      __builtin_prefetch(&share_.corr_inner[index]);
    }
    if (corr_xof_) __builtin_prefetch(&*corr_xof_);
  }

  // The leaf level's (a, b, c).
  std::array<Field255, 3> LeafCorrelation() const {
    const uint8_t agg_byte = static_cast<uint8_t>(agg_id_);
    crypto::XofTurboShake128 corr(
        share_.corr_seed, corr_leaf_dst_,
        crypto::BinderParts{std::span<const uint8_t>(&agg_byte, 1), nonce_});
    std::array<Field255, 3> abc;
    corr.NextVec<Field255>(abc);
    return abc;
  }

  // The verification-randomness XOF of `level`. Its input differs between
  // levels only in the last two bytes, so the absorbed prefix is kept.
  crypto::XofTurboShake128 VerifyRandXof(std::span<const uint8_t> verify_key, size_t level) {
    if (!verify_rand_prefix_ ||
        !std::equal(verify_key.begin(), verify_key.end(), verify_key_.begin(), verify_key_.end())) {
      verify_key_.assign(verify_key.begin(), verify_key.end());
      verify_rand_prefix_ =
          crypto::XofTurboShake128::AbsorbSeedAndDst(verify_key, verify_rand_dst_);
    }
    const uint8_t level_bytes[2] = {static_cast<uint8_t>(level >> 8), static_cast<uint8_t>(level)};
    return crypto::XofTurboShake128(
        *verify_rand_prefix_,
        crypto::BinderParts{nonce_, std::span<const uint8_t>(level_bytes, 2)});
  }

 private:
  size_t RecordSize(size_t level) const {
    return evaluator_.LevelBytes(level) +
           (level + 1 == bits_ ? 2 * Field255::kEncodedSize : 2 * Field64::kEncodedSize);
  }
  // The size of the records of levels [first, end), back to back.
  size_t RecordsSize(size_t first, size_t end) const {
    size_t total = 0;
    for (size_t level = first; level < end; ++level) total += RecordSize(level);
    return total;
  }

  // Writes a held level's record to `out`.
  void ExportRecord(size_t level, std::span<uint8_t> out) const {
    const size_t idpf_bytes = evaluator_.LevelBytes(level);
    evaluator_.ExportLevel(level, out.first(idpf_bytes));
    uint8_t* at = out.data() + idpf_bytes;
    if (level + 1 == bits_) {
      share_.corr_leaf[0].Encode(at);
      share_.corr_leaf[1].Encode(at + Field255::kEncodedSize);
    } else {
      const std::array<Field64, 2> ab = InnerAB(level);
      ab[0].Encode(at);
      ab[1].Encode(at + Field64::kEncodedSize);
    }
  }

  // Sets a held level from its record.
  Result<void> ImportRecord(size_t level, std::span<const uint8_t> in) {
    const size_t idpf_bytes = evaluator_.LevelBytes(level);
    if (Result<void> done = evaluator_.ImportLevel(level, in.first(idpf_bytes)); !done) {
      return done;
    }
    auto decode_pair = [&](auto* pair) -> Result<void> {
      using F = std::decay_t<decltype(pair[0])>;
      for (size_t i = 0; i < 2; ++i) {
        Result<F> element =
            F::Decode(in.subspan(idpf_bytes + i * F::kEncodedSize, F::kEncodedSize));
        if (!element) return std::unexpected(element.error());
        pair[i] = *element;
      }
      return {};
    };
    if (level + 1 == bits_) return decode_pair(share_.corr_leaf.data());
    return decode_pair(&share_.corr_inner[2 * (level - evaluator_.levels_first())]);
  }

  // Holds the levels [first, end) in memory from now on (their values set by
  // ImportRecord) and frees the others; the freed shares are wiped.
  void HoldLevels(size_t first, size_t end) {
    evaluator_.HoldLevels(first, end);
    crypto::SecureWipeVector(share_.corr_inner);
    const size_t inner_end = std::min(end, bits_ - 1);
    // As the evaluator does, a round's few levels stay allocated.
    const size_t size = inner_end > first ? 2 * (inner_end - first) : 0;
    share_.corr_inner.resize(size);
    if (share_.corr_inner.capacity() > std::max<size_t>(size, 16)) {
      share_.corr_inner.shrink_to_fit();
    }
    if (end != bits_) crypto::SecureWipeObject(share_.corr_leaf);
  }

  int agg_id_;
  std::vector<uint8_t> ctx_;
  std::vector<uint8_t> corr_inner_dst_;
  std::vector<uint8_t> corr_leaf_dst_;
  std::vector<uint8_t> verify_rand_dst_;
  std::array<uint8_t, kNonceSize> nonce_;
  InputShare share_;
  idpf::CachedEvaluator evaluator_;
  size_t bits_;
  std::unique_ptr<LevelSlot> slot_;  // Null while every level is in memory.
  std::optional<crypto::XofTurboShake128> corr_xof_;
  uint64_t corr_consumed_ = 0;
  std::vector<uint8_t> verify_key_;
  std::optional<crypto::TurboShake128> verify_rand_prefix_;
};

Result<std::unique_ptr<Poplar1>> Poplar1::Create(size_t bits) {
  Result<idpf::Idpf> created = idpf::Idpf::Create(bits);
  if (!created) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "Poplar1 needs 1 to " + Str(idpf::kMaxBits) + " bits, got " + Str(bits));
  }
  return std::unique_ptr<Poplar1>(new Poplar1(*created));
}

std::string Poplar1::name() const { return "Poplar1(bits=" + Str(bits()) + ")"; }

size_t Poplar1::InputShareSize() const {
  return kIdpfKeySize + kSeedSize + Field64::kEncodedSize * 2 * (bits() - 1) +
         Field255::kEncodedSize * 2;
}

// ---- Sharding --------------------------------------------------------------

Result<ShardOutput> Poplar1::Shard(std::span<const uint8_t> ctx, const Measurement& measurement,
                                   std::span<const uint8_t> nonce,
                                   std::span<const uint8_t> rand) const {
  const BitString* alpha = std::get_if<BitString>(&measurement);
  if (alpha == nullptr || alpha->size() != bits()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "a Poplar1 measurement must be a string of exactly " + Str(bits()) + " bits");
  }
  if (nonce.size() != kNonceSize) {
    return MakeError(ErrorCode::kInvalidArgument, "Poplar1 nonce must be 16 bytes");
  }
  if (rand.size() != kRandSize) {
    return MakeError(ErrorCode::kInvalidArgument, "Poplar1 rand must be 128 bytes");
  }
  const size_t inner_levels = bits() - 1;
  std::span<const uint8_t, idpf::kRandSize> idpf_rand(rand.data(), idpf::kRandSize);
  std::span<const uint8_t> corr_seeds[2] = {rand.subspan(32, kSeedSize),
                                            rand.subspan(64, kSeedSize)};
  std::span<const uint8_t> shard_seed = rand.subspan(96, kSeedSize);

  crypto::XofTurboShake128 xof(shard_seed, Dst(kUsageShardRand, ctx), nonce);
  // Each level's value is (1, k): the data 1 and a random authenticator k.
  std::vector<Field64> k_inner = xof.NextVec<Field64>(inner_levels);
  Field255 k_leaf = xof.NextElement<Field255>();
  std::vector<InnerValue> beta_inner(inner_levels);
  for (size_t level = 0; level < inner_levels; ++level) {
    beta_inner[level] = {Field64::One(), k_inner[level]};
  }
  LeafValue beta_leaf = {Field255::One(), k_leaf};
  Result<idpf::GeneratedKeys> keys = idpf_.Gen(*alpha, beta_inner, beta_leaf, ctx,
                                               idpf::Nonce(nonce.data(), kNonceSize), idpf_rand);
  if (!keys) return std::unexpected(keys.error());

  // The sketch's correlated randomness: both aggregators' (a, b, c) offsets.
  std::vector<Field64> offsets_inner(3 * inner_levels);
  std::array<Field255, 3> offsets_leaf{};
  for (uint8_t j = 0; j < 2; ++j) {
    crypto::BinderParts binder = {std::span<const uint8_t>(&j, 1), nonce};
    crypto::XofTurboShake128 inner(corr_seeds[j], Dst(kUsageCorrInner, ctx), binder);
    for (Field64& offset : offsets_inner) offset += inner.NextElement<Field64>();
    crypto::XofTurboShake128 leaf(corr_seeds[j], Dst(kUsageCorrLeaf, ctx), binder);
    for (Field255& offset : offsets_leaf) offset += leaf.NextElement<Field255>();
  }

  InputShare shares[2];
  for (int j = 0; j < 2; ++j) {
    shares[j].key = keys->keys[j];
    std::copy(corr_seeds[j].begin(), corr_seeds[j].end(), shares[j].corr_seed.begin());
    shares[j].corr_inner.reserve(2 * inner_levels);
  }
  // A = -2a + k and B = a^2 + b - a k + c, split into two random shares.
  auto split = [&xof](auto a, auto b, auto c, auto k, auto* share0, auto* share1) {
    using F = std::decay_t<decltype(a)>;
    const F big_a = k - (a + a);
    const F big_b = a * a + b - a * k + c;
    const F r0 = xof.NextElement<F>();
    const F r1 = xof.NextElement<F>();
    share0[0] = big_a - r0;
    share0[1] = big_b - r1;
    share1[0] = r0;
    share1[1] = r1;
  };
  for (size_t level = 0; level < inner_levels; ++level) {
    Field64 pair0[2], pair1[2];
    split(offsets_inner[3 * level], offsets_inner[3 * level + 1], offsets_inner[3 * level + 2],
          k_inner[level], pair0, pair1);
    shares[0].corr_inner.insert(shares[0].corr_inner.end(), pair0, pair0 + 2);
    shares[1].corr_inner.insert(shares[1].corr_inner.end(), pair1, pair1 + 2);
  }
  split(offsets_leaf[0], offsets_leaf[1], offsets_leaf[2], k_leaf, shares[0].corr_leaf.data(),
        shares[1].corr_leaf.data());

  ShardOutput out;
  out.public_share = idpf_.EncodePublicShare(keys->public_share);
  for (InputShare& share : shares) {
    out.input_shares.emplace_back();
    AppendInputShare(share, out.input_shares.back());
    crypto::SecureWipeObject(share.key);
    crypto::SecureWipeVector(share.corr_inner);
  }
  crypto::SecureWipeObject(keys->keys);
  return out;
}

// ---- Aggregation parameters ---------------------------------------------------

Result<std::shared_ptr<const Poplar1AggParam>> Poplar1::MakeAggParam(
    size_t level, std::vector<BitString> prefixes, const AggregationParameter* previous) const {
  if (level >= bits()) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "level " + Str(level) + " is out of range for " + Str(bits()) + " bits");
  }
  for (const BitString& prefix : prefixes) {
    if (prefix.size() != level + 1) {
      return MakeError(ErrorCode::kInvalidArgument, "a prefix at level " + Str(level) +
                                                        " must have " + Str(level + 1) + " bits");
    }
  }
  auto param = std::make_shared<Poplar1AggParam>();
  param->level = level;
  param->prefixes = std::move(prefixes);
  Result<std::shared_ptr<const idpf::PrefixSet>> set =
      idpf::PrefixSet::Create(level, param->prefixes);
  if (set) {
    param->set = *set;
    // After the previous level, the reports' evaluators keep the nodes of
    // its plan's cache set; this level keeps those of its first level past
    // the previous one (see EvaluationPlan::Create).
    const Poplar1AggParam* last = previous != nullptr ? AsPoplar1(*previous) : nullptr;
    std::shared_ptr<const idpf::PrefixSet> source;
    size_t cache_level = SIZE_MAX;
    if (last != nullptr) {
      source = last->plan != nullptr ? last->plan->cache_set() : last->set;
      cache_level = last->level + 1;
    }
    param->plan = idpf::EvaluationPlan::Create(param->set, std::move(source), cache_level);
  }
  return std::shared_ptr<const Poplar1AggParam>(std::move(param));
}

Result<std::shared_ptr<const AggregationParameter>> Poplar1::DecodeAggParam(
    std::span<const uint8_t> encoded, const AggregationParameter* previous) const {
  if (encoded.size() < 6) {
    return MakeError(ErrorCode::kDecodeError, "Poplar1 aggregation parameter is truncated");
  }
  const size_t level = (size_t{encoded[0]} << 8) | encoded[1];
  const uint64_t count = (uint64_t{encoded[2]} << 24) | (uint64_t{encoded[3]} << 16) |
                         (uint64_t{encoded[4]} << 8) | encoded[5];
  const size_t prefix_bytes = (level + 1 + 7) / 8;
  // Check the length before allocating anything for `count` prefixes.
  if ((encoded.size() - 6) % prefix_bytes != 0 || (encoded.size() - 6) / prefix_bytes != count) {
    return MakeError(ErrorCode::kDecodeError,
                     "Poplar1 aggregation parameter length does not match its prefix count");
  }
  if (level >= bits()) {
    return MakeError(ErrorCode::kDecodeError,
                     "level " + Str(level) + " is out of range for " + Str(bits()) + " bits");
  }
  std::vector<BitString> prefixes;
  prefixes.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    Result<BitString> prefix =
        BitString::FromBytes(encoded.subspan(6 + i * prefix_bytes, prefix_bytes), level + 1);
    if (!prefix) return std::unexpected(prefix.error());
    prefixes.push_back(std::move(*prefix));
  }
  Result<std::shared_ptr<const Poplar1AggParam>> param =
      MakeAggParam(level, std::move(prefixes), previous);
  if (!param) return std::unexpected(param.error());
  return std::shared_ptr<const AggregationParameter>(*param);
}

std::vector<uint8_t> Poplar1::EncodeAggParam(const AggregationParameter& agg_param) const {
  const Poplar1AggParam* decoded = AsPoplar1(agg_param);
  if (decoded == nullptr) return {};  // Not a Poplar1 parameter: nothing to encode.
  const Poplar1AggParam& param = *decoded;
  std::vector<uint8_t> out = {static_cast<uint8_t>(param.level >> 8),
                              static_cast<uint8_t>(param.level)};
  const uint64_t count = param.prefixes.size();
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(count >> shift));
  for (const BitString& prefix : param.prefixes) {
    out.insert(out.end(), prefix.bytes().begin(), prefix.bytes().end());
  }
  return out;
}

bool Poplar1::IsValid(const AggregationParameter& agg_param,
                      std::span<const AggregationParameter* const> previous) const {
  const Poplar1AggParam* param = AsPoplar1(agg_param);
  if (param == nullptr || param->set == nullptr) return false;  // Not strictly increasing.
  if (previous.empty()) return true;
  const Poplar1AggParam* last = previous.back() != nullptr ? AsPoplar1(*previous.back()) : nullptr;
  if (last == nullptr || param->level <= last->level) return false;
  std::set<BitString> last_prefixes(last->prefixes.begin(), last->prefixes.end());
  for (const BitString& prefix : param->prefixes) {
    if (!last_prefixes.contains(prefix.Prefix(last->level + 1))) return false;
  }
  return true;
}

// ---- Verification ---------------------------------------------------------------

Result<std::unique_ptr<PreparedReport>> Poplar1::PrepareReport(
    int agg_id, std::span<const uint8_t> ctx, std::span<const uint8_t> nonce,
    std::span<const uint8_t> public_share, std::span<const uint8_t> input_share) const {
  if (agg_id != 0 && agg_id != 1) {
    return MakeError(ErrorCode::kInvalidArgument, "Poplar1 aggregator id must be 0 or 1");
  }
  if (nonce.size() != kNonceSize) {
    return MakeError(ErrorCode::kInvalidArgument, "Poplar1 nonce must be 16 bytes");
  }
  if (input_share.size() != InputShareSize()) {
    return MakeError(ErrorCode::kDecodeError, "Poplar1 input share must be " +
                                                  Str(InputShareSize()) + " bytes, got " +
                                                  Str(input_share.size()));
  }
  Result<idpf::PublicShare> decoded_public = idpf_.DecodePublicShare(public_share);
  if (!decoded_public) return std::unexpected(decoded_public.error());

  InputShare share;
  size_t offset = 0;
  std::copy_n(input_share.begin(), kIdpfKeySize, share.key.begin());
  offset += kIdpfKeySize;
  std::copy_n(input_share.begin() + static_cast<ptrdiff_t>(offset), kSeedSize,
              share.corr_seed.begin());
  offset += kSeedSize;
  const size_t inner_bytes = Field64::kEncodedSize * 2 * (bits() - 1);
  Result<std::vector<Field64>> inner =
      crypto::DecodeVec<Field64>(input_share.subspan(offset, inner_bytes));
  if (!inner) return std::unexpected(inner.error());
  share.corr_inner = std::move(*inner);
  offset += inner_bytes;
  Result<std::vector<Field255>> leaf = crypto::DecodeVec<Field255>(input_share.subspan(offset));
  if (!leaf) return std::unexpected(leaf.error());
  share.corr_leaf = {(*leaf)[0], (*leaf)[1]};

  Result<idpf::CachedEvaluator> evaluator =
      idpf::CachedEvaluator::Create(idpf_, agg_id, std::move(*decoded_public), share.key, ctx,
                                    idpf::Nonce(nonce.data(), kNonceSize));
  if (!evaluator) return std::unexpected(evaluator.error());
  return std::make_unique<Poplar1Report>(agg_id, ctx, nonce, std::move(share),
                                         std::move(*evaluator));
}

namespace {

Poplar1Report* AsPoplar1Report(PreparedReport& prepared) {
  return typeid(prepared) == typeid(Poplar1Report) ? static_cast<Poplar1Report*>(&prepared)
                                                   : nullptr;
}

// The vector of `F` in `vector`, emptied, with room for `size` elements. An
// existing vector of that field keeps its allocation.
template <typename F>
std::vector<F>& EmptyFieldVector(FieldVector& vector, size_t size) {
  auto* elements = std::get_if<std::vector<F>>(&vector);
  if (elements == nullptr) elements = &vector.template emplace<std::vector<F>>();
  elements->clear();
  elements->reserve(size);
  return *elements;
}

// The three sums of an inner level's sketch share: (sum r y, sum r^2 y,
// sum r k) over the candidates, for the verification randomness r and the
// IDPF values (y, k). Unreduced sums: one partial reduction per candidate
// (r * y, needed for r^2 * y) instead of three full ones. Out of line, so
// that the register allocator has the loop to itself: inlined into
// VerifyInitWithRand, it kept the sums on the stack (about half the speed).
__attribute__((noinline)) std::array<Field64, 3> InnerSketchSums(
    std::span<const Field64> verify_rand, std::span<const std::array<Field64, 2>> values) {
  Field64::Accumulator ry, rry, rk;
  for (size_t i = 0; i < values.size(); ++i) {
    const Field64 r = verify_rand[i];
    const uint64_t r_data = Field64::Accumulator::PartialProduct(r, values[i][0]);
    ry.AddWord(r_data);
    rry.AddProductWithWord(r, r_data);
    rk.AddProduct(r, values[i][1]);
  }
  return {ry.Reduce(), rry.Reduce(), rk.Reduce()};
}

// A transition to fill in: the one `entry` holds (so its vectors are reused)
// or a fresh one when it holds an error.
VerifyTransition& ReusableTransition(Result<VerifyTransition>& entry) {
  if (!entry) entry = VerifyTransition();
  return *entry;
}

}  // namespace

Result<const Poplar1AggParam*> Poplar1::CheckVerifyParam(
    std::span<const uint8_t> verify_key, const AggregationParameter& agg_param) const {
  const Poplar1AggParam* param = AsPoplar1(agg_param);
  if (param == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument, "not a Poplar1 parameter or report");
  }
  if (verify_key.size() != kVerifyKeySize) {
    return MakeError(ErrorCode::kInvalidArgument, "Poplar1 verify key must be 32 bytes");
  }
  if (param->plan == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the aggregation parameter's prefixes are not sorted and unique");
  }
  if (param->level >= bits()) {
    return MakeError(ErrorCode::kInvalidArgument, "level out of range");
  }
  return param;
}

template <typename F>
Result<void> Poplar1::VerifyInitWithRand(const Poplar1AggParam& param, Poplar1Report& report,
                                         std::span<const F> verify_rand,
                                         VerifyTransition& out) const {
  constexpr bool kLeaf = std::is_same_v<F, Field255>;
  const size_t count = param.prefixes.size();
  const size_t level = param.level;

  // The IDPF values (data, authenticator) at every candidate prefix.
  // Per-thread scratch: a level's values are consumed here, so reusing the
  // buffer saves an allocation per report and level.
  thread_local std::vector<std::array<F, 2>> values;
  values.resize(count);
  if (Result<void> held = report.EnsureLevels(report.evaluator().LevelsRead(*param.plan)); !held) {
    return held;
  }
  Result<void> evaluated;
  if constexpr (kLeaf) {
    evaluated = report.evaluator().EvaluateLeaf(*param.plan, values);
  } else {
    evaluated = report.evaluator().EvaluateInner(*param.plan, values);
  }
  if (!evaluated) return std::unexpected(evaluated.error());

  // Shares of the correlated randomness (a, b, c) and of (A, B).
  std::array<F, 3> abc;
  std::array<F, 2> big_ab;
  if constexpr (kLeaf) {
    abc = report.LeafCorrelation();
    big_ab = report.share().corr_leaf;
  } else {
    abc = report.InnerCorrelation(level);
    big_ab = report.InnerAB(level);
  }

  // The verification memory: the output share (the candidates' data
  // shares), then the (A, B) shares and the aggregator's ID. Copied before
  // the sketch's sums, which then store nothing: stores into the vector
  // would force the sums out of their registers on every candidate.
  // The data shares go in by one ranged insert: it neither zeroes the memory
  // first (as resize would) nor stores the vector's end per element (as
  // push_back does), either of which cost more than the copy itself.
  std::vector<F>& memory = EmptyFieldVector<F>(out.state.memory, count + 3);
  const auto data_shares = std::span(values.data(), count) | std::views::elements<0>;
  memory.insert(memory.end(), data_shares.begin(), data_shares.end());
  memory.push_back(big_ab[0]);
  memory.push_back(big_ab[1]);
  memory.push_back(F::FromUint64(static_cast<uint64_t>(report.agg_id())));

  // The sketch share: (a + sum r y, b + sum r^2 y, c + sum r k).
  F sum_ry = F::Zero(), sum_rry = F::Zero(), sum_rk = F::Zero();
  if constexpr (kLeaf) {
    for (size_t i = 0; i < count; ++i) {
      const F r = verify_rand[i];
      const F data = values[i][0];
      const F r_data = r * data;
      sum_ry += r_data;
      sum_rry += r * r_data;
      sum_rk += r * values[i][1];
    }
  } else {
    const std::array<F, 3> sums =
        InnerSketchSums(verify_rand.first(count), std::span(values.data(), count));
    sum_ry = sums[0];
    sum_rry = sums[1];
    sum_rk = sums[2];
  }
  const F sketch[3] = {abc[0] + sum_ry, abc[1] + sum_rry, abc[2] + sum_rk};

  out.finished = false;
  out.state.step = kStepEvaluateSketchTail;
  out.state.level = static_cast<uint32_t>(level);
  out.state.agg_id = report.agg_id();
  out.state.seed.clear();
  // A share moved away by the caller leaves an empty vector; constructing it
  // at its size avoids the slower growing path of resize.
  if (out.verifier_share.capacity() < 3 * F::kEncodedSize) {
    out.verifier_share = std::vector<uint8_t>(3 * F::kEncodedSize);
  } else {
    out.verifier_share.resize(3 * F::kEncodedSize);
  }
  for (size_t i = 0; i < 3; ++i) sketch[i].Encode(out.verifier_share.data() + i * F::kEncodedSize);
  out.out_share = FieldVector();
  return {};
}

Result<VerifyTransition> Poplar1::VerifyInit(std::span<const uint8_t> verify_key,
                                             std::span<const uint8_t> ctx,
                                             const AggregationParameter& agg_param,
                                             PreparedReport& prepared) const {
  Result<const Poplar1AggParam*> checked = CheckVerifyParam(verify_key, agg_param);
  if (!checked) return std::unexpected(checked.error());
  const Poplar1AggParam& param = **checked;
  Poplar1Report* report = AsPoplar1Report(prepared);
  if (report == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument, "not a Poplar1 parameter or report");
  }
  if (!std::equal(ctx.begin(), ctx.end(), report->ctx().begin(), report->ctx().end())) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the report was prepared with another application context");
  }
  auto verify = [&](auto tag) -> Result<VerifyTransition> {
    using F = decltype(tag);
    // The verification randomness, one element per prefix.
    thread_local std::vector<F> verify_rand;
    verify_rand.resize(param.prefixes.size());
    report->VerifyRandXof(verify_key, param.level).template NextVec<F>(verify_rand);
    VerifyTransition transition;
    Result<void> done = VerifyInitWithRand<F>(param, *report, verify_rand, transition);
    if (!done) return std::unexpected(done.error());
    return transition;
  };
  return IsLeaf(param.level) ? verify(Field255()) : verify(Field64());
}

template <typename F>
void Poplar1::VerifyInitBatchAtLevel(std::span<const uint8_t> verify_key,
                                     std::span<const uint8_t> ctx, const Poplar1AggParam& param,
                                     std::span<PreparedReport* const> reports,
                                     std::span<Result<VerifyTransition>> out) const {
  constexpr size_t kLanes = crypto::TurboShake128x4::kInstances;
  const size_t count = param.prefixes.size();

  // The XOF input common to every report: everything before the binder
  // (nonce || level), as XofTurboShake128 frames it.
  const std::vector<uint8_t> dst = Dst(kUsageVerifyRand, ctx);
  std::vector<uint8_t> prefix;
  prefix.reserve(3 + dst.size() + verify_key.size());
  prefix.push_back(static_cast<uint8_t>(dst.size()));
  prefix.push_back(static_cast<uint8_t>(dst.size() >> 8));
  prefix.insert(prefix.end(), dst.begin(), dst.end());
  prefix.push_back(static_cast<uint8_t>(verify_key.size()));
  prefix.insert(prefix.end(), verify_key.begin(), verify_key.end());
  crypto::TurboShake128x4 common(0x01);
  common.AbsorbAll(prefix);
  const uint8_t level_bytes[2] = {static_cast<uint8_t>(param.level >> 8),
                                  static_cast<uint8_t>(param.level)};

  // The IDPF's working buffers are wiped once, when the batch ends, not
  // after each report.
  idpf::DeferredScratchWipe deferred_wipe;

  // The reports that pass the per-report checks, verified four at a time.
  thread_local std::vector<size_t> valid;
  valid.clear();
  for (size_t i = 0; i < reports.size(); ++i) {
    Poplar1Report* report = reports[i] != nullptr ? AsPoplar1Report(*reports[i]) : nullptr;
    if (report == nullptr) {
      out[i] = MakeError(ErrorCode::kInvalidArgument, "not a Poplar1 parameter or report");
    } else if (!std::equal(ctx.begin(), ctx.end(), report->ctx().begin(), report->ctx().end())) {
      out[i] = MakeError(ErrorCode::kInvalidArgument,
                         "the report was prepared with another application context");
    } else {
      valid.push_back(i);
    }
  }

  thread_local std::vector<F> verify_rand;
  thread_local std::vector<uint8_t> stream;
  verify_rand.resize(kLanes * count);
  // One state for every group, copied from `common`: a copy per group would
  // also wipe its 800 bytes per group on destruction.
  crypto::TurboShake128x4 xof = common;
  for (size_t group = 0; group < valid.size(); group += kLanes) {
    const size_t lanes = std::min(kLanes, valid.size() - group);
    // Each report's state is cold after a level: ask for the next group's
    // while this one is hashed and evaluated. Inner levels only; the leaf's
    // work per report dwarfs the misses.
    if constexpr (std::is_same_v<F, Field64>) {
      for (size_t k = group + kLanes; k < std::min(group + 2 * kLanes, valid.size()); ++k) {
        static_cast<const Poplar1Report*>(reports[valid[k]])->Prefetch(param.level);
      }
    }
    Poplar1Report* group_reports[kLanes];
    std::array<uint8_t, kNonceSize + 2> binders[kLanes];
    for (size_t k = 0; k < kLanes; ++k) {
      // Unused lanes hash the first report's binder again; their output is
      // dropped.
      group_reports[k] = static_cast<Poplar1Report*>(reports[valid[group + (k < lanes ? k : 0)]]);
      std::copy_n(group_reports[k]->nonce().begin(), kNonceSize, binders[k].begin());
      binders[k][kNonceSize] = level_bytes[0];
      binders[k][kNonceSize + 1] = level_bytes[1];
    }
    xof = common;
    xof.Absorb({binders[0], binders[1], binders[2], binders[3]});

    // Rejection sampling, lane by lane: each lane reads its own stream in
    // order, so it draws exactly the elements NextVec would; a round squeezes
    // as many draws as the neediest lane still misses.
    size_t filled[kLanes] = {};
    for (;;) {
      size_t draws = 0;
      for (size_t k = 0; k < lanes; ++k) draws = std::max(draws, count - filled[k]);
      if (draws == 0) break;
      const size_t bytes = draws * F::kEncodedSize;
      stream.resize(kLanes * bytes);
      uint8_t* data = stream.data();
      xof.Squeeze({std::span<uint8_t>(data, bytes), std::span<uint8_t>(data + bytes, bytes),
                   std::span<uint8_t>(data + 2 * bytes, bytes),
                   std::span<uint8_t>(data + 3 * bytes, bytes)});
      for (size_t k = 0; k < lanes; ++k) {
        F* lane_rand = verify_rand.data() + k * count;
        const uint8_t* lane_bytes = data + k * bytes;
        if (filled[k] == 0 && draws == count) {
          // Almost always every draw of the first squeeze is kept (a draw
          // is rejected with probability about 2^-32): one pass without
          // the loop below's chain from each draw to the next one's place.
          // On a rejection the lane starts over below, draw by draw.
          bool all_kept = true;
          for (size_t d = 0; d < count; ++d) {
            all_kept &= F::FromSampledBytes(lane_bytes + d * F::kEncodedSize, &lane_rand[d]);
          }
          if (all_kept) {
            filled[k] = count;
            continue;
          }
        }
        for (size_t d = 0; d < draws && filled[k] < count; ++d) {
          if (F::FromSampledBytes(lane_bytes + d * F::kEncodedSize, &lane_rand[filled[k]])) {
            ++filled[k];
          }
        }
      }
    }

    for (size_t k = 0; k < lanes; ++k) {
      Result<VerifyTransition>& entry = out[valid[group + k]];
      Result<void> done = VerifyInitWithRand<F>(
          param, *group_reports[k], std::span<const F>(verify_rand.data() + k * count, count),
          ReusableTransition(entry));
      if (!done) entry = std::unexpected(done.error());
    }
  }
}

void Poplar1::VerifyInitBatch(std::span<const uint8_t> verify_key, std::span<const uint8_t> ctx,
                              const AggregationParameter& agg_param,
                              std::span<PreparedReport* const> reports,
                              std::span<Result<VerifyTransition>> out) const {
  if (out.size() != reports.size()) {
    Vdaf::VerifyInitBatch(verify_key, ctx, agg_param, reports, out);  // Reports the mismatch.
    return;
  }
  Result<const Poplar1AggParam*> checked = CheckVerifyParam(verify_key, agg_param);
  if (!checked) {
    for (Result<VerifyTransition>& entry : out) entry = std::unexpected(checked.error());
    return;
  }
  const Poplar1AggParam& param = **checked;
  if (IsLeaf(param.level)) {
    VerifyInitBatchAtLevel<Field255>(verify_key, ctx, param, reports, out);
  } else {
    VerifyInitBatchAtLevel<Field64>(verify_key, ctx, param, reports, out);
  }
}

Result<std::vector<uint8_t>> Poplar1::VerifierSharesToMessage(
    std::span<const uint8_t>, const AggregationParameter& agg_param,
    std::span<const std::vector<uint8_t>> verifier_shares) const {
  const Poplar1AggParam* param = AsPoplar1(agg_param);
  if (param == nullptr) return MakeError(ErrorCode::kInvalidArgument, "not a Poplar1 parameter");
  if (verifier_shares.size() != 2) {
    return MakeError(ErrorCode::kInvalidArgument, "Poplar1 needs exactly 2 verifier shares");
  }
  auto combine = [&](auto tag) -> Result<std::vector<uint8_t>> {
    using F = decltype(tag);
    const size_t length = verifier_shares[0].size();
    const size_t count = length / F::kEncodedSize;
    if (length != verifier_shares[1].size() || length % F::kEncodedSize != 0 ||
        (count != 1 && count != 3)) {
      return MakeError(ErrorCode::kDecodeError,
                       "Poplar1 verifier shares must be 1 or 3 elements of the level's field");
    }
    std::array<F, 3> sketch;
    for (size_t i = 0; i < count; ++i) {
      Result<F> first =
          F::Decode(std::span(verifier_shares[0]).subspan(i * F::kEncodedSize, F::kEncodedSize));
      Result<F> second =
          F::Decode(std::span(verifier_shares[1]).subspan(i * F::kEncodedSize, F::kEncodedSize));
      if (!first) return std::unexpected(first.error());
      if (!second) return std::unexpected(second.error());
      sketch[i] = *first + *second;
    }
    if (count == 3) {
      // Sized at construction: growing an empty vector takes the slower
      // append path, and this runs once per report and level.
      std::vector<uint8_t> message(3 * F::kEncodedSize);
      for (size_t i = 0; i < 3; ++i) sketch[i].Encode(message.data() + i * F::kEncodedSize);
      return message;
    }
    if (sketch[0] == F::Zero()) return std::vector<uint8_t>();  // "None": success.
    return MakeError(ErrorCode::kVerifyFailed, "sketch verification failed");
  };
  return IsLeaf(param->level) ? combine(Field255()) : combine(Field64());
}

Result<VerifyTransition> Poplar1::VerifyNext(std::span<const uint8_t>, VerifyState state,
                                             std::span<const uint8_t> message) const {
  auto next = [&](auto& memory, VerifyTransition& transition) -> Result<void> {
    using F = typename std::decay_t<decltype(memory)>::value_type;
    if (state.step == kStepEvaluateSketch || state.step == kStepEvaluateSketchTail) {
      if (memory.size() < 3) return MakeError(ErrorCode::kDecodeError, "malformed Poplar1 state");
      if (message.size() != 3 * F::kEncodedSize) {
        return MakeError(ErrorCode::kVerifyFailed,
                         "Poplar1 round-1 verifier message must have 3 elements");
      }
      std::array<F, 3> sketch;
      for (size_t i = 0; i < 3; ++i) {
        Result<F> element = F::Decode(message.subspan(i * F::kEncodedSize, F::kEncodedSize));
        if (!element) return std::unexpected(element.error());
        sketch[i] = *element;
      }
      const F& s0 = sketch[0];
      const bool tail = state.step == kStepEvaluateSketchTail;
      const F* ab_id = tail ? memory.data() + memory.size() - 3 : memory.data();
      const F big_a = ab_id[0], big_b = ab_id[1], agg_id = ab_id[2];
      const F share = agg_id * (s0 * s0 - sketch[1] - sketch[2]) + big_a * s0 + big_b;
      // Keep only the output share. (A, B) are secret shares: zeroed before
      // they are left in the vector's spare capacity.
      if (tail) {
        std::fill(memory.end() - 3, memory.end(), F::Zero());
        memory.resize(memory.size() - 3);
      } else {
        memory.erase(memory.begin(), memory.begin() + 3);
      }
      transition.state = std::move(state);
      transition.state.step = kStepRevealSketch;
      transition.verifier_share = std::vector<uint8_t>(F::kEncodedSize);
      share.Encode(transition.verifier_share.data());
      return {};
    }
    if (state.step == kStepRevealSketch) {
      if (!message.empty()) {
        return MakeError(ErrorCode::kVerifyFailed,
                         "Poplar1 round-2 verifier message must be empty");
      }
      transition.finished = true;
      transition.out_share = std::move(memory);
      return {};
    }
    return MakeError(ErrorCode::kDecodeError, "unknown Poplar1 verification step");
  };
  // The transition is filled in place and every path returns `result` by
  // name, so it is never moved into the return value (twice per report and
  // level).
  Result<VerifyTransition> result(std::in_place);
  Result<void> done;
  if (auto* inner = std::get_if<std::vector<Field64>>(&state.memory)) {
    done = next(*inner, *result);
  } else if (auto* leaf = std::get_if<std::vector<Field255>>(&state.memory)) {
    done = next(*leaf, *result);
  } else {
    done = MakeError(ErrorCode::kDecodeError, "Poplar1 state holds the wrong field");
  }
  if (!done) result = std::unexpected(std::move(done.error()));
  return result;
}

// ---- Aggregation ----------------------------------------------------------------

FieldVector Poplar1::AggregateInit(const AggregationParameter& agg_param) const {
  const Poplar1AggParam* param = AsPoplar1(agg_param);
  if (param == nullptr) return std::vector<Field64>();
  if (IsLeaf(param->level)) return std::vector<Field255>(param->prefixes.size());
  return std::vector<Field64>(param->prefixes.size());
}

Result<FieldVector> Poplar1::DecodeAggShare(const AggregationParameter& agg_param,
                                            std::span<const uint8_t> encoded) const {
  const Poplar1AggParam* param = AsPoplar1(agg_param);
  if (param == nullptr) return MakeError(ErrorCode::kInvalidArgument, "not a Poplar1 parameter");
  const size_t count = param->prefixes.size();
  if (IsLeaf(param->level)) {
    auto decoded = DecodeExactly<Field255>(encoded, count, "Poplar1 aggregate share");
    if (!decoded) return std::unexpected(decoded.error());
    return FieldVector(std::move(*decoded));
  }
  auto decoded = DecodeExactly<Field64>(encoded, count, "Poplar1 aggregate share");
  if (!decoded) return std::unexpected(decoded.error());
  return FieldVector(std::move(*decoded));
}

Result<AggregateResult> Poplar1::Unshard(const AggregationParameter& agg_param,
                                         std::span<const std::vector<uint8_t>> agg_shares,
                                         uint64_t) const {
  FieldVector total = AggregateInit(agg_param);
  for (const std::vector<uint8_t>& encoded : agg_shares) {
    Result<FieldVector> share = DecodeAggShare(agg_param, encoded);
    if (!share) return std::unexpected(share.error());
    if (Result<void> added = AddFieldVector(total, *share); !added) {
      return std::unexpected(added.error());
    }
  }
  return std::visit(
      [](const auto& elements) -> Result<AggregateResult> {
        AggregateResult result;
        result.reserve(elements.size());
        for (const auto& element : elements) {
          Result<unsigned __int128> value = ToUint128(element);
          if (!value) return std::unexpected(value.error());
          result.push_back(*value);
        }
        return result;
      },
      total);
}

}  // namespace canopy::poplar
