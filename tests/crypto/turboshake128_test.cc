// Tests for TurboSHAKE128: the RFC 9861 vectors, incremental absorb and
// squeeze against one-shot hashing, and the permutation against a plain
// reference written straight from the Keccak specification.
#include "crypto/turboshake128.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <boost/json.hpp>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "tests/testing/vectors.h"

namespace canopy::crypto {
namespace {

using ::canopy::testing::BytesToHex;
using ::canopy::testing::HexToBytes;
using ::canopy::testing::JsonString;
using ::canopy::testing::JsonUint;

// ptn(n)[i] = i mod 251, the RFC 9861 message pattern.
std::vector<uint8_t> Ptn(size_t n) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(i % 251);
  return out;
}

// Builds the message a vector describes, from its pattern and length.
std::vector<uint8_t> VectorMessage(const boost::json::value& vector) {
  const std::string pattern = JsonString(vector, "message_pattern");
  const uint64_t length = JsonUint(vector, "message_length");
  if (pattern == "empty") {
    EXPECT_EQ(length, 0u);
    return {};
  }
  if (pattern == "ptn") return Ptn(length);
  EXPECT_EQ(pattern, "repeat_ff");
  return std::vector<uint8_t>(length, 0xff);
}

// A plain, slow Keccak-p[1600] with the rho offsets and round constants
// derived by the specification's algorithms (FIPS 202, sections 3.2.2 and
// 3.2.5), so that it shares no tables with the implementation under test.
// Runs rounds [first_round, end_round) of Keccak-f[1600].
void ReferenceKeccakRounds(uint64_t a[25], int first_round, int end_round) {
  int rho[25] = {};
  for (int t = 0, x = 1, y = 0; t < 24; ++t) {
    rho[x + 5 * y] = ((t + 1) * (t + 2) / 2) % 64;
    const int next_y = (2 * x + 3 * y) % 5;
    x = y;
    y = next_y;
  }
  uint64_t round_constants[24] = {};
  uint8_t lfsr = 1;
  for (int round = 0; round < 24; ++round) {
    for (int j = 0; j < 7; ++j) {
      // The LFSR x^8 + x^6 + x^5 + x^4 + 1, one output bit per step.
      const bool bit = (lfsr & 1) != 0;
      lfsr = static_cast<uint8_t>((lfsr & 0x80) ? (lfsr << 1) ^ 0x71 : lfsr << 1);
      if (bit) round_constants[round] ^= uint64_t{1} << ((1 << j) - 1);
    }
  }
  for (int round = first_round; round < end_round; ++round) {
    uint64_t c[5];
    for (int x = 0; x < 5; ++x) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
    for (int x = 0; x < 5; ++x) {
      const uint64_t d = c[(x + 4) % 5] ^ std::rotl(c[(x + 1) % 5], 1);
      for (int y = 0; y < 5; ++y) a[x + 5 * y] ^= d;
    }
    uint64_t b[25];
    for (int x = 0; x < 5; ++x) {
      for (int y = 0; y < 5; ++y) {
        b[y + 5 * ((2 * x + 3 * y) % 5)] = std::rotl(a[x + 5 * y], rho[x + 5 * y]);
      }
    }
    for (int x = 0; x < 5; ++x) {
      for (int y = 0; y < 5; ++y) {
        a[x + 5 * y] = b[x + 5 * y] ^ (~b[(x + 1) % 5 + 5 * y] & b[(x + 2) % 5 + 5 * y]);
      }
    }
    a[0] ^= round_constants[round];
  }
}

TEST(TurboShake128Test, ReferencePermutationGivesShake128OfEmpty) {
  // Checks the reference itself: SHAKE128("") is the full 24-round sponge
  // with padding 0x1F ... 0x80 in a zero state.
  uint64_t a[25] = {};
  a[0] ^= 0x1f;
  a[20] ^= uint64_t{0x80} << 56;
  ReferenceKeccakRounds(a, 0, 24);
  std::vector<uint8_t> out(32);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(a[i / 8] >> (8 * (i % 8)));
  EXPECT_EQ(BytesToHex(out), "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26");
}

TEST(TurboShake128Test, PermutationMatchesReferenceLastTwelveRounds) {
  std::mt19937_64 rng(12);
  for (int trial = 0; trial < 100; ++trial) {
    uint64_t fast[25];
    uint64_t slow[25];
    for (int i = 0; i < 25; ++i) fast[i] = slow[i] = (trial == 0) ? 0 : rng();
    KeccakP1600Rounds12(fast);
    ReferenceKeccakRounds(slow, 12, 24);
    for (int i = 0; i < 25; ++i) ASSERT_EQ(fast[i], slow[i]) << "trial " << trial << " lane " << i;
  }
}

// Both implementations, whichever the dispatcher picks, match the reference.
TEST(TurboShake128Test, EveryPermutationImplementationMatchesReference) {
  std::mt19937_64 rng(13);
  for (int trial = 0; trial < 100; ++trial) {
    uint64_t portable[25];
    uint64_t bmi[25];
    uint64_t slow[25];
    for (int i = 0; i < 25; ++i) portable[i] = bmi[i] = slow[i] = (trial == 0) ? ~0ULL : rng();
    ReferenceKeccakRounds(slow, 12, 24);
    KeccakP1600Rounds12Portable(portable);
    for (int i = 0; i < 25; ++i) ASSERT_EQ(portable[i], slow[i]) << "trial " << trial;
    if (!KeccakP1600HasBmi()) continue;
    KeccakP1600Rounds12Bmi(bmi);
    for (int i = 0; i < 25; ++i) ASSERT_EQ(bmi[i], slow[i]) << "trial " << trial;
  }
  if (!KeccakP1600HasBmi()) GTEST_SKIP() << "no BMI1/BMI2 on this CPU: only the portable code ran";
}

TEST(TurboShake128Test, Rfc9861Vectors) {
  CANOPY_LOAD_VECTOR(json, "turboshake/turboshake128.json");
  EXPECT_EQ(JsonUint(json, "rate_bytes"), TurboShake128::kRateBytes);
  const boost::json::array& vectors = json.as_object().at("vectors").as_array();
  ASSERT_EQ(vectors.size(), 16u);
  for (const boost::json::value& vector : vectors) {
    const std::string name = JsonString(vector, "name");
    SCOPED_TRACE(name);
    const std::vector<uint8_t> message = VectorMessage(vector);
    ASSERT_EQ(message.size(), JsonUint(vector, "message_length"));
    // The short messages are also given in full: check the pattern rule.
    const boost::json::value& message_hex = vector.as_object().at("message_hex");
    if (message_hex.is_string()) {
      EXPECT_EQ(BytesToHex(message), std::string(message_hex.as_string()));
    }
    const std::vector<uint8_t> domain = HexToBytes(JsonString(vector, "D"));
    ASSERT_EQ(domain.size(), 1u);
    const uint64_t output_length = JsonUint(vector, "output_length");
    const uint64_t offset = JsonUint(vector, "expected_offset");
    const uint64_t expected_length = JsonUint(vector, "expected_length");
    ASSERT_LE(offset + expected_length, output_length);

    std::vector<uint8_t> output(output_length);
    TurboShake128::Hash(message, domain[0], output);
    EXPECT_EQ(BytesToHex(std::span<const uint8_t>(output).subspan(offset, expected_length)),
              JsonString(vector, "expected_hex"));
  }
}

// Absorbs `message` in pieces of random sizes up to `max_piece` bytes.
void AbsorbInPieces(TurboShake128& sponge, std::span<const uint8_t> message, size_t max_piece,
                    std::mt19937_64& rng) {
  std::uniform_int_distribution<size_t> piece_size(0, max_piece);
  size_t done = 0;
  while (done < message.size()) {
    const size_t take = std::min(piece_size(rng), message.size() - done);
    sponge.Absorb(message.subspan(done, take));
    done += take;
  }
}

// Squeezes `out` in pieces of random sizes up to `max_piece` bytes.
void SqueezeInPieces(TurboShake128& sponge, std::span<uint8_t> out, size_t max_piece,
                     std::mt19937_64& rng) {
  std::uniform_int_distribution<size_t> piece_size(0, max_piece);
  size_t done = 0;
  while (done < out.size()) {
    const size_t take = std::min(piece_size(rng), out.size() - done);
    sponge.Squeeze(out.subspan(done, take));
    done += take;
  }
}

TEST(TurboShake128Test, IncrementalMatchesOneShot) {
  std::mt19937_64 rng(9861);
  // Lengths around the lane and block boundaries, plus a few longer ones.
  std::vector<size_t> lengths = {0,   1,   7,   8,   9,   15,  16,  17,  160,  167,  168,  169,
                                 175, 176, 335, 336, 337, 503, 504, 505, 1000, 4096, 10007};
  for (size_t length : lengths) {
    std::vector<uint8_t> message(length);
    for (uint8_t& byte : message) byte = static_cast<uint8_t>(rng());
    for (size_t output_length : {size_t{1}, size_t{32}, size_t{168}, size_t{169}, size_t{1000}}) {
      std::vector<uint8_t> expected(output_length);
      TurboShake128::Hash(message, 0x01, expected);
      for (size_t max_piece : {size_t{1}, size_t{5}, size_t{13}, size_t{200}, size_t{700}}) {
        SCOPED_TRACE("length " + std::to_string(length) + ", output " +
                     std::to_string(output_length) + ", pieces up to " + std::to_string(max_piece));
        TurboShake128 sponge(0x01);
        AbsorbInPieces(sponge, message, max_piece, rng);
        std::vector<uint8_t> output(output_length);
        SqueezeInPieces(sponge, output, max_piece, rng);
        EXPECT_EQ(output, expected);
      }
    }
  }
}

TEST(TurboShake128Test, IncrementalMatchesVectors) {
  CANOPY_LOAD_VECTOR(json, "turboshake/turboshake128.json");
  std::mt19937_64 rng(17);
  for (const boost::json::value& vector : json.as_object().at("vectors").as_array()) {
    // The 24 MB message byte by byte would be slow for no extra coverage.
    if (JsonUint(vector, "message_length") > 100000) continue;
    SCOPED_TRACE(JsonString(vector, "name"));
    const std::vector<uint8_t> message = VectorMessage(vector);
    const uint8_t domain = HexToBytes(JsonString(vector, "D")).at(0);
    const uint64_t offset = JsonUint(vector, "expected_offset");
    const uint64_t expected_length = JsonUint(vector, "expected_length");
    std::vector<uint8_t> output(JsonUint(vector, "output_length"));

    TurboShake128 sponge(domain);
    AbsorbInPieces(sponge, message, 300, rng);
    SqueezeInPieces(sponge, output, 300, rng);
    EXPECT_EQ(BytesToHex(std::span<const uint8_t>(output).subspan(offset, expected_length)),
              JsonString(vector, "expected_hex"));
  }
}

TEST(TurboShake128Test, ByteAtATimeSqueezeAcrossBlocks) {
  const std::vector<uint8_t> message = Ptn(1000);
  std::vector<uint8_t> expected(3 * TurboShake128::kRateBytes + 5);
  TurboShake128::Hash(message, 0x1f, expected);
  TurboShake128 sponge(0x1f);
  sponge.Absorb(message);
  std::vector<uint8_t> output(expected.size());
  for (uint8_t& byte : output) sponge.Squeeze(std::span<uint8_t>(&byte, 1));
  EXPECT_EQ(output, expected);
}

TEST(TurboShake128Test, EmptyCallsChangeNothing) {
  const std::vector<uint8_t> message = Ptn(200);
  std::vector<uint8_t> expected(64);
  TurboShake128::Hash(message, 0x02, expected);
  TurboShake128 sponge(0x02);
  sponge.Absorb({});
  sponge.Absorb(message);
  sponge.Absorb({});
  sponge.Squeeze({});  // Pads, but outputs nothing.
  std::vector<uint8_t> output(64);
  sponge.Squeeze(output);
  EXPECT_EQ(output, expected);
}

TEST(TurboShake128Test, DomainByteSeparates) {
  const std::vector<uint8_t> message = Ptn(50);
  std::vector<uint8_t> one(32);
  std::vector<uint8_t> two(32);
  TurboShake128::Hash(message, 0x01, one);
  TurboShake128::Hash(message, 0x02, two);
  EXPECT_NE(one, two);
}

TEST(TurboShake128Test, CopyForksTheSponge) {
  const std::vector<uint8_t> prefix = Ptn(100);
  const std::vector<uint8_t> suffix = Ptn(300);
  TurboShake128 sponge(0x01);
  sponge.Absorb(prefix);
  TurboShake128 fork = sponge;
  fork.Absorb(suffix);
  sponge.Absorb(suffix);
  std::vector<uint8_t> a(100);
  std::vector<uint8_t> b(100);
  sponge.Squeeze(a);
  fork.Squeeze(b);
  EXPECT_EQ(a, b);
}

#ifdef NDEBUG
TEST(TurboShake128Test, AbsorbAfterSqueezeIsIgnoredInRelease) {
  const std::vector<uint8_t> message = Ptn(10);
  std::vector<uint8_t> expected(64);
  TurboShake128::Hash(message, 0x1f, expected);
  TurboShake128 sponge(0x1f);
  sponge.Absorb(message);
  std::vector<uint8_t> output(64);
  sponge.Squeeze(std::span<uint8_t>(output).first(10));
  sponge.Absorb(message);
  sponge.Squeeze(std::span<uint8_t>(output).subspan(10));
  EXPECT_EQ(output, expected);
}
#endif

}  // namespace
}  // namespace canopy::crypto
