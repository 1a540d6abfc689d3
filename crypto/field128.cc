#include "crypto/field128.h"

#include <array>
#include <bit>
#include <cassert>
#include <string>

namespace canopy::crypto {
namespace {

// kRootsOfUnity[k] is a primitive 2^k-th root of unity: squaring the
// generator 66 - k times. Built at compile time.
constexpr std::array<Field128, Field128::kGenOrderLog2 + 1> MakeRootsOfUnity() {
  std::array<Field128, Field128::kGenOrderLog2 + 1> roots;
  roots[Field128::kGenOrderLog2] = Field128::Generator();
  for (size_t k = Field128::kGenOrderLog2; k > 0; --k) roots[k - 1] = roots[k] * roots[k];
  return roots;
}

constexpr std::array<Field128, Field128::kGenOrderLog2 + 1> kRootsOfUnity = MakeRootsOfUnity();

static_assert(kRootsOfUnity[0] == Field128::One(), "the generator's order must divide 2^66");
static_assert(!(kRootsOfUnity[1] == Field128::One()), "the generator's order must be 2^66");

}  // namespace

Field128 Field128::NthRootOfUnity(uint64_t n) {
  assert(std::has_single_bit(n));
  if (!std::has_single_bit(n)) return Zero();
  return kRootsOfUnity[static_cast<size_t>(std::countr_zero(n))];
}

Field128 Field128::RootOfUnityLog2(int log2_n) {
  assert(log2_n >= 0 && log2_n <= kGenOrderLog2);
  if (log2_n < 0 || log2_n > kGenOrderLog2) return Zero();
  return kRootsOfUnity[static_cast<size_t>(log2_n)];
}

Result<Field128> Field128::Decode(std::span<const uint8_t> bytes) {
  if (bytes.size() != kEncodedSize) {
    return MakeError(ErrorCode::kDecodeError,
                     "Field128 element must be 16 bytes, got " + std::to_string(bytes.size()));
  }
  Uint128 value = LoadLittleEndian(bytes.data());
  if (value >= kModulus) {
    return MakeError(ErrorCode::kDecodeError, "Field128 element is not below the modulus");
  }
  return FromCanonical(value);
}

}  // namespace canopy::crypto
