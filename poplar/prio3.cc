#include "poplar/prio3.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <optional>
#include <typeinfo>

#include "crypto/secure_wipe.h"
#include "crypto/xof.h"
#include "poplar/flp.h"
#include "poplar/prio3_circuits.h"

namespace canopy::poplar {

using crypto::Field128;
using crypto::Field64;
using crypto::WipeOnExit;
using crypto::XofTurboShake128;
using crypto::XofTurboShake128x4;

namespace {

// The draft's usages of XOF domain-separation tags in Prio3.
constexpr uint16_t kUsageMeasShare = 1;
constexpr uint16_t kUsageProofShare = 2;
constexpr uint16_t kUsageJointRandomness = 3;
constexpr uint16_t kUsageProveRandomness = 4;
constexpr uint16_t kUsageQueryRandomness = 5;
constexpr uint16_t kUsageJointRandSeed = 6;
constexpr uint16_t kUsageJointRandPart = 7;

constexpr size_t kSeedSize = Prio3::kSeedSize;
using Seed = std::array<uint8_t, kSeedSize>;

std::string Str(uint64_t value) { return std::to_string(value); }

// The domain-separation tags of one ctx. They differ only in the usage
// bytes, so one buffer serves all: each call patches the usage and returns a
// view that stays valid until the next call (XOFs absorb it at once). Short
// contexts stay on the stack.
class DstBuffer {
 public:
  // The 8-byte tag header (with usage 0) of an algorithm, from
  // VdafDomainSeparationTag; instances compute it once.
  using Header = std::array<uint8_t, 8>;
  static Header MakeHeader(uint32_t algorithm_id) {
    const std::vector<uint8_t> tag = VdafDomainSeparationTag(algorithm_id, 0, {});
    Header header;
    std::copy_n(tag.begin(), header.size(), header.begin());
    return header;
  }

  DstBuffer(const Header& header, std::span<const uint8_t> ctx) {
    const size_t size = header.size() + ctx.size();
    if (size <= inline_.size()) {
      bytes_ = std::span<uint8_t>(inline_.data(), size);
    } else {
      heap_.resize(size);
      bytes_ = heap_;
    }
    std::copy(header.begin(), header.end(), bytes_.begin());
    std::copy(ctx.begin(), ctx.end(), bytes_.begin() + static_cast<ptrdiff_t>(header.size()));
  }
  DstBuffer(const DstBuffer&) = delete;
  DstBuffer& operator=(const DstBuffer&) = delete;

  std::span<const uint8_t> operator()(uint16_t usage) {
    bytes_[6] = static_cast<uint8_t>(usage >> 8);
    bytes_[7] = static_cast<uint8_t>(usage);
    return bytes_;
  }

  // The application context the tags end with.
  std::span<const uint8_t> ctx() const { return std::span<const uint8_t>(bytes_).subspan(8); }

 private:
  std::array<uint8_t, 80> inline_;
  std::vector<uint8_t> heap_;
  std::span<uint8_t> bytes_;
};

std::span<const uint8_t> OneByte(const uint8_t& byte) { return std::span<const uint8_t>(&byte, 1); }

// One 8-byte load (GCC does not always fuse a byte loop into one).
uint64_t LoadLittleEndian64(const uint8_t* bytes) {
  uint64_t value;
  std::memcpy(&value, bytes, sizeof(value));
  if constexpr (std::endian::native == std::endian::big) value = std::byteswap(value);
  return value;
}

// Converts a sample of the XOF stream to an element if it is below p. For
// Field64 and Field128 the modulus has exactly 8 * kEncodedSize bits, so
// the draft's rejection sampling masks nothing: this is FromSampledBytes,
// with one load per 64-bit word.
bool FromSample(const uint8_t* sample, Field64* out) {
  const uint64_t value = LoadLittleEndian64(sample);
  if (value >= Field64::kModulus) return false;
  *out = Field64::FromUint64(value);
  return true;
}

bool FromSample(const uint8_t* sample, Field128* out) {
  const Field128::Uint128 value =
      (static_cast<Field128::Uint128>(LoadLittleEndian64(sample + 8)) << 64) |
      LoadLittleEndian64(sample);
  if (value >= Field128::kModulus) return false;
  *out = Field128::FromUint128BelowModulus(value);
  return true;
}

// The draft's next_vec, filling `out`; with `encoded`, also appends the
// encoding of the sampled elements, which is exactly the accepted samples'
// bytes (no masking), so nothing is encoded again.
template <typename F>
void SampleVec(XofTurboShake128& xof, std::span<F> out, std::vector<uint8_t>* encoded) {
  static_assert(std::is_same_v<F, Field64> || std::is_same_v<F, Field128>);
  constexpr size_t kChunk = 64;
  uint8_t bytes[kChunk * F::kEncodedSize];
  uint8_t* destination = nullptr;
  if (encoded != nullptr) {
    const size_t start = encoded->size();
    encoded->resize(start + out.size() * F::kEncodedSize);
    destination = encoded->data() + start;
  }
  size_t filled = 0;
  size_t used = 0;  // Bytes of `bytes` to wipe.
  // As XofBase::NextVec: never draw more than the elements still missing, so
  // the stream is consumed exactly as element-by-element sampling would.
  while (filled < out.size()) {
    const size_t draws = std::min(kChunk, out.size() - filled);
    used = std::max(used, draws * F::kEncodedSize);
    xof.Next(std::span<uint8_t>(bytes, draws * F::kEncodedSize));
    for (size_t i = 0; i < draws; ++i) {
      const uint8_t* sample = bytes + i * F::kEncodedSize;
      if (FromSample(sample, &out[filled])) {
        if (destination != nullptr) {
          std::memcpy(destination + filled * F::kEncodedSize, sample, F::kEncodedSize);
        }
        ++filled;
      }
    }
  }
  crypto::SecureWipe(bytes, used);
}

// Decodes out.size() elements from exactly as many encodings; false if one
// is >= p. The field's own Decode returns a Result per element, which costs
// more than the conversion itself on long vectors.
bool DecodeElements(std::span<const uint8_t> bytes, std::span<Field64> out) {
  for (size_t i = 0; i < out.size(); ++i) {
    const uint64_t value = LoadLittleEndian64(bytes.data() + 8 * i);
    if (value >= Field64::kModulus) return false;
    out[i] = Field64::FromUint64(value);
  }
  return true;
}

bool DecodeElements(std::span<const uint8_t> bytes, std::span<Field128> out) {
  for (size_t i = 0; i < out.size(); ++i) {
    const Field128::Uint128 value =
        (static_cast<Field128::Uint128>(LoadLittleEndian64(bytes.data() + 16 * i + 8)) << 64) |
        LoadLittleEndian64(bytes.data() + 16 * i);
    if (value >= Field128::kModulus) return false;
    out[i] = Field128::FromUint128BelowModulus(value);
  }
  return true;
}

template <typename F>
Result<void> DecodeInto(std::span<const uint8_t> bytes, std::span<F> out, const char* what) {
  if (!DecodeElements(bytes, out)) {
    return MakeError(ErrorCode::kDecodeError, std::string(what) + " holds an element >= p");
  }
  return {};
}

// The draft's joint_rand_part: derive_seed(blind, dst(7), agg_id || nonce || meas_share).
Seed JointRandPart(DstBuffer& dst, uint8_t agg_id, std::span<const uint8_t> blind,
                   std::span<const uint8_t> encoded_meas_share, std::span<const uint8_t> nonce) {
  Seed part;
  XofTurboShake128 xof(blind, dst(kUsageJointRandPart),
                       crypto::BinderParts{OneByte(agg_id), nonce, encoded_meas_share});
  xof.Next(part);
  return part;
}

// The draft's joint_rand_seed: derive_seed(zeros, dst(6), concat(parts)).
Seed JointRandSeed(DstBuffer& dst, std::span<const uint8_t> parts) {
  static constexpr Seed kZeroSeed = {};
  return XofTurboShake128::DeriveSeed(kZeroSeed, dst(kUsageJointRandSeed), parts);
}

// The XOFs take domain-separation tags of up to 65535 bytes, 8 of them the
// tag's header.
Result<void> CheckCtx(std::span<const uint8_t> ctx) {
  if (ctx.size() > Prio3::kMaxCtxSize) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "Prio3 ctx must be at most " + Str(Prio3::kMaxCtxSize) + " bytes");
  }
  return {};
}

