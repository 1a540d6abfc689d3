// Number-theoretic transforms and Lagrange-basis polynomial evaluation over
// the NTT-friendly fields (Field64, Field128), as the FLP of VDAF draft-20
// needs them (section "Polynomial Representation").
//
// A polynomial of degree < n is held in the Lagrange basis: its values at
// the n-th roots of unity w^0, w^1, ..., w^(n-1), where w is the draft's
// principal root nth_root(n) = gen^(GEN_ORDER / n). Every function here
// computes the unique value the draft's algorithms define, so the results
// match the reference byte for byte however the arithmetic is arranged.
//
// Internal to poplar/: the sizes are public parameters, so loops and
// branches on them are fine; the values may be secret and are only touched
// by constant-time field arithmetic.
#ifndef CANOPY_POPLAR_INTERNAL_NTT_H_
#define CANOPY_POPLAR_INTERNAL_NTT_H_

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "crypto/field128.h"
#include "crypto/field64.h"

namespace canopy::poplar::internal {

// log2 of the order of each NTT field's power-of-two subgroup.
template <typename F>
inline constexpr int kTwoAdicity = 0;
template <>
inline constexpr int kTwoAdicity<crypto::Field64> = std::countr_zero(crypto::Field64::kGenOrder);
template <>
inline constexpr int kTwoAdicity<crypto::Field128> = crypto::Field128::kGenOrderLog2;

// A sum of products reduced once: Field128's ProductSum, or for other fields
// a plain running sum (Field64 products are already cheap).
template <typename F>
class PlainProductSum {
 public:
  void Add(F a, F b) { sum_ += a * b; }
  F Reduce() const { return sum_; }

 private:
  F sum_ = F::Zero();
};

template <typename F>
using ProductSum = std::conditional_t<std::is_same_v<F, crypto::Field128>,
                                      crypto::Field128::ProductSum, PlainProductSum<F>>;

// The sum of `values`; Field128 reduces once.
template <typename F>
F SumElements(std::span<const F> values) {
  if constexpr (std::is_same_v<F, crypto::Field128>) {
    return crypto::Field128::Sum(values);
  } else {
    F sum = F::Zero();
    for (const F& value : values) sum += value;
    return sum;
  }
}

// The draft's nth_root for n = 2^log2_n.
template <typename F>
F RootOfUnity(int log2_n) {
  return F::RootOfUnityLog2(log2_n);
}

// The powers root^0, ..., root^(count - 1).
template <typename F>
std::vector<F> Powers(F root, size_t count) {
  std::vector<F> powers(count);
  F power = F::One();
  for (F& out : powers) {
    out = power;
    power *= root;
  }
  return powers;
}

// A radix-2 NTT of one power-of-two size, with its twiddle factors.
template <typename F>
class Ntt {
 public:
  // `log2_size` must be in [0, kTwoAdicity<F>].
  explicit Ntt(int log2_size)
      : log2_size_(log2_size),
        size_(size_t{1} << log2_size),
        twiddles_(Powers(RootOfUnity<F>(log2_size), size_ / 2 > 0 ? size_ / 2 : 1)),
        inverse_size_(F::FromUint64(size_).Inverse()) {}

  size_t size() const { return size_; }
  F inverse_size() const { return inverse_size_; }

  // Coefficients (lowest degree first) to values at w^0, ..., w^(size-1), in
  // place: the draft's ntt(p, n). Iterative Cooley-Tukey on bit-reversed
  // input, which gives the values in natural order.
  void Forward(std::span<F> values) const {
    BitReverse(values);
    for (size_t half = 1, stride = size_ / 2; half < size_; half *= 2, stride /= 2) {
      for (size_t block = 0; block < size_; block += 2 * half) {
        F* low = values.data() + block;
        F* high = low + half;
        // The first twiddle is 1: no multiplication (a third of them at size 64).
        const F first = high[0];
        high[0] = low[0] - first;
        low[0] = low[0] + first;
        for (size_t i = 1; i < half; ++i) {
          const F twisted = high[i] * twiddles_[i * stride];
          high[i] = low[i] - twisted;
          low[i] = low[i] + twisted;
        }
      }
    }
  }

  // Values at the roots to coefficients, in place: the draft's inv_ntt. The
  // forward transform evaluates at w^i; reading its output at -i mod size
  // evaluates at w^-i, which inverts up to the factor 1/size.
  void Inverse(std::span<F> values) const {
    Forward(values);
    if (size_ > 2) std::reverse(values.begin() + 1, values.end());
    for (F& value : values) value *= inverse_size_;
  }

 private:
  void BitReverse(std::span<F> values) const {
    if (log2_size_ == 0) return;
    for (size_t i = 0; i < size_; ++i) {
      const size_t j = ReverseBits(i);
      if (i < j) std::swap(values[i], values[j]);
    }
  }

  size_t ReverseBits(size_t index) const {
    size_t reversed = 0;
    for (int bit = 0; bit < log2_size_; ++bit)
      reversed |= ((index >> bit) & 1) << (log2_size_ - 1 - bit);
    return reversed;
  }

  int log2_size_;
  size_t size_;
  std::vector<F> twiddles_;  // w^i for i < size / 2.
  F inverse_size_;
};

// Evaluates the polynomial whose values at the n-th roots of unity are
// `values` at `x`, in the Lagrange basis, with n = values.size().
// `scaled_nodes` holds w^i / n. Uses
//   P(x) = (1/n) sum_i y_i w^i prod_{m != i} (x - w^m),
// which holds for every x, a root of unity included (prod_{m != i}
// (w^i - w^m) = n / w^i), accumulated from the left without inversions.
// Costs 4 multiplications per value.
template <typename F>
F EvalLagrange(std::span<const F> values, std::span<const F> nodes, std::span<const F> scaled_nodes,
               F x) {
  F sum = F::Zero();
  F prefix = F::One();  // prod_{m < i} (x - w^m)
  for (size_t i = 0; i < values.size(); ++i) {
    const F difference = x - nodes[i];
    sum = sum * difference + values[i] * (prefix * scaled_nodes[i]);
    prefix *= difference;
  }
  return sum;
}

// The weights c_i, i < count, with P(x) = sum_i c_i y_i for every polynomial
// given by its values y at the `nodes.size()` roots of unity whose values at
// indices >= count are zero: c_i = (w^i / n) prod_{m != i} (x - w^m).
// Prefix and suffix products avoid inversions: about 4 multiplications per
// weight plus one per remaining node.
template <typename F>
void LagrangeWeights(std::span<const F> nodes, std::span<const F> scaled_nodes, F x,
                     std::span<F> weights) {
  const size_t count = weights.size();
  // Suffix product of the nodes we have no weight for.
  F tail = F::One();
  for (size_t m = count; m < nodes.size(); ++m) tail *= x - nodes[m];
  // weights[i] = prod_{m < i} (x - w^m) first, then times the suffix.
  F prefix = F::One();
  for (size_t i = 0; i < count; ++i) {
    weights[i] = prefix;
    prefix *= x - nodes[i];
  }
  F suffix = tail;
  for (size_t i = count; i-- > 0;) {
    weights[i] *= suffix * scaled_nodes[i];
    suffix *= x - nodes[i];
  }
}

}  // namespace canopy::poplar::internal

#endif  // CANOPY_POPLAR_INTERNAL_NTT_H_
