// The VDAF draft-20 XOF known answers (XofTurboShake128.json,
// XofFixedKeyAes128.json) and the streaming behaviour of both XOFs.
#include "crypto/xof.h"

#include <gtest/gtest.h>

#include <random>

#include "crypto/field128.h"
#include "crypto/field64.h"
#include "tests/testing/vectors.h"

namespace canopy::crypto {
namespace {

using ::canopy::testing::BytesToHex;
using ::canopy::testing::JsonHex;
using ::canopy::testing::JsonString;
using ::canopy::testing::JsonUint;

TEST(XofTurboShake128, OfficialVector) {
  CANOPY_LOAD_VECTOR(vector, "vdaf/XofTurboShake128.json");
  std::vector<uint8_t> seed = JsonHex(vector, "seed");
  std::vector<uint8_t> dst = JsonHex(vector, "dst");
  std::vector<uint8_t> binder = JsonHex(vector, "binder");
  ASSERT_EQ(seed.size(), XofTurboShake128::kSeedSize);
  EXPECT_EQ(BytesToHex(XofTurboShake128::DeriveSeed(seed, dst, binder)),
            JsonString(vector, "derived_seed"));
  std::vector<Field128> expanded =
      XofTurboShake128::ExpandIntoVec<Field128>(seed, dst, binder, JsonUint(vector, "length"));
  EXPECT_EQ(BytesToHex(EncodeVec<Field128>(expanded)), JsonString(vector, "expanded_vec_field128"));
}

TEST(XofFixedKeyAes128, OfficialVector) {
  CANOPY_LOAD_VECTOR(vector, "vdaf/XofFixedKeyAes128.json");
  std::vector<uint8_t> seed_bytes = JsonHex(vector, "seed");
  std::vector<uint8_t> dst = JsonHex(vector, "dst");
  std::vector<uint8_t> binder = JsonHex(vector, "binder");
  ASSERT_EQ(seed_bytes.size(), XofFixedKeyAes128::kSeedSize);
  std::span<const uint8_t, 16> seed(seed_bytes.data(), 16);
  EXPECT_EQ(BytesToHex(XofFixedKeyAes128::DeriveSeed(seed, dst, binder)),
            JsonString(vector, "derived_seed"));
  std::vector<Field128> expanded =
      XofFixedKeyAes128::ExpandIntoVec<Field128>(seed, dst, binder, JsonUint(vector, "length"));
  EXPECT_EQ(BytesToHex(EncodeVec<Field128>(expanded)), JsonString(vector, "expanded_vec_field128"));

  // The same stream through a cached key schedule.
  FixedKeyAes128 cipher = XofFixedKeyAes128::DeriveFixedKey(dst, binder);
  XofFixedKeyAes128 cached(cipher, seed);
  std::vector<Field128> again = cached.NextVec<Field128>(JsonUint(vector, "length"));
  EXPECT_EQ(EncodeVec<Field128>(again), EncodeVec<Field128>(expanded));
}

// Reading a stream in pieces of any size gives the same bytes as one read.
template <typename MakeXof>
void ExpectPiecewiseReadsAgree(MakeXof make_xof) {
  std::vector<uint8_t> whole(1000);
  make_xof().Next(whole);
  std::mt19937 random(3);
  for (int trial = 0; trial < 20; ++trial) {
    auto xof = make_xof();
    std::vector<uint8_t> pieces;
    while (pieces.size() < whole.size()) {
      size_t take = std::min<size_t>(random() % 40, whole.size() - pieces.size());
      std::vector<uint8_t> piece(take);
      xof.Next(piece);
      pieces.insert(pieces.end(), piece.begin(), piece.end());
    }
    EXPECT_EQ(pieces, whole);
  }
}

TEST(XofTurboShake128, PiecewiseReadsAgree) {
  std::vector<uint8_t> seed(32, 7), dst = {1, 2, 3}, binder = {4, 5};
  ExpectPiecewiseReadsAgree([&] { return XofTurboShake128(seed, dst, binder); });
}

TEST(XofTurboShake128, BinderPartsEqualConcatenation) {
  std::vector<uint8_t> seed(16, 9), dst = {1, 2, 3}, first = {1}, second = {7, 8, 9};
  std::vector<uint8_t> joined = {1, 7, 8, 9};
  std::vector<uint8_t> a(64), b(64);
  XofTurboShake128(seed, dst, joined).Next(a);
  XofTurboShake128(seed, dst, {std::span<const uint8_t>(first), second}).Next(b);
  EXPECT_EQ(a, b);
}

TEST(XofFixedKeyAes128, PiecewiseReadsAgree) {
  std::array<uint8_t, 16> seed{};
  seed[3] = 42;
  std::vector<uint8_t> dst = {1, 2, 3}, binder = {4, 5};
  FixedKeyAes128 cipher = XofFixedKeyAes128::DeriveFixedKey(dst, binder);
  // XofFixedKeyAes128 is not movable; guaranteed copy elision still lets the
  // lambda hand out fresh streams.
  ExpectPiecewiseReadsAgree([&] { return XofFixedKeyAes128(cipher, seed); });
}

// Rejection sampling: an 8-byte draw that is >= p must be skipped. Check that
// NextVec agrees with a hand-rolled reading of the raw stream.
TEST(XofTurboShake128, NextVecFollowsRejectionSampling) {
  std::vector<uint8_t> seed(32, 1), dst = {9}, binder;
  XofTurboShake128 raw(seed, dst, binder);
  XofTurboShake128 sampled(seed, dst, binder);
  std::vector<Field64> values = sampled.NextVec<Field64>(500);
  size_t produced = 0;
  while (produced < values.size()) {
    uint8_t bytes[8];
    raw.Next(bytes);
    uint64_t candidate = 0;
    for (int i = 0; i < 8; ++i) candidate |= static_cast<uint64_t>(bytes[i]) << (8 * i);
    if (candidate >= Field64::kModulus) continue;
    ASSERT_EQ(values[produced].value(), candidate);
    ++produced;
  }
}

}  // namespace
}  // namespace canopy::crypto