// Elementwise a -= b.
template <typename F>
void Subtract(std::span<F> a, std::span<const F> b) {
  for (size_t i = 0; i < a.size(); ++i) a[i] -= b[i];
}

template <typename F>
FieldVector ToFieldVector(std::vector<F> values) {
  return FieldVector(std::move(values));
}

// A transition to fill in: the one `entry` holds (so that its vectors are
// reused), or a fresh one when it holds an error.
VerifyTransition& ReusableTransition(Result<VerifyTransition>& entry) {
  if (!entry) entry = VerifyTransition();
  return *entry;
}

// A report as one aggregator holds it between PrepareReport and VerifyInit.
template <typename F>
class Prio3Report final : public PreparedReport {
 public:
  Prio3Report(const DstBuffer::Header& dst_header, int agg_id, std::span<const uint8_t> ctx,
              std::span<const uint8_t> nonce, std::span<const uint8_t> joint_rand_parts)
      : agg_id_(agg_id),
        dst_(dst_header, ctx),
        joint_rand_parts_(joint_rand_parts.begin(), joint_rand_parts.end()) {
    std::copy_n(nonce.begin(), Prio3::kNonceSize, nonce_.begin());
  }
  ~Prio3Report() override {
    crypto::SecureWipeVector(shares);
    crypto::SecureWipeVector(encoded_meas_share);
    crypto::SecureWipeObject(share_seed);
    crypto::SecureWipeObject(blind);
  }

  int agg_id() const { return agg_id_; }
  std::span<const uint8_t> ctx() const { return dst_.ctx(); }
  // The domain-separation tags of the report's ctx, built once.
  DstBuffer& dst() { return dst_; }
  std::span<const uint8_t> nonce() const { return nonce_; }
  std::span<const uint8_t> joint_rand_parts() const { return joint_rand_parts_; }

  // The leader's shares, decoded: the measurement share, then the proofs
  // share; and the encoding of its measurement share (kept for the
  // joint-randomness part).
  std::vector<F> shares;
  std::vector<uint8_t> encoded_meas_share;
  // A helper's seed.
  Seed share_seed{};
  // The joint-randomness blind, when the circuit uses joint randomness.
  Seed blind{};

 private:
  int agg_id_;
  DstBuffer dst_;
  std::array<uint8_t, Prio3::kNonceSize> nonce_;
  std::vector<uint8_t> joint_rand_parts_;
};

}  // namespace

// ---- The engine ----------------------------------------------------------------

// What depends on the field: everything but the parameter bookkeeping.
class Prio3::Engine {
 public:
  virtual ~Engine() = default;

  virtual bool uses_joint_rand() const = 0;
  virtual size_t meas_len() const = 0;
  virtual size_t output_len() const = 0;
  virtual size_t proof_len() const = 0;
  virtual size_t verifier_len() const = 0;
  virtual size_t element_size() const = 0;

  virtual Result<ShardOutput> Shard(std::span<const uint8_t> ctx, const Measurement& measurement,
                                    std::span<const uint8_t> nonce,
                                    std::span<const uint8_t> rand) const = 0;
  virtual Result<ShardOutput> ShardEncoded(std::span<const uint8_t> ctx,
                                           std::span<const uint64_t> encoded,
                                           std::span<const uint8_t> nonce,
                                           std::span<const uint8_t> rand) const = 0;
  virtual Result<std::unique_ptr<PreparedReport>> PrepareReport(
      int agg_id, std::span<const uint8_t> ctx, std::span<const uint8_t> nonce,
      std::span<const uint8_t> public_share, std::span<const uint8_t> input_share) const = 0;
  virtual Result<VerifyTransition> VerifyInit(std::span<const uint8_t> verify_key,
                                              std::span<const uint8_t> ctx,
                                              PreparedReport& report) const = 0;
  // out.size() == reports.size().
  virtual void VerifyInitBatch(std::span<const uint8_t> verify_key, std::span<const uint8_t> ctx,
                               std::span<PreparedReport* const> reports,
                               std::span<Result<VerifyTransition>> out) const = 0;
  virtual Result<std::vector<uint8_t>> VerifierSharesToMessage(
      std::span<const uint8_t> ctx,
      std::span<const std::vector<uint8_t>> verifier_shares) const = 0;
  virtual Result<VerifyTransition> VerifyNext(VerifyState state,
                                              std::span<const uint8_t> message) const = 0;
  virtual FieldVector AggregateInit() const = 0;
  virtual Result<FieldVector> DecodeAggShare(std::span<const uint8_t> encoded) const = 0;
  virtual Result<AggregateResult> Unshard(
      std::span<const std::vector<uint8_t>> agg_shares) const = 0;
};

namespace {

template <typename F>
class EngineImpl final : public Prio3::Engine {
 public:
  EngineImpl(uint32_t algorithm_id, size_t shares, size_t proofs,
             std::shared_ptr<const flp::Circuit<F>> circuit)
      : dst_header_(DstBuffer::MakeHeader(algorithm_id)),
        shares_(shares),
        proofs_(static_cast<uint8_t>(proofs)),
        flp_(std::move(circuit)),
        shares_inverse_(F::FromUint64(shares).Inverse()) {}

  bool uses_joint_rand() const override { return flp_.joint_rand_len() > 0; }
  size_t meas_len() const override { return flp_.meas_len(); }
  size_t output_len() const override { return flp_.output_len(); }
  size_t proof_len() const override { return flp_.proof_len(); }
  size_t verifier_len() const override { return flp_.verifier_len(); }
  size_t element_size() const override { return F::kEncodedSize; }

  size_t rand_size() const { return shares_ * kSeedSize * (uses_joint_rand() ? 2 : 1); }
  size_t leader_share_size() const {
    return (meas_len() + proof_len() * proofs_) * F::kEncodedSize +
           (uses_joint_rand() ? kSeedSize : 0);
  }

