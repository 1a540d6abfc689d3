// Tests of Field64, Field128 and Field255 against a deliberately slow and
// simple big-integer reference (schoolbook limbs, double-and-add
// multiplication), which shares no code with the implementations.
#include "crypto/field.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "crypto/error.h"
#include "crypto/field128.h"
#include "crypto/field255.h"
#include "crypto/field64.h"

namespace canopy::crypto {
namespace {

static_assert(Field<Field64>);
static_assert(Field<Field128>);
static_assert(Field<Field255>);

// A non-negative integer below 2^320, as little-endian 64-bit limbs. Five
// limbs leave room to double any value below 2^256 without overflow.
struct BigInt {
  std::array<uint64_t, 5> limbs{};

  static BigInt FromUint64(uint64_t value) {
    BigInt result;
    result.limbs[0] = value;
    return result;
  }

  // 2^exponent, for exponent < 320.
  static BigInt PowerOfTwo(int exponent) {
    BigInt result;
    result.limbs[exponent / 64] = uint64_t{1} << (exponent % 64);
    return result;
  }

  static BigInt FromBytes(std::span<const uint8_t> bytes) {
    BigInt result;
    for (size_t i = 0; i < bytes.size(); ++i) {
      result.limbs[i / 8] |= static_cast<uint64_t>(bytes[i]) << (8 * (i % 8));
    }
    return result;
  }

  std::vector<uint8_t> ToBytes(size_t size) const {
    std::vector<uint8_t> bytes(size);
    for (size_t i = 0; i < size; ++i) {
      bytes[i] = static_cast<uint8_t>(limbs[i / 8] >> (8 * (i % 8)));
    }
    return bytes;
  }

  bool Bit(int index) const { return (limbs[index / 64] >> (index % 64)) & 1; }

  // The number of bits up to the highest set one; 0 for zero.
  int BitLength() const {
    for (int bit = 319; bit >= 0; --bit) {
      if (Bit(bit)) return bit + 1;
    }
    return 0;
  }

  friend bool operator==(const BigInt& a, const BigInt& b) = default;

  friend bool operator<(const BigInt& a, const BigInt& b) {
    for (int i = 4; i >= 0; --i) {
      if (a.limbs[i] != b.limbs[i]) return a.limbs[i] < b.limbs[i];
    }
    return false;
  }

  friend BigInt operator+(const BigInt& a, const BigInt& b) {
    BigInt sum;
    uint64_t carry = 0;
    for (int i = 0; i < 5; ++i) {
      uint64_t partial = a.limbs[i] + carry;
      uint64_t carry1 = partial < carry;
      sum.limbs[i] = partial + b.limbs[i];
      uint64_t carry2 = sum.limbs[i] < partial;
      carry = carry1 + carry2;
    }
    return sum;
  }

  // Requires a >= b.
  friend BigInt operator-(const BigInt& a, const BigInt& b) {
    BigInt difference;
    uint64_t borrow = 0;
    for (int i = 0; i < 5; ++i) {
      uint64_t subtrahend = b.limbs[i] + borrow;
      uint64_t borrow1 = subtrahend < borrow;
      difference.limbs[i] = a.limbs[i] - subtrahend;
      uint64_t borrow2 = a.limbs[i] < subtrahend;
      borrow = borrow1 + borrow2;
    }
    return difference;
  }

