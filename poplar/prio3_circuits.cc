#include "poplar/prio3_circuits.h"

#include <algorithm>
#include <bit>
#include <string>
#include <vector>

#include "crypto/secure_wipe.h"
#include "poplar/internal/ntt.h"

namespace canopy::poplar::prio3 {

using crypto::Field128;
using crypto::Field64;
using flp::Circuit;
using flp::Gadget;
using flp::GadgetCalls;

namespace {

std::string Str(uint64_t value) { return std::to_string(value); }

Result<void> InvalidArgument(std::string message) {
  return MakeError(ErrorCode::kInvalidArgument, std::move(message));
}

// 1 if a == b, else 0, without branching on the (secret) values.
uint64_t EqualMask(uint64_t a, uint64_t b) {
  const uint64_t difference = a ^ b;
  return 1 ^ ((difference | (0 - difference)) >> 63);
}

// The draft's encode_range_checked_int and decode_range_checked_int: a value
// in [0, max] as bits - 1 binary digits plus one bit of weight
// max - (2^(bits-1) - 1), so that every 0/1 vector decodes into [0, max].
template <typename F>
class RangeCheckedInt {
 public:
  explicit RangeCheckedInt(uint64_t max)
      : max_(max),
        bits_(static_cast<size_t>(std::bit_width(max))),
        rest_all_ones_((uint64_t{1} << (bits_ - 1)) - 1),
        last_weight_(max - rest_all_ones_) {}

  size_t bits() const { return bits_; }
  uint64_t max() const { return max_; }

  // `value` must be <= max. Constant time in `value`.
  void Encode(uint64_t value, std::span<F> out) const {
    uint64_t unused;
    // 1 when value > 2^(bits-1) - 1: then the last weight carries part of it.
    const uint64_t above = __builtin_sub_overflow(rest_all_ones_, value, &unused);
    const uint64_t rest = value - (last_weight_ & (0 - above));
    for (size_t l = 0; l + 1 < bits_; ++l) out[l] = F::FromUint64((rest >> l) & 1);
    out[bits_ - 1] = F::FromUint64(above);
  }

  // Linear, so it applies to shares too. Doubling instead of multiplying by
  // 2^l: additions are much cheaper than products in Field128.
  F Decode(std::span<const F> encoded) const {
    F value = F::Zero();
    for (size_t l = bits_ - 1; l-- > 0;) value = value + value + encoded[l];
    return value + F::FromUint64(last_weight_) * encoded[bits_ - 1];
  }