  // ---- Sharding ----

  Result<ShardOutput> Shard(std::span<const uint8_t> ctx, const Measurement& measurement,
                            std::span<const uint8_t> nonce,
                            std::span<const uint8_t> rand) const override {
    if (Result<void> checked = CheckShardSizes(ctx, nonce, rand); !checked) {
      return std::unexpected(checked.error());
    }
    Result<std::vector<F>> meas = flp_.circuit().Encode(measurement);
    if (!meas) return std::unexpected(meas.error());
    WipeOnExit wipe(*meas);
    return ShardMeasurement(ctx, *meas, nonce, rand);
  }

  Result<ShardOutput> ShardEncoded(std::span<const uint8_t> ctx, std::span<const uint64_t> encoded,
                                   std::span<const uint8_t> nonce,
                                   std::span<const uint8_t> rand) const override {
    if (Result<void> checked = CheckShardSizes(ctx, nonce, rand); !checked) {
      return std::unexpected(checked.error());
    }
    if (encoded.size() != meas_len()) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "an encoded measurement must have " + Str(meas_len()) + " elements");
    }
    std::vector<F> meas;
    for (uint64_t value : encoded) meas.push_back(F::FromUint64(value));
    WipeOnExit wipe(meas);
    return ShardMeasurement(ctx, meas, nonce, rand);
  }

  // ---- Verification ----

  Result<std::unique_ptr<PreparedReport>> PrepareReport(
      int agg_id, std::span<const uint8_t> ctx, std::span<const uint8_t> nonce,
      std::span<const uint8_t> public_share, std::span<const uint8_t> input_share) const override {
    if (agg_id < 0 || static_cast<size_t>(agg_id) >= shares_) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "Prio3 aggregator id must be in [0, " + Str(shares_) + ")");
    }
    if (nonce.size() != Prio3::kNonceSize) {
      return MakeError(ErrorCode::kInvalidArgument, "Prio3 nonce must be 16 bytes");
    }
    if (Result<void> checked = CheckCtx(ctx); !checked) return std::unexpected(checked.error());
    const size_t public_size = uses_joint_rand() ? shares_ * kSeedSize : 0;
    if (public_share.size() != public_size) {
      return MakeError(ErrorCode::kDecodeError, "Prio3 public share must be " + Str(public_size) +
                                                    " bytes, got " + Str(public_share.size()));
    }
    const size_t blind_size = uses_joint_rand() ? kSeedSize : 0;
    const size_t expected = agg_id == 0 ? leader_share_size() : kSeedSize + blind_size;
    if (input_share.size() != expected) {
      return MakeError(ErrorCode::kDecodeError, "Prio3 input share must be " + Str(expected) +
                                                    " bytes, got " + Str(input_share.size()));
    }
    auto report = std::make_unique<Prio3Report<F>>(dst_header_, agg_id, ctx, nonce, public_share);
    if (agg_id == 0) {
      const size_t meas_bytes = meas_len() * F::kEncodedSize;
      report->shares.resize(meas_len() + proof_len() * proofs_);
      if (Result<void> decoded = DecodeInto<F>(input_share, report->shares, "Prio3 input share");
          !decoded) {
        return std::unexpected(decoded.error());
      }
      if (uses_joint_rand()) {
        report->encoded_meas_share.assign(input_share.begin(),
                                          input_share.begin() + static_cast<ptrdiff_t>(meas_bytes));
      }
    } else {
      std::copy_n(input_share.begin(), kSeedSize, report->share_seed.begin());
    }
    if (uses_joint_rand()) {
      std::copy_n(input_share.end() - static_cast<ptrdiff_t>(kSeedSize), kSeedSize,
                  report->blind.begin());
    }
    return std::unique_ptr<PreparedReport>(std::move(report));
  }

  Result<VerifyTransition> VerifyInit(std::span<const uint8_t> verify_key,
                                      std::span<const uint8_t> ctx,
                                      PreparedReport& prepared) const override {
    Result<Prio3Report<F>*> report = CheckReport(verify_key, ctx, &prepared);
    if (!report) return std::unexpected(report.error());
    VerifyScratch scratch(*this, 1, (*report)->agg_id() != 0);
    Result<VerifyTransition> out = VerifyTransition();
    Prio3Report<F>* const group[1] = {*report};
    Result<VerifyTransition>* const outs[1] = {&out};
    VerifyGroup(verify_key, group, scratch, outs);
    return out;
  }

  void VerifyInitBatch(std::span<const uint8_t> verify_key, std::span<const uint8_t> ctx,
                       std::span<PreparedReport* const> reports,
                       std::span<Result<VerifyTransition>> out) const override {
    // The leader's reports and the helpers' take different steps: verify
    // each kind four at a time (the lanes of the 4-way XOF), the last group
    // with the lanes that remain.
    std::vector<size_t> by_kind[2];
    for (size_t i = 0; i < reports.size(); ++i) {
      Result<Prio3Report<F>*> report = CheckReport(verify_key, ctx, reports[i]);
      if (!report) {
        out[i] = std::unexpected(report.error());
      } else {
        by_kind[(*report)->agg_id() != 0 ? 1 : 0].push_back(i);
      }
    }
    const size_t most = std::max(by_kind[0].size(), by_kind[1].size());
    if (most == 0) return;
    VerifyScratch scratch(*this, std::min(kLanes, most), !by_kind[1].empty());
    for (const std::vector<size_t>& indices : by_kind) {
      for (size_t start = 0; start < indices.size(); start += kLanes) {
        const size_t lanes = std::min(kLanes, indices.size() - start);
        Prio3Report<F>* group[kLanes];
        Result<VerifyTransition>* outs[kLanes];
        for (size_t k = 0; k < lanes; ++k) {
          group[k] = static_cast<Prio3Report<F>*>(reports[indices[start + k]]);
          outs[k] = &out[indices[start + k]];
        }
        VerifyGroup(verify_key, std::span<Prio3Report<F>* const>(group, lanes), scratch,
                    std::span<Result<VerifyTransition>* const>(outs, lanes));
      }
    }
  }

  Result<std::vector<uint8_t>> VerifierSharesToMessage(
      std::span<const uint8_t> ctx,
      std::span<const std::vector<uint8_t>> verifier_shares) const override {
    if (Result<void> checked = CheckCtx(ctx); !checked) return std::unexpected(checked.error());
    if (verifier_shares.size() != shares_) {
      return MakeError(
          ErrorCode::kInvalidArgument,
          "Prio3 needs " + Str(shares_) + " verifier shares, got " + Str(verifier_shares.size()));
    }
    const size_t elements = verifier_len() * proofs_;
    const size_t element_bytes = elements * F::kEncodedSize;
    const size_t expected = element_bytes + (uses_joint_rand() ? kSeedSize : 0);
    std::vector<F> verifiers(elements), decoded(elements);
    std::vector<uint8_t> parts;
    for (const std::vector<uint8_t>& share : verifier_shares) {
      if (share.size() != expected) {
        return MakeError(ErrorCode::kDecodeError, "Prio3 verifier share must be " + Str(expected) +
                                                      " bytes, got " + Str(share.size()));
      }
      if (Result<void> ok = DecodeInto<F>(share, decoded, "Prio3 verifier share"); !ok) {
        return std::unexpected(ok.error());
      }
      for (size_t i = 0; i < elements; ++i) verifiers[i] += decoded[i];
      parts.insert(parts.end(), share.begin() + static_cast<ptrdiff_t>(element_bytes), share.end());
    }
    for (size_t i = 0; i < proofs_; ++i) {
      if (!flp_.Decide(std::span<const F>(verifiers).subspan(i * verifier_len(), verifier_len()))) {
        return MakeError(ErrorCode::kVerifyFailed, "Prio3 proof verification failed");
      }
    }
    if (!uses_joint_rand()) return std::vector<uint8_t>();
    DstBuffer dst(dst_header_, ctx);
    const Seed seed = JointRandSeed(dst, parts);
    return std::vector<uint8_t>(seed.begin(), seed.end());
  }

  Result<VerifyTransition> VerifyNext(VerifyState state,
                                      std::span<const uint8_t> message) const override {
    auto* out_share = std::get_if<std::vector<F>>(&state.memory);
    const size_t seed_size = uses_joint_rand() ? kSeedSize : 0;
    if (out_share == nullptr || out_share->size() != output_len() || state.step != 0 ||
        state.seed.size() != seed_size) {
      return MakeError(ErrorCode::kDecodeError, "not a Prio3 verification state of this instance");
    }
    // The joint randomness the client used (as the other aggregators
    // recomputed it) must be the one this aggregator derived.
    if (!std::equal(message.begin(), message.end(), state.seed.begin(), state.seed.end())) {
      return MakeError(ErrorCode::kVerifyFailed, "Prio3 joint randomness check failed");
    }
    VerifyTransition transition;
    transition.finished = true;
    transition.out_share = std::move(state.memory);
    return transition;
  }

  // ---- Aggregation ----

  FieldVector AggregateInit() const override { return std::vector<F>(output_len()); }

  Result<FieldVector> DecodeAggShare(std::span<const uint8_t> encoded) const override {
    const size_t expected = output_len() * F::kEncodedSize;
    if (encoded.size() != expected) {
      return MakeError(ErrorCode::kDecodeError, "Prio3 aggregate share must be " + Str(expected) +
                                                    " bytes, got " + Str(encoded.size()));
    }
    std::vector<F> decoded(output_len());
    if (Result<void> ok = DecodeInto<F>(encoded, decoded, "Prio3 aggregate share"); !ok) {
      return std::unexpected(ok.error());
    }
    return ToFieldVector(std::move(decoded));
  }

  Result<AggregateResult> Unshard(std::span<const std::vector<uint8_t>> agg_shares) const override {
    if (agg_shares.size() != shares_) {
      return MakeError(
          ErrorCode::kInvalidArgument,
          "Prio3 needs " + Str(shares_) + " aggregate shares, got " + Str(agg_shares.size()));
    }
    std::vector<F> total(output_len());
    for (const std::vector<uint8_t>& encoded : agg_shares) {
      Result<FieldVector> share = DecodeAggShare(encoded);
      if (!share) return std::unexpected(share.error());
      const std::vector<F>& elements = std::get<std::vector<F>>(*share);
      for (size_t i = 0; i < total.size(); ++i) total[i] += elements[i];
    }
    AggregateResult result;
    result.reserve(total.size());
    for (const F& element : total) result.push_back(element.value());
    return result;
  }

 private:
  static constexpr size_t kLanes = XofTurboShake128x4::kMaxLanes;
  using ByteLanes = XofTurboShake128x4::Lanes<const uint8_t>;

  // The report behind `prepared` if verify_init may run on it. Errors
  // (kInvalidArgument): no report, one of another Prio3 instance, a verify
  // key that is not 32 bytes, a ctx other than the report's.
  Result<Prio3Report<F>*> CheckReport(std::span<const uint8_t> verify_key,
                                      std::span<const uint8_t> ctx,
                                      PreparedReport* prepared) const {
    // An exact type check (cheaper than dynamic_cast), then the lengths, so
    // that a report of another instance over the same field is refused too.
    if (prepared == nullptr || typeid(*prepared) != typeid(Prio3Report<F>)) {
      return MakeError(ErrorCode::kInvalidArgument, "not a report prepared by this Prio3 instance");
    }
    auto* report = static_cast<Prio3Report<F>*>(prepared);
    const bool joint = uses_joint_rand();
    const bool leader = report->agg_id() == 0;
    if (static_cast<size_t>(report->agg_id()) >= shares_ ||
        report->joint_rand_parts().size() != (joint ? shares_ * kSeedSize : 0) ||
        (leader && report->shares.size() != meas_len() + proof_len() * proofs_) ||
        (leader && joint && report->encoded_meas_share.size() != meas_len() * F::kEncodedSize)) {
      return MakeError(ErrorCode::kInvalidArgument, "not a report prepared by this Prio3 instance");
    }
    if (verify_key.size() != Prio3::kVerifyKeySize) {
      return MakeError(ErrorCode::kInvalidArgument, "Prio3 verify key must be 32 bytes");
    }
    if (!std::equal(ctx.begin(), ctx.end(), report->ctx().begin(), report->ctx().end())) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "the report was prepared with another application context");
    }
    return report;
  }

  // What verify_init needs besides the reports, for up to `lanes` reports at
  // a time: allocated once per batch and reused by every group. It holds
  // shares and randomness derived from them: wiped on destruction.
  struct VerifyScratch {
    VerifyScratch(const EngineImpl& engine, size_t lanes, bool helpers)
        : joint_rand_parts(engine.uses_joint_rand() ? lanes * engine.shares_ * kSeedSize : 0),
          joint_rands(lanes * engine.flp_.joint_rand_len() * engine.proofs_),
          query_rands(lanes * engine.flp_.query_rand_len() * engine.proofs_),
          verifiers(engine.verifier_len() * engine.proofs_),
          query(engine.flp_.query_scratch_len()) {
      if (helpers) {
        helper_shares.resize(lanes * (engine.meas_len() + engine.proof_len() * engine.proofs_));
        if (engine.uses_joint_rand()) {
          encoded_meas_shares.resize(lanes * engine.meas_len() * F::kEncodedSize);
        }
      }
    }
    ~VerifyScratch() {
      crypto::SecureWipeVector(helper_shares);
      crypto::SecureWipeVector(encoded_meas_shares);
      crypto::SecureWipeVector(joint_rand_parts);
      crypto::SecureWipeVector(joint_rands);
      crypto::SecureWipeVector(query_rands);
      crypto::SecureWipeVector(verifiers);
      crypto::SecureWipeVector(query);
    }
    VerifyScratch(const VerifyScratch&) = delete;
    VerifyScratch& operator=(const VerifyScratch&) = delete;

    // Per lane: a helper's measurement share and proofs share, expanded.
    std::vector<F> helper_shares;
    // Per lane: a helper's encoded measurement share, for its joint
    // randomness part.
    std::vector<uint8_t> encoded_meas_shares;
    // Per lane: the public share's joint randomness parts, this
    // aggregator's recomputed.
    std::vector<uint8_t> joint_rand_parts;
    std::vector<F> joint_rands;  // Per lane.
    std::vector<F> query_rands;  // Per lane.
    std::vector<F> verifiers;    // One report's, all proofs.
    std::vector<F> query;        // Flp::Query's scratch.
  };

  // verify_init for 1 to 4 reports of one kind (all the leader's or all
  // helpers'), each XOF running its reports in the lanes of one
  // XofTurboShake128x4; *outs[k] receives report k's transition or error.
  void VerifyGroup(std::span<const uint8_t> verify_key, std::span<Prio3Report<F>* const> group,
                   VerifyScratch& scratch, std::span<Result<VerifyTransition>* const> outs) const {
    const size_t lanes = group.size();
    const bool helper = group[0]->agg_id() != 0;
    const bool joint = uses_joint_rand();
    // Every report was checked to have the batch's ctx: one set of tags.
    DstBuffer& dst = group[0]->dst();
    const size_t shares_len = meas_len() + proof_len() * proofs_;
    const size_t meas_bytes = meas_len() * F::kEncodedSize;
    auto each = [lanes](auto lane_bytes) {
      ByteLanes spans{};
      for (size_t k = 0; k < lanes; ++k) spans[k] = lane_bytes(k);
      return spans;
    };
    auto all = [](size_t count) { return std::array<size_t, kLanes>{count, count, count, count}; };
    auto no_round_work = [](const std::array<size_t, kLanes>&) {};
    uint8_t agg_ids[kLanes];
    for (size_t k = 0; k < lanes; ++k) agg_ids[k] = static_cast<uint8_t>(group[k]->agg_id());
    const ByteLanes agg_id_bytes = each([&](size_t k) { return OneByte(agg_ids[k]); });
    const ByteLanes nonces = each([&](size_t k) { return group[k]->nonce(); });
    const std::span<const uint8_t> proofs_byte = OneByte(proofs_);

    // The joint randomness part hashes agg_id || nonce || the encoded
    // measurement share (the draft's joint_rand_part).
    std::optional<XofTurboShake128x4> part_xof;
    if (joint) {
      part_xof.emplace(lanes,
                       each([&](size_t k) { return std::span<const uint8_t>(group[k]->blind); }),
                       dst(kUsageJointRandPart));
      part_xof->AbsorbBinder(agg_id_bytes);
      part_xof->AbsorbBinder(nonces);
    }

    if (helper) {
      // A helper expands its shares from its seed. Its measurement share is
      // hashed for the joint randomness part as it is sampled, round by
      // round, while its bytes are still in the first-level cache: one pass
      // over the share instead of two.
      const ByteLanes seeds =
          each([&](size_t k) { return std::span<const uint8_t>(group[k]->share_seed); });
      XofTurboShake128x4 meas_xof(lanes, seeds, dst(kUsageMeasShare));
      meas_xof.AbsorbBinder(agg_id_bytes);
      size_t hashed = 0;  // Elements of every lane already absorbed.
      meas_xof.SampleLanes<F::kEncodedSize>(
          all(meas_len()),
          [&](size_t k, size_t index, const uint8_t* draw) {
            if (!FromSample(draw, &scratch.helper_shares[k * shares_len + index])) return false;
            if (joint) {
              std::memcpy(&scratch.encoded_meas_shares[k * meas_bytes + index * F::kEncodedSize],
                          draw, F::kEncodedSize);
            }
            return true;
          },
          [&](const std::array<size_t, kLanes>& accepted) {
            if (!joint) return;
            // Lanes in step up to the slowest one (they only differ after a
            // rejected draw, which is rare).
            size_t common = accepted[0];
            for (size_t k = 1; k < lanes; ++k) common = std::min(common, accepted[k]);
            if (common == hashed) return;
            part_xof->AbsorbBinder(each([&](size_t k) {
              return std::span<const uint8_t>(scratch.encoded_meas_shares)
                  .subspan(k * meas_bytes + hashed * F::kEncodedSize,
                           (common - hashed) * F::kEncodedSize);
            }));
            hashed = common;
          });
      XofTurboShake128x4 proof_xof(lanes, seeds, dst(kUsageProofShare));
      proof_xof.AbsorbBinderAll(proofs_byte);
      proof_xof.AbsorbBinder(agg_id_bytes);
      proof_xof.SampleLanes<F::kEncodedSize>(
          all(proof_len() * proofs_),
          [&](size_t k, size_t index, const uint8_t* draw) {
            return FromSample(draw, &scratch.helper_shares[k * shares_len + meas_len() + index]);
          },
          no_round_work);
    } else if (joint) {
      part_xof->AbsorbBinder(
          each([&](size_t k) { return std::span<const uint8_t>(group[k]->encoded_meas_share); }));
    }

    // The joint randomness, from the parts in the public share with this
    // aggregator's own part recomputed ("corrected").
    Seed parts[kLanes] = {};
    Seed corrected[kLanes] = {};
    const size_t jr_len = flp_.joint_rand_len() * proofs_;
    auto seed_lanes = [&](Seed* seeds) {
      XofTurboShake128x4::Lanes<uint8_t> spans{};
      for (size_t k = 0; k < lanes; ++k) spans[k] = seeds[k];
      return spans;
    };
    if (joint) {
      part_xof->Next(seed_lanes(parts));
      const size_t parts_size = shares_ * kSeedSize;
      for (size_t k = 0; k < lanes; ++k) {
        uint8_t* lane_parts = &scratch.joint_rand_parts[k * parts_size];
        std::ranges::copy(group[k]->joint_rand_parts(), lane_parts);
        std::ranges::copy(parts[k], lane_parts + agg_ids[k] * kSeedSize);
      }
      static constexpr Seed kZeroSeed = {};
      XofTurboShake128x4 seed_xof(lanes,
                                  each([](size_t) { return std::span<const uint8_t>(kZeroSeed); }),
                                  dst(kUsageJointRandSeed));
      seed_xof.AbsorbBinder(each([&](size_t k) {
        return std::span<const uint8_t>(scratch.joint_rand_parts)
            .subspan(k * parts_size, parts_size);
      }));
      seed_xof.Next(seed_lanes(corrected));
      XofTurboShake128x4 joint_xof(
          lanes, each([&](size_t k) { return std::span<const uint8_t>(corrected[k]); }),
          dst(kUsageJointRandomness));
      joint_xof.AbsorbBinderAll(proofs_byte);
      joint_xof.SampleLanes<F::kEncodedSize>(
          all(jr_len),
          [&](size_t k, size_t index, const uint8_t* draw) {
            return FromSample(draw, &scratch.joint_rands[k * jr_len + index]);
          },
          no_round_work);
    }

    // The query randomness.
    const size_t qr_len = flp_.query_rand_len() * proofs_;
    XofTurboShake128x4 query_xof(lanes, each([&](size_t) { return verify_key; }),
                                 dst(kUsageQueryRandomness));
    query_xof.AbsorbBinderAll(proofs_byte);
    query_xof.AbsorbBinder(nonces);
    query_xof.SampleLanes<F::kEncodedSize>(
        all(qr_len),
        [&](size_t k, size_t index, const uint8_t* draw) {
          return FromSample(draw, &scratch.query_rands[k * qr_len + index]);
        },
        no_round_work);

    // The FLP queries and the transitions, report by report.
    for (size_t k = 0; k < lanes; ++k) {
      const std::span<const F> shares =
          helper ? std::span<const F>(scratch.helper_shares).subspan(k * shares_len, shares_len)
                 : std::span<const F>(group[k]->shares);
      const std::span<const F> meas_share = shares.first(meas_len());
      const std::span<const F> proofs_share = shares.subspan(meas_len());
      const std::span<const F> query_rands =
          std::span<const F>(scratch.query_rands).subspan(k * qr_len, qr_len);
      const std::span<const F> joint_rands =
          std::span<const F>(scratch.joint_rands).subspan(k * jr_len, jr_len);
      Result<void> queried;
      for (size_t i = 0; i < proofs_ && queried; ++i) {
        queried = flp_.Query(
            meas_share, proofs_share.subspan(i * proof_len(), proof_len()),
            query_rands.subspan(i * flp_.query_rand_len(), flp_.query_rand_len()),
            joint_rands.subspan(i * flp_.joint_rand_len(), flp_.joint_rand_len()), shares_inverse_,
            std::span<F>(scratch.verifiers).subspan(i * verifier_len(), verifier_len()),
            scratch.query);
      }
      if (!queried) {
        *outs[k] = std::unexpected(queried.error());
        continue;
      }
      VerifyTransition& transition = ReusableTransition(*outs[k]);
      transition.finished = false;
      transition.out_share = FieldVector();
      transition.state.step = 0;
      transition.state.level = 0;
      transition.state.agg_id = agg_ids[k];
      std::vector<F>* out_share = std::get_if<std::vector<F>>(&transition.state.memory);
      if (out_share == nullptr)
        out_share = &transition.state.memory.template emplace<std::vector<F>>();
      out_share->resize(output_len());
      flp_.circuit().Truncate(meas_share, *out_share);
      if (joint) {
        transition.state.seed.assign(corrected[k].begin(), corrected[k].end());
      } else {
        transition.state.seed.clear();
      }
      transition.verifier_share.clear();
      crypto::EncodeVec<F>(std::span<const F>(scratch.verifiers), transition.verifier_share);
      if (joint) {
        transition.verifier_share.insert(transition.verifier_share.end(), parts[k].begin(),
                                         parts[k].end());
      }
    }
    crypto::SecureWipeObject(parts);
    crypto::SecureWipeObject(corrected);
  }

  Result<void> CheckShardSizes(std::span<const uint8_t> ctx, std::span<const uint8_t> nonce,
                               std::span<const uint8_t> rand) const {
    if (Result<void> checked = CheckCtx(ctx); !checked) return checked;
    if (nonce.size() != Prio3::kNonceSize) {
      return MakeError(ErrorCode::kInvalidArgument, "Prio3 nonce must be 16 bytes");
    }
    if (rand.size() != rand_size()) {
      return MakeError(ErrorCode::kInvalidArgument, "Prio3 rand must be " + Str(rand_size()) +
                                                        " bytes, got " + Str(rand.size()));
    }
    return {};
  }

  // The draft's shard_without_joint_rand and shard_with_joint_rand.
  Result<ShardOutput> ShardMeasurement(std::span<const uint8_t> ctx, std::span<const F> meas,
                                       std::span<const uint8_t> nonce,
                                       std::span<const uint8_t> rand) const {
    const bool joint = uses_joint_rand();
    auto seed_at = [&rand](size_t index) { return rand.subspan(index * kSeedSize, kSeedSize); };
    // rand: per helper its share seed (and blind), then the leader's blind
    // (with joint randomness) and the proving seed.
    auto helper_share = [&](size_t j) { return seed_at(joint ? 2 * (j - 1) : j - 1); };
    auto helper_blind = [&](size_t j) { return seed_at(2 * (j - 1) + 1); };
    const std::span<const uint8_t> leader_blind =
        joint ? seed_at(2 * (shares_ - 1)) : std::span<const uint8_t>();
    const std::span<const uint8_t> prove_seed = seed_at(joint ? 2 * shares_ - 1 : shares_ - 1);
    DstBuffer dst(dst_header_, ctx);

    // Measurement shares: each helper's from its seed, the leader's the rest.
    std::vector<F> leader_meas(meas.begin(), meas.end());
    std::vector<F> helper_meas(meas_len());
    std::vector<uint8_t> encoded;
    WipeOnExit wipe_leader(leader_meas), wipe_helper(helper_meas), wipe_encoded(encoded);
    std::vector<uint8_t> parts(joint ? shares_ * kSeedSize : 0);
    for (size_t j = 1; j < shares_; ++j) {
      const uint8_t agg_id = static_cast<uint8_t>(j);
      XofTurboShake128 xof(helper_share(j), dst(kUsageMeasShare), OneByte(agg_id));
      encoded.clear();
      if (joint) {
        SampleVec<F>(xof, std::span<F>(helper_meas), &encoded);
        const Seed part = JointRandPart(dst, agg_id, helper_blind(j), encoded, nonce);
        std::copy(part.begin(), part.end(), parts.begin() + static_cast<ptrdiff_t>(j * kSeedSize));
      } else {
        SampleVec<F>(xof, std::span<F>(helper_meas), nullptr);
      }
      Subtract<F>(leader_meas, helper_meas);
    }
    std::vector<F> joint_rands;
    WipeOnExit wipe_joint(joint_rands);
    if (joint) {
      encoded.clear();
      crypto::EncodeVec<F>(leader_meas, encoded);
      const Seed part = JointRandPart(dst, 0, leader_blind, encoded, nonce);
      std::copy(part.begin(), part.end(), parts.begin());
      const Seed joint_seed = JointRandSeed(dst, parts);
      joint_rands =
          XofTurboShake128::ExpandIntoVec<F>(joint_seed, dst(kUsageJointRandomness),
                                             OneByte(proofs_), flp_.joint_rand_len() * proofs_);
    }

    // The proofs, then the leader's share of them.
    std::vector<F> prove_rands = XofTurboShake128::ExpandIntoVec<F>(
        prove_seed, dst(kUsageProveRandomness), OneByte(proofs_), flp_.prove_rand_len() * proofs_);
    WipeOnExit wipe_prove_rands(prove_rands);
    std::vector<F> proofs(proof_len() * proofs_);
    WipeOnExit wipe_proofs(proofs);
    for (size_t i = 0; i < proofs_; ++i) {
      flp_.Prove(
          meas,
          std::span<const F>(prove_rands).subspan(i * flp_.prove_rand_len(), flp_.prove_rand_len()),
          std::span<const F>(joint_rands).subspan(i * flp_.joint_rand_len(), flp_.joint_rand_len()),
          std::span<F>(proofs).subspan(i * proof_len(), proof_len()));
    }
    std::vector<F> helper_proofs(proofs.size());
    WipeOnExit wipe_helper_proofs(helper_proofs);
    for (size_t j = 1; j < shares_; ++j) {
      const uint8_t agg_id = static_cast<uint8_t>(j);
      XofTurboShake128 xof(helper_share(j), dst(kUsageProofShare),
                           crypto::BinderParts{OneByte(proofs_), OneByte(agg_id)});
      SampleVec<F>(xof, std::span<F>(helper_proofs), nullptr);
      Subtract<F>(proofs, helper_proofs);
    }

    ShardOutput out;
    out.public_share = std::move(parts);
    std::vector<uint8_t> leader;
    leader.reserve(leader_share_size());
    crypto::EncodeVec<F>(leader_meas, leader);
    crypto::EncodeVec<F>(proofs, leader);
    if (joint) leader.insert(leader.end(), leader_blind.begin(), leader_blind.end());
    out.input_shares.push_back(std::move(leader));
    for (size_t j = 1; j < shares_; ++j) {
      std::vector<uint8_t> helper(helper_share(j).begin(), helper_share(j).end());
      if (joint) helper.insert(helper.end(), helper_blind(j).begin(), helper_blind(j).end());
      out.input_shares.push_back(std::move(helper));
    }
    return out;
  }

  DstBuffer::Header dst_header_;
  size_t shares_;
  uint8_t proofs_;
  flp::Flp<F> flp_;
  F shares_inverse_;
};

