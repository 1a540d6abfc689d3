// Field128: the prime field of p = 2^66 * 4611686018427387897 + 1
// = 2^128 - 28 * 2^64 + 1, as VDAF draft-20 defines it. Prio3SumVec,
// Prio3Histogram and Prio3MultihotCountVec use it for their proofs; its
// multiplicative group has a subgroup of order 2^66, which the NTT code uses.
//
// Elements are held in Montgomery form (x * 2^128 mod p), so a multiplication
// reduces its 256-bit product without a division: for this p, Montgomery
// reduction costs two multiplications by 28 and some carries. The form is
// internal: Encode, Decode, FromUint64,
// FromSampledBytes, value(), low64() and high64() all use the element's
// ordinary integer value.
#ifndef CANOPY_CRYPTO_FIELD128_H_
#define CANOPY_CRYPTO_FIELD128_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>

#include "crypto/error.h"
#include "crypto/field.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace canopy::crypto {

// An element of GF(2^128 - 28 * 2^64 + 1), held reduced in [0, p).
// Arithmetic is branch-free, so it runs in constant time on secret values.
class Field128 {
 public:
  // Unsigned 128-bit integers. `__extension__` keeps -Wpedantic quiet about
  // the GNU type.
  __extension__ typedef unsigned __int128 Uint128;

  static constexpr Uint128 kModulus = (static_cast<Uint128>(0xffffffffffffffe4ULL) << 64) | 1;
  static constexpr size_t kEncodedSize = 16;
  // The generator of the multiplicative subgroup of order 2^kGenOrderLog2,
  // which the draft defines as 7^4611686018427387897.
  static constexpr Uint128 kGenerator =
      (static_cast<Uint128>(0x6d278fbf4f60228bULL) << 64) | 0x1f9b2759c5109f06ULL;
  // The subgroup's order, 2^66, does not fit in a uint64_t.
  static constexpr int kGenOrderLog2 = 66;
  static constexpr Uint128 kGenOrder = static_cast<Uint128>(1) << kGenOrderLog2;

  constexpr Field128() = default;

  static constexpr Field128 Zero() { return Field128(); }
  static constexpr Field128 One() { return FromMontgomery(kMontgomeryOne); }

  // Returns `value` (always below p).
  static constexpr Field128 FromUint64(uint64_t value) { return FromCanonical(value); }

  // Returns `value` mod p.
  static constexpr Field128 FromUint128(Uint128 value) {
    // value < 2^128 < 2p, so one conditional subtraction reduces it.
    return FromCanonical(SubtractModulusIfNeeded(Low(value), High(value), 0));
  }

  // The generator of the subgroup of order 2^66.
  static constexpr Field128 Generator() { return FromCanonical(kGenerator); }

  // A primitive n-th root of unity, generator^(2^66 / n), for the NTT. `n`
  // must be a power of two; 2^63 is the largest a uint64_t holds
  // (RootOfUnityLog2 reaches 2^66). Any other `n` fails an assert in debug
  // builds and returns zero, which is no root of unity, in release builds.
  // Reads a precomputed table.
  static Field128 NthRootOfUnity(uint64_t n);

  // A primitive 2^log2_n-th root of unity, generator^(2^(66 - log2_n)), for
  // log2_n in [0, 66]. Out of range, it fails an assert in debug builds and
  // returns zero in release builds.
  static Field128 RootOfUnityLog2(int log2_n);

  // One step of the draft's rejection sampling: reads kEncodedSize
  // little-endian bytes, masks them to the bit length of p (a no-op: p has 128
  // bits) and, if the result is below p, stores it in `out` and returns true.
  static constexpr bool FromSampledBytes(const uint8_t* bytes, Field128* out) {
    Uint128 value = LoadLittleEndian(bytes);
    uint64_t below = static_cast<uint64_t>(value < kModulus);
    // Converting a value >= p would break the Montgomery bounds; convert 0
    // instead, since a rejected sample is discarded anyway.
    *out = FromCanonical(value & -static_cast<Uint128>(below));
    return below != 0;
  }

  // Decodes exactly kEncodedSize little-endian bytes. Errors (kDecodeError): a
  // wrong length, or a value >= p.
  static Result<Field128> Decode(std::span<const uint8_t> bytes);

  // Writes the kEncodedSize little-endian bytes of the element to `out`.
  constexpr void Encode(uint8_t* out) const {
    Uint128 canonical = value();
    for (size_t i = 0; i < kEncodedSize; ++i) out[i] = static_cast<uint8_t>(canonical >> (8 * i));
  }

  // The element as an integer in [0, p). Leaving Montgomery form costs a
  // multiplication.
  constexpr Uint128 value() const { return MontgomeryMultiply(montgomery_, 1); }
  // The low and high 64 bits of value().
  constexpr uint64_t low64() const { return static_cast<uint64_t>(value()); }
  constexpr uint64_t high64() const { return static_cast<uint64_t>(value() >> 64); }