 private:
  uint64_t max_;
  size_t bits_;
  uint64_t rest_all_ones_;
  uint64_t last_weight_;
};

// Does 2^bits fit below the modulus, as the draft requires of Sum's bound?
template <typename F>
bool BitsFitField(size_t bits) {
  if constexpr (std::is_same_v<F, Field64>) {
    return bits < 64;  // 2^63 < p < 2^64.
  } else {
    return bits < 128;
  }
}

// The range check of SumVec, Histogram and MultihotCountVec: for each call i
// of ParallelSum(Mul, chunk_length) with joint randomness r_i, the inputs
// are (r_i^(j+1) * m, m - 1/shares) for the chunk's elements m (zero past
// the end), and the outputs are summed. Each product is zero exactly when
// the element is 0 or 1 (as a whole measurement: the shares' 1/shares terms
// add up to 1).
template <typename F>
F ChunkedRangeCheck(std::span<const F> meas, std::span<const F> joint_rand, size_t chunk_length,
                    F shares_inverse, GadgetCalls<F>& gadgets) {
  F range_check = F::Zero();
  const std::span<F> checks = gadgets.WireChecks(0);
  if (!checks.empty()) {
    // The verifier only needs each wire's weighted sum over the calls: with
    // weight c_i for call i, wire 2j gets sum_i c_i r_i^(j+1) m_ij and wire
    // 2j + 1 gets sum_i c_i (m_ij - 1/shares). Starting the powers at
    // c_i * r_i weights the first inputs for free; the -c_i/shares terms add
    // up to one per wire, subtracted at the end; and each wire's products
    // are summed unreduced and reduced once (ProductSum), so that a
    // measurement element costs one full multiplication (the next power)
    // and two unreduced products.
    std::vector<internal::ProductSum<F>> sums(2 * chunk_length);
    F weight_sum = F::Zero();
    for (size_t call = 0; call < joint_rand.size(); ++call) {
      const F weight = gadgets.NextCallWeight(0);
      const F r = joint_rand[call];
      F r_power = weight * r;
      const size_t start = call * chunk_length;
      const size_t present = start < meas.size() ? std::min(chunk_length, meas.size() - start) : 0;
      const F* chunk = meas.data() + start;
      for (size_t j = 0; j < present; ++j) {
        sums[2 * j].Add(r_power, chunk[j]);
        sums[2 * j + 1].Add(weight, chunk[j]);
        r_power *= r;
      }
      weight_sum += weight;
      // The inputs went into `sums`; the call only reads the gadget output.
      range_check += gadgets.CallScaled(0, {});
    }
    const F offset = weight_sum * shares_inverse;
    for (size_t j = 0; j < chunk_length; ++j) {
      checks[2 * j] += sums[2 * j].Reduce();
      checks[2 * j + 1] += sums[2 * j + 1].Reduce() - offset;
    }
    crypto::SecureWipeVector(sums);
    return range_check;
  }

  std::vector<F> inputs(2 * chunk_length);
  crypto::WipeOnExit wipe(inputs);
  // The prover: the inputs themselves.
  for (size_t call = 0; call < joint_rand.size(); ++call) {
    const F r = joint_rand[call];
    F r_power = r;
    const size_t start = call * chunk_length;
    const size_t present = start < meas.size() ? std::min(chunk_length, meas.size() - start) : 0;
    for (size_t j = 0; j < present; ++j) {
      const F m = meas[start + j];
      inputs[2 * j] = r_power * m;
      inputs[2 * j + 1] = m - shares_inverse;
      r_power *= r;
    }
    for (size_t j = present; j < chunk_length; ++j) {
      inputs[2 * j] = F::Zero();
      inputs[2 * j + 1] = -shares_inverse;
    }
    range_check += gadgets.Call(0, inputs);
  }
  return range_check;
}

size_t CeilDiv(size_t a, size_t b) { return a / b + (a % b != 0 ? 1 : 0); }

// ---- Count -------------------------------------------------------------------------

class CountCircuit final : public Circuit<Field64> {
 public:
  explicit CountCircuit(Gadget<Field64> mul) : Circuit(1, 0, 1, 1, {std::move(mul)}) {}

  Result<std::vector<Field64>> Encode(const Measurement& measurement) const override {
    const uint64_t* value = std::get_if<uint64_t>(&measurement);
    if (value == nullptr)
      return MakeError(ErrorCode::kInvalidArgument, "a Prio3Count measurement must be a number");
    if (*value > 1) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "Prio3Count measurement " + Str(*value) + " exceeds max_measurement 1");
    }
    return std::vector<Field64>{Field64::FromUint64(*value)};
  }

  void Eval(std::span<const Field64> meas, std::span<const Field64>, Field64,
            GadgetCalls<Field64>& gadgets, std::span<Field64> out) const override {
    const Field64 inputs[2] = {meas[0], meas[0]};
    out[0] = gadgets.Call(0, inputs) - meas[0];
  }

  void Truncate(std::span<const Field64> meas, std::span<Field64> out) const override {
    out[0] = meas[0];
  }
};

// ---- Sum ---------------------------------------------------------------------------

class SumCircuit final : public Circuit<Field64> {
 public:
  SumCircuit(RangeCheckedInt<Field64> range, Gadget<Field64> gadget)
      : Circuit(range.bits(), 0, 1, range.bits(), {std::move(gadget)}), range_(range) {}

  Result<std::vector<Field64>> Encode(const Measurement& measurement) const override {
    const uint64_t* value = std::get_if<uint64_t>(&measurement);
    if (value == nullptr)
      return MakeError(ErrorCode::kInvalidArgument, "a Prio3Sum measurement must be a number");
    if (*value > range_.max()) {
      return MakeError(
          ErrorCode::kInvalidArgument,
          "Prio3Sum measurement " + Str(*value) + " exceeds max_measurement " + Str(range_.max()));
    }
    std::vector<Field64> encoded(range_.bits());
    range_.Encode(*value, encoded);
    return encoded;
  }

  void Eval(std::span<const Field64> meas, std::span<const Field64>, Field64,
            GadgetCalls<Field64>& gadgets, std::span<Field64> out) const override {
    for (size_t i = 0; i < range_.bits(); ++i) out[i] = gadgets.Call(0, meas.subspan(i, 1));
  }