  // The bitwise AND, for the sampling mask.
  friend BigInt operator&(const BigInt& a, const BigInt& b) {
    BigInt result;
    for (int i = 0; i < 5; ++i) result.limbs[i] = a.limbs[i] & b.limbs[i];
    return result;
  }
};

// Modular arithmetic on reduced values, done the slow, obvious way.
BigInt AddMod(const BigInt& a, const BigInt& b, const BigInt& p) {
  BigInt sum = a + b;
  return sum < p ? sum : sum - p;
}

BigInt SubMod(const BigInt& a, const BigInt& b, const BigInt& p) {
  return b < a || a == b ? a - b : (a + p) - b;
}

// Double-and-add over the bits of b, from the top.
BigInt MulMod(const BigInt& a, const BigInt& b, const BigInt& p) {
  BigInt result;
  for (int bit = b.BitLength() - 1; bit >= 0; --bit) {
    result = AddMod(result, result, p);
    if (b.Bit(bit)) result = AddMod(result, a, p);
  }
  return result;
}

BigInt PowMod(const BigInt& base, const BigInt& exponent, const BigInt& p) {
  BigInt result = BigInt::FromUint64(1);
  for (int bit = exponent.BitLength() - 1; bit >= 0; --bit) {
    result = MulMod(result, result, p);
    if (exponent.Bit(bit)) result = MulMod(result, base, p);
  }
  return result;
}

// Reduces any value below 2^320 mod p by binary long division: feed in the
// bits from the top, keeping the remainder below p.
BigInt Reduce(const BigInt& value, const BigInt& p) {
  BigInt remainder;
  for (int bit = value.BitLength() - 1; bit >= 0; --bit) {
    remainder = remainder + remainder;
    if (value.Bit(bit)) remainder = remainder + BigInt::FromUint64(1);
    if (!(remainder < p)) remainder = remainder - p;
  }
  return remainder;
}

// Per-field facts the tests need, written down independently of the classes.
template <typename F>
struct Traits;

template <>
struct Traits<Field64> {
  static BigInt Modulus() { return BigInt::FromUint64(0xffffffff00000001ULL); }
  // next_power_of_2(p) - 1.
  static BigInt SampleMask() { return BigInt::FromUint64(~0ULL); }
};

template <>
struct Traits<Field128> {
  static BigInt Modulus() {
    BigInt p;
    p.limbs = {1, 0xffffffffffffffe4ULL, 0, 0, 0};
    return p;
  }
  static BigInt SampleMask() {
    BigInt mask;
    mask.limbs = {~0ULL, ~0ULL, 0, 0, 0};
    return mask;
  }
};

template <>
struct Traits<Field255> {
  static BigInt Modulus() {
    BigInt p;
    p.limbs = {0xffffffffffffffedULL, ~0ULL, ~0ULL, 0x7fffffffffffffffULL, 0};
    return p;
  }
  static BigInt SampleMask() {
    BigInt mask;
    mask.limbs = {~0ULL, ~0ULL, ~0ULL, 0x7fffffffffffffffULL, 0};
    return mask;
  }
};

template <typename F>
BigInt ToBig(const F& element) {
  std::array<uint8_t, F::kEncodedSize> bytes;
  element.Encode(bytes.data());
  return BigInt::FromBytes(bytes);
}

// Builds an element through Decode, which the round-trip tests check.
template <typename F>
F FromBig(const BigInt& value) {
  std::vector<uint8_t> bytes = value.ToBytes(F::kEncodedSize);
  Result<F> element = F::Decode(bytes);
  EXPECT_TRUE(element.has_value()) << "reference value out of range";
  return element.value_or(F::Zero());
}

// Checks the reference itself against the compiler's 128-bit arithmetic,
// for the 64-bit modulus.
TEST(ReferenceTest, MatchesNativeArithmetic) {
  __extension__ typedef unsigned __int128 Uint128;
  const uint64_t modulus = 0xffffffff00000001ULL;
  const BigInt p = BigInt::FromUint64(modulus);
  std::mt19937_64 rng(64);
  for (int i = 0; i < 2000; ++i) {
    uint64_t a = rng() % modulus;
    uint64_t b = rng() % modulus;
    uint64_t wide = rng();
    ASSERT_EQ(MulMod(BigInt::FromUint64(a), BigInt::FromUint64(b), p),
              BigInt::FromUint64(static_cast<uint64_t>(static_cast<Uint128>(a) * b % modulus)));
    ASSERT_EQ(AddMod(BigInt::FromUint64(a), BigInt::FromUint64(b), p),
              BigInt::FromUint64(static_cast<uint64_t>((static_cast<Uint128>(a) + b) % modulus)));
    ASSERT_EQ(SubMod(BigInt::FromUint64(a), BigInt::FromUint64(b), p),
              BigInt::FromUint64(
                  static_cast<uint64_t>((static_cast<Uint128>(a) + modulus - b) % modulus)));
    ASSERT_EQ(Reduce(BigInt::FromUint64(wide), p), BigInt::FromUint64(wide % modulus));
  }
}

template <typename F>
class FieldTest : public ::testing::Test {
 protected:
  static constexpr int kRandomPairs = 3000;

  FieldTest() : rng_(0x5eed0000 + F::kEncodedSize), p_(Traits<F>::Modulus()) {}

  // A uniformly random value below p.
  BigInt RandomBelowModulus() {
    BigInt mask = Traits<F>::SampleMask();
    for (;;) {
      BigInt value;
      for (uint64_t& limb : value.limbs) limb = rng_();
      value = value & mask;
      if (value < p_) return value;
    }
  }

  // A random value below p built from limbs that are 0, all ones, p's own
  // limb or random, which reach carry and borrow cases that uniform values
  // almost never do.
  BigInt RandomStructured() {
    BigInt mask = Traits<F>::SampleMask();
    for (;;) {
      BigInt value;
      for (int i = 0; i < 5; ++i) {
        switch (rng_() % 4) {
          case 0:
            value.limbs[i] = 0;
            break;
          case 1:
            value.limbs[i] = ~0ULL;
            break;
          case 2:
            value.limbs[i] = p_.limbs[i] - (rng_() % 3);
            break;
          default:
            value.limbs[i] = rng_();
            break;
        }
      }
      value = value & mask;
      if (value < p_) return value;
    }
  }

  // Half uniform, half structured.
  BigInt RandomValue() { return rng_() % 2 ? RandomBelowModulus() : RandomStructured(); }

