// Field255: the prime field of p = 2^255 - 19, as VDAF draft-20 defines it.
// Poplar1 uses it at the IDPF's leaf level only (three products and a few
// sums per candidate prefix there): four 64-bit limbs, schoolbook
// multiplication and reduction through 2^256 = 38 (mod p), all in constant
// time. The portable loops are the reference; on x86-64 the same steps run
// on add-with-carry chains (see CANOPY_FIELD255_CARRY_BUILTINS).
#ifndef CANOPY_CRYPTO_FIELD255_H_
#define CANOPY_CRYPTO_FIELD255_H_

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "crypto/error.h"
#include "crypto/field.h"

// On x86-64 the arithmetic runs on add-with-carry chains written with the
// compiler's carry builtins (the ones <immintrin.h>'s _addcarry_u64 and
// _subborrow_u64 wrap; plain ADC/SBB, no ISA extension): from the portable
// loops below, g++ 12 builds carries with compares and setc, about three
// times the instructions. Constant evaluation uses the portable loops, and
// so does clang (it names the subtract-with-borrow builtin differently).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define CANOPY_FIELD255_CARRY_BUILTINS 1
#else
#define CANOPY_FIELD255_CARRY_BUILTINS 0
#endif

namespace canopy::crypto {

// An element of GF(2^255 - 19), held reduced in [0, p) as four little-endian
// 64-bit limbs. Arithmetic is branch-free and uses no tables, so it runs in
// constant time on secret values.
class Field255 {
 public:
  static constexpr size_t kEncodedSize = 32;
  static constexpr size_t kLimbs = 4;
  // p as little-endian 64-bit limbs.
  static constexpr std::array<uint64_t, kLimbs> kModulus = {
      0xffffffffffffffedULL, 0xffffffffffffffffULL, 0xffffffffffffffffULL, 0x7fffffffffffffffULL};

  constexpr Field255() = default;

  static constexpr Field255 Zero() { return Field255(); }
  static constexpr Field255 One() { return FromUint64(1); }

  // Returns `value` (always below p).
  static constexpr Field255 FromUint64(uint64_t value) {
    Field255 element;
    element.limbs_[0] = value;
    return element;
  }

  // The element when `mask` is all ones, zero when it is zero (any other
  // mask is a programming error): a constant-time multiplication by a bit,
  // far cheaper than a field multiplication.
  constexpr Field255 Masked(uint64_t mask) const {
    Field255 element;
    for (size_t i = 0; i < kLimbs; ++i) element.limbs_[i] = limbs_[i] & mask;
    return element;
  }

  // One step of the draft's rejection sampling: reads kEncodedSize
  // little-endian bytes, masks them to the bit length of p (clearing bit 255,
  // the top bit of the last byte) and, if the result is below p, stores it in
  // `out` and returns true. A rejected sample stores 0: the arithmetic
  // assumes reduced values, and a caller may read `out` before resampling.
  static constexpr bool FromSampledBytes(const uint8_t* bytes, Field255* out) {
    Limbs value = LoadLittleEndian(bytes);
    value[3] &= kLow63Bits;
    const bool below = IsBelowModulus(value);
    const uint64_t keep = -static_cast<uint64_t>(below);
    for (uint64_t& limb : value) limb &= keep;
    out->limbs_ = value;
    return below;
  }

  // Decodes exactly kEncodedSize little-endian bytes. Errors (kDecodeError): a
  // wrong length, or a value >= p.
  static Result<Field255> Decode(std::span<const uint8_t> bytes);

  // Writes the kEncodedSize little-endian bytes of the element to `out`.
  constexpr void Encode(uint8_t* out) const {
    if !consteval {
      if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(out, limbs_.data(), kEncodedSize);
        return;
      }
    }
    for (size_t i = 0; i < kEncodedSize; ++i) {
      out[i] = static_cast<uint8_t>(limbs_[i / 8] >> (8 * (i % 8)));
    }
  }

  // The element as an integer in [0, p), little-endian 64-bit limbs.
  constexpr const std::array<uint64_t, kLimbs>& limbs() const { return limbs_; }
  // The low 64 bits of the element's integer value.
  constexpr uint64_t low64() const { return limbs_[0]; }

  friend constexpr Field255 operator+(Field255 a, Field255 b) {
#if CANOPY_FIELD255_CARRY_BUILTINS
    if !consteval { return FromReduced(FastAdd(a.limbs_, b.limbs_)); }
#endif
    // a + b < 2p < 2^256: four limbs hold the sum without a carry out.
    Limbs sum{};
    uint64_t carry = 0;
    for (size_t i = 0; i < kLimbs; ++i) {
      Uint128 wide = static_cast<Uint128>(a.limbs_[i]) + b.limbs_[i] + carry;
      sum[i] = static_cast<uint64_t>(wide);
      carry = static_cast<uint64_t>(wide >> 64);
    }
    return FromReduced(Canonicalize(sum));
  }