  void Truncate(std::span<const Field64> meas, std::span<Field64> out) const override {
    out[0] = range_.Decode(meas);
  }

 private:
  RangeCheckedInt<Field64> range_;
};

// ---- SumVec ------------------------------------------------------------------------

template <typename F>
class SumVecCircuit final : public Circuit<F> {
 public:
  SumVecCircuit(size_t length, RangeCheckedInt<F> range, size_t chunk_length, Gadget<F> gadget)
      : Circuit<F>(length * range.bits(), gadget.calls(), length, 1, {gadget}),
        length_(length),
        range_(range),
        chunk_length_(chunk_length) {}

  Result<std::vector<F>> Encode(const Measurement& measurement) const override {
    const auto* values = std::get_if<std::vector<uint64_t>>(&measurement);
    if (values == nullptr) {
      return MakeError(ErrorCode::kInvalidArgument, "a Prio3SumVec measurement must be a vector");
    }
    if (values->size() != length_) {
      return MakeError(ErrorCode::kInvalidArgument, "a Prio3SumVec measurement must have " +
                                                        Str(length_) + " elements, got " +
                                                        Str(values->size()));
    }
    for (size_t i = 0; i < length_; ++i) {
      if ((*values)[i] > range_.max()) {
        return MakeError(ErrorCode::kInvalidArgument,
                         "Prio3SumVec measurement element " + Str(i) + " is " + Str((*values)[i]) +
                             ", which exceeds max_measurement " + Str(range_.max()));
      }
    }
    std::vector<F> encoded(this->meas_len());
    for (size_t i = 0; i < length_; ++i) {
      range_.Encode((*values)[i], std::span<F>(encoded).subspan(i * range_.bits(), range_.bits()));
    }
    return encoded;
  }

  void Eval(std::span<const F> meas, std::span<const F> joint_rand, F shares_inverse,
            GadgetCalls<F>& gadgets, std::span<F> out) const override {
    out[0] = ChunkedRangeCheck(meas, joint_rand, chunk_length_, shares_inverse, gadgets);
  }

  void Truncate(std::span<const F> meas, std::span<F> out) const override {
    for (size_t i = 0; i < length_; ++i) {
      out[i] = range_.Decode(meas.subspan(i * range_.bits(), range_.bits()));
    }
  }

 private:
  size_t length_;
  RangeCheckedInt<F> range_;
  size_t chunk_length_;
};

// ---- Histogram ---------------------------------------------------------------------

class HistogramCircuit final : public Circuit<Field128> {
 public:
  HistogramCircuit(size_t length, size_t chunk_length, Gadget<Field128> gadget)
      : Circuit(length, gadget.calls(), length, 2, {gadget}),
        length_(length),
        chunk_length_(chunk_length) {}

  Result<std::vector<Field128>> Encode(const Measurement& measurement) const override {
    const uint64_t* index = std::get_if<uint64_t>(&measurement);
    if (index == nullptr) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "a Prio3Histogram measurement must be a number");
    }
    if (*index >= length_) {
      return MakeError(ErrorCode::kInvalidArgument, "Prio3Histogram measurement " + Str(*index) +
                                                        " exceeds the largest bucket index " +
                                                        Str(length_ - 1));
    }
    // One-hot, without branching on which bucket.
    std::vector<Field128> encoded(length_);
    for (size_t i = 0; i < length_; ++i) encoded[i] = Field128::FromUint64(EqualMask(i, *index));
    return encoded;
  }

  void Eval(std::span<const Field128> meas, std::span<const Field128> joint_rand,
            Field128 shares_inverse, GadgetCalls<Field128>& gadgets,
            std::span<Field128> out) const override {
    out[0] = ChunkedRangeCheck(meas, joint_rand, chunk_length_, shares_inverse, gadgets);
    // The buckets sum to 1 (each share's part of the 1 is 1/shares).
    out[1] = internal::SumElements(meas) - shares_inverse;
  }

  void Truncate(std::span<const Field128> meas, std::span<Field128> out) const override {
    std::copy(meas.begin(), meas.end(), out.begin());
  }

 private:
  size_t length_;
  size_t chunk_length_;
};

// ---- MultihotCountVec --------------------------------------------------------------

class MultihotCountVecCircuit final : public Circuit<Field128> {
 public:
  MultihotCountVecCircuit(size_t length, RangeCheckedInt<Field128> weight, size_t chunk_length,
                          Gadget<Field128> gadget)
      : Circuit(length + weight.bits(), gadget.calls(), length, 2, {gadget}),
        length_(length),
        weight_(weight),
        chunk_length_(chunk_length) {}

