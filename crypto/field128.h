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

  // Returns `value`, which the caller has checked to be below p (a larger
  // value gives an unspecified element): FromUint128 without its reduction.
  static constexpr Field128 FromUint128BelowModulus(Uint128 value) { return FromCanonical(value); }

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
  // A rejected sample stores 0.
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

  // A sum of products a_1 * b_1 + ... + a_n * b_n, n <= kMaxTerms, that
  // keeps each 256-bit product as it is and reduces once, in Reduce(): a
  // term costs the four word products and a 320-bit addition, about half a
  // multiplication. The sum is exactly the field's sum of products. Holds
  // its terms' secrets: wipe it (SecureWipeObject) when they matter.
  class ProductSum {
   public:
    static constexpr uint64_t kMaxTerms = uint64_t{1} << 32;

    constexpr void Add(Field128 a, Field128 b) {
#if defined(__x86_64__) && defined(__GNUC__)
      if (!std::is_constant_evaluated()) {
        // The four word products added where they belong, carries rippling
        // to the top. g++ 12 spills and stores needlessly around the
        // _addcarry_u64 chain of the portable code below, which makes it
        // about twice as long. MUL, ADD and ADC take constant time.
        const uint64_t a0 = Low(a.montgomery_), a1 = High(a.montgomery_);
        const uint64_t b0 = Low(b.montgomery_), b1 = High(b.montgomery_);
        uint64_t scratch;
        asm("movq %[a0], %%rax\n\t"
            "mulq %[b0]\n\t"
            "addq %%rax, %[l0]\n\t"
            "adcq %%rdx, %[l1]\n\t"
            "adcq $0, %[l2]\n\t"
            "adcq $0, %[l3]\n\t"
            "adcq $0, %[l4]\n\t"
            "movq %[a0], %%rax\n\t"
            "mulq %[b1]\n\t"
            "addq %%rax, %[l1]\n\t"
            "adcq %%rdx, %[l2]\n\t"
            "adcq $0, %[l3]\n\t"
            "adcq $0, %[l4]\n\t"
            "movq %[a1], %%rax\n\t"
            "mulq %[b0]\n\t"
            "addq %%rax, %[l1]\n\t"
            "adcq %%rdx, %[l2]\n\t"
            "adcq $0, %[l3]\n\t"
            "adcq $0, %[l4]\n\t"
            "movq %[a1], %%rax\n\t"
            "mulq %[b1]\n\t"
            "addq %%rax, %[l2]\n\t"
            "adcq %%rdx, %[l3]\n\t"
            "adcq $0, %[l4]"
            : [l0] "+r"(limbs_[0]), [l1] "+r"(limbs_[1]), [l2] "+r"(limbs_[2]),
              [l3] "+r"(limbs_[3]), [l4] "+r"(limbs_[4]), "=&a"(scratch)
            : [a0] "r"(a0), [a1] "r"(a1), [b0] "r"(b0), [b1] "r"(b1)
            : "rdx", "cc");
        return;
      }
#endif
      const Wide256 product = MultiplyWide(a.montgomery_, b.montgomery_);
      LimbAndCarry sum0 = AddWithCarry(limbs_[0], product.limbs[0], 0);
      LimbAndCarry sum1 = AddWithCarry(limbs_[1], product.limbs[1], sum0.carry);
      LimbAndCarry sum2 = AddWithCarry(limbs_[2], product.limbs[2], sum1.carry);
      LimbAndCarry sum3 = AddWithCarry(limbs_[3], product.limbs[3], sum2.carry);
      limbs_[0] = sum0.limb;
      limbs_[1] = sum1.limb;
      limbs_[2] = sum2.limb;
      limbs_[3] = sum3.limb;
      limbs_[4] += sum3.carry;
    }

    // The sum so far, as a field element.
    constexpr Field128 Reduce() const { return FromMontgomery(ReduceWide(limbs_)); }

   private:
    // The integer sum of the Montgomery forms' products, little-endian.
    uint64_t limbs_[5] = {};
  };

  // The sum of `values`, at most ProductSum::kMaxTerms of them, reduced once:
  // a term costs three word additions instead of a modular addition.
  static constexpr Field128 Sum(std::span<const Field128> values) {
    uint64_t low = 0, high = 0, top = 0;
    for (const Field128& value : values) {
      LimbAndCarry sum0 = AddWithCarry(low, Low(value.montgomery_), 0);
      LimbAndCarry sum1 = AddWithCarry(high, High(value.montgomery_), sum0.carry);
      low = sum0.limb;
      high = sum1.limb;
      top += sum1.carry;
    }
    // Addition commutes with the Montgomery map: reducing the sum of the
    // forms gives the form of the sum.
    return FromMontgomery(ReduceBelow2To160(low, high, top));
  }

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

  // `value` must be below p. The same as
  // MontgomeryMultiply(value, kMontgomerySquare), at about half the cost:
  // multiplying by 2^128 modulo this p needs only products by small
  // constants. With W = 2^64, W^2 = 28 W - 1 and W^3 = 783 W - 28 (mod p),
  // so for value = x0 + x1 W,
  //   value * W^2 = S W - (x0 + 28 x1),  S = 28 x0 + 783 x1 < 811 W,
  // and with S = s0 + s1 W (s1 <= 810), S W = (s0 + 28 s1) W - s1. The
  // integer V = (s0 + 28 s1) W - (s1 + x0 + 28 x1) lies in (-p, 2p).
  static constexpr Field128 FromCanonical(Uint128 value) {
    const uint64_t x0 = Low(value);
    const uint64_t x1 = High(value);
#if defined(__x86_64__) && defined(__GNUC__)
    // The same steps as the portable code below, which g++ 12 compiles with
    // spills and dead stores around the carry chains (about 110 instructions
    // instead of 40); samplers and decoders convert every element.
    if (!std::is_constant_evaluated()) {
      uint64_t s0, s1, b1, v2, mask, scratch;
      asm(  // s = 28 x0 + 783 x1.
          "movl $28, %%eax\n\t"
          "mulq %[x0]\n\t"
          "movq %%rax, %[s0]\n\t"
          "movq %%rdx, %[s1]\n\t"
          "movl $783, %%eax\n\t"
          "mulq %[x1]\n\t"
          "addq %%rax, %[s0]\n\t"
          "adcq %%rdx, %[s1]\n\t"
          // b = 28 x1 + x0 + s1, in rax (low) and b1.
          "movl $28, %%eax\n\t"
          "mulq %[x1]\n\t"
          "addq %[x0], %%rax\n\t"
          "adcq $0, %%rdx\n\t"
          "addq %[s1], %%rax\n\t"
          "adcq $0, %%rdx\n\t"
          "movq %%rdx, %[b1]\n\t"
          // a = s0 + 28 s1 in s0 (low) and v2 (0 or 1).
          "imulq $28, %[s1], %[s1]\n\t"
          "xorl %k[v2], %k[v2]\n\t"
          "addq %[s1], %[s0]\n\t"
          "adcq $0, %[v2]\n\t"
          // V = a1 W^2 + a0 W - b: limbs s1 (low), s0, v2 (top).
          "xorl %k[s1], %k[s1]\n\t"
          "subq %%rax, %[s1]\n\t"
          "sbbq %[b1], %[s0]\n\t"
          "sbbq $0, %[v2]\n\t"
          // Add p when V < 0 (v2 all ones), keeping the 129th bit.
          "movq %[v2], %[mask]\n\t"
          "sarq $63, %[mask]\n\t"
          "movq %[mask], %%rax\n\t"
          "andl $1, %%eax\n\t"
          "andq $-28, %[mask]\n\t"
          "addq %%rax, %[s1]\n\t"
          "adcq %[mask], %[s0]\n\t"
          "adcq $0, %[v2]\n\t"
          "andl $1, %k[v2]\n\t"
          // Subtract p, and add it back on a borrow.
          "subq $1, %[s1]\n\t"
          "sbbq $-28, %[s0]\n\t"
          "sbbq $0, %[v2]\n\t"
          "movq %[v2], %%rax\n\t"
          "andl $1, %%eax\n\t"
          "andq $-28, %[v2]\n\t"
          "addq %%rax, %[s1]\n\t"
          "adcq %[v2], %[s0]"
          : [s0] "=&r"(s0), [s1] "=&r"(s1), [b1] "=&r"(b1), [v2] "=&r"(v2), [mask] "=&r"(mask),
            "=&a"(scratch)
          : [x0] "r"(x0), [x1] "r"(x1)
          : "rdx", "cc");
      return FromMontgomery(Join(s1, s0));
    }
#endif
    const Uint128 s = static_cast<Uint128>(x0) * 28 + static_cast<Uint128>(x1) * 783;
    const uint64_t s1 = High(s);
    const Uint128 a = static_cast<Uint128>(Low(s)) + s1 * 28;   // a1 in {0, 1}.
    const Uint128 b = static_cast<Uint128>(x1) * 28 + x0 + s1;  // < 30 W.
    // V = a1 W^2 + a0 W - b as a three-limb two's-complement integer; its
    // top limb v2 is 0 or 1, or all ones when V < 0.
    LimbAndCarry v0 = SubtractWithBorrow(0, Low(b), 0);
    LimbAndCarry v1 = SubtractWithBorrow(Low(a), High(b), v0.carry);
    const uint64_t v2 = High(a) - v1.carry;
    // Add p when V < 0, which leaves [0, 2p); then subtract p if needed.
    const uint64_t negative = 0 - (v2 >> 63);
    LimbAndCarry e0 = AddWithCarry(v0.limb, negative & 1, 0);
    LimbAndCarry e1 = AddWithCarry(v1.limb, negative & kModulusHigh, e0.carry);
    const uint64_t e2 = (v2 + e1.carry) & 1;
    return FromMontgomery(SubtractModulusIfNeeded(e0.limb, e1.limb, e2));
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

  // A 256-bit product, little-endian limbs.
  struct Wide256 {
    uint64_t limbs[4];
  };

  // a * b for a, b < 2^128.
  static constexpr Wide256 MultiplyWide(Uint128 a, Uint128 b) {
    const Uint128 product00 = static_cast<Uint128>(Low(a)) * Low(b);
    const Uint128 product01 = static_cast<Uint128>(Low(a)) * High(b);
    const Uint128 product10 = static_cast<Uint128>(High(a)) * Low(b);
    const Uint128 product11 = static_cast<Uint128>(High(a)) * High(b);
    // a * b < 2^256, so no carry leaves the top limb.
    LimbAndCarry partial1 = AddWithCarry(High(product00), Low(product01), 0);
    LimbAndCarry partial2 = AddWithCarry(High(product01), Low(product11), partial1.carry);
    LimbAndCarry t1 = AddWithCarry(partial1.limb, Low(product10), 0);
    LimbAndCarry t2 = AddWithCarry(partial2.limb, High(product10), t1.carry);
    const uint64_t t3 = High(product11) + partial2.carry + t2.carry;
    return {{Low(product00), t1.limb, t2.limb, t3}};
  }

  // Maps u0 + u1 W + u2 W^2, with u2 < 2^58, to [0, p). W^2 = 28 W - 1 (mod p) folds u2 down:
  // r = u0 + (u1 + 28 u2) W - u2 is non-negative and below
  // W^2 + 28 u2 W < 2p, so one conditional subtraction finishes.
  static constexpr Uint128 ReduceBelow2To160(uint64_t u0, uint64_t u1, uint64_t u2) {
    LimbAndCarry r1 = AddWithCarry(u1, 28 * u2, 0);
    LimbAndCarry r0 = SubtractWithBorrow(u0, u2, 0);
    LimbAndCarry r1b = SubtractWithBorrow(r1.limb, 0, r0.carry);
    return SubtractModulusIfNeeded(r0.limb, r1b.limb, r1.carry - r1b.carry);
  }

  // One word of Montgomery reduction: (t + m p) / W for the m < W that
  // makes the sum divisible by W, which is t / W (mod p). p = 1 (mod W),
  // so m = -t0 mod W, t0 + m is 0 (t0 = 0) or W, and with
  // p = 1 + (W - 28) W:
  //   (t + m p) / W = (t div W) + [t0 != 0] + m (W - 28).
  // Everything is non-negative: no signed cases. Returns the limbs of the
  // quotient, one fewer than t's (`count` of them in, count - 1 out).
  static constexpr void ReduceOneWord(uint64_t* limbs, size_t count) {
    const uint64_t t0 = limbs[0];
    const uint64_t m = 0 - t0;
    const uint64_t nonzero = (t0 | m) >> 63;
    const Uint128 product = static_cast<Uint128>(m) * (0 - uint64_t{28});
    LimbAndCarry sum1 = AddWithCarry(limbs[1], Low(product), nonzero);
    LimbAndCarry sum2 = AddWithCarry(limbs[2], High(product), sum1.carry);
    limbs[0] = sum1.limb;
    limbs[1] = sum2.limb;
    uint64_t carry = sum2.carry;
    for (size_t i = 3; i < count; ++i) {
      LimbAndCarry sum = AddWithCarry(limbs[i], 0, carry);
      limbs[i - 1] = sum.limb;
      carry = sum.carry;
    }
  }

  // t * 2^-128 mod p for t = limbs (little-endian) below 2^288: two words
  // of Montgomery reduction leave less than t / W^2 + W^2 + W (top limb
  // below 2^32 + 2), then ReduceBelow2To160.
  static constexpr Uint128 ReduceWide(const uint64_t (&t)[5]) {
    uint64_t limbs[5] = {t[0], t[1], t[2], t[3], t[4]};
    ReduceOneWord(limbs, 5);
    ReduceOneWord(limbs, 4);
    return ReduceBelow2To160(limbs[0], limbs[1], limbs[2]);
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
#if defined(__x86_64__) && defined(__GNUC__)
    // The same steps as the portable code below, which g++ 12 compiles with
    // spills and dead stores around the carry chains (see ProductSum::Add).
    if (!std::is_constant_evaluated()) {
      uint64_t t0, t1, t2, t3, q1, scratch;
      asm("movq %[a0], %%rax\n\t"
          "mulq %[b0]\n\t"
          "movq %%rax, %[t0]\n\t"
          "movq %%rdx, %[t1]\n\t"
          "movq %[a0], %%rax\n\t"
          "mulq %[b1]\n\t"
          "xorl %k[t2], %k[t2]\n\t"
          "addq %%rax, %[t1]\n\t"
          "adcq %%rdx, %[t2]\n\t"
          "movq %[a1], %%rax\n\t"
          "mulq %[b0]\n\t"
          "xorl %k[t3], %k[t3]\n\t"
          "addq %%rax, %[t1]\n\t"
          "adcq %%rdx, %[t2]\n\t"
          "adcq $0, %[t3]\n\t"
          "movq %[a1], %%rax\n\t"
          "mulq %[b1]\n\t"
          "addq %%rax, %[t2]\n\t"
          "adcq %%rdx, %[t3]\n\t"
          // q1 + c W = 28 t0 + t1.
          "movl $28, %%eax\n\t"
          "mulq %[t0]\n\t"
          "addq %[t1], %%rax\n\t"
          "adcq $0, %%rdx\n\t"
          "movq %%rax, %[q1]\n\t"
          "movq %%rdx, %[t1]\n\t"
          // k = 28 q1 + c; v = t2 + t3 W + k - (t0 + q1 W).
          "movl $28, %%eax\n\t"
          "mulq %[q1]\n\t"
          "addq %[t1], %%rax\n\t"
          "adcq $0, %%rdx\n\t"
          "addq %%rax, %[t2]\n\t"
          "adcq %%rdx, %[t3]\n\t"
          "subq %[t0], %[t2]\n\t"
          "sbbq %[q1], %[t3]\n\t"
          // On a borrow, add p = kModulusHigh W + 1.
          "sbbq %[t1], %[t1]\n\t"
          "movq %[t1], %%rax\n\t"
          "andl $1, %%eax\n\t"
          "andq $-28, %[t1]\n\t"
          "addq %%rax, %[t2]\n\t"
          "adcq %[t1], %[t3]"
          : [t0] "=&r"(t0), [t1] "=&r"(t1), [t2] "=&r"(t2), [t3] "=&r"(t3), [q1] "=&r"(q1),
            "=&a"(scratch)
          : [a0] "r"(Low(a)), [a1] "r"(High(a)), [b0] "r"(Low(b)), [b1] "r"(High(b))
          : "rdx", "cc");
      return Join(t2, t3);
    }
#endif
    const Wide256 t = MultiplyWide(a, b);
    const uint64_t t0 = t.limbs[0];

    const Uint128 q1_and_c = static_cast<Uint128>(t0) * 28 + t.limbs[1];  // < 29 W
    const uint64_t q1 = Low(q1_and_c);
    const Uint128 k = static_cast<Uint128>(q1) * 28 + High(q1_and_c);  // <= 28 W

    // v = (t2 + t3 W) + k - (t0 + q1 W). The sum cannot carry: t2 + t3 W is
    // at most (p - 1)^2 div W^2 = W^2 - 56 W + 784 and k <= 28 W. The
    // difference borrows exactly when v < 0.
    LimbAndCarry sum0 = AddWithCarry(t.limbs[2], Low(k), 0);
    const uint64_t sum1 = t.limbs[3] + High(k) + sum0.carry;
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