  friend constexpr Field255 operator-(Field255 a, Field255 b) {
#if CANOPY_FIELD255_CARRY_BUILTINS
    if !consteval { return FromReduced(FastSubtract(a.limbs_, b.limbs_)); }
#endif
    Limbs difference{};
    uint64_t borrow = 0;
    for (size_t i = 0; i < kLimbs; ++i) {
      Uint128 wide = static_cast<Uint128>(a.limbs_[i]) - b.limbs_[i] - borrow;
      difference[i] = static_cast<uint64_t>(wide);
      borrow = static_cast<uint64_t>(wide >> 64) & 1;
    }
    // On a borrow the limbs hold a - b + 2^256; adding p (mod 2^256) gives
    // a - b + p, which is in [0, p).
    uint64_t add_modulus = -borrow;
    uint64_t carry = 0;
    for (size_t i = 0; i < kLimbs; ++i) {
      Uint128 wide = static_cast<Uint128>(difference[i]) + (kModulus[i] & add_modulus) + carry;
      difference[i] = static_cast<uint64_t>(wide);
      carry = static_cast<uint64_t>(wide >> 64);
    }
    return FromReduced(difference);
  }

  friend constexpr Field255 operator-(Field255 a) { return Zero() - a; }

  friend constexpr Field255 operator*(Field255 a, Field255 b) {
#if CANOPY_FIELD255_CARRY_BUILTINS
    if !consteval { return FromReduced(FastMultiply(a.limbs_, b.limbs_)); }
#endif
    // Schoolbook product into eight limbs. Each step's sum is at most
    // (2^64 - 1)^2 + 2 * (2^64 - 1) = 2^128 - 1, so it cannot overflow.
    std::array<uint64_t, 2 * kLimbs> product{};
    for (size_t i = 0; i < kLimbs; ++i) {
      uint64_t carry = 0;
      for (size_t j = 0; j < kLimbs; ++j) {
        Uint128 wide = static_cast<Uint128>(a.limbs_[i]) * b.limbs_[j] + product[i + j] + carry;
        product[i + j] = static_cast<uint64_t>(wide);
        carry = static_cast<uint64_t>(wide >> 64);
      }
      product[i + kLimbs] = carry;
    }
    return FromReduced(ReduceProduct(product));
  }

  constexpr Field255& operator+=(Field255 other) { return *this = *this + other; }
  constexpr Field255& operator-=(Field255 other) { return *this = *this - other; }
  constexpr Field255& operator*=(Field255 other) { return *this = *this * other; }

  // Compares all limbs without an early exit.
  friend constexpr bool operator==(Field255 a, Field255 b) {
    uint64_t differences = 0;
    for (size_t i = 0; i < kLimbs; ++i) differences |= a.limbs_[i] ^ b.limbs_[i];
    return differences == 0;
  }

  // Returns this element raised to `exponent`. The exponent is treated as
  // public: the loop runs over its bits.
  constexpr Field255 Pow(uint64_t exponent) const {
    Field255 result = One();
    Field255 base = *this;
    for (; exponent != 0; exponent >>= 1) {
      if (exponent & 1) result *= base;
      base *= base;
    }
    return result;
  }

  // The multiplicative inverse (Fermat: x^(p-2)); the inverse of 0 is 0.
  constexpr Field255 Inverse() const {
    // p - 2 = 2^255 - 21, processed from its top bit down. The exponent is
    // public, so branching on its bits leaks nothing.
    constexpr Limbs kExponent = {0xffffffffffffffebULL, 0xffffffffffffffffULL,
                                 0xffffffffffffffffULL, 0x7fffffffffffffffULL};
    Field255 result = One();
    for (size_t bit = 255; bit-- > 0;) {
      result *= result;
      if ((kExponent[bit / 64] >> (bit % 64)) & 1) result *= *this;
    }
    return result;
  }

 private:
  __extension__ typedef unsigned __int128 Uint128;
  using Limbs = std::array<uint64_t, kLimbs>;

  static constexpr uint64_t kLow63Bits = 0x7fffffffffffffffULL;

  static constexpr Field255 FromReduced(const Limbs& limbs) {
    Field255 element;
    element.limbs_ = limbs;
    return element;
  }

