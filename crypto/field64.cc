#include "crypto/field64.h"

#include <immintrin.h>

#include <cassert>
#include <string>

namespace canopy::crypto {
namespace {

// The AVX2 body carries a target attribute, so the rest of the project
// builds for the baseline instruction set and runs on processors without it.
#define CANOPY_AVX2 __attribute__((target("avx2")))

// Four lanes of Field64's operator+: a carry out of the 64-bit sum adds
// 2^64 mod p (which cannot carry again, and leaves a value below p);
// otherwise a sum at or above p loses p. AVX2 compares signed lanes, so
// unsigned comparisons flip the sign bits first.
CANOPY_AVX2 __m256i AddLanes(__m256i a, __m256i b) {
  const __m256i sign = _mm256_set1_epi64x(static_cast<long long>(0x8000000000000000ULL));
  const __m256i epsilon = _mm256_set1_epi64x(0xffffffffLL);
  const __m256i modulus = _mm256_set1_epi64x(static_cast<long long>(Field64::kModulus));
  const __m256i modulus_minus_one_flipped =
      _mm256_set1_epi64x(static_cast<long long>((Field64::kModulus - 1) ^ 0x8000000000000000ULL));
  __m256i sum = _mm256_add_epi64(a, b);
  const __m256i carried =
      _mm256_cmpgt_epi64(_mm256_xor_si256(a, sign), _mm256_xor_si256(sum, sign));  // a > sum
  sum = _mm256_add_epi64(sum, _mm256_and_si256(carried, epsilon));
  const __m256i at_least_modulus =
      _mm256_cmpgt_epi64(_mm256_xor_si256(sum, sign), modulus_minus_one_flipped);
  return _mm256_sub_epi64(sum, _mm256_and_si256(at_least_modulus, modulus));
}

CANOPY_AVX2 void AddField64VectorsAvx2(std::span<Field64> sum, std::span<const Field64> addend) {
  const size_t count = sum.size();
  size_t i = 0;
  for (; i + 4 <= count; i += 4) {
    auto* out = reinterpret_cast<__m256i*>(sum.data() + i);
    const auto* in = reinterpret_cast<const __m256i*>(addend.data() + i);
    _mm256_storeu_si256(out, AddLanes(_mm256_loadu_si256(out), _mm256_loadu_si256(in)));
  }
  for (; i < count; ++i) sum[i] += addend[i];
}

// Four lanes of Field64's unary minus: p - a, except 0 for 0.
CANOPY_AVX2 __m256i NegateLanes(__m256i a) {
  const __m256i modulus = _mm256_set1_epi64x(static_cast<long long>(Field64::kModulus));
  const __m256i is_zero = _mm256_cmpeq_epi64(a, _mm256_setzero_si256());
  return _mm256_andnot_si256(is_zero, _mm256_sub_epi64(modulus, a));
}

// Two pairs a step: lanes (addend[0], addend[1], addend[0], addend[1]), each
// pair masked by its bit.
CANOPY_AVX2 void AddSelectedPairsAvx2(std::span<Field64> values, std::span<const uint8_t> bits,
                                      const std::array<Field64, 2>& addend, bool negate) {
  const __m256i addends = _mm256_set_epi64x(
      static_cast<long long>(addend[1].value()), static_cast<long long>(addend[0].value()),
      static_cast<long long>(addend[1].value()), static_cast<long long>(addend[0].value()));
  const size_t pairs = bits.size();
  size_t i = 0;
  for (; i + 2 <= pairs; i += 2) {
    // Bytes (b0, b0, b1, b1) widened to four lanes, then 0 - bit: all ones
    // or zero per lane.
    const uint32_t spread = (static_cast<uint32_t>(bits[i]) & 1) * 0x0101u +
                            (static_cast<uint32_t>(bits[i + 1]) & 1) * 0x01010000u;
    const __m256i lane_bits = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(static_cast<int>(spread)));
    const __m256i masks = _mm256_sub_epi64(_mm256_setzero_si256(), lane_bits);
    auto* at = reinterpret_cast<__m256i*>(values.data() + 2 * i);
    __m256i sum = AddLanes(_mm256_loadu_si256(at), _mm256_and_si256(addends, masks));
    if (negate) sum = NegateLanes(sum);
    _mm256_storeu_si256(at, sum);
  }
  AddSelectedPairsPortable(values.subspan(2 * i), bits.subspan(i), addend, negate);
}

bool HasAvx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
}

}  // namespace

void AddField64Vectors(std::span<Field64> sum, std::span<const Field64> addend) {
  assert(addend.size() >= sum.size());
  if (HasAvx2()) {
    AddField64VectorsAvx2(sum, addend);
  } else {
    AddField64VectorsPortable(sum, addend);
  }
}

void AddField64VectorsPortable(std::span<Field64> sum, std::span<const Field64> addend) {
  assert(addend.size() >= sum.size());
  for (size_t i = 0; i < sum.size(); ++i) sum[i] += addend[i];
}

void AddSelectedPairs(std::span<Field64> values, std::span<const uint8_t> bits,
                      const std::array<Field64, 2>& addend, bool negate) {
  assert(values.size() >= 2 * bits.size());
  if (HasAvx2()) {
    AddSelectedPairsAvx2(values, bits, addend, negate);
  } else {
    AddSelectedPairsPortable(values, bits, addend, negate);
  }
}

void AddSelectedPairsPortable(std::span<Field64> values, std::span<const uint8_t> bits,
                              const std::array<Field64, 2>& addend, bool negate) {
  assert(values.size() >= 2 * bits.size());
  for (size_t i = 0; i < bits.size(); ++i) {
    const uint64_t mask = static_cast<uint64_t>(0) - (bits[i] & 1);
    for (size_t j = 0; j < 2; ++j) {
      Field64& value = values[2 * i + j];
      value += addend[j].Masked(mask);
      if (negate) value = -value;
    }
  }
}

std::unexpected<Error> Field64::DecodeError(size_t length) {
  if (length != kEncodedSize) {
    return MakeError(ErrorCode::kDecodeError,
                     "Field64 element must be 8 bytes, got " + std::to_string(length));
  }
  return MakeError(ErrorCode::kDecodeError, "Field64 element is not below the modulus");
}

}  // namespace canopy::crypto
