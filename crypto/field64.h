// Field64: the prime field of p = 2^64 - 2^32 + 1 ("Goldilocks"), as VDAF
// draft-20 defines it. Poplar1 uses it at the IDPF's inner levels; Prio3Count
// and Prio3Sum use it for their proofs.
#ifndef CANOPY_CRYPTO_FIELD64_H_
#define CANOPY_CRYPTO_FIELD64_H_

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <span>

#include "crypto/error.h"
#include "crypto/field.h"

namespace canopy::crypto {

// An element of GF(2^64 - 2^32 + 1), held reduced in [0, p). Arithmetic is
// branch-free, so it runs in constant time on secret values.
class Field64 {
 public:
  static constexpr uint64_t kModulus = 0xffffffff00000001ULL;
  static constexpr size_t kEncodedSize = 8;
  // The generator of the multiplicative subgroup of order kGenOrder, which the
  // draft defines as 7^(2^32 - 1).
  static constexpr uint64_t kGenerator = 0x185629dcda58878cULL;
  static constexpr uint64_t kGenOrder = 1ULL << 32;

  constexpr Field64() = default;

  static constexpr Field64 Zero() { return Field64(); }
  static constexpr Field64 One() { return FromReduced(1); }

  // Returns `value` mod p.
  static constexpr Field64 FromUint64(uint64_t value) {
    return FromReduced(ConditionalSubtractModulus(value));
  }

  // One step of the draft's rejection sampling: reads kEncodedSize
  // little-endian bytes, masks them to the bit length of p and, if the result
  // is below p, stores it in `out` and returns true. A rejected sample stores
  // 0: the arithmetic assumes reduced values.
  static bool FromSampledBytes(const uint8_t* bytes, Field64* out) {
    const uint64_t value = LoadLittleEndian(bytes);
    const bool below = value < kModulus;
    out->value_ = value & -static_cast<uint64_t>(below);
    return below;
  }

  // Decodes exactly kEncodedSize little-endian bytes. Errors (kDecodeError): a
  // wrong length, or a value >= p.
  static Result<Field64> Decode(std::span<const uint8_t> bytes) {
    if (bytes.size() != kEncodedSize || LoadLittleEndian(bytes.data()) >= kModulus) {
      return DecodeError(bytes.size());
    }
    return FromReduced(LoadLittleEndian(bytes.data()));
  }

  // Writes the kEncodedSize little-endian bytes of the element to `out`.
  void Encode(uint8_t* out) const {
    if constexpr (std::endian::native == std::endian::little) {
      // One store: g++ does not merge the byte loop below.
      std::memcpy(out, &value_, kEncodedSize);
    } else {
      for (size_t i = 0; i < kEncodedSize; ++i) out[i] = static_cast<uint8_t>(value_ >> (8 * i));
    }
  }

  // The element as an integer in [0, p).
  constexpr uint64_t value() const { return value_; }

  // The element when `mask` is all ones, zero when it is zero (any other
  // mask is a programming error): a constant-time multiplication by a bit.
  constexpr Field64 Masked(uint64_t mask) const { return FromReduced(value_ & mask); }

  friend constexpr Field64 operator+(Field64 a, Field64 b) {
    uint64_t sum = 0;
    // A carry means the true sum is sum + 2^64, and 2^64 = epsilon (mod p);
    // since a, b < p, adding epsilon then cannot overflow again.
    const uint64_t carried = __builtin_add_overflow(a.value_, b.value_, &sum);
    sum += kEpsilon & (static_cast<uint64_t>(0) - carried);
    return FromReduced(ConditionalSubtractModulus(sum));
  }

  friend constexpr Field64 operator-(Field64 a, Field64 b) {
    uint64_t difference = 0;
    // A borrow means the true difference is difference - 2^64, that is
    // difference - epsilon (mod p), which lands in [1, p).
    const uint64_t borrowed = __builtin_sub_overflow(a.value_, b.value_, &difference);
    return FromReduced(difference - (kEpsilon & (static_cast<uint64_t>(0) - borrowed)));
  }

  friend constexpr Field64 operator-(Field64 a) { return Zero() - a; }