  // Values where carries, borrows and reductions change behaviour. Each is
  // reduced mod p, so all are valid elements.
  std::vector<BigInt> EdgeValues() {
    BigInt one = BigInt::FromUint64(1);
    BigInt two = BigInt::FromUint64(2);
    std::vector<BigInt> raw = {
        BigInt(),
        one,
        two,
        BigInt::FromUint64(3),
        p_ - one,
        p_ - two,
        p_ - BigInt::FromUint64(19),
        BigInt::FromUint64(0xffffffffULL),
        BigInt::FromUint64(0xffffffff00000000ULL),
        BigInt::FromUint64(~0ULL),
        BigInt::PowerOfTwo(63),
        BigInt::PowerOfTwo(64),
        BigInt::PowerOfTwo(64) + one,
        BigInt::PowerOfTwo(64) - one + BigInt::PowerOfTwo(64),
        BigInt::PowerOfTwo(127),
        BigInt::PowerOfTwo(128) - one,
        BigInt::PowerOfTwo(128),
        BigInt::PowerOfTwo(192) - one,
        BigInt::PowerOfTwo(254),
        BigInt::PowerOfTwo(255) - one,
        BigInt::PowerOfTwo(256) - one,
    };
    // (p - 1) / 2 and (p + 1) / 2, by halving limbs (p is odd).
    BigInt half;
    BigInt p_minus_one = p_ - one;
    for (int i = 0; i < 5; ++i) {
      half.limbs[i] = (p_minus_one.limbs[i] >> 1) | (i < 4 ? p_minus_one.limbs[i + 1] << 63 : 0);
    }
    raw.push_back(half);
    raw.push_back(half + one);
    // 2^128 mod p and 2^256 mod p, the Montgomery constants of Field128.
    raw.push_back(Reduce(BigInt::PowerOfTwo(128), p_));
    raw.push_back(Reduce(
        MulMod(Reduce(BigInt::PowerOfTwo(128), p_), Reduce(BigInt::PowerOfTwo(128), p_), p_), p_));
    std::vector<BigInt> values;
    for (const BigInt& value : raw) values.push_back(Reduce(value, p_));
    return values;
  }

  // Edge values, then random values, `count` in total at least.
  std::vector<BigInt> TestValues(size_t count) {
    std::vector<BigInt> values = EdgeValues();
    while (values.size() < count) values.push_back(RandomValue());
    return values;
  }