Result<void> CheckShares(size_t shares) {
  if (shares < Prio3::kMinShares || shares > Prio3::kMaxShares) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "Prio3 needs 2 to 255 shares (aggregators), got " + Str(shares));
  }
  return {};
}

}  // namespace

// ---- Prio3 -------------------------------------------------------------------------

Prio3::Prio3(uint32_t algorithm_id, std::string name, size_t shares, size_t proofs, FieldKind field,
             std::unique_ptr<const Engine> engine)
    : algorithm_id_(algorithm_id),
      name_(std::move(name)),
      shares_(shares),
      proofs_(proofs),
      field_(field),
      engine_(std::move(engine)) {}

Prio3::~Prio3() = default;

Result<std::unique_ptr<Prio3>> Prio3::Count(size_t shares) {
  if (Result<void> checked = CheckShares(shares); !checked) return std::unexpected(checked.error());
  return std::unique_ptr<Prio3>(new Prio3(
      kCountId, "Prio3Count(shares=" + Str(shares) + ")", shares, 1, FieldKind::kField64,
      std::make_unique<EngineImpl<Field64>>(kCountId, shares, 1, prio3::MakeCountCircuit())));
}

Result<std::unique_ptr<Prio3>> Prio3::Sum(uint64_t max_measurement, size_t shares) {
  if (Result<void> checked = CheckShares(shares); !checked) return std::unexpected(checked.error());
  auto circuit = prio3::MakeSumCircuit(max_measurement);
  if (!circuit) return std::unexpected(circuit.error());
  return std::unique_ptr<Prio3>(new Prio3(
      kSumId, "Prio3Sum(max_measurement=" + Str(max_measurement) + ", shares=" + Str(shares) + ")",
      shares, 1, FieldKind::kField64,
      std::make_unique<EngineImpl<Field64>>(kSumId, shares, 1, std::move(*circuit))));
}