  // Always inlined, like Reduce128: it is a multiply and a few additions.
  __attribute__((always_inline)) friend constexpr Field64 operator*(Field64 a, Field64 b) {
    return FromReduced(Reduce128(static_cast<unsigned __int128>(a.value_) * b.value_));
  }

  Field64& operator+=(Field64 other) { return *this = *this + other; }
  Field64& operator-=(Field64 other) { return *this = *this - other; }
  Field64& operator*=(Field64 other) { return *this = *this * other; }

  friend constexpr bool operator==(Field64 a, Field64 b) { return a.value_ == b.value_; }

  // A sum of products and elements kept unreduced, for dot products: each
  // term costs a multiply and three additions with carry instead of a
  // reduction and a modular addition, and the sum is reduced once. 192 bits
  // hold up to 2^64 products without overflow. Branch-free, so constant time.
  class Accumulator {
   public:
    // Adds a * b.
    void AddProduct(Field64 a, Field64 b) {
      const unsigned __int128 product = static_cast<unsigned __int128>(a.value_) * b.value_;
      high_ += __builtin_add_overflow(low_, product, &low_);
    }
    // Adds a.
    void Add(Field64 a) { AddWord(a.value_); }

    // a * b reduced only in part: a word below 2^64, congruent to a * b mod
    // p but possibly not below p (the reduction's last conditional
    // subtraction is skipped). AddWord and AddProductWithWord take it as they
    // would take the element: sums of products of products (r * (r * y))
    // need one reduction a term, and this is the cheapest one.
    static uint64_t PartialProduct(Field64 a, Field64 b) {
      return Reduce128Partly(static_cast<unsigned __int128>(a.value_) * b.value_);
    }
    // Adds a word from PartialProduct (or any word: it counts mod p).
    void AddWord(uint64_t word) { high_ += __builtin_add_overflow(low_, word, &low_); }
    // Adds a * word, for a word from PartialProduct (or any word).
    void AddProductWithWord(Field64 a, uint64_t word) {
      const unsigned __int128 product = static_cast<unsigned __int128>(a.value_) * word;
      high_ += __builtin_add_overflow(low_, product, &low_);
    }
    // The sum mod p, using 2^128 = -2^32 (mod p).
    Field64 Reduce() const {
      return FromReduced(Reduce128(low_)) -
             FromReduced(Reduce128(static_cast<unsigned __int128>(high_) << 32));
    }

   private:
    unsigned __int128 low_ = 0;
    uint64_t high_ = 0;
  };

  // Returns this element raised to `exponent`. The exponent is treated as
  // public: the loop runs over its bits.
  constexpr Field64 Pow(uint64_t exponent) const {
    Field64 result = One();
    Field64 base = *this;
    for (; exponent != 0; exponent >>= 1) {
      if (exponent & 1) result *= base;
      base *= base;
    }
    return result;
  }

  // The multiplicative inverse (Fermat: x^(p-2)); the inverse of 0 is 0.
  constexpr Field64 Inverse() const { return Pow(kModulus - 2); }

  // A primitive 2^log2_n-th root of unity, generator^(2^(32 - log2_n)) (the
  // draft's nth_root), for log2_n in [0, 32], as Field128::RootOfUnityLog2
  // gives it for Field128. Out of range it returns zero, which is no root of
  // unity. Costs 32 - log2_n squarings: callers on hot paths keep the result.
  static constexpr Field64 RootOfUnityLog2(int log2_n) {
    if (log2_n < 0 || log2_n > 32) return Zero();
    Field64 root = FromReduced(kGenerator);
    for (int i = log2_n; i < 32; ++i) root *= root;
    return root;
  }

  // A primitive n-th root of unity for a power of two n <= kGenOrder; zero
  // for any other n.
  static constexpr Field64 NthRootOfUnity(uint64_t n) {
    if (n == 0 || (n & (n - 1)) != 0 || n > kGenOrder) return Zero();
    return RootOfUnityLog2(__builtin_ctzll(n));
  }

 private:
  static constexpr uint64_t kEpsilon = 0xffffffffULL;  // 2^64 mod p

  // The error for a failed Decode (out of line: it builds a message).
  static std::unexpected<Error> DecodeError(size_t length);