  std::mt19937_64 rng_;
  BigInt p_;
};

using FieldTypes = ::testing::Types<Field64, Field128, Field255>;
TYPED_TEST_SUITE(FieldTest, FieldTypes);

TYPED_TEST(FieldTest, ReferenceSelfCheck) {
  // The reference must agree with itself on a few identities before it judges
  // anything: (p - 1)^2 = 1 and 2 * (p + 1) / 2 = 1.
  BigInt one = BigInt::FromUint64(1);
  BigInt p_minus_one = this->p_ - one;
  EXPECT_EQ(MulMod(p_minus_one, p_minus_one, this->p_), one);
  EXPECT_EQ(Reduce(this->p_, this->p_), BigInt());
  EXPECT_EQ(Reduce(this->p_ + one, this->p_), one);
  EXPECT_EQ(SubMod(BigInt(), one, this->p_), p_minus_one);
}

TYPED_TEST(FieldTest, ConstantsAndSmallValues) {
  using F = TypeParam;
  EXPECT_EQ(ToBig(F::Zero()), BigInt());
  EXPECT_EQ(ToBig(F::One()), BigInt::FromUint64(1));
  EXPECT_EQ(F(), F::Zero());
  for (uint64_t value : {0ULL, 1ULL, 2ULL, 0xffffffffULL, 0xffffffff00000000ULL,
                         0xffffffff00000001ULL, 0xffffffff00000002ULL, ~0ULL}) {
    EXPECT_EQ(ToBig(F::FromUint64(value)), Reduce(BigInt::FromUint64(value), this->p_)) << value;
  }
  for (int i = 0; i < 1000; ++i) {
    uint64_t value = this->rng_();
    EXPECT_EQ(ToBig(F::FromUint64(value)), Reduce(BigInt::FromUint64(value), this->p_));
  }
}

TYPED_TEST(FieldTest, ArithmeticMatchesReference) {
  using F = TypeParam;
  const BigInt& p = this->p_;
  std::vector<BigInt> edges = this->EdgeValues();
  std::vector<std::pair<BigInt, BigInt>> pairs;
  for (const BigInt& a : edges) {
    for (const BigInt& b : edges) pairs.emplace_back(a, b);
  }
  for (int i = 0; i < TestFixture::kRandomPairs; ++i) {
    pairs.emplace_back(this->RandomValue(), this->RandomValue());
  }
  for (const auto& [a, b] : pairs) {
    F fa = FromBig<F>(a);
    F fb = FromBig<F>(b);
    ASSERT_EQ(ToBig(fa + fb), AddMod(a, b, p));
    ASSERT_EQ(ToBig(fa - fb), SubMod(a, b, p));
    ASSERT_EQ(ToBig(-fa), SubMod(BigInt(), a, p));
    ASSERT_EQ(ToBig(fa * fb), MulMod(a, b, p));
    ASSERT_EQ(fa == fb, a == b);

    F accumulator = fa;
    accumulator += fb;
    ASSERT_EQ(accumulator, fa + fb);
    accumulator = fa;
    accumulator -= fb;
    ASSERT_EQ(accumulator, fa - fb);
    accumulator = fa;
    accumulator *= fb;
    ASSERT_EQ(accumulator, fa * fb);
  }
}

TYPED_TEST(FieldTest, InverseMatchesReference) {
  using F = TypeParam;
  const BigInt& p = this->p_;
  EXPECT_EQ(F::Zero().Inverse(), F::Zero());
  // The reference inverse is slow, so check it on fewer values...
  for (const BigInt& a : this->TestValues(40)) {
    if (a == BigInt()) continue;
    EXPECT_EQ(ToBig(FromBig<F>(a).Inverse()), PowMod(a, p - BigInt::FromUint64(2), p));
  }
  // ...and check x * x^-1 = 1 on many.
  for (const BigInt& a : this->TestValues(2000)) {
    if (a == BigInt()) continue;
    F fa = FromBig<F>(a);
    ASSERT_EQ(fa * fa.Inverse(), F::One());
  }
}

TYPED_TEST(FieldTest, PowMatchesReference) {
  using F = TypeParam;
  const BigInt& p = this->p_;
  std::vector<uint64_t> exponents = {0, 1, 2, 3, 64, 0xffffffffULL, ~0ULL};
  for (int i = 0; i < 30; ++i) exponents.push_back(this->rng_());
  std::vector<BigInt> bases = this->TestValues(60);
  for (size_t i = 0; i < exponents.size(); ++i) {
    for (const BigInt& base : {bases[i], bases[bases.size() - 1 - i]}) {
      EXPECT_EQ(ToBig(FromBig<F>(base).Pow(exponents[i])),
                PowMod(base, BigInt::FromUint64(exponents[i]), p))
          << "exponent " << exponents[i];
    }
  }
  // x^0 = 1 even for x = 0.
  EXPECT_EQ(F::Zero().Pow(0), F::One());
  EXPECT_EQ(F::Zero().Pow(5), F::Zero());
}

TYPED_TEST(FieldTest, EncodeDecodeRoundTrip) {
  using F = TypeParam;
  for (const BigInt& value : this->TestValues(2000)) {
    std::vector<uint8_t> bytes = value.ToBytes(F::kEncodedSize);
    Result<F> decoded = F::Decode(bytes);
    ASSERT_TRUE(decoded.has_value());
    std::array<uint8_t, F::kEncodedSize> encoded;
    decoded->Encode(encoded.data());
    ASSERT_EQ(std::vector<uint8_t>(encoded.begin(), encoded.end()), bytes);
  }
}

TYPED_TEST(FieldTest, DecodeRejectsOutOfRangeValues) {
  using F = TypeParam;
  const BigInt& p = this->p_;
  BigInt one = BigInt::FromUint64(1);
  std::vector<BigInt> bad = {p, p + one, p + BigInt::FromUint64(18)};
  for (const BigInt& value : bad) {
    Result<F> decoded = F::Decode(value.ToBytes(F::kEncodedSize));
    ASSERT_FALSE(decoded.has_value());
    EXPECT_EQ(decoded.error().code(), ErrorCode::kDecodeError);
    EXPECT_FALSE(decoded.error().message().empty());
  }
  std::vector<uint8_t> all_ones(F::kEncodedSize, 0xff);
  Result<F> decoded = F::Decode(all_ones);
  ASSERT_FALSE(decoded.has_value());
  EXPECT_EQ(decoded.error().code(), ErrorCode::kDecodeError);
  // p - 1 is the largest accepted value.
  EXPECT_TRUE(F::Decode((p - one).ToBytes(F::kEncodedSize)).has_value());
}

TYPED_TEST(FieldTest, DecodeRejectsWrongLengths) {
  using F = TypeParam;
  for (size_t length :
       {size_t{0}, size_t{1}, F::kEncodedSize - 1, F::kEncodedSize + 1, 2 * F::kEncodedSize}) {
    std::vector<uint8_t> bytes(length, 0);
    Result<F> decoded = F::Decode(bytes);
    ASSERT_FALSE(decoded.has_value()) << length;
    EXPECT_EQ(decoded.error().code(), ErrorCode::kDecodeError);
  }
}

TYPED_TEST(FieldTest, FromSampledBytesFollowsTheDraft) {
  using F = TypeParam;
  const BigInt& p = this->p_;
  const BigInt mask = Traits<F>::SampleMask();
  BigInt one = BigInt::FromUint64(1);
  std::vector<std::vector<uint8_t>> inputs = {
      std::vector<uint8_t>(F::kEncodedSize, 0x00),
      std::vector<uint8_t>(F::kEncodedSize, 0xff),
      p.ToBytes(F::kEncodedSize),
      (p + one).ToBytes(F::kEncodedSize),
      (p - one).ToBytes(F::kEncodedSize),
  };
  // Values whose bits above the mask are set: the mask must clear them.
  std::vector<uint8_t> top_bit_set = (p - one).ToBytes(F::kEncodedSize);
  top_bit_set.back() |= 0x80;
  inputs.push_back(top_bit_set);
  std::vector<uint8_t> small_with_top_bit(F::kEncodedSize, 0);
  small_with_top_bit[0] = 5;
  small_with_top_bit.back() = 0x80;
  inputs.push_back(small_with_top_bit);
  for (int i = 0; i < 3000; ++i) {
    std::vector<uint8_t> bytes(F::kEncodedSize);
    for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(this->rng_());
    // Half the time, force the high bytes to ff so rejections are common.
    if (i % 2 == 0) {
      for (size_t j = F::kEncodedSize / 2; j < F::kEncodedSize; ++j) bytes[j] = 0xff;
    }
    inputs.push_back(bytes);
  }
  int accepted = 0;
  int rejected = 0;
  for (const std::vector<uint8_t>& bytes : inputs) {
    BigInt masked = BigInt::FromBytes(bytes) & mask;
    bool expect_accept = masked < p;
    F element;
    bool accept = F::FromSampledBytes(bytes.data(), &element);
    ASSERT_EQ(accept, expect_accept);
    if (accept) {
      ASSERT_EQ(ToBig(element), masked);
      ++accepted;
    } else {
      // Zero, never the unreduced sample: the arithmetic assumes reduced values.
      ASSERT_EQ(ToBig(element), BigInt::FromUint64(0));
      ++rejected;
    }
  }
  EXPECT_GT(accepted, 100);
  EXPECT_GT(rejected, 0);
}

TYPED_TEST(FieldTest, VectorEncoding) {
  using F = TypeParam;
  std::vector<F> values;
  for (const BigInt& value : this->TestValues(100)) values.push_back(FromBig<F>(value));

  std::vector<uint8_t> encoded = EncodeVec<F>(values);
  ASSERT_EQ(encoded.size(), values.size() * F::kEncodedSize);
  for (size_t i = 0; i < values.size(); ++i) {
    std::array<uint8_t, F::kEncodedSize> single;
    values[i].Encode(single.data());
    ASSERT_TRUE(std::equal(single.begin(), single.end(), encoded.begin() + i * F::kEncodedSize));
  }
  Result<std::vector<F>> decoded = DecodeVec<F>(encoded);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, values);

