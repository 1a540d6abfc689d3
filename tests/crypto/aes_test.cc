// Known answers for AES-128 (FIPS-197) and agreement of the AES-NI and
// portable paths on the fixed-key hash.
#include "crypto/aes.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "tests/testing/vectors.h"

namespace canopy::crypto {
namespace {

using ::canopy::testing::BytesToHex;
using ::canopy::testing::HexToBytes;

std::array<uint8_t, 16> Key(std::string_view hex) {
  std::vector<uint8_t> bytes = HexToBytes(hex);
  std::array<uint8_t, 16> key{};
  std::copy(bytes.begin(), bytes.end(), key.begin());
  return key;
}

class AesTest : public ::testing::TestWithParam<FixedKeyAes128::Implementation> {};

TEST_P(AesTest, Fips197AppendixC1) {
  FixedKeyAes128 aes(Key("000102030405060708090a0b0c0d0e0f"), GetParam());
  std::vector<uint8_t> block = HexToBytes("00112233445566778899aabbccddeeff");
  aes.EncryptBlocks(block.data(), block.data(), 1);
  EXPECT_EQ(BytesToHex(block), "69c4e0d86a7b0430d8cdb78070b4c55a");
}

TEST_P(AesTest, Sp80038aEcbVectors) {
  FixedKeyAes128 aes(Key("2b7e151628aed2a6abf7158809cf4f3c"), GetParam());
  std::vector<uint8_t> blocks = HexToBytes(
      "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
      "30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710");
  aes.EncryptBlocks(blocks.data(), blocks.data(), 4);
  EXPECT_EQ(BytesToHex(blocks),
            "3ad77bb40d7a3660a89ecaf32466ef97f5d3d58503b9699de785895a96fdbaaf"
            "43b1cd7f598ece23881b00e3ed0306887b0c785e27e8ad3f8223207104725dd4");
}

// sigma(lo || hi) = hi || (hi XOR lo); hash = AES(sigma) XOR sigma.
TEST_P(AesTest, HashMatchesDefinition) {
  FixedKeyAes128 aes(Key("0f0e0d0c0b0a09080706050403020100"), GetParam());
  std::mt19937_64 random(7);
  for (size_t count : {1, 3, 4, 7, 8, 9, 17, 64, 100}) {
    std::vector<uint8_t> in(16 * count);
    for (uint8_t& byte : in) byte = static_cast<uint8_t>(random());
    std::vector<uint8_t> expected(in.size());
    for (size_t b = 0; b < count; ++b) {
      uint8_t sigma[16];
      for (int i = 0; i < 8; ++i) {
        sigma[i] = in[16 * b + 8 + i];
        sigma[8 + i] = in[16 * b + 8 + i] ^ in[16 * b + i];
      }
      uint8_t encrypted[16];
      aes.EncryptBlocks(sigma, encrypted, 1);
      for (int i = 0; i < 16; ++i) expected[16 * b + i] = encrypted[i] ^ sigma[i];
    }
    std::vector<uint8_t> out(in.size());
    aes.HashBlocks(in.data(), out.data(), count);
    EXPECT_EQ(out, expected) << count << " blocks";
    aes.HashBlocks(in.data(), in.data(), count);  // In place.
    EXPECT_EQ(in, expected) << count << " blocks in place";
  }
}

// HashCounterBlocks equals HashBlocks on seed XOR le128(first_counter + j),
// for every width the AES-NI and VAES paths specialise and a few they do not,
// from counter 0 and from later counters (a counter above 255 changes more
// than the first byte).
TEST_P(AesTest, CounterBlocksMatchHashBlocks) {
  FixedKeyAes128 aes(Key("00112233445566778899aabbccddeeff"), GetParam());
  std::mt19937_64 random(9);
  for (uint64_t first_counter : {uint64_t{0}, uint64_t{1}, uint64_t{0x1234567}}) {
    for (size_t blocks_per_seed : {1, 2, 3, 5}) {
      for (size_t seed_count : {1, 2, 3, 4, 5, 8, 9, 16, 17, 31, 64, 100}) {
        std::vector<uint8_t> seeds(16 * seed_count);
        for (uint8_t& byte : seeds) byte = static_cast<uint8_t>(random());
        std::vector<uint8_t> inputs;
        for (size_t s = 0; s < seed_count; ++s) {
          for (size_t j = 0; j < blocks_per_seed; ++j) {
            const uint64_t counter = first_counter + j;
            for (size_t b = 0; b < 16; ++b) {
              uint8_t counter_byte = b < 8 ? static_cast<uint8_t>(counter >> (8 * b)) : 0;
              inputs.push_back(seeds[16 * s + b] ^ counter_byte);
            }
          }
        }
        std::vector<uint8_t> expected(inputs.size()), actual(inputs.size());
        aes.HashBlocks(inputs.data(), expected.data(), seed_count * blocks_per_seed);
        if (first_counter == 0) {
          aes.HashCounterBlocks(seeds.data(), seed_count, blocks_per_seed, actual.data());
        } else {
          aes.HashCounterBlocks(seeds.data(), seed_count, blocks_per_seed, actual.data(),
                                first_counter);
        }
        EXPECT_EQ(actual, expected) << seed_count << " seeds, " << blocks_per_seed
                                    << " blocks, from counter " << first_counter;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Implementations, AesTest,
                         ::testing::Values(FixedKeyAes128::Implementation::kAuto,
                                           FixedKeyAes128::Implementation::kAesni,
                                           FixedKeyAes128::Implementation::kPortable));

// The VAES path (taken by kAuto only on a CPU that has VAES) against the
// AES-NI path, at every tail length of both call shapes and at a counter
// whose low byte carries.
TEST(AesPaths, VaesCounterBlocksMatchAesni) {
  if (!FixedKeyAes128::CpuHasVaes()) GTEST_SKIP() << "this CPU has no VAES";
  const auto key = Key("000102030405060708090a0b0c0d0e0f");
  FixedKeyAes128 vaes(key);
  FixedKeyAes128 aesni(key, FixedKeyAes128::Implementation::kAesni);
  ASSERT_TRUE(vaes.uses_vaes());
  ASSERT_FALSE(aesni.uses_vaes());
  std::mt19937_64 random(12);
  for (uint64_t first_counter : {uint64_t{0}, uint64_t{0xff}}) {
    for (size_t blocks_per_seed : {1, 2}) {
      for (size_t seed_count = 1; seed_count <= 40; ++seed_count) {
        std::vector<uint8_t> seeds(16 * seed_count);
        for (uint8_t& byte : seeds) byte = static_cast<uint8_t>(random());
        std::vector<uint8_t> fast(16 * seed_count * blocks_per_seed);
        std::vector<uint8_t> reference(fast.size());
        vaes.HashCounterBlocks(seeds.data(), seed_count, blocks_per_seed, fast.data(),
                               first_counter);
        aesni.HashCounterBlocks(seeds.data(), seed_count, blocks_per_seed, reference.data(),
                                first_counter);
        EXPECT_EQ(fast, reference) << seed_count << " seeds, " << blocks_per_seed
                                   << " blocks, from counter " << first_counter;
      }
    }
  }
}

TEST(AesPaths, AesniAndPortableAgree) {
  if (!FixedKeyAes128::CpuHasAesni()) GTEST_SKIP() << "this CPU has no AES-NI";
  std::mt19937_64 random(11);
  for (int trial = 0; trial < 20; ++trial) {
    std::array<uint8_t, 16> key;
    for (uint8_t& byte : key) byte = static_cast<uint8_t>(random());
    FixedKeyAes128 fast(key);
    FixedKeyAes128 portable(key, FixedKeyAes128::Implementation::kPortable);
    ASSERT_TRUE(fast.uses_aesni());
    ASSERT_FALSE(portable.uses_aesni());
    std::vector<uint8_t> in(16 * 37);
    for (uint8_t& byte : in) byte = static_cast<uint8_t>(random());
    std::vector<uint8_t> fast_out(in.size()), portable_out(in.size());
    fast.HashBlocks(in.data(), fast_out.data(), 37);
    portable.HashBlocks(in.data(), portable_out.data(), 37);
    EXPECT_EQ(fast_out, portable_out);
  }
}

TEST(AesPaths, MovedScheduleStillEncrypts) {
  FixedKeyAes128 original(Key("000102030405060708090a0b0c0d0e0f"));
  FixedKeyAes128 moved(std::move(original));
  std::vector<uint8_t> block = HexToBytes("00112233445566778899aabbccddeeff");
  moved.EncryptBlocks(block.data(), block.data(), 1);
  EXPECT_EQ(BytesToHex(block), "69c4e0d86a7b0430d8cdb78070b4c55a");
}

}  // namespace
}  // namespace canopy::crypto