  Result<std::vector<Field128>> Encode(const Measurement& measurement) const override {
    const auto* values = std::get_if<std::vector<uint64_t>>(&measurement);
    if (values == nullptr) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "a Prio3MultihotCountVec measurement must be a vector");
    }
    if (values->size() != length_) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "a Prio3MultihotCountVec measurement must have " + Str(length_) +
                           " elements, got " + Str(values->size()));
    }
    uint64_t weight = 0;
    for (size_t i = 0; i < length_; ++i) {
      if ((*values)[i] > 1) {
        return MakeError(ErrorCode::kInvalidArgument, "Prio3MultihotCountVec measurement element " +
                                                          Str(i) + " is " + Str((*values)[i]) +
                                                          ", which exceeds 1");
      }
      weight += (*values)[i];
    }
    if (weight > weight_.max()) {
      return MakeError(ErrorCode::kInvalidArgument, "Prio3MultihotCountVec measurement weight " +
                                                        Str(weight) + " exceeds max_weight " +
                                                        Str(weight_.max()));
    }
    std::vector<Field128> encoded(this->meas_len());
    for (size_t i = 0; i < length_; ++i) encoded[i] = Field128::FromUint64((*values)[i]);
    weight_.Encode(weight, std::span<Field128>(encoded).subspan(length_));
    return encoded;
  }

  void Eval(std::span<const Field128> meas, std::span<const Field128> joint_rand,
            Field128 shares_inverse, GadgetCalls<Field128>& gadgets,
            std::span<Field128> out) const override {
    out[0] = ChunkedRangeCheck(meas, joint_rand, chunk_length_, shares_inverse, gadgets);
    // The counters add up to the weight the client reported.
    out[1] = internal::SumElements(meas.first(length_)) - weight_.Decode(meas.subspan(length_));
  }

  void Truncate(std::span<const Field128> meas, std::span<Field128> out) const override {
    std::copy_n(meas.begin(), length_, out.begin());
  }

 private:
  size_t length_;
  RangeCheckedInt<Field128> weight_;
  size_t chunk_length_;
};

// ---- HigherDegree ------------------------------------------------------------------

class HigherDegreeCircuit final : public Circuit<Field64> {
 public:
  explicit HigherDegreeCircuit(Gadget<Field64> gadget) : Circuit(1, 0, 1, 1, {std::move(gadget)}) {}

  Result<std::vector<Field64>> Encode(const Measurement& measurement) const override {
    const uint64_t* value = std::get_if<uint64_t>(&measurement);
    if (value == nullptr) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "a Prio3HigherDegree measurement must be a number");
    }
    if (*value > 2) {
      return MakeError(ErrorCode::kInvalidArgument, "Prio3HigherDegree measurement " + Str(*value) +
                                                        " exceeds max_measurement 2");
    }
    return std::vector<Field64>{Field64::FromUint64(*value)};
  }

  void Eval(std::span<const Field64> meas, std::span<const Field64>, Field64,
            GadgetCalls<Field64>& gadgets, std::span<Field64> out) const override {
    out[0] = gadgets.Call(0, meas.subspan(0, 1));
  }

  void Truncate(std::span<const Field64> meas, std::span<Field64> out) const override {
    out[0] = meas[0];
  }
};

// Checks the parameters every chunked circuit shares.
Result<void> CheckChunks(const char* name, size_t meas_len, size_t chunk_length) {
  if (chunk_length == 0)
    return InvalidArgument(std::string(name) + " chunk_length must be positive");
  if (meas_len > kMaxMeasLen) {
    return InvalidArgument(std::string(name) + " encoded measurement of " + Str(meas_len) +
                           " elements exceeds the supported " + Str(kMaxMeasLen));
  }
  // A longer chunk would only pad the single gadget call with zeros.
  if (chunk_length > meas_len) {
    return InvalidArgument(std::string(name) + " chunk_length " + Str(chunk_length) +
                           " exceeds the encoded measurement length " + Str(meas_len));
  }
  return {};
}

}  // namespace

CircuitPtr<Field64> MakeCountCircuit() {
  return std::make_shared<CountCircuit>(*Gadget<Field64>::ParallelSumMul(1, 1));
}