  // Appending keeps what is already in the buffer.
  std::vector<uint8_t> appended = {0xaa};
  EncodeVec<F>(values, appended);
  EXPECT_EQ(appended.size(), 1 + encoded.size());
  EXPECT_EQ(appended[0], 0xaa);

  // Empty vectors are fine.
  Result<std::vector<F>> empty = DecodeVec<F>(std::span<const uint8_t>());
  ASSERT_TRUE(empty.has_value());
  EXPECT_TRUE(empty->empty());

  // A truncated encoding is a decode error.
  std::vector<uint8_t> truncated(encoded.begin(), encoded.end() - 1);
  Result<std::vector<F>> bad_length = DecodeVec<F>(truncated);
  ASSERT_FALSE(bad_length.has_value());
  EXPECT_EQ(bad_length.error().code(), ErrorCode::kDecodeError);

  // So is an element >= p anywhere in the vector.
  std::vector<uint8_t> out_of_range = encoded;
  std::vector<uint8_t> modulus = this->p_.ToBytes(F::kEncodedSize);
  std::copy(modulus.begin(), modulus.end(), out_of_range.begin() + 3 * F::kEncodedSize);
  Result<std::vector<F>> bad_value = DecodeVec<F>(out_of_range);
  ASSERT_FALSE(bad_value.has_value());
  EXPECT_EQ(bad_value.error().code(), ErrorCode::kDecodeError);
}

TYPED_TEST(FieldTest, InPlaceVectorArithmetic) {
  using F = TypeParam;
  std::vector<F> a;
  std::vector<F> b;
  for (int i = 0; i < 50; ++i) {
    a.push_back(FromBig<F>(this->RandomBelowModulus()));
    b.push_back(FromBig<F>(this->RandomBelowModulus()));
  }
  std::vector<F> sum = a;
  AddInPlace<F>(sum, b);
  std::vector<F> difference = a;
  SubInPlace<F>(difference, b);
  std::vector<F> negated = a;
  NegateInPlace<F>(negated);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(sum[i], a[i] + b[i]);
    EXPECT_EQ(difference[i], a[i] - b[i]);
    EXPECT_EQ(negated[i], -a[i]);
  }
}

TEST(Field64Test, Generator) {
  // The draft's generator is 7^(2^32 - 1); it has order exactly 2^32.
  Field64 generator = Field64::FromUint64(Field64::kGenerator);
  EXPECT_EQ(generator, Field64::FromUint64(7).Pow(0xffffffffULL));
  EXPECT_EQ(Field64::kGenOrder, uint64_t{1} << 32);
  EXPECT_EQ(generator.Pow(uint64_t{1} << 32), Field64::One());
  EXPECT_NE(generator.Pow(uint64_t{1} << 31), Field64::One());
}