Result<std::unique_ptr<Prio3>> Prio3::SumVec(size_t length, uint64_t max_measurement,
                                             size_t chunk_length, size_t shares, size_t proofs) {
  if (proofs != 1) {
    return SumVecWithMultiproof(FieldKind::kField128, proofs, length, max_measurement, chunk_length,
                                shares);
  }
  if (Result<void> checked = CheckShares(shares); !checked) return std::unexpected(checked.error());
  auto circuit = prio3::MakeSumVecCircuit<Field128>(length, max_measurement, chunk_length);
  if (!circuit) return std::unexpected(circuit.error());
  return std::unique_ptr<Prio3>(
      new Prio3(kSumVecId,
                "Prio3SumVec(length=" + Str(length) + ", max_measurement=" + Str(max_measurement) +
                    ", chunk_length=" + Str(chunk_length) + ", shares=" + Str(shares) + ")",
                shares, 1, FieldKind::kField128,
                std::make_unique<EngineImpl<Field128>>(kSumVecId, shares, 1, std::move(*circuit))));
}

Result<std::unique_ptr<Prio3>> Prio3::SumVecWithMultiproof(FieldKind field, size_t proofs,
                                                           size_t length, uint64_t max_measurement,
                                                           size_t chunk_length, size_t shares) {
  if (Result<void> checked = CheckShares(shares); !checked) return std::unexpected(checked.error());
  if (proofs == 0 || proofs > kMaxProofs) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "Prio3 needs 1 to 255 proofs, got " + Str(proofs));
  }
  const std::string name = std::string("Prio3SumVecWithMultiproof(field=") +
                           (field == FieldKind::kField64 ? "Field64" : "Field128") +
                           ", proofs=" + Str(proofs) + ", length=" + Str(length) +
                           ", max_measurement=" + Str(max_measurement) +
                           ", chunk_length=" + Str(chunk_length) + ", shares=" + Str(shares) + ")";
  std::unique_ptr<const Engine> engine;
  if (field == FieldKind::kField64) {
    auto circuit = prio3::MakeSumVecCircuit<Field64>(length, max_measurement, chunk_length);
    if (!circuit) return std::unexpected(circuit.error());
    engine = std::make_unique<EngineImpl<Field64>>(kTestId, shares, proofs, std::move(*circuit));
  } else {
    auto circuit = prio3::MakeSumVecCircuit<Field128>(length, max_measurement, chunk_length);
    if (!circuit) return std::unexpected(circuit.error());
    engine = std::make_unique<EngineImpl<Field128>>(kTestId, shares, proofs, std::move(*circuit));
  }
  return std::unique_ptr<Prio3>(new Prio3(kTestId, name, shares, proofs, field, std::move(engine)));
}

