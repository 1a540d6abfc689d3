// The VDAF draft-20 XOF known answers (XofTurboShake128.json,
// XofFixedKeyAes128.json), the streaming behaviour of both XOFs, and the
// 4-way XofTurboShake128x4 against four single streams.
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

// Each lane of XofTurboShake128x4 is the XofTurboShake128 of its seed, dst
// and binder, for 1 to 4 lanes in use, with the AVX2 and the portable
// permutation, binders in pieces of any size and reads of any size.
TEST(XofTurboShake128x4, LanesEqualSingleStreams) {
  std::mt19937 random(11);
  auto bytes = [&random](size_t size) {
    std::vector<uint8_t> out(size);
    for (uint8_t& byte : out) byte = static_cast<uint8_t>(random());
    return out;
  };
  for (KeccakX4Implementation implementation :
       {KeccakX4Implementation::kAuto, KeccakX4Implementation::kPortable}) {
    for (size_t lanes = 1; lanes <= 4; ++lanes) {
      for (size_t binder_size : {0, 1, 7, 8, 100, 167, 168, 169, 500, 2000}) {
        const std::vector<uint8_t> dst = bytes(random() % 40);
        const size_t seed_size = random() % 2 == 0 ? 32 : 16;
        std::vector<std::vector<uint8_t>> seeds, binders;
        XofTurboShake128x4::Lanes<const uint8_t> seed_spans{};
        for (size_t k = 0; k < lanes; ++k) {
          seeds.push_back(bytes(seed_size));
          binders.push_back(bytes(binder_size));
        }
        for (size_t k = 0; k < lanes; ++k) seed_spans[k] = seeds[k];
        XofTurboShake128x4 xof(lanes, seed_spans, dst, implementation);
        // The binder in random pieces.
        for (size_t done = 0; done < binder_size;) {
          const size_t piece = std::min<size_t>(binder_size - done, 1 + random() % 300);
          XofTurboShake128x4::Lanes<const uint8_t> pieces{};
          for (size_t k = 0; k < lanes; ++k) {
            pieces[k] = std::span<const uint8_t>(binders[k]).subspan(done, piece);
          }
          xof.AbsorbBinder(pieces);
          done += piece;
        }
        const size_t length = 1200;
        std::vector<std::vector<uint8_t>> streams(lanes, std::vector<uint8_t>(length));
        for (size_t done = 0; done < length;) {
          const size_t piece = std::min<size_t>(length - done, random() % 400);
          XofTurboShake128x4::Lanes<uint8_t> out{};
          for (size_t k = 0; k < lanes; ++k) {
            out[k] = std::span<uint8_t>(streams[k]).subspan(done, piece);
          }
          xof.Next(out);
          done += piece;
        }
        for (size_t k = 0; k < lanes; ++k) {
          std::vector<uint8_t> expected(length);
          XofTurboShake128(seeds[k], dst, binders[k]).Next(expected);
          EXPECT_EQ(streams[k], expected)
              << lanes << " lanes, binder of " << binder_size << " bytes, lane " << k;
        }
      }
    }
  }
}

// SampleLanes reads each lane's stream as NextVec does, also when the lanes
// reject different draws and so fall out of step: here a draw is rejected
// when its first byte is odd, so about half of them.
TEST(XofTurboShake128x4, SampleLanesRejectsLaneByLane) {
  const std::vector<uint8_t> dst = {1, 2, 3};
  std::vector<std::vector<uint8_t>> seeds;
  XofTurboShake128x4::Lanes<const uint8_t> seed_spans{};
  for (size_t k = 0; k < 4; ++k) seeds.push_back(std::vector<uint8_t>(32, static_cast<uint8_t>(k)));
  for (size_t k = 0; k < 4; ++k) seed_spans[k] = seeds[k];
  const std::array<size_t, 4> counts = {300, 300, 300, 300};
  XofTurboShake128x4 xof(4, seed_spans, dst);
  std::vector<std::vector<uint64_t>> sampled(4, std::vector<uint64_t>(300));
  size_t rounds = 0;
  xof.SampleLanes<8>(
      counts,
      [&](size_t k, size_t index, const uint8_t* draw) {
        if (draw[0] % 2 == 1) return false;
        uint64_t value = 0;
        for (int i = 0; i < 8; ++i) value |= static_cast<uint64_t>(draw[i]) << (8 * i);
        sampled[k][index] = value;
        return true;
      },
      [&](const std::array<size_t, 4>& accepted) {
        ++rounds;
        for (size_t k = 0; k < 4; ++k) EXPECT_LE(accepted[k], counts[k]);
      });
  EXPECT_GT(rounds, 1u);
  for (size_t k = 0; k < 4; ++k) {
    XofTurboShake128 raw(seeds[k], dst, std::span<const uint8_t>());
    for (size_t produced = 0; produced < counts[k];) {
      uint8_t draw[8];
      raw.Next(draw);
      if (draw[0] % 2 == 1) continue;
      uint64_t value = 0;
      for (int i = 0; i < 8; ++i) value |= static_cast<uint64_t>(draw[i]) << (8 * i);
      ASSERT_EQ(sampled[k][produced], value) << "lane " << k << ", element " << produced;
      ++produced;
    }
  }
}

}  // namespace
}  // namespace canopy::crypto