TEST(Field128Test, Generator) {
  // The draft's generator is 7^4611686018427387897; it has order exactly 2^66.
  Field128 generator = Field128::Generator();
  EXPECT_EQ(generator, Field128::FromUint64(7).Pow(4611686018427387897ULL));
  EXPECT_EQ(generator.high64(), 0x6d278fbf4f60228bULL);
  EXPECT_EQ(generator.low64(), 0x1f9b2759c5109f06ULL);
  EXPECT_EQ(Field128::kGenOrderLog2, 66);

  // generator^(2^k) by k squarings.
  auto power_of_two_power = [&](int k) {
    Field128 result = generator;
    for (int i = 0; i < k; ++i) result *= result;
    return result;
  };
  EXPECT_EQ(power_of_two_power(66), Field128::One());
  EXPECT_NE(power_of_two_power(65), Field128::One());
  // p - 1 = 2^66 * odd, so -1 is the only element of order 2.
  EXPECT_EQ(power_of_two_power(65), -Field128::One());
}

TEST(Field128Test, RootsOfUnity) {
  for (int log2_n = 0; log2_n <= Field128::kGenOrderLog2; ++log2_n) {
    Field128 root = Field128::RootOfUnityLog2(log2_n);
    // root^(2^log2_n) = 1, and root^(2^(log2_n - 1)) = -1 (order exactly 2^log2_n).
    Field128 power = root;
    for (int i = 0; i + 1 < log2_n; ++i) power *= power;
    if (log2_n == 0) {
      EXPECT_EQ(root, Field128::One());
    } else {
      EXPECT_EQ(power, -Field128::One()) << log2_n;
      EXPECT_EQ(power * power, Field128::One()) << log2_n;
    }
    if (log2_n < 64) {
      EXPECT_EQ(Field128::NthRootOfUnity(uint64_t{1} << log2_n), root);
    }
  }
  EXPECT_EQ(Field128::RootOfUnityLog2(66), Field128::Generator());
  EXPECT_EQ(Field128::NthRootOfUnity(1), Field128::One());
  EXPECT_EQ(Field128::NthRootOfUnity(2), -Field128::One());
  Field128 root8 = Field128::NthRootOfUnity(8);
  EXPECT_EQ(root8.Pow(8), Field128::One());
  EXPECT_NE(root8.Pow(4), Field128::One());
  EXPECT_EQ(root8 * root8, Field128::NthRootOfUnity(4));
  // The draft's root for n = 2^k is generator^(2^66 / n).
  EXPECT_EQ(Field128::NthRootOfUnity(uint64_t{1} << 60), Field128::Generator().Pow(64));
}

TEST(Field128Test, RootsOfUnityRejectBadArguments) {
  // Debug builds assert; release builds return zero, which is no root of
  // unity.
  Field128 root = Field128::One();
  EXPECT_DEBUG_DEATH(root = Field128::NthRootOfUnity(3), "");
  EXPECT_DEBUG_DEATH(root = Field128::NthRootOfUnity(0), "");
  EXPECT_DEBUG_DEATH(root = Field128::RootOfUnityLog2(67), "");
  EXPECT_DEBUG_DEATH(root = Field128::RootOfUnityLog2(-1), "");
#ifdef NDEBUG
  EXPECT_EQ(root, Field128::Zero());
  EXPECT_EQ(Field128::NthRootOfUnity(3), Field128::Zero());
  EXPECT_EQ(Field128::NthRootOfUnity(0), Field128::Zero());
  EXPECT_EQ(Field128::RootOfUnityLog2(67), Field128::Zero());
#endif
}

TEST(Field128Test, LimbsAndWideValues) {
  std::mt19937_64 rng(128);
  BigInt p = Traits<Field128>::Modulus();
  for (int i = 0; i < 1000; ++i) {
    BigInt value;
    value.limbs[0] = rng();
    value.limbs[1] = rng();
    Field128::Uint128 wide =
        (static_cast<Field128::Uint128>(value.limbs[1]) << 64) | value.limbs[0];
    Field128 element = Field128::FromUint128(wide);
    BigInt reduced = Reduce(value, p);
    ASSERT_EQ(ToBig(element), reduced);
    ASSERT_EQ(element.low64(), reduced.limbs[0]);
    ASSERT_EQ(element.high64(), reduced.limbs[1]);
    ASSERT_EQ(element.value(),
              (static_cast<Field128::Uint128>(reduced.limbs[1]) << 64) | reduced.limbs[0]);
  }
  EXPECT_EQ(Field128::FromUint128(Field128::kModulus), Field128::Zero());
  // 2^128 - 1 - p = 28 * 2^64 - 2.
  EXPECT_EQ(Field128::FromUint128(~Field128::Uint128{0}).value(),
            (Field128::Uint128{28} << 64) - 2);
}