Result<std::unique_ptr<Prio3>> Prio3::Histogram(size_t length, size_t chunk_length, size_t shares) {
  if (Result<void> checked = CheckShares(shares); !checked) return std::unexpected(checked.error());
  auto circuit = prio3::MakeHistogramCircuit(length, chunk_length);
  if (!circuit) return std::unexpected(circuit.error());
  return std::unique_ptr<Prio3>(new Prio3(
      kHistogramId,
      "Prio3Histogram(length=" + Str(length) + ", chunk_length=" + Str(chunk_length) +
          ", shares=" + Str(shares) + ")",
      shares, 1, FieldKind::kField128,
      std::make_unique<EngineImpl<Field128>>(kHistogramId, shares, 1, std::move(*circuit))));
}

Result<std::unique_ptr<Prio3>> Prio3::MultihotCountVec(size_t length, size_t max_weight,
                                                       size_t chunk_length, size_t shares) {
  if (Result<void> checked = CheckShares(shares); !checked) return std::unexpected(checked.error());
  auto circuit = prio3::MakeMultihotCountVecCircuit(length, max_weight, chunk_length);
  if (!circuit) return std::unexpected(circuit.error());
  return std::unique_ptr<Prio3>(new Prio3(
      kMultihotCountVecId,
      "Prio3MultihotCountVec(length=" + Str(length) + ", max_weight=" + Str(max_weight) +
          ", chunk_length=" + Str(chunk_length) + ", shares=" + Str(shares) + ")",
      shares, 1, FieldKind::kField128,
      std::make_unique<EngineImpl<Field128>>(kMultihotCountVecId, shares, 1, std::move(*circuit))));
}