  friend constexpr Field128 operator+(Field128 a, Field128 b) {
    // The sum can reach 2p - 2 > 2^128: keep its carry as a 129th bit.
    LimbAndCarry sum0 = AddWithCarry(Low(a.montgomery_), Low(b.montgomery_), 0);
    LimbAndCarry sum1 = AddWithCarry(High(a.montgomery_), High(b.montgomery_), sum0.carry);
    return FromMontgomery(SubtractModulusIfNeeded(sum0.limb, sum1.limb, sum1.carry));
  }

  friend constexpr Field128 operator-(Field128 a, Field128 b) {
    LimbAndCarry difference0 = SubtractWithBorrow(Low(a.montgomery_), Low(b.montgomery_), 0);
    LimbAndCarry difference1 =
        SubtractWithBorrow(High(a.montgomery_), High(b.montgomery_), difference0.carry);
    // On a borrow the limbs hold a - b + 2^128; adding p (mod 2^128) gives
    // a - b + p, which is in [0, p).
    return FromMontgomery(
        AddModulusMasked(difference0.limb, difference1.limb, 0 - difference1.carry));
  }

  friend constexpr Field128 operator-(Field128 a) { return Zero() - a; }

  friend constexpr Field128 operator*(Field128 a, Field128 b) {
    return FromMontgomery(MontgomeryMultiply(a.montgomery_, b.montgomery_));
  }

  constexpr Field128& operator+=(Field128 other) { return *this = *this + other; }
  constexpr Field128& operator-=(Field128 other) { return *this = *this - other; }
  constexpr Field128& operator*=(Field128 other) { return *this = *this * other; }

  // The Montgomery form is unique for reduced elements, so comparing it
  // compares values.
  friend constexpr bool operator==(Field128 a, Field128 b) {
    return a.montgomery_ == b.montgomery_;
  }

  // Returns this element raised to `exponent`. The exponent is treated as
  // public: the loop runs over its bits.
  constexpr Field128 Pow(uint64_t exponent) const { return PowWide(exponent); }

  // The multiplicative inverse (Fermat: x^(p-2)); the inverse of 0 is 0.
  constexpr Field128 Inverse() const { return PowWide(kModulus - 2); }

 private:
  static constexpr uint64_t kModulusHigh = 0xffffffffffffffe4ULL;  // p = kModulusHigh * 2^64 + 1
  // 2^128 mod p = 28 * 2^64 - 1: the Montgomery form of 1.
  static constexpr Uint128 kMontgomeryOne = (static_cast<Uint128>(27) << 64) | ~0ULL;
  // 2^256 mod p: multiplying by it (and dividing by 2^128) converts to
  // Montgomery form.
  static constexpr Uint128 kMontgomerySquare =
      (static_cast<Uint128>(0x5587) << 64) | 0xfffffffffffffcf1ULL;

  static constexpr Field128 FromMontgomery(Uint128 montgomery) {
    Field128 element;
    element.montgomery_ = montgomery;
    return element;
  }

  // `value` must be below p.
  static constexpr Field128 FromCanonical(Uint128 value) {
    return FromMontgomery(MontgomeryMultiply(value, kMontgomerySquare));
  }

  static constexpr Uint128 LoadLittleEndian(const uint8_t* bytes) {
    Uint128 value = 0;
    for (size_t i = 0; i < kEncodedSize; ++i) value |= static_cast<Uint128>(bytes[i]) << (8 * i);
    return value;
  }

  static constexpr uint64_t Low(Uint128 value) { return static_cast<uint64_t>(value); }
  static constexpr uint64_t High(Uint128 value) { return static_cast<uint64_t>(value >> 64); }
  static constexpr Uint128 Join(uint64_t low, uint64_t high) {
    return (static_cast<Uint128>(high) << 64) | low;
  }

  // A 64-bit limb and the carry (or borrow) out of the operation that made it.
  struct LimbAndCarry {
    uint64_t limb;
    uint64_t carry;  // 0 or 1
  };

  // x + y + carry, for carry in {0, 1}. At run time on x86-64 this is one
  // ADC: GCC does not reliably build ADC chains from the portable 128-bit
  // form, which makes multiplication markedly slower. Constant evaluation
  // cannot use the intrinsic. Returning a struct rather than writing through
  // a pointer keeps the limbs in registers.
  static constexpr LimbAndCarry AddWithCarry(uint64_t x, uint64_t y, uint64_t carry) {
#if defined(__x86_64__)
    if (!std::is_constant_evaluated()) {
      unsigned long long sum;
      unsigned char carry_out = _addcarry_u64(static_cast<unsigned char>(carry), x, y, &sum);
      return {sum, carry_out};
    }
#endif
    Uint128 sum = static_cast<Uint128>(x) + y + carry;
    return {Low(sum), High(sum)};
  }

  // x - y - borrow, for borrow in {0, 1}; one SBB at run time on x86-64.
  static constexpr LimbAndCarry SubtractWithBorrow(uint64_t x, uint64_t y, uint64_t borrow) {
#if defined(__x86_64__)
    if (!std::is_constant_evaluated()) {
      unsigned long long difference;
      unsigned char borrow_out =
          _subborrow_u64(static_cast<unsigned char>(borrow), x, y, &difference);
      return {difference, borrow_out};
    }
#endif
    Uint128 difference = static_cast<Uint128>(x) - y - borrow;
    return {Low(difference), High(difference) & 1};
  }