  static constexpr Limbs LoadLittleEndian(const uint8_t* bytes) {
    Limbs limbs{};
    if !consteval {
      if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(limbs.data(), bytes, kEncodedSize);
        return limbs;
      }
    }
    for (size_t i = 0; i < kEncodedSize; ++i) {
      limbs[i / 8] |= static_cast<uint64_t>(bytes[i]) << (8 * (i % 8));
    }
    return limbs;
  }

  // Whether `value` < p, from the borrow of value - p.
  static constexpr bool IsBelowModulus(const Limbs& value) {
    uint64_t borrow = 0;
    for (size_t i = 0; i < kLimbs; ++i) {
      Uint128 wide = static_cast<Uint128>(value[i]) - kModulus[i] - borrow;
      borrow = static_cast<uint64_t>(wide >> 64) & 1;
    }
    return borrow != 0;
  }

  // Adds the small value `addend` to `value` (mod 2^256) and returns the carry
  // out of the top limb.
  static constexpr uint64_t AddSmall(Limbs& value, uint64_t addend) {
#if CANOPY_FIELD255_CARRY_BUILTINS
    if !consteval {
      unsigned char carry = 0;
      value[0] = AddWithCarry(carry, value[0], addend);
      for (size_t i = 1; i < kLimbs; ++i) value[i] = AddWithCarry(carry, value[i], 0);
      return carry;
    }
#endif
    uint64_t carry = addend;
    for (size_t i = 0; i < kLimbs; ++i) {
      Uint128 wide = static_cast<Uint128>(value[i]) + carry;
      value[i] = static_cast<uint64_t>(wide);
      carry = static_cast<uint64_t>(wide >> 64);
    }
    return carry;
  }

  // Maps any value in [0, 2^256) to [0, p) without branches.
  static constexpr Limbs Canonicalize(Limbs value) {
    // 2^255 = 19 (mod p): replace bit 255 by 19. The result is below
    // 2^255 + 19 < 2p, so it still fits in four limbs.
    uint64_t top_bit = value[3] >> 63;
    value[3] &= kLow63Bits;
    AddSmall(value, 19 * top_bit);
    return SubtractModulusIfAbove(value);
  }

  // Maps a value below 2p to [0, p) without branches.
  static constexpr Limbs SubtractModulusIfAbove(const Limbs& value) {
    // value >= p exactly when value + 19 >= 2^255 (value + 19 stays below
    // 2^256), and then value + 19 - 2^255 is value - p.
    Limbs reduced = value;
    AddSmall(reduced, 19);
    const uint64_t keep_value = (reduced[3] >> 63) - 1;  // All ones when value < p.
    reduced[3] &= kLow63Bits;
    for (size_t i = 0; i < kLimbs; ++i) {
      reduced[i] = (value[i] & keep_value) | (reduced[i] & ~keep_value);
    }
    return reduced;
  }

  // Reduces an eight-limb product (below p^2) modulo p, using
  // 2^256 = 38 (mod p).
  static constexpr Limbs ReduceProduct(const std::array<uint64_t, 2 * kLimbs>& product) {
    // low + 38 * high < 39 * 2^256: a fifth limb of at most 38 is left.
    Limbs folded{};
    uint64_t carry = 0;
    for (size_t i = 0; i < kLimbs; ++i) {
      Uint128 wide = static_cast<Uint128>(product[i + kLimbs]) * 38 + product[i] + carry;
      folded[i] = static_cast<uint64_t>(wide);
      carry = static_cast<uint64_t>(wide >> 64);
    }
    return ReduceFolded(folded, carry);
  }

  // Reduces folded + fifth * 2^256 (fifth at most 38, what folding a
  // product's high half leaves) modulo p: the fifth limb is folded the same
  // way. If that carries out of 2^256, the four limbs wrapped to a value
  // below 39 * 38, so adding the 38 that the carry stands for cannot carry
  // again.
  static constexpr Limbs ReduceFolded(Limbs folded, uint64_t fifth) {
    const uint64_t wrapped = AddSmall(folded, fifth * 38);
    AddSmall(folded, wrapped * 38);
    return Canonicalize(folded);
  }