Result<CircuitPtr<Field64>> MakeSumCircuit(uint64_t max_measurement) {
  if (max_measurement == 0 || !BitsFitField<Field64>(std::bit_width(max_measurement))) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        "Prio3Sum max_measurement must be in [1, 2^63 - 1], got " + Str(max_measurement));
  }
  RangeCheckedInt<Field64> range(max_measurement);
  auto gadget = Gadget<Field64>::PolyEval({0, -1, 1}, range.bits());
  if (!gadget) return std::unexpected(gadget.error());
  return CircuitPtr<Field64>(std::make_shared<SumCircuit>(range, std::move(*gadget)));
}

template <typename F>
Result<CircuitPtr<F>> MakeSumVecCircuit(size_t length, uint64_t max_measurement,
                                        size_t chunk_length) {
  const char* name = std::is_same_v<F, Field64> ? "Prio3SumVecWithMultiproof" : "Prio3SumVec";
  if (length == 0)
    return MakeError(ErrorCode::kInvalidArgument, std::string(name) + " length must be positive");
  const size_t bits = static_cast<size_t>(std::bit_width(max_measurement));
  if (max_measurement == 0 || !BitsFitField<F>(bits)) {
    return MakeError(ErrorCode::kInvalidArgument, std::string(name) + " max_measurement " +
                                                      Str(max_measurement) +
                                                      " is out of range for the field");
  }
  if (length > kMaxMeasLen / bits) {
    return MakeError(ErrorCode::kInvalidArgument,
                     std::string(name) + " length " + Str(length) + " exceeds the supported size");
  }
  const size_t meas_len = length * bits;
  if (auto checked = CheckChunks(name, meas_len, chunk_length); !checked) {
    return std::unexpected(checked.error());
  }
  auto gadget = Gadget<F>::ParallelSumMul(chunk_length, CeilDiv(meas_len, chunk_length));
  if (!gadget) return std::unexpected(gadget.error());
  return CircuitPtr<F>(std::make_shared<SumVecCircuit<F>>(
      length, RangeCheckedInt<F>(max_measurement), chunk_length, std::move(*gadget)));
}

template Result<CircuitPtr<Field64>> MakeSumVecCircuit<Field64>(size_t, uint64_t, size_t);
template Result<CircuitPtr<Field128>> MakeSumVecCircuit<Field128>(size_t, uint64_t, size_t);

Result<CircuitPtr<Field128>> MakeHistogramCircuit(size_t length, size_t chunk_length) {
  if (length == 0)
    return MakeError(ErrorCode::kInvalidArgument, "Prio3Histogram length must be positive");
  if (auto checked = CheckChunks("Prio3Histogram", length, chunk_length); !checked) {
    return std::unexpected(checked.error());
  }
  auto gadget = Gadget<Field128>::ParallelSumMul(chunk_length, CeilDiv(length, chunk_length));
  if (!gadget) return std::unexpected(gadget.error());
  return CircuitPtr<Field128>(
      std::make_shared<HistogramCircuit>(length, chunk_length, std::move(*gadget)));
}

Result<CircuitPtr<Field128>> MakeMultihotCountVecCircuit(size_t length, size_t max_weight,
                                                         size_t chunk_length) {
  if (length == 0) {
    return MakeError(ErrorCode::kInvalidArgument, "Prio3MultihotCountVec length must be positive");
  }
  if (max_weight == 0 || max_weight > length) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "Prio3MultihotCountVec max_weight must be in [1, " + Str(length) + "], got " +
                         Str(max_weight));
  }
  if (length > kMaxMeasLen) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "Prio3MultihotCountVec length " + Str(length) + " exceeds the supported size");
  }
  RangeCheckedInt<Field128> weight(max_weight);
  const size_t meas_len = length + weight.bits();
  if (auto checked = CheckChunks("Prio3MultihotCountVec", meas_len, chunk_length); !checked) {
    return std::unexpected(checked.error());
  }
  auto gadget = Gadget<Field128>::ParallelSumMul(chunk_length, CeilDiv(meas_len, chunk_length));
  if (!gadget) return std::unexpected(gadget.error());
  return CircuitPtr<Field128>(
      std::make_shared<MultihotCountVecCircuit>(length, weight, chunk_length, std::move(*gadget)));
}

CircuitPtr<Field64> MakeHigherDegreeCircuit() {
  return std::make_shared<HigherDegreeCircuit>(*Gadget<Field64>::PolyEval({0, 2, -3, 1}, 1));
}

}  // namespace canopy::poplar::prio3