  // Returns (low + high * 2^64 + (p & add_modulus)) mod 2^128, where
  // `add_modulus` is 0 or all ones.
  static constexpr Uint128 AddModulusMasked(uint64_t low, uint64_t high, uint64_t add_modulus) {
    LimbAndCarry sum0 = AddWithCarry(low, add_modulus & 1, 0);
    LimbAndCarry sum1 = AddWithCarry(high, add_modulus & kModulusHigh, sum0.carry);
    return Join(sum0.limb, sum1.limb);
  }

  // Maps the 129-bit integer top * 2^128 + high * 2^64 + low, which must be
  // below 2p, to [0, p) without branches: subtract p, and add it back if that
  // went negative.
  static constexpr Uint128 SubtractModulusIfNeeded(uint64_t low, uint64_t high, uint64_t top) {
    LimbAndCarry reduced0 = SubtractWithBorrow(low, 1, 0);
    LimbAndCarry reduced1 = SubtractWithBorrow(high, kModulusHigh, reduced0.carry);
    // top - borrow is 0, or all ones when the value was below p.
    LimbAndCarry sign = SubtractWithBorrow(top, 0, reduced1.carry);
    return AddModulusMasked(reduced0.limb, reduced1.limb, sign.limb);
  }

  // Returns a * b / 2^128 mod p for a, b in [0, p), in [0, p).
  //
  // Montgomery reduction, specialised to p = W^2 - 28 W + 1 with W = 2^64.
  // For the product t = t0 + t1 W + t2 W^2 + t3 W^3, pick
  // Q = t * p^-1 mod W^2 = t * (1 + 28 W) mod W^2 = t0 + q1 W, with
  // q1 = (t1 + 28 t0) mod W; then t - Q p is a multiple of W^2 and
  // v = (t - Q p) / W^2 = t * 2^-128 (mod p). Expanding Q p = Q W^2 - 28 Q W + Q:
  //   v = (t2 + t3 W) - Q + k,  with k = (t0 + t1 W - Q + 28 Q W) / W^2
  //                                    = c + 28 q1,  c = (t1 + 28 t0) div W.
  // So the reduction takes two multiplications by 28 instead of the two full
  // m * p products of generic Montgomery. Since 0 <= t < p^2 and
  // 0 <= Q < W^2, v lies in (-p, p): one conditional addition of p finishes.
  static constexpr Uint128 MontgomeryMultiply(Uint128 a, Uint128 b) {
    const Uint128 product00 = static_cast<Uint128>(Low(a)) * Low(b);
    const Uint128 product01 = static_cast<Uint128>(Low(a)) * High(b);
    const Uint128 product10 = static_cast<Uint128>(High(a)) * Low(b);
    const Uint128 product11 = static_cast<Uint128>(High(a)) * High(b);

    // t = a * b < p^2, so no carry leaves t3.
    const uint64_t t0 = Low(product00);
    LimbAndCarry partial1 = AddWithCarry(High(product00), Low(product01), 0);
    LimbAndCarry partial2 = AddWithCarry(High(product01), Low(product11), partial1.carry);
    LimbAndCarry t1 = AddWithCarry(partial1.limb, Low(product10), 0);
    LimbAndCarry t2 = AddWithCarry(partial2.limb, High(product10), t1.carry);
    const uint64_t t3 = High(product11) + partial2.carry + t2.carry;

    const Uint128 q1_and_c = static_cast<Uint128>(t0) * 28 + t1.limb;  // < 29 W
    const uint64_t q1 = Low(q1_and_c);
    const Uint128 k = static_cast<Uint128>(q1) * 28 + High(q1_and_c);  // <= 28 W

    // v = (t2 + t3 W) + k - (t0 + q1 W). The sum cannot carry: t2 + t3 W is
    // at most (p - 1)^2 div W^2 = W^2 - 56 W + 784 and k <= 28 W. The
    // difference borrows exactly when v < 0.
    LimbAndCarry sum0 = AddWithCarry(t2.limb, Low(k), 0);
    const uint64_t sum1 = t3 + High(k) + sum0.carry;
    LimbAndCarry v0 = SubtractWithBorrow(sum0.limb, t0, 0);
    LimbAndCarry v1 = SubtractWithBorrow(sum1, q1, v0.carry);
    return AddModulusMasked(v0.limb, v1.limb, 0 - v1.carry);
  }

  // Square-and-multiply over the bits of a public exponent.
  constexpr Field128 PowWide(Uint128 exponent) const {
    Field128 result = One();
    Field128 base = *this;
    for (; exponent != 0; exponent >>= 1) {
      if (exponent & 1) result *= base;
      base *= base;
    }
    return result;
  }

  Uint128 montgomery_ = 0;  // value * 2^128 mod p
};

static_assert(Field<Field128>);

}  // namespace canopy::crypto

#endif  // CANOPY_CRYPTO_FIELD128_H_