Result<std::unique_ptr<Prio3>> Prio3::HigherDegree(size_t shares) {
  if (Result<void> checked = CheckShares(shares); !checked) return std::unexpected(checked.error());
  return std::unique_ptr<Prio3>(new Prio3(
      kTestId, "Prio3HigherDegree(shares=" + Str(shares) + ")", shares, 1, FieldKind::kField64,
      std::make_unique<EngineImpl<Field64>>(kTestId, shares, 1, prio3::MakeHigherDegreeCircuit())));
}

size_t Prio3::RecommendedChunkLength(size_t meas_len) {
  const size_t root = static_cast<size_t>(std::llround(std::sqrt(static_cast<double>(meas_len))));
  return std::max<size_t>(root, 1);
}

bool Prio3::uses_joint_rand() const { return engine_->uses_joint_rand(); }
size_t Prio3::meas_len() const { return engine_->meas_len(); }
size_t Prio3::output_len() const { return engine_->output_len(); }
size_t Prio3::proof_len() const { return engine_->proof_len(); }
size_t Prio3::verifier_len() const { return engine_->verifier_len(); }

size_t Prio3::rand_size() const { return shares_ * kSeedSize * (uses_joint_rand() ? 2 : 1); }

size_t Prio3::PublicShareSize() const { return uses_joint_rand() ? shares_ * kSeedSize : 0; }