TEST(Field128Test, ConstantEvaluationMatchesRunTime) {
  // The carry helpers have a separate path for constant evaluation; the
  // results must not depend on which one ran.
  constexpr Field128 kA = Field128::FromUint128(Field128::kModulus - 1);
  constexpr Field128 kB = Field128::Generator();
  constexpr Field128 kProduct = kA * kB;
  constexpr Field128 kSquare = kB * kB;
  constexpr Field128 kSum = kA + kB;
  constexpr Field128 kDifference = kA - kB;
  constexpr Field128 kInverse = kB.Inverse();
  constexpr Field128::Uint128 kValue = kSquare.value();

  // Volatile reads keep the compiler from folding the run-time side.
  volatile uint64_t a_low = 0;
  volatile uint64_t a_high = 0xffffffffffffffe4ULL;
  volatile uint64_t b_low = 0x1f9b2759c5109f06ULL;
  volatile uint64_t b_high = 0x6d278fbf4f60228bULL;
  Field128 a = Field128::FromUint128((static_cast<Field128::Uint128>(a_high) << 64) | a_low);
  Field128 b = Field128::FromUint128((static_cast<Field128::Uint128>(b_high) << 64) | b_low);
  EXPECT_EQ(a, -Field128::One());
  EXPECT_EQ(a * b, kProduct);
  EXPECT_EQ(b * b, kSquare);
  EXPECT_EQ(a + b, kSum);
  EXPECT_EQ(a - b, kDifference);
  EXPECT_EQ(b.Inverse(), kInverse);
  EXPECT_EQ((b * b).value(), kValue);
}

// Elements for the lazy-reduction tests: edge values (0, 1, p - 1, values
// around 2^64 and 2^127, and the element whose Montgomery form is p - 1,
// which makes the largest word products), then random ones.
std::vector<Field128> Field128TestElements(std::mt19937_64& rng, size_t count) {
  const Field128::Uint128 p = Field128::kModulus;
  const Field128::Uint128 edges[] = {0,
                                     1,
                                     2,
                                     p - 1,
                                     p - 2,
                                     (p - 1) / 2,
                                     (p + 1) / 2,
                                     Field128::Uint128{1} << 64,
                                     (Field128::Uint128{1} << 64) - 1,
                                     Field128::Uint128{1} << 127,
                                     (Field128::Uint128{28} << 64) - 1,
                                     (Field128::Uint128{0xffffffffffffffe4ULL} << 64)};
  std::vector<Field128> elements;
  for (Field128::Uint128 edge : edges) elements.push_back(Field128::FromUint128(edge));
  // 2^128 mod p is the Montgomery form of 1, so -(2^128)^-1 has form p - 1.
  const Field128 r = Field128::FromUint128((Field128::Uint128{28} << 64) - 1);
  elements.push_back(-r.Inverse());
  while (elements.size() < count) {
    const Field128::Uint128 value = (static_cast<Field128::Uint128>(rng()) << 64) | rng();
    elements.push_back(Field128::FromUint128(value));
  }
  return elements;
}

TEST(Field128Test, ConversionIntoMontgomeryFormRoundTrips) {
  // FromUint128 converts with products by small constants; value() leaves
  // the form with a full Montgomery multiplication, an independent path.
  std::mt19937_64 rng(1281);
  const BigInt p = Traits<Field128>::Modulus();
  std::vector<Field128::Uint128> values = {0,
                                           1,
                                           Field128::kModulus - 1,
                                           Field128::kModulus - 2,
                                           Field128::kModulus,
                                           ~Field128::Uint128{0}};
  for (uint64_t high :
       {uint64_t{0}, uint64_t{1}, uint64_t{27}, uint64_t{28}, uint64_t{0xffffffffffffffe3ULL},
        uint64_t{0xffffffffffffffe4ULL}, ~uint64_t{0}}) {
    for (uint64_t low : {uint64_t{0}, uint64_t{1}, uint64_t{783}, ~uint64_t{1}, ~uint64_t{0}}) {
      values.push_back((static_cast<Field128::Uint128>(high) << 64) | low);
    }
  }
  for (int i = 0; i < 100000; ++i) {
    values.push_back((static_cast<Field128::Uint128>(rng()) << 64) | rng());
    values.push_back((static_cast<Field128::Uint128>(rng() % 1024) << 64) | rng());
  }
  for (Field128::Uint128 value : values) {
    BigInt big;
    big.limbs[0] = static_cast<uint64_t>(value);
    big.limbs[1] = static_cast<uint64_t>(value >> 64);
    const BigInt reduced = Reduce(big, p);
    const Field128 element = Field128::FromUint128(value);
    ASSERT_EQ(element.low64(), reduced.limbs[0]);
    ASSERT_EQ(element.high64(), reduced.limbs[1]);
    // Multiplication by one goes through the full Montgomery product.
    ASSERT_EQ(element * Field128::One(), element);
    if (value < Field128::kModulus) {
      ASSERT_EQ(Field128::FromUint128BelowModulus(value), element);
    }
  }
}