  static constexpr Field64 FromReduced(uint64_t value) {
    Field64 element;
    element.value_ = value;
    return element;
  }

  static constexpr uint64_t LoadLittleEndian(const uint8_t* bytes) {
    if
      !consteval {
        // One load: g++ does not merge the byte loop below, and sampling the
        // verification randomness and IDPF values reads many elements.
        if constexpr (std::endian::native == std::endian::little) {
          uint64_t value;
          std::memcpy(&value, bytes, sizeof(value));
          return value;
        }
      }
    uint64_t value = 0;
    for (size_t i = 0; i < kEncodedSize; ++i) value |= static_cast<uint64_t>(bytes[i]) << (8 * i);
    return value;
  }

  // Maps [0, 2^64) to [0, p) without branches.
  static constexpr uint64_t ConditionalSubtractModulus(uint64_t value) {
    uint64_t reduced = 0;
    const uint64_t below = __builtin_sub_overflow(value, kModulus, &reduced);
    const uint64_t keep_value = static_cast<uint64_t>(0) - below;
    return (value & keep_value) | (reduced & ~keep_value);
  }

  // Reduces a 128-bit product modulo p, using 2^64 = 2^32 - 1 and
  // 2^96 = -1 (mod p). Always inlined: g++ otherwise keeps one out-of-line
  // copy, and the call costs as much as the reduction on the per-candidate
  // path.
  __attribute__((always_inline)) static constexpr uint64_t Reduce128(unsigned __int128 x) {
    return ConditionalSubtractModulus(Reduce128Partly(x));
  }

  // Reduce128 without its last step: a word below 2^64 congruent to x, for
  // any 128-bit x.
  __attribute__((always_inline)) static constexpr uint64_t Reduce128Partly(unsigned __int128 x) {
    uint64_t low = static_cast<uint64_t>(x);
    uint64_t high = static_cast<uint64_t>(x >> 64);
    uint64_t high_high = high >> 32;
    uint64_t high_low = high & kEpsilon;

    uint64_t t0 = low - high_high;
    uint64_t borrow = -static_cast<uint64_t>(low < high_high);
    t0 -= kEpsilon & borrow;  // Subtracting 2^64 is subtracting epsilon mod p.
    uint64_t t1 = high_low * kEpsilon;
    uint64_t t2 = t0 + t1;
    uint64_t carry = -static_cast<uint64_t>(t2 < t1);
    t2 += kEpsilon & carry;  // Adding 2^64 is adding epsilon; this cannot overflow.
    return t2;
  }

  uint64_t value_ = 0;
};

static_assert(Field<Field64>);
static_assert(sizeof(Field64) == sizeof(uint64_t));

// sum[i] += addend[i] for every i below sum.size(); `addend` must be at least
// as long (the caller checks the lengths). Four elements at a time with AVX2
// where the processor has it (a fifth of the scalar loop's time: aggregators
// add an output share of every report they verify), element by element
// otherwise. Branch-free either way, so constant time.
void AddField64Vectors(std::span<Field64> sum, std::span<const Field64> addend);

// AddField64Vectors without AVX2, whatever the processor: for tests that
// compare the two.
void AddField64VectorsPortable(std::span<Field64> sum, std::span<const Field64> addend);

// For every i below bits.size(): the pair (values[2i], values[2i + 1]) gains
// `addend` when bits[i] is 1 (nothing when it is 0), and is then negated when
// `negate` is true. `values` must hold 2 * bits.size() elements. The bits may
// be secret (the IDPF's control bits): branch-free in them, four elements at
// a time with AVX2 where the processor has it; `negate` is public.
void AddSelectedPairs(std::span<Field64> values, std::span<const uint8_t> bits,
                      const std::array<Field64, 2>& addend, bool negate);

// AddSelectedPairs without AVX2, whatever the processor: for tests that
// compare the two.
void AddSelectedPairsPortable(std::span<Field64> values, std::span<const uint8_t> bits,
                              const std::array<Field64, 2>& addend, bool negate);

}  // namespace canopy::crypto

#endif  // CANOPY_CRYPTO_FIELD64_H_
