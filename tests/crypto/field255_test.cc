// Field arithmetic added for speed: Field64's unreduced accumulator (and
// Field255's fast multiplication, where present) against the plain
// operations.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "crypto/field255.h"
#include "crypto/field64.h"

namespace canopy::crypto {
namespace {

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

}  // namespace
}  // namespace canopy::crypto
