// Field arithmetic added for speed, against the plain operations: Field64's
// unreduced accumulator (and its partial products) and vector addition, and Field255's
// add-with-carry path against its portable loops (which constant evaluation runs).
#include "crypto/field255.h"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <span>
#include <vector>

#include "crypto/field64.h"

namespace canopy::crypto {
namespace {

// Hides a value from the optimizer (it may have been changed in memory).
template <typename T>
void HideFromOptimizer(T& value) {
  __asm__ __volatile__("" : : "r"(&value) : "memory");
}

Field64 RandomField64(std::mt19937_64& random) {
  // Mostly uniform, with values near p and near 0 mixed in, where carries
  // and reductions are most likely to go wrong.
  switch (random() % 4) {
    case 0:
      return Field64::FromUint64(Field64::kModulus - 1 - random() % 4);
    case 1:
      return Field64::FromUint64(random() % 4);
    default:
      return Field64::FromUint64(random());
  }
}

TEST(Field64Accumulator, EqualsReducedSums) {
  std::mt19937_64 random(1);
  for (size_t terms : {0, 1, 2, 3, 17, 256, 5000}) {
    Field64::Accumulator accumulator;
    Field64 expected = Field64::Zero();
    for (size_t i = 0; i < terms; ++i) {
      const Field64 a = RandomField64(random), b = RandomField64(random);
      if (i % 3 == 0) {
        accumulator.Add(a);
        expected += a;
      } else {
        accumulator.AddProduct(a, b);
        expected += a * b;
      }
    }
    EXPECT_EQ(accumulator.Reduce(), expected) << terms << " terms";
  }
}

TEST(Field64Accumulator, LargestTermsCarryIntoTheTopWord) {
  // (p - 1)^2 many times: the 128-bit low part overflows again and again.
  const Field64 big = Field64::FromUint64(Field64::kModulus - 1);
  Field64::Accumulator accumulator;
  Field64 expected = Field64::Zero();
  for (int i = 0; i < 100000; ++i) {
    accumulator.AddProduct(big, big);
    expected += big * big;
  }
  EXPECT_EQ(accumulator.Reduce(), expected);
}

// The exact a * b mod p, by 128-bit division.
uint64_t ExactProduct(Field64 a, Field64 b) {
  return static_cast<uint64_t>(static_cast<unsigned __int128>(a.value()) * b.value() %
                               Field64::kModulus);
}

TEST(Field64Accumulator, PartialProductsAreCongruent) {
  std::mt19937_64 random(3);
  for (int i = 0; i < 100000; ++i) {
    const Field64 a = RandomField64(random), b = RandomField64(random);
    EXPECT_EQ(Field64::Accumulator::PartialProduct(a, b) % Field64::kModulus, ExactProduct(a, b))
        << a.value() << " * " << b.value();
  }
}

TEST(Field64Accumulator, PartialProductAtOrAboveTheModulusCountsModP) {
  // 2^32 * (2^33 - 1) = 2^65 - 2^32: the partial reduction leaves 2^64 - 1,
  // which is p + 2^32 - 2 (a word that random factors hit with probability
  // about 2^-32). The sums must count it as 2^32 - 2.
  const Field64 a = Field64::FromUint64(uint64_t{1} << 32);
  const Field64 b = Field64::FromUint64((uint64_t{1} << 33) - 1);
  const uint64_t word = Field64::Accumulator::PartialProduct(a, b);
  ASSERT_GE(word, Field64::kModulus);  // The case this test is for.
  EXPECT_EQ(word % Field64::kModulus, ExactProduct(a, b));

  Field64::Accumulator words, products;
  words.AddWord(word);
  words.AddWord(word);
  products.AddProductWithWord(b, word);
  EXPECT_EQ(words.Reduce(), a * b + a * b);
  EXPECT_EQ(products.Reduce(), b * (a * b));
}

TEST(Field64Accumulator, LargestWordsCarryIntoTheTopWord) {
  // (p - 1) * (2^64 - 1), the largest product AddProductWithWord can see,
  // many times: the low 128 bits overflow again and again. And as many
  // words of 2^64 - 1, the largest AddWord can see.
  const Field64 big = Field64::FromUint64(Field64::kModulus - 1);
  const uint64_t word = ~uint64_t{0};  // 2^64 - 1 = p + 2^32 - 2.
  const Field64 word_mod_p = Field64::FromUint64(word);
  Field64::Accumulator products, words;
  Field64 expected_products = Field64::Zero(), expected_words = Field64::Zero();
  for (int i = 0; i < 100000; ++i) {
    products.AddProductWithWord(big, word);
    words.AddWord(word);
    expected_products += big * word_mod_p;
    expected_words += word_mod_p;
  }
  EXPECT_EQ(products.Reduce(), expected_products);
  EXPECT_EQ(words.Reduce(), expected_words);
}

TEST(Field64Accumulator, SketchSumsEqualReducedSums) {
  // The sums of Poplar1's sketch, (r y, r^2 y, r k), as its inner levels
  // compute them, against the reduced field operations.
  std::mt19937_64 random(4);
  for (size_t terms : {0, 1, 2, 7, 184, 5000}) {
    Field64::Accumulator ry, rry, rk;
    Field64 expected_ry = Field64::Zero(), expected_rry = Field64::Zero(),
            expected_rk = Field64::Zero();
    for (size_t i = 0; i < terms; ++i) {
      const Field64 r = RandomField64(random), y = RandomField64(random), k = RandomField64(random);
      const uint64_t r_y = Field64::Accumulator::PartialProduct(r, y);
      ry.AddWord(r_y);
      rry.AddProductWithWord(r, r_y);
      rk.AddProduct(r, k);
      expected_ry += r * y;
      expected_rry += r * (r * y);
      expected_rk += r * k;
    }
    EXPECT_EQ(ry.Reduce(), expected_ry) << terms << " terms";
    EXPECT_EQ(rry.Reduce(), expected_rry) << terms << " terms";
    EXPECT_EQ(rk.Reduce(), expected_rk) << terms << " terms";
  }
}

TEST(Field64Vectors, AddEqualsModularSums) {
  std::mt19937_64 random(2);
  // Lengths around the four-lane step, and an output share's length.
  for (size_t length : {0, 1, 3, 4, 5, 7, 8, 9, 13, 200}) {
    std::vector<Field64> sum(length), addend(length);
    for (Field64& element : sum) element = RandomField64(random);
    for (Field64& element : addend) element = RandomField64(random);
    std::vector<Field64> vectorized = sum, portable = sum;
    AddField64Vectors(vectorized, addend);
    AddField64VectorsPortable(portable, addend);
    for (size_t i = 0; i < length; ++i) {
      const unsigned __int128 exact =
          static_cast<unsigned __int128>(sum[i].value()) + addend[i].value();
      const uint64_t expected = static_cast<uint64_t>(exact % Field64::kModulus);
      EXPECT_EQ(vectorized[i].value(), expected) << "length " << length << ", element " << i;
      EXPECT_EQ(portable[i].value(), expected) << "length " << length << ", element " << i;
    }
  }
}

TEST(Field64Vectors, AddStopsAtTheSumsLength) {
  // The sum's length decides: elements past it are left alone.
  std::vector<Field64> sum(6, Field64::One());
  const std::vector<Field64> addend(10, Field64::FromUint64(Field64::kModulus - 1));
  AddField64Vectors(std::span<Field64>(sum).first(5), addend);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(sum[i], Field64::Zero()) << i;
  EXPECT_EQ(sum[5], Field64::One());
}

TEST(Field64Vectors, AddSelectedPairsEqualsTheScalarDefinition) {
  std::mt19937_64 random(5);
  // Pair counts around the two-pair step; zero appears as a value and as a
  // sum (negating zero must give zero).
  for (size_t pairs : {0, 1, 2, 3, 4, 5, 8, 9, 96}) {
    std::vector<Field64> values(2 * pairs);
    std::vector<uint8_t> bits(pairs);
    for (Field64& element : values) element = RandomField64(random);
    for (uint8_t& bit : bits) bit = static_cast<uint8_t>(random() & 1);
    const std::array<Field64, 2> addend = {RandomField64(random), RandomField64(random)};
    if (pairs >= 2) {
      values[0] = Field64::Zero();  // Stays zero unless its bit adds.
      values[2] = -addend[0];       // Sums to zero when its bit adds.
      bits[0] = 0;
      bits[1] = 1;
    }
    for (bool negate : {false, true}) {
      std::vector<Field64> vectorized = values, portable = values;
      AddSelectedPairs(vectorized, bits, addend, negate);
      AddSelectedPairsPortable(portable, bits, addend, negate);
      for (size_t i = 0; i < 2 * pairs; ++i) {
        const unsigned __int128 sum = static_cast<unsigned __int128>(values[i].value()) +
                                      (bits[i / 2] ? addend[i % 2].value() : 0);
        uint64_t expected = static_cast<uint64_t>(sum % Field64::kModulus);
        if (negate && expected != 0) expected = Field64::kModulus - expected;
        EXPECT_EQ(vectorized[i].value(), expected)
            << pairs << " pairs, element " << i << ", negate " << negate;
        EXPECT_EQ(portable[i].value(), expected)
            << pairs << " pairs, element " << i << ", negate " << negate;
      }
    }
  }
}

TEST(Field64Vectors, AddSelectedPairsStopsAtTheBitsLength) {
  std::vector<Field64> values(6, Field64::One());
  const std::vector<uint8_t> bits = {1, 1, 1};
  AddSelectedPairs(values, std::span<const uint8_t>(bits).first(2),
                   {Field64::One(), Field64::One()}, false);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(values[i], Field64::FromUint64(2)) << i;
  EXPECT_EQ(values[4], Field64::One());
  EXPECT_EQ(values[5], Field64::One());
}

TEST(Field64, MaskedIsMultiplicationByABit) {
  std::mt19937_64 random(3);
  for (int i = 0; i < 100; ++i) {
    const Field64 a = RandomField64(random);
    EXPECT_EQ(a.Masked(~uint64_t{0}), a);
    EXPECT_EQ(a.Masked(0), Field64::Zero());
  }
}

TEST(Field64, SamplingAndDecodingReadLittleEndian) {
  const uint8_t bytes[8] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
  Field64 sampled;
  ASSERT_TRUE(Field64::FromSampledBytes(bytes, &sampled));
  EXPECT_EQ(sampled.value(), 0x0807060504030201ULL);
  EXPECT_EQ(Field64::Decode(bytes)->value(), 0x0807060504030201ULL);
  const uint8_t too_big[8] = {0x01, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};  // p itself.
  EXPECT_FALSE(Field64::FromSampledBytes(too_big, &sampled));
}

TEST(Field255, MaskedIsMultiplicationByABit) {
  std::mt19937_64 random(4);
  for (int i = 0; i < 100; ++i) {
    uint8_t bytes[Field255::kEncodedSize];
    for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(random());
    Field255 a;
    if (!Field255::FromSampledBytes(bytes, &a)) continue;
    EXPECT_EQ(a.Masked(~uint64_t{0}), a * Field255::One());
    EXPECT_EQ(a.Masked(0), a * Field255::Zero());
  }
}

// Constant evaluation runs the portable loops; at run time x86-64 takes the
// add-with-carry path (field_test.cc checks that one against a big-integer
// reference). The two must agree, on values spread over the whole field.
TEST(Field255, ConstantEvaluationMatchesRunTime) {
  struct Case {
    Field255 a, b, sum, difference, product;
  };
  constexpr std::array<Case, 24> kCases = [] {
    std::array<Case, 24> cases{};
    Field255 a = -Field255::FromUint64(3);  // p - 3: every limb full.
    Field255 b = -Field255::FromUint64(0x1234567890abcdefULL);
    for (Case& c : cases) {
      c = {a, b, a + b, a - b, a * b};
      const Field255 next_a = a * a + b;
      b = b * -next_a - Field255::FromUint64(19);
      a = next_a;
    }
    return cases;
  }();
  for (const Case& c : kCases) {
    // Copies through memory, so the compiler cannot fold the run-time
    // arithmetic back into constants.
    Field255 a = c.a, b = c.b;
    HideFromOptimizer(a);
    HideFromOptimizer(b);
    EXPECT_EQ(a + b, c.sum);
    EXPECT_EQ(a - b, c.difference);
    EXPECT_EQ(a * b, c.product);
  }
  // One inverse (about 500 products: constant evaluation has an operation
  // budget).
  constexpr Field255 kInverse = kCases[5].a.Inverse();
  Field255 a = kCases[5].a;
  HideFromOptimizer(a);
  EXPECT_EQ(a.Inverse(), kInverse);
  EXPECT_EQ(a * kInverse, Field255::One());
}

}  // namespace
}  // namespace canopy::crypto