#if CANOPY_FIELD255_CARRY_BUILTINS
  // One step of an add (subtract) chain: returns x + y + carry (x - y -
  // borrow) mod 2^64 and leaves the carry (borrow) out in `carry`.
  static uint64_t AddWithCarry(unsigned char& carry, uint64_t x, uint64_t y) {
    unsigned long long out;
    carry = __builtin_ia32_addcarryx_u64(carry, x, y, &out);
    return out;
  }
  static uint64_t SubtractWithBorrow(unsigned char& borrow, uint64_t x, uint64_t y) {
    unsigned long long out;
    borrow = __builtin_ia32_sbb_u64(borrow, x, y, &out);
    return out;
  }

  static Limbs FastAdd(const Limbs& a, const Limbs& b) {
    // Both are reduced (the class's invariant), so a + b < 2p < 2^256: no
    // carry out, and one conditional subtraction of p reduces the sum.
    unsigned char carry = 0;
    Limbs sum;
    for (size_t i = 0; i < kLimbs; ++i) sum[i] = AddWithCarry(carry, a[i], b[i]);
    return SubtractModulusIfAbove(sum);
  }

  static Limbs FastSubtract(const Limbs& a, const Limbs& b) {
    unsigned char borrow = 0;
    Limbs difference;
    for (size_t i = 0; i < kLimbs; ++i) difference[i] = SubtractWithBorrow(borrow, a[i], b[i]);
    // On a borrow the limbs hold a - b + 2^256; adding p (mod 2^256) gives
    // a - b + p, which is in [0, p).
    const uint64_t add_modulus = -static_cast<uint64_t>(borrow);
    unsigned char carry = 0;
    for (size_t i = 0; i < kLimbs; ++i) {
      difference[i] = AddWithCarry(carry, difference[i], kModulus[i] & add_modulus);
    }
    return difference;
  }

  // (r2:r1:r0) += x * y, the step of a column-wise (Comba) product: the
  // three-word sum is one add-with-carry chain, which g++ would otherwise
  // build from compares and setc.
  static void MultiplyAccumulate(uint64_t& r0, uint64_t& r1, uint64_t& r2, uint64_t x,
                                 uint64_t y) {
    const Uint128 wide = static_cast<Uint128>(x) * y;
    __asm__("addq %[low], %[r0]\n\tadcq %[high], %[r1]\n\tadcq $0, %[r2]"
            : [r0] "+r"(r0), [r1] "+r"(r1), [r2] "+r"(r2)
            : [low] "r"(static_cast<uint64_t>(wide)), [high] "r"(static_cast<uint64_t>(wide >> 64))
            : "cc");
  }

  // Takes the finished low word of a column sum and shifts the sum down.
  static uint64_t NextColumn(uint64_t& r0, uint64_t& r1, uint64_t& r2) {
    const uint64_t word = r0;
    r0 = r1;
    r1 = r2;
    r2 = 0;
    return word;
  }

  static Limbs FastMultiply(const Limbs& a, const Limbs& b) {
    // The eight-limb product, column by column.
    // Written out: g++ 12 does not unroll the loops of a triangle.
    std::array<uint64_t, 2 * kLimbs> product;
    uint64_t r0 = 0, r1 = 0, r2 = 0;
    MultiplyAccumulate(r0, r1, r2, a[0], b[0]);
    product[0] = NextColumn(r0, r1, r2);
    MultiplyAccumulate(r0, r1, r2, a[0], b[1]);
    MultiplyAccumulate(r0, r1, r2, a[1], b[0]);
    product[1] = NextColumn(r0, r1, r2);
    MultiplyAccumulate(r0, r1, r2, a[0], b[2]);
    MultiplyAccumulate(r0, r1, r2, a[1], b[1]);
    MultiplyAccumulate(r0, r1, r2, a[2], b[0]);
    product[2] = NextColumn(r0, r1, r2);
    MultiplyAccumulate(r0, r1, r2, a[0], b[3]);
    MultiplyAccumulate(r0, r1, r2, a[1], b[2]);
    MultiplyAccumulate(r0, r1, r2, a[2], b[1]);
    MultiplyAccumulate(r0, r1, r2, a[3], b[0]);
    product[3] = NextColumn(r0, r1, r2);
    MultiplyAccumulate(r0, r1, r2, a[1], b[3]);
    MultiplyAccumulate(r0, r1, r2, a[2], b[2]);
    MultiplyAccumulate(r0, r1, r2, a[3], b[1]);
    product[4] = NextColumn(r0, r1, r2);
    MultiplyAccumulate(r0, r1, r2, a[2], b[3]);
    MultiplyAccumulate(r0, r1, r2, a[3], b[2]);
    product[5] = NextColumn(r0, r1, r2);
    MultiplyAccumulate(r0, r1, r2, a[3], b[3]);
    product[6] = r0;
    product[7] = r1;
    r0 = r1 = r2 = 0;
    // low + 38 * high, using 2^256 = 38 (mod p), column by column: four limbs
    // and a fifth word of at most 38.
    Limbs folded;
    for (size_t i = 0; i < kLimbs; ++i) {
      MultiplyAccumulate(r0, r1, r2, product[kLimbs + i], 38);
      unsigned char carry = 0;
      r0 = AddWithCarry(carry, r0, product[i]);
      r1 = AddWithCarry(carry, r1, 0);
      r2 += carry;
      folded[i] = NextColumn(r0, r1, r2);
    }
    return ReduceFolded(folded, r0);  // r0: the fifth word.
  }
#endif

  Limbs limbs_{};  // little-endian
};

static_assert(Field<Field255>);

}  // namespace canopy::crypto

#endif  // CANOPY_CRYPTO_FIELD255_H_