TEST(Field128Test, ConversionAtRunTimeMatchesConstantEvaluation) {
  // Constant evaluation takes the portable conversion, run time the x86-64
  // asm one where there is one: they must agree, edge cases included.
  static constexpr Field128::Uint128 kValues[] = {
      0,
      1,
      Field128::kModulus - 1,
      Field128::kModulus - 2,
      (Field128::Uint128{27} << 64) | ~uint64_t{0},
      (Field128::Uint128{28} << 64) - 1,
      (Field128::Uint128{0xffffffffffffffe3ULL} << 64) | ~uint64_t{0},
      (Field128::Uint128{0x0123456789abcdefULL} << 64) | 0xfedcba9876543210ULL,
      Field128::Uint128{783} << 64,
      ~uint64_t{0}};
  static constexpr std::array<Field128, std::size(kValues)> kConverted = [] {
    std::array<Field128, std::size(kValues)> converted{};
    for (size_t i = 0; i < std::size(kValues); ++i) {
      converted[i] = Field128::FromUint128BelowModulus(kValues[i]);
    }
    return converted;
  }();
  for (size_t i = 0; i < std::size(kValues); ++i) {
    // A volatile copy keeps the compiler from folding the run-time call.
    volatile Field128::Uint128 opaque = kValues[i];
    EXPECT_EQ(Field128::FromUint128BelowModulus(opaque), kConverted[i]) << i;
  }
}

TEST(Field128Test, ProductSumMatchesReducedArithmetic) {
  std::mt19937_64 rng(1282);
  const std::vector<Field128> elements = Field128TestElements(rng, 400);
  for (size_t terms : {size_t{0}, size_t{1}, size_t{2}, size_t{3}, size_t{33}, size_t{1000}}) {
    for (int trial = 0; trial < 50; ++trial) {
      Field128::ProductSum lazy;
      Field128 reduced = Field128::Zero();
      for (size_t i = 0; i < terms; ++i) {
        const Field128 a = elements[rng() % elements.size()];
        const Field128 b = elements[rng() % elements.size()];
        lazy.Add(a, b);
        reduced += a * b;
      }
      ASSERT_EQ(lazy.Reduce(), reduced) << terms << " terms";
    }
  }
  // Every pair of edge values.
  for (size_t i = 0; i < 13; ++i) {
    for (size_t j = 0; j < 13; ++j) {
      Field128::ProductSum lazy;
      lazy.Add(elements[i], elements[j]);
      ASSERT_EQ(lazy.Reduce(), elements[i] * elements[j]);
    }
  }
}

TEST(Field128Test, ProductSumOfManyLargestProducts) {
  // The element whose Montgomery form is p - 1 makes the largest products;
  // 2^22 of them carry far into the top limb.
  const Field128 r = Field128::FromUint128((Field128::Uint128{28} << 64) - 1);
  const Field128 largest = -r.Inverse();
  Field128::ProductSum lazy;
  size_t terms = 0;
  for (size_t target : {size_t{1}, size_t{2}, size_t{1000}, size_t{1} << 16, size_t{1} << 22}) {
    for (; terms < target; ++terms) lazy.Add(largest, largest);
    ASSERT_EQ(lazy.Reduce(), largest * largest * Field128::FromUint64(terms)) << terms;
  }
  constexpr Field128 kConstant = [] {
    Field128::ProductSum sum;
    sum.Add(Field128::Generator(), Field128::Generator());
    sum.Add(Field128::FromUint64(3), -Field128::One());
    return sum.Reduce();
  }();
  EXPECT_EQ(kConstant, Field128::Generator() * Field128::Generator() - Field128::FromUint64(3));
}

TEST(Field128Test, SumMatchesReducedAdditions) {
  std::mt19937_64 rng(1283);
  const std::vector<Field128> elements = Field128TestElements(rng, 2000);
  for (size_t length : {size_t{0}, size_t{1}, size_t{2}, size_t{13}, size_t{2000}}) {
    const std::span<const Field128> values(elements.data(), length);
    Field128 reduced = Field128::Zero();
    for (const Field128& value : values) reduced += value;
    ASSERT_EQ(Field128::Sum(values), reduced) << length;
  }
  const std::vector<Field128> largest(1 << 20, -Field128::One());
  EXPECT_EQ(Field128::Sum(largest), -Field128::FromUint64(1 << 20));
}

TEST(Field255Test, Low64AndLimbs) {
  std::mt19937_64 rng(255);
  for (int i = 0; i < 100; ++i) {
    std::array<uint8_t, 32> bytes;
    for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(rng());
    bytes[31] &= 0x3f;
    Result<Field255> element = Field255::Decode(bytes);
    ASSERT_TRUE(element.has_value());
    BigInt value = BigInt::FromBytes(bytes);
    EXPECT_EQ(element->low64(), value.limbs[0]);
    for (int limb = 0; limb < 4; ++limb) EXPECT_EQ(element->limbs()[limb], value.limbs[limb]);
  }
  // -1 = p - 1 = 2^255 - 20.
  EXPECT_EQ((-Field255::One()).low64(), 0xffffffffffffffecULL);
  EXPECT_EQ((-Field255::One()).limbs()[3], 0x7fffffffffffffffULL);
}

}  // namespace
}  // namespace canopy::crypto
