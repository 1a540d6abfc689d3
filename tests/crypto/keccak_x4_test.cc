// The 4-way TurboSHAKE128 against the scalar one, instance by instance, on
// both the AVX2 and the portable permutation.
#include "crypto/keccak_x4.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "crypto/turboshake128.h"

namespace canopy::crypto {
namespace {

std::vector<uint8_t> RandomBytes(std::mt19937_64& random, size_t size) {
  std::vector<uint8_t> bytes(size);
  for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(random());
  return bytes;
}

class KeccakX4Test : public ::testing::TestWithParam<KeccakX4Implementation> {
 protected:
  void SetUp() override {
    if (GetParam() == KeccakX4Implementation::kAuto && !KeccakX4HasAvx2()) {
      GTEST_SKIP() << "no AVX2 on this CPU; the portable path is tested separately";
    }
  }
};

TEST_P(KeccakX4Test, PermutationMatchesScalarLaneByLane) {
  std::mt19937_64 random(1);
  for (int trial = 0; trial < 20; ++trial) {
    KeccakStateX4 state;
    for (auto& lane : state) {
      for (uint64_t& word : lane) word = random();
    }
    KeccakStateX4 expected = state;
    for (size_t k = 0; k < 4; ++k) {
      uint64_t lanes[25];
      for (size_t i = 0; i < 25; ++i) lanes[i] = expected[i][k];
      KeccakP1600Rounds12(lanes);
      for (size_t i = 0; i < 25; ++i) expected[i][k] = lanes[i];
    }
    KeccakP1600Rounds12x4(state, GetParam());
    EXPECT_EQ(state, expected);
  }
}

// Every input length from 0 to three blocks and more (so that padding lands
// everywhere in a block, and absorbing crosses block boundaries), with
// outputs of several lengths, squeezed in pieces.
TEST_P(KeccakX4Test, TurboShakeMatchesScalarOnManyLengths) {
  std::mt19937_64 random(2);
  for (size_t length = 0; length <= 3 * 168 + 9; ++length) {
    const uint8_t domain = static_cast<uint8_t>(1 + random() % 0x7f);
    std::vector<uint8_t> messages[4];
    for (auto& message : messages) message = RandomBytes(random, length);
    const size_t out_length = 1 + random() % 400;

    TurboShake128x4 hasher(domain, GetParam());
    // Absorb in two pieces of random split.
    const size_t split = length == 0 ? 0 : random() % (length + 1);
    std::array<std::span<const uint8_t>, 4> first, second;
    for (size_t k = 0; k < 4; ++k) {
      first[k] = std::span<const uint8_t>(messages[k]).first(split);
      second[k] = std::span<const uint8_t>(messages[k]).subspan(split);
    }
    hasher.Absorb(first);
    hasher.Absorb(second);
    std::vector<uint8_t> outputs[4];
    for (auto& output : outputs) output.resize(out_length);
    const size_t out_split = random() % (out_length + 1);
    std::array<std::span<uint8_t>, 4> out_first, out_second;
    for (size_t k = 0; k < 4; ++k) {
      out_first[k] = std::span<uint8_t>(outputs[k]).first(out_split);
      out_second[k] = std::span<uint8_t>(outputs[k]).subspan(out_split);
    }
    hasher.Squeeze(out_first);
    hasher.Squeeze(out_second);

    for (size_t k = 0; k < 4; ++k) {
      std::vector<uint8_t> expected(out_length);
      TurboShake128::Hash(messages[k], domain, expected);
      EXPECT_EQ(outputs[k], expected) << "length " << length << " instance " << k;
    }
  }
}

TEST_P(KeccakX4Test, CommonPrefixThenPerInstanceSuffix) {
  std::mt19937_64 random(3);
  for (size_t prefix_length : {0, 5, 61, 168, 200}) {
    const std::vector<uint8_t> prefix = RandomBytes(random, prefix_length);
    TurboShake128x4 common(0x01, GetParam());
    common.AbsorbAll(prefix);
    for (size_t suffix_length : {0, 1, 18, 107, 170}) {
      std::vector<uint8_t> suffixes[4];
      for (auto& suffix : suffixes) suffix = RandomBytes(random, suffix_length);
      TurboShake128x4 hasher = common;  // The prefix is absorbed once.
      hasher.Absorb({suffixes[0], suffixes[1], suffixes[2], suffixes[3]});
      std::vector<uint8_t> outputs[4];
      for (auto& output : outputs) output.resize(8 * 64);
      hasher.Squeeze({outputs[0], outputs[1], outputs[2], outputs[3]});
      for (size_t k = 0; k < 4; ++k) {
        TurboShake128 scalar(0x01);
        scalar.Absorb(prefix);
        scalar.Absorb(suffixes[k]);
        std::vector<uint8_t> expected(outputs[k].size());
        scalar.Squeeze(expected);
        EXPECT_EQ(outputs[k], expected);
      }
    }
  }
}

TEST_P(KeccakX4Test, UnequalLengthsAreRefused) {
  const std::vector<uint8_t> a(3, 1), b(4, 2);
  TurboShake128x4 hasher(0x01, GetParam());
  hasher.Absorb({a, a, b, a});  // Ignored.
  std::vector<uint8_t> outputs[4];
  for (auto& output : outputs) output.resize(32);
  hasher.Squeeze({outputs[0], outputs[1], outputs[2], outputs[3]});
  std::vector<uint8_t> expected(32);
  TurboShake128::Hash({}, 0x01, expected);
  for (const auto& output : outputs) EXPECT_EQ(output, expected);
}

INSTANTIATE_TEST_SUITE_P(BothPaths, KeccakX4Test,
                         ::testing::Values(KeccakX4Implementation::kAuto,
                                           KeccakX4Implementation::kPortable),
                         [](const auto& param_info) {
                           return param_info.param == KeccakX4Implementation::kAuto ? "Auto"
                                                                                    : "Portable";
                         });

}  // namespace
}  // namespace canopy::crypto