size_t Prio3::InputShareSize(int agg_id) const {
  const size_t blind = uses_joint_rand() ? kSeedSize : 0;
  if (agg_id != 0) return kSeedSize + blind;
  return (meas_len() + proof_len() * proofs_) * engine_->element_size() + blind;
}

size_t Prio3::VerifierShareSize() const {
  return verifier_len() * proofs_ * engine_->element_size() + (uses_joint_rand() ? kSeedSize : 0);
}

size_t Prio3::VerifierMessageSize() const { return uses_joint_rand() ? kSeedSize : 0; }

size_t Prio3::AggShareSize() const { return output_len() * engine_->element_size(); }

Result<ShardOutput> Prio3::Shard(std::span<const uint8_t> ctx, const Measurement& measurement,
                                 std::span<const uint8_t> nonce,
                                 std::span<const uint8_t> rand) const {
  return engine_->Shard(ctx, measurement, nonce, rand);
}

Result<ShardOutput> Prio3::ShardEncodedForTesting(std::span<const uint8_t> ctx,
                                                  std::span<const uint64_t> encoded,
                                                  std::span<const uint8_t> nonce,
                                                  std::span<const uint8_t> rand) const {
  return engine_->ShardEncoded(ctx, encoded, nonce, rand);
}

Result<std::shared_ptr<const AggregationParameter>> Prio3::DecodeAggParam(
    std::span<const uint8_t> encoded, const AggregationParameter*) const {
  if (!encoded.empty()) {
    return MakeError(ErrorCode::kDecodeError, "a Prio3 aggregation parameter must be empty");
  }
  static const auto kParam = std::make_shared<const Prio3AggParam>();
  return std::shared_ptr<const AggregationParameter>(kParam);
}

std::vector<uint8_t> Prio3::EncodeAggParam(const AggregationParameter&) const { return {}; }

bool Prio3::IsValid(const AggregationParameter& agg_param,
                    std::span<const AggregationParameter* const> previous) const {
  return dynamic_cast<const Prio3AggParam*>(&agg_param) != nullptr && previous.empty();
}

Result<std::unique_ptr<PreparedReport>> Prio3::PrepareReport(
    int agg_id, std::span<const uint8_t> ctx, std::span<const uint8_t> nonce,
    std::span<const uint8_t> public_share, std::span<const uint8_t> input_share) const {
  return engine_->PrepareReport(agg_id, ctx, nonce, public_share, input_share);
}

Result<VerifyTransition> Prio3::VerifyInit(std::span<const uint8_t> verify_key,
                                           std::span<const uint8_t> ctx,
                                           const AggregationParameter& agg_param,
                                           PreparedReport& report) const {
  if (dynamic_cast<const Prio3AggParam*>(&agg_param) == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument, "not a Prio3 aggregation parameter");
  }
  return engine_->VerifyInit(verify_key, ctx, report);
}

void Prio3::VerifyInitBatch(std::span<const uint8_t> verify_key, std::span<const uint8_t> ctx,
                            const AggregationParameter& agg_param,
                            std::span<PreparedReport* const> reports,
                            std::span<Result<VerifyTransition>> out) const {
  if (out.size() != reports.size()) {
    Vdaf::VerifyInitBatch(verify_key, ctx, agg_param, reports, out);  // Reports the mismatch.
    return;
  }
  if (dynamic_cast<const Prio3AggParam*>(&agg_param) == nullptr) {
    for (Result<VerifyTransition>& entry : out) {
      entry = MakeError(ErrorCode::kInvalidArgument, "not a Prio3 aggregation parameter");
    }
    return;
  }
  engine_->VerifyInitBatch(verify_key, ctx, reports, out);
}

Result<std::vector<uint8_t>> Prio3::VerifierSharesToMessage(
    std::span<const uint8_t> ctx, const AggregationParameter& agg_param,
    std::span<const std::vector<uint8_t>> verifier_shares) const {
  if (dynamic_cast<const Prio3AggParam*>(&agg_param) == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument, "not a Prio3 aggregation parameter");
  }
  return engine_->VerifierSharesToMessage(ctx, verifier_shares);
}

Result<VerifyTransition> Prio3::VerifyNext(std::span<const uint8_t>, VerifyState state,
                                           std::span<const uint8_t> verifier_message) const {
  return engine_->VerifyNext(std::move(state), verifier_message);
}

FieldVector Prio3::AggregateInit(const AggregationParameter&) const {
  return engine_->AggregateInit();
}

Result<FieldVector> Prio3::DecodeAggShare(const AggregationParameter& agg_param,
                                          std::span<const uint8_t> encoded) const {
  if (dynamic_cast<const Prio3AggParam*>(&agg_param) == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument, "not a Prio3 aggregation parameter");
  }
  return engine_->DecodeAggShare(encoded);
}

Result<AggregateResult> Prio3::Unshard(const AggregationParameter& agg_param,
                                       std::span<const std::vector<uint8_t>> agg_shares,
                                       uint64_t) const {
  if (dynamic_cast<const Prio3AggParam*>(&agg_param) == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument, "not a Prio3 aggregation parameter");
  }
  return engine_->Unshard(agg_shares);
}

}  // namespace canopy::poplar
