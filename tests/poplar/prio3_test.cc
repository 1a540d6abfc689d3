// Prio3 and its FLP: random measurements of every variant aggregated and
// compared with plain sums, cheating clients and tampered reports rejected,
// out-of-range measurements and impossible parameters refused, malformed
// encodings refused, batch verification equal to report-by-report
// verification; the NTT and Lagrange-basis helpers against naive
// arithmetic, and a degree-3 gadget whose verifier must extend the gadget
// polynomial.
#include "poplar/prio3.h"

#include <gtest/gtest.h>

#include <bit>
#include <boost/json/value.hpp>
#include <functional>
#include <random>

#include "poplar/flp.h"
#include "poplar/internal/ntt.h"
#include "tests/testing/vectors.h"

namespace canopy::poplar {
namespace {

using Bytes = std::vector<uint8_t>;

const Bytes kCtx = {'c', 'a', 'n', 'o', 'p', 'y'};

Bytes RandomBytes(std::mt19937_64& random, size_t size) {
  Bytes bytes(size);
  for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(random());
  return bytes;
}

// One report through every aggregator: the output shares, or the error of
// the first step that failed.
Result<std::vector<FieldVector>> Verify(const Prio3& vdaf, const ShardOutput& shares,
                                        std::span<const uint8_t> nonce,
                                        std::span<const uint8_t> verify_key) {
  const AggregationParameter& param = **vdaf.DecodeAggParam({}, nullptr);
  std::vector<VerifyState> states;
  std::vector<Bytes> verifier_shares;
  for (size_t agg = 0; agg < vdaf.shares(); ++agg) {
    auto init = vdaf.VerifyInitFromShares(verify_key, kCtx, static_cast<int>(agg), param, nonce,
                                          shares.public_share, shares.input_shares[agg]);
    if (!init) return std::unexpected(init.error());
    EXPECT_FALSE(init->finished);
    EXPECT_EQ(init->verifier_share.size(), vdaf.VerifierShareSize());
    states.push_back(std::move(init->state));
    verifier_shares.push_back(std::move(init->verifier_share));
  }
  auto message = vdaf.VerifierSharesToMessage(kCtx, param, verifier_shares);
  if (!message) return std::unexpected(message.error());
  EXPECT_EQ(message->size(), vdaf.VerifierMessageSize());
  std::vector<FieldVector> out_shares;
  for (VerifyState& state : states) {
    auto next = vdaf.VerifyNext(kCtx, std::move(state), *message);
    if (!next) return std::unexpected(next.error());
    EXPECT_TRUE(next->finished);
    out_shares.push_back(std::move(next->out_share));
  }
  return out_shares;
}

// Shards, verifies and aggregates `measurements`; returns the unsharded result.
AggregateResult RunAll(const Prio3& vdaf, const std::vector<Measurement>& measurements,
                       std::mt19937_64& random) {
  const AggregationParameter& param = **vdaf.DecodeAggParam({}, nullptr);
  const Bytes verify_key = RandomBytes(random, 32);
  std::vector<FieldVector> agg_shares(vdaf.shares(), vdaf.AggregateInit(param));
  for (const Measurement& measurement : measurements) {
    const Bytes nonce = RandomBytes(random, 16);
    auto shares = vdaf.Shard(kCtx, measurement, nonce, RandomBytes(random, vdaf.rand_size()));
    EXPECT_TRUE(shares) << shares.error().ToString();
    if (!shares) return {};
    EXPECT_EQ(shares->public_share.size(), vdaf.PublicShareSize());
    for (size_t agg = 0; agg < vdaf.shares(); ++agg) {
      EXPECT_EQ(shares->input_shares[agg].size(), vdaf.InputShareSize(static_cast<int>(agg)));
    }
    auto out_shares = Verify(vdaf, *shares, nonce, verify_key);
    EXPECT_TRUE(out_shares) << vdaf.name() << ": " << out_shares.error().ToString();
    if (!out_shares) return {};
    for (size_t agg = 0; agg < vdaf.shares(); ++agg) {
      EXPECT_TRUE(AddFieldVector(agg_shares[agg], (*out_shares)[agg]));
    }
  }
  std::vector<Bytes> encoded;
  for (const FieldVector& share : agg_shares) {
    encoded.push_back(EncodeFieldVector(share));
    EXPECT_EQ(encoded.back().size(), vdaf.AggShareSize());
  }
  auto result = vdaf.Unshard(param, encoded, measurements.size());
  EXPECT_TRUE(result) << result.error().ToString();
  return result.value_or(AggregateResult());
}

std::unique_ptr<Prio3> Must(Result<std::unique_ptr<Prio3>> vdaf) {
  EXPECT_TRUE(vdaf) << vdaf.error().ToString();
  return vdaf ? std::move(*vdaf) : nullptr;
}

// ---- Aggregates equal plain sums ---------------------------------------------------

TEST(Prio3, CountAggregatesToThePlainCount) {
  std::mt19937_64 random(1);
  for (size_t shares : {2, 3, 5}) {
    auto vdaf = Must(Prio3::Count(shares));
    ASSERT_TRUE(vdaf);
    std::vector<Measurement> measurements;
    unsigned __int128 count = 0;
    for (int i = 0; i < 12; ++i) {
      const uint64_t bit = random() & 1;
      measurements.push_back(bit);
      count += bit;
    }
    EXPECT_EQ(RunAll(*vdaf, measurements, random), AggregateResult{count}) << vdaf->name();
  }
}

TEST(Prio3, SumAggregatesToThePlainSum) {
  std::mt19937_64 random(2);
  for (uint64_t max : {uint64_t{1}, uint64_t{2}, uint64_t{255}, uint64_t{1337},
                       (uint64_t{1} << 32) - 1, (uint64_t{1} << 63) - 1}) {
    for (size_t shares : {2, 3}) {
      auto vdaf = Must(Prio3::Sum(max, shares));
      ASSERT_TRUE(vdaf);
      std::vector<Measurement> measurements = {uint64_t{0}, max};
      unsigned __int128 sum = max;
      for (int i = 0; i < 6; ++i) {
        const uint64_t value = random() % (max == UINT64_MAX ? max : max + 1);
        measurements.push_back(value);
        sum += value;
      }
      // Field64 wraps: with max near 2^63 the true sum exceeds p.
      EXPECT_EQ(RunAll(*vdaf, measurements, random), AggregateResult{sum % Field64::kModulus})
          << vdaf->name();
    }
  }
}

struct VectorCase {
  size_t length;
  uint64_t max;
  size_t chunk_length;  // 0: the recommended one.
  size_t shares;
  size_t proofs;
};

void RunSumVec(const Prio3& vdaf, size_t length, uint64_t max, std::mt19937_64& random) {
  std::vector<Measurement> measurements;
  AggregateResult sums(length, 0);
  for (int i = 0; i < 3; ++i) {
    std::vector<uint64_t> values(length);
    for (size_t j = 0; j < length; ++j) {
      values[j] = i == 0 ? max : max == UINT64_MAX ? random() : random() % (max + 1);
      sums[j] += values[j];
    }
    measurements.push_back(values);
  }
  EXPECT_EQ(RunAll(vdaf, measurements, random), sums) << vdaf.name();
}

TEST(Prio3, SumVecAggregatesToThePlainSums) {
  std::mt19937_64 random(3);
  const VectorCase cases[] = {
      {1, 1, 1, 2, 1},       {1, 255, 8, 2, 1},         {3, 32000, 7, 3, 1},   {10, 255, 9, 2, 2},
      {10, 255, 80, 2, 3},   {100, 1, 0, 3, 1},         {100, 65535, 0, 2, 3}, {1000, 1, 0, 2, 1},
      {1000, 255, 97, 2, 1}, {17, UINT64_MAX, 0, 2, 1},
  };
  for (const VectorCase& c : cases) {
    const size_t bits = std::bit_width(c.max);
    const size_t chunk =
        c.chunk_length != 0 ? c.chunk_length : Prio3::RecommendedChunkLength(c.length * bits);
    auto vdaf = Must(Prio3::SumVec(c.length, c.max, chunk, c.shares, c.proofs));
    ASSERT_TRUE(vdaf);
    EXPECT_EQ(vdaf->proofs(), c.proofs);
    EXPECT_EQ(vdaf->algorithm_id(), c.proofs == 1 ? Prio3::kSumVecId : Prio3::kTestId);
    RunSumVec(*vdaf, c.length, c.max, random);
  }
}

TEST(Prio3, SumVecWithMultiproofOverField64AggregatesToThePlainSums) {
  std::mt19937_64 random(4);
  const VectorCase cases[] = {
      {10, 255, 9, 2, 3},
      {3, 65535, 7, 3, 3},
      {50, 7, 0, 2, 1},
      {200, 1000, 0, 2, 2},
  };
  for (const VectorCase& c : cases) {
    const size_t chunk = c.chunk_length != 0
                             ? c.chunk_length
                             : Prio3::RecommendedChunkLength(c.length * std::bit_width(c.max));
    auto vdaf = Must(Prio3::SumVecWithMultiproof(Prio3::FieldKind::kField64, c.proofs, c.length,
                                                 c.max, chunk, c.shares));
    ASSERT_TRUE(vdaf);
    EXPECT_EQ(vdaf->field(), Prio3::FieldKind::kField64);
    RunSumVec(*vdaf, c.length, c.max, random);
  }
}

TEST(Prio3, HistogramAggregatesToThePlainCounts) {
  std::mt19937_64 random(5);
  const VectorCase cases[] = {
      {1, 0, 1, 2, 1},     {2, 0, 2, 2, 1},     {4, 0, 2, 2, 1},
      {11, 0, 3, 3, 1},    {100, 0, 10, 2, 1},  {100, 0, 1, 2, 1},
      {100, 0, 100, 3, 1}, {1000, 0, 32, 2, 1}, {1000, 0, 0, 3, 1},
  };
  for (const VectorCase& c : cases) {
    const size_t chunk =
        c.chunk_length != 0 ? c.chunk_length : Prio3::RecommendedChunkLength(c.length);
    auto vdaf = Must(Prio3::Histogram(c.length, chunk, c.shares));
    ASSERT_TRUE(vdaf);
    std::vector<Measurement> measurements;
    AggregateResult counts(c.length, 0);
    for (int i = 0; i < 5; ++i) {
      const uint64_t bucket = i == 0 ? c.length - 1 : random() % c.length;
      measurements.push_back(bucket);
      ++counts[bucket];
    }
    EXPECT_EQ(RunAll(*vdaf, measurements, random), counts) << vdaf->name();
  }
}

TEST(Prio3, MultihotCountVecAggregatesToThePlainCounts) {
  std::mt19937_64 random(6);
  struct Case {
    size_t length, max_weight, chunk_length, shares;
  };
  const Case cases[] = {
      {1, 1, 1, 2},    {4, 2, 2, 2},     {10, 2, 3, 4},    {4, 4, 1, 2},
      {100, 10, 0, 2}, {100, 100, 0, 3}, {1000, 30, 0, 2},
  };
  for (const Case& c : cases) {
    const size_t meas_len = c.length + std::bit_width(c.max_weight);
    const size_t chunk =
        c.chunk_length != 0 ? c.chunk_length : Prio3::RecommendedChunkLength(meas_len);
    auto vdaf = Must(Prio3::MultihotCountVec(c.length, c.max_weight, chunk, c.shares));
    ASSERT_TRUE(vdaf);
    std::vector<Measurement> measurements;
    AggregateResult counts(c.length, 0);
    for (int i = 0; i < 4; ++i) {
      std::vector<uint64_t> bits(c.length, 0);
      // Report 0 has exactly max_weight ones, report 1 none, others random.
      const size_t weight = i == 0 ? c.max_weight : i == 1 ? 0 : random() % (c.max_weight + 1);
      for (size_t set = 0; set < weight;) {
        const size_t index = random() % c.length;
        if (bits[index] == 0) {
          bits[index] = 1;
          ++counts[index];
          ++set;
        }
      }
      measurements.push_back(bits);
    }
    EXPECT_EQ(RunAll(*vdaf, measurements, random), counts) << vdaf->name();
  }
}

TEST(Prio3, HigherDegreeAggregatesToThePlainSum) {
  std::mt19937_64 random(7);
  auto vdaf = Must(Prio3::HigherDegree(2));
  ASSERT_TRUE(vdaf);
  EXPECT_EQ(RunAll(*vdaf, {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{2}}, random),
            AggregateResult{5});
}

// ---- Cheating clients and tampered reports -------------------------------------------

// Shards an encoded measurement with honest proofs and runs verification.
Result<std::vector<FieldVector>> VerifyEncoded(const Prio3& vdaf, std::vector<uint64_t> encoded,
                                               std::mt19937_64& random) {
  const Bytes nonce = RandomBytes(random, 16);
  auto shares =
      vdaf.ShardEncodedForTesting(kCtx, encoded, nonce, RandomBytes(random, vdaf.rand_size()));
  EXPECT_TRUE(shares) << shares.error().ToString();
  if (!shares) return std::unexpected(shares.error());
  return Verify(vdaf, *shares, nonce, RandomBytes(random, 32));
}

void ExpectRejected(const Prio3& vdaf, std::vector<uint64_t> encoded, std::mt19937_64& random,
                    const std::string& what) {
  auto result = VerifyEncoded(vdaf, std::move(encoded), random);
  ASSERT_FALSE(result) << vdaf.name() << " accepted " << what;
  EXPECT_EQ(result.error().code(), ErrorCode::kVerifyFailed) << result.error().ToString();
}

TEST(Prio3, CheatingClientsAreRejected) {
  std::mt19937_64 random(8);
  auto count = Must(Prio3::Count(2));
  ASSERT_TRUE(VerifyEncoded(*count, {1}, random));  // The hook itself is honest.
  ExpectRejected(*count, {2}, random, "a count of 2");

  auto count3 = Must(Prio3::Count(3));
  ExpectRejected(*count3, {5}, random, "a count of 5");

  // Sum with max 255: weights 1, 2, ..., 64, 128. A 2 as the first "bit"
  // would decode to 1 more than the honest bits allow.
  auto sum = Must(Prio3::Sum(255, 2));
  ASSERT_TRUE(VerifyEncoded(*sum, {1, 1, 1, 1, 1, 1, 1, 1}, random));
  ExpectRejected(*sum, {2, 1, 1, 1, 1, 1, 1, 1}, random, "a sum of 256 > 255");
  ExpectRejected(*sum, {45, 1, 1, 1, 1, 1, 1, 1}, random, "a sum of 299");

  auto sum_vec = Must(Prio3::SumVec(4, 3, 2, 2));
  ExpectRejected(*sum_vec, {1, 1, 0, 0, 2, 0, 1, 0}, random, "a SumVec element of 4");

  auto multiproof = Must(Prio3::SumVecWithMultiproof(Prio3::FieldKind::kField64, 3, 4, 3, 3, 2));
  ExpectRejected(*multiproof, {1, 1, 0, 0, 0, 3, 1, 0}, random, "a SumVec element of 6");

  auto histogram = Must(Prio3::Histogram(10, 3, 2));
  std::vector<uint64_t> two_ones(10, 0);
  two_ones[2] = two_ones[7] = 1;
  ExpectRejected(*histogram, two_ones, random, "a histogram with two ones");
  ExpectRejected(*histogram, std::vector<uint64_t>(10, 0), random, "an empty histogram");
  std::vector<uint64_t> two(10, 0);
  two[4] = 2;
  ExpectRejected(*histogram, two, random, "a histogram bucket of 2");

  auto histogram3 = Must(Prio3::Histogram(100, 10, 3));
  std::vector<uint64_t> wide(100, 0);
  wide[0] = wide[99] = 1;
  ExpectRejected(*histogram3, wide, random, "a histogram with two ones (3 shares)");

  // Multihot of length 6 and max_weight 2: the weight is 2 bits (weights 1, 1).
  auto multihot = Must(Prio3::MultihotCountVec(6, 2, 3, 2));
  ASSERT_TRUE(VerifyEncoded(*multihot, {1, 0, 1, 0, 0, 0, 1, 1}, random));
  ExpectRejected(*multihot, {1, 1, 1, 0, 0, 0, 1, 1}, random, "a weight of 3 over max_weight 2");
  ExpectRejected(*multihot, {1, 1, 1, 0, 0, 0, 2, 1}, random, "a weight encoding of 3");
  ExpectRejected(*multihot, {1, 0, 1, 0, 0, 0, 1, 0}, random, "a misreported weight");

  auto higher = Must(Prio3::HigherDegree(2));
  ExpectRejected(*higher, {3}, random, "a HigherDegree measurement of 3");
}

// Flipping any byte of what a client sends makes verification fail (or, for
// a helper's seed of a circuit without joint randomness, changes shares so
// that the proof fails).
TEST(Prio3, TamperedReportsAreRejected) {
  std::mt19937_64 random(9);
  std::vector<std::unique_ptr<Prio3>> vdafs;
  vdafs.push_back(Must(Prio3::Count(2)));
  vdafs.push_back(Must(Prio3::Sum(1000, 3)));
  vdafs.push_back(Must(Prio3::Histogram(20, 4, 2)));
  vdafs.push_back(Must(Prio3::SumVec(5, 100, 6, 3, 2)));
  vdafs.push_back(Must(Prio3::MultihotCountVec(8, 3, 3, 2)));
  const std::vector<Measurement> measurements = {uint64_t{1}, uint64_t{999}, uint64_t{13},
                                                 std::vector<uint64_t>{1, 2, 3, 4, 100},
                                                 std::vector<uint64_t>{0, 1, 0, 0, 1, 1, 0, 0}};
  for (size_t v = 0; v < vdafs.size(); ++v) {
    const Prio3& vdaf = *vdafs[v];
    const Bytes nonce = RandomBytes(random, 16);
    const Bytes verify_key = RandomBytes(random, 32);
    auto honest = vdaf.Shard(kCtx, measurements[v], nonce, RandomBytes(random, vdaf.rand_size()));
    ASSERT_TRUE(honest);
    ASSERT_TRUE(Verify(vdaf, *honest, nonce, verify_key));
    // Every position of the leader's share (a field element's low byte, so
    // the value stays below p), of one helper's, and of the public share.
    auto expect_rejected = [&](const ShardOutput& tampered, const std::string& what) {
      auto result = Verify(vdaf, tampered, nonce, verify_key);
      ASSERT_FALSE(result) << vdaf.name() << ": " << what;
      EXPECT_EQ(result.error().code(), ErrorCode::kVerifyFailed) << result.error().ToString();
    };
    const size_t element = vdaf.field() == Prio3::FieldKind::kField64 ? 8 : 16;
    const size_t leader_elements = (vdaf.meas_len() + vdaf.proof_len() * vdaf.proofs());
    for (size_t i = 0; i < leader_elements; i += 1 + leader_elements / 16) {
      ShardOutput tampered = *honest;
      tampered.input_shares[0][i * element] ^= 1;
      expect_rejected(tampered, "leader element " + std::to_string(i));
    }
    for (size_t i = 0; i < vdaf.InputShareSize(1); i += 7) {
      ShardOutput tampered = *honest;
      tampered.input_shares[1][i] ^= 0x10;
      expect_rejected(tampered, "helper byte " + std::to_string(i));
    }
    if (vdaf.uses_joint_rand()) {
      ShardOutput tampered = *honest;
      tampered.input_shares[0].back() ^= 1;  // The leader's blind.
      expect_rejected(tampered, "leader blind");
      for (size_t i = 0; i < vdaf.PublicShareSize(); i += 11) {
        ShardOutput public_tampered = *honest;
        public_tampered.public_share[i] ^= 0x80;
        expect_rejected(public_tampered, "public share byte " + std::to_string(i));
      }
    }
  }
}

TEST(Prio3, WrongVerifierMessagesAreRejected) {
  std::mt19937_64 random(10);
  std::vector<std::unique_ptr<Prio3>> vdafs;
  vdafs.push_back(Must(Prio3::Histogram(5, 2, 2)));
  vdafs.push_back(Must(Prio3::Count(2)));
  for (auto& vdaf : vdafs) {
    const Bytes nonce = RandomBytes(random, 16);
    auto shares = vdaf->Shard(kCtx, uint64_t{1}, nonce, RandomBytes(random, vdaf->rand_size()));
    ASSERT_TRUE(shares);
    const AggregationParameter& param = **vdaf->DecodeAggParam({}, nullptr);
    auto init = vdaf->VerifyInitFromShares(RandomBytes(random, 32), kCtx, 0, param, nonce,
                                           shares->public_share, shares->input_shares[0]);
    ASSERT_TRUE(init);
    std::vector<Bytes> wrong = {Bytes(32, 0), Bytes(31, 1), Bytes(33, 1), Bytes(1, 0)};
    if (vdaf->uses_joint_rand()) {
      wrong.push_back({});
      Bytes flipped = init->state.seed;
      flipped[5] ^= 1;
      wrong.push_back(flipped);
      // The right message is the state's seed.
      EXPECT_TRUE(vdaf->VerifyNext(kCtx, init->state, init->state.seed));
    } else {
      EXPECT_TRUE(vdaf->VerifyNext(kCtx, init->state, {}));
    }
    for (const Bytes& message : wrong) {
      auto next = vdaf->VerifyNext(kCtx, init->state, message);
      ASSERT_FALSE(next) << vdaf->name() << " accepted a message of " << message.size() << " bytes";
      EXPECT_EQ(next.error().code(), ErrorCode::kVerifyFailed);
    }
  }
}

// The official negative vectors fail for the right reason: a rejected proof
// or joint-randomness check, not a decoding error.
TEST(Prio3, OfficialNegativeVectorsFailVerification) {
  for (const char* file :
       {"Prio3Count_bad_gadget_poly.json", "Prio3Count_bad_helper_seed.json",
        "Prio3Count_bad_meas_share.json", "Prio3Count_bad_wire_seed.json",
        "Prio3Histogram_bad_helper_jr_blind.json", "Prio3Histogram_bad_leader_jr_blind.json",
        "Prio3Histogram_bad_public_share.json"}) {
    CANOPY_LOAD_VECTOR(vector, std::string("vdaf/") + file);
    const bool histogram = std::string(file).starts_with("Prio3Histogram");
    auto vdaf = histogram ? Must(Prio3::Histogram(testing::JsonUint(vector, "length"),
                                                  testing::JsonUint(vector, "chunk_length"), 2))
                          : Must(Prio3::Count(2));
    const boost::json::value& report = vector.as_object().at("reports").as_array()[0];
    ShardOutput shares;
    shares.public_share = testing::JsonHex(report, "public_share");
    for (const auto& share : report.as_object().at("input_shares").as_array()) {
      shares.input_shares.push_back(testing::HexToBytes(share.as_string()));
    }
    auto result = Verify(*vdaf, shares, testing::JsonHex(report, "nonce"),
                         testing::JsonHex(vector, "verify_key"));
    ASSERT_FALSE(result) << file;
    EXPECT_EQ(result.error().code(), ErrorCode::kVerifyFailed) << file;
  }
}

// ---- Refusals ------------------------------------------------------------------------

void ExpectShardRefused(const Prio3& vdaf, const Measurement& measurement,
                        const std::string& message_part) {
  std::mt19937_64 random(11);
  auto shares =
      vdaf.Shard(kCtx, measurement, RandomBytes(random, 16), RandomBytes(random, vdaf.rand_size()));
  ASSERT_FALSE(shares) << vdaf.name();
  EXPECT_EQ(shares.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(shares.error().message().find(message_part), std::string::npos)
      << shares.error().message();
}

TEST(Prio3, OutOfRangeMeasurementsAreRefusedAtShard) {
  auto count = Must(Prio3::Count(2));
  ExpectShardRefused(*count, uint64_t{2}, "Prio3Count measurement 2 exceeds max_measurement 1");
  ExpectShardRefused(*count, std::vector<uint64_t>{1}, "must be a number");
  auto sum = Must(Prio3::Sum(255, 2));
  ExpectShardRefused(*sum, uint64_t{300}, "Prio3Sum measurement 300 exceeds max_measurement 255");
  ExpectShardRefused(*sum, UINT64_MAX, "exceeds max_measurement 255");
  auto sum_vec = Must(Prio3::SumVec(3, 1000, 4, 2));
  ExpectShardRefused(*sum_vec, std::vector<uint64_t>{1, 1001, 0}, "exceeds max_measurement 1000");
  ExpectShardRefused(*sum_vec, std::vector<uint64_t>{1, 1}, "must have 3 elements");
  ExpectShardRefused(*sum_vec, uint64_t{1}, "must be a vector");
  auto histogram = Must(Prio3::Histogram(10, 3, 2));
  ExpectShardRefused(*histogram, uint64_t{10}, "exceeds the largest bucket index 9");
  auto multihot = Must(Prio3::MultihotCountVec(5, 2, 2, 2));
  ExpectShardRefused(*multihot, std::vector<uint64_t>{1, 1, 1, 0, 0},
                     "weight 3 exceeds max_weight 2");
  ExpectShardRefused(*multihot, std::vector<uint64_t>{0, 2, 0, 0, 0}, "exceeds 1");
  ExpectShardRefused(*multihot, std::vector<uint64_t>{0, 1}, "must have 5 elements");
  auto higher = Must(Prio3::HigherDegree(2));
  ExpectShardRefused(*higher, uint64_t{3}, "exceeds max_measurement 2");

  // Wrong nonce and rand sizes, and a ctx too long for the XOFs' tags.
  std::mt19937_64 random(12);
  const Bytes long_ctx(Prio3::kMaxCtxSize + 1, 'c');
  auto too_long =
      count->Shard(long_ctx, uint64_t{1}, RandomBytes(random, 16), RandomBytes(random, 64));
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code(), ErrorCode::kInvalidArgument);
  EXPECT_FALSE(count->PrepareReport(1, long_ctx, RandomBytes(random, 16), {}, Bytes(32, 0)));
  EXPECT_TRUE(count->Shard(Bytes(Prio3::kMaxCtxSize, 'c'), uint64_t{1}, RandomBytes(random, 16),
                           RandomBytes(random, 64)));
  EXPECT_FALSE(count->Shard(kCtx, uint64_t{1}, RandomBytes(random, 15), RandomBytes(random, 64)));
  EXPECT_FALSE(count->Shard(kCtx, uint64_t{1}, RandomBytes(random, 16), RandomBytes(random, 63)));
  EXPECT_FALSE(
      histogram->Shard(kCtx, uint64_t{1}, RandomBytes(random, 16), RandomBytes(random, 64)));
}

TEST(Prio3, ImpossibleParametersAreRefused) {
  auto refused = [](Result<std::unique_ptr<Prio3>> vdaf, const char* what) {
    ASSERT_FALSE(vdaf) << what;
    EXPECT_EQ(vdaf.error().code(), ErrorCode::kInvalidArgument) << what;
  };
  refused(Prio3::Count(0), "0 shares");
  refused(Prio3::Count(1), "1 share");
  refused(Prio3::Count(256), "256 shares");
  refused(Prio3::Sum(0, 2), "Sum max 0");
  refused(Prio3::Sum(uint64_t{1} << 63, 2), "Sum max 2^63");
  refused(Prio3::Sum(255, 1), "Sum 1 share");
  refused(Prio3::SumVec(0, 255, 1, 2), "SumVec length 0");
  refused(Prio3::SumVec(10, 0, 1, 2), "SumVec max 0");
  refused(Prio3::SumVec(10, 255, 0, 2), "SumVec chunk 0");
  refused(Prio3::SumVec(10, 255, 81, 2), "SumVec chunk > length * bits");
  refused(Prio3::SumVec(10, 255, 9, 2, 0), "SumVec 0 proofs");
  refused(Prio3::SumVec(10, 255, 9, 2, 256), "SumVec 256 proofs");
  refused(Prio3::SumVec(size_t{1} << 40, 255, 1000, 2), "SumVec length 2^40");
  refused(Prio3::SumVec(1 << 20, 1, 1, 2), "SumVec with 2^20 gadget calls");
  refused(Prio3::SumVecWithMultiproof(Prio3::FieldKind::kField64, 3, 10, uint64_t{1} << 63, 9, 2),
          "Field64 SumVec max 2^63");
  refused(Prio3::SumVecWithMultiproof(Prio3::FieldKind::kField64, 0, 10, 255, 9, 2), "0 proofs");
  refused(Prio3::Histogram(0, 1, 2), "Histogram length 0");
  refused(Prio3::Histogram(10, 0, 2), "Histogram chunk 0");
  refused(Prio3::Histogram(10, 11, 2), "Histogram chunk > length");
  refused(Prio3::Histogram(10, 3, 256), "Histogram 256 shares");
  refused(Prio3::MultihotCountVec(0, 1, 1, 2), "Multihot length 0");
  refused(Prio3::MultihotCountVec(10, 0, 3, 2), "Multihot max_weight 0");
  refused(Prio3::MultihotCountVec(10, 11, 3, 2), "Multihot max_weight > length");
  refused(Prio3::MultihotCountVec(10, 2, 0, 2), "Multihot chunk 0");
  refused(Prio3::MultihotCountVec(10, 2, 13, 2), "Multihot chunk > encoded length");
  refused(Prio3::HigherDegree(1), "HigherDegree 1 share");
  // The largest ones are fine.
  EXPECT_TRUE(Prio3::Count(255));
  EXPECT_TRUE(Prio3::Sum((uint64_t{1} << 63) - 1, 2));
  EXPECT_TRUE(Prio3::SumVec(10, UINT64_MAX, 640, 2, 255));
  EXPECT_TRUE(Prio3::Histogram(10, 10, 2));
}

TEST(Prio3, DescribesItself) {
  auto histogram = Must(Prio3::Histogram(100, 10, 2));
  EXPECT_EQ(histogram->name(), "Prio3Histogram(length=100, chunk_length=10, shares=2)");
  EXPECT_EQ(histogram->algorithm_id(), 4u);
  EXPECT_EQ(histogram->shares(), 2u);
  EXPECT_EQ(histogram->rounds(), 1u);
  EXPECT_EQ(histogram->rand_size(), 128u);
  EXPECT_EQ(histogram->verify_key_size(), 32u);
  EXPECT_EQ(histogram->nonce_size(), 16u);
  EXPECT_TRUE(histogram->uses_joint_rand());
  auto count = Must(Prio3::Count(3));
  EXPECT_EQ(count->name(), "Prio3Count(shares=3)");
  EXPECT_EQ(count->algorithm_id(), 1u);
  EXPECT_EQ(count->shares(), 3u);
  EXPECT_EQ(count->rand_size(), 96u);
  EXPECT_FALSE(count->uses_joint_rand());
  EXPECT_EQ(Must(Prio3::Sum(255, 2))->name(), "Prio3Sum(max_measurement=255, shares=2)");
  EXPECT_EQ(Must(Prio3::Sum(255, 2))->algorithm_id(), 2u);
  EXPECT_EQ(Must(Prio3::SumVec(10, 255, 9, 2))->name(),
            "Prio3SumVec(length=10, max_measurement=255, chunk_length=9, shares=2)");
  EXPECT_EQ(Must(Prio3::SumVec(10, 255, 9, 2))->algorithm_id(), 3u);
  EXPECT_EQ(Must(Prio3::MultihotCountVec(4, 2, 2, 2))->name(),
            "Prio3MultihotCountVec(length=4, max_weight=2, chunk_length=2, shares=2)");
  EXPECT_EQ(Must(Prio3::MultihotCountVec(4, 2, 2, 2))->algorithm_id(), 5u);
  EXPECT_EQ(Must(Prio3::HigherDegree(2))->algorithm_id(), 0xFFFFFFFFu);
  EXPECT_EQ(Prio3::RecommendedChunkLength(1000), 32u);
  EXPECT_EQ(Prio3::RecommendedChunkLength(0), 1u);
}

TEST(Prio3, AggregationParameterIsEmptyAndUsedOnce) {
  auto vdaf = Must(Prio3::Count(2));
  auto param = vdaf->DecodeAggParam({}, nullptr);
  ASSERT_TRUE(param);
  EXPECT_TRUE(vdaf->EncodeAggParam(**param).empty());
  const Bytes one_byte = {0};
  auto refused = vdaf->DecodeAggParam(one_byte, nullptr);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code(), ErrorCode::kDecodeError);
  EXPECT_TRUE(vdaf->IsValid(**param, {}));
  const AggregationParameter* previous[] = {param->get()};
  EXPECT_FALSE(vdaf->IsValid(**param, previous));
  // Another VDAF's parameter is no Prio3 parameter.
  struct Other : AggregationParameter {};
  Other other;
  EXPECT_FALSE(vdaf->IsValid(other, {}));
  EXPECT_FALSE(vdaf->DecodeAggShare(other, Bytes(8, 0)));
}

// ---- Malformed encodings ---------------------------------------------------------------

TEST(Prio3, MalformedSharesAreRefused) {
  std::mt19937_64 random(13);
  std::vector<std::unique_ptr<Prio3>> vdafs;
  vdafs.push_back(Must(Prio3::Count(2)));
  vdafs.push_back(Must(Prio3::Histogram(6, 2, 3)));
  vdafs.push_back(Must(Prio3::SumVecWithMultiproof(Prio3::FieldKind::kField64, 2, 3, 7, 2, 2)));
  for (auto& vdaf : vdafs) {
    const Bytes nonce = RandomBytes(random, 16);
    const Measurement measurement = vdaf->meas_len() == 9
                                        ? Measurement(std::vector<uint64_t>{1, 2, 3})
                                        : Measurement(uint64_t{1});
    auto shares = vdaf->Shard(kCtx, measurement, nonce, RandomBytes(random, vdaf->rand_size()));
    ASSERT_TRUE(shares) << shares.error().ToString();
    auto prepare = [&](int agg, const Bytes& public_share, const Bytes& input_share) {
      return vdaf->PrepareReport(agg, kCtx, nonce, public_share, input_share);
    };
    auto expect_code = [&](auto result, ErrorCode code, const std::string& what) {
      ASSERT_FALSE(result) << vdaf->name() << ": " << what;
      EXPECT_EQ(result.error().code(), code) << vdaf->name() << ": " << what;
    };
    for (int agg : {0, 1}) {
      const Bytes& input = shares->input_shares[agg];
      ASSERT_TRUE(prepare(agg, shares->public_share, input));
      expect_code(prepare(agg, shares->public_share, Bytes(input.begin(), input.end() - 1)),
                  ErrorCode::kDecodeError, "truncated input share");
      Bytes longer = input;
      longer.push_back(0);
      expect_code(prepare(agg, shares->public_share, longer), ErrorCode::kDecodeError,
                  "overlong input share");
      expect_code(prepare(agg, shares->public_share, {}), ErrorCode::kDecodeError,
                  "empty input share");
    }
    // The leader's elements must be below p: all-ones bytes are not.
    const size_t element = vdaf->field() == Prio3::FieldKind::kField64 ? 8 : 16;
    for (size_t offset : {size_t{0}, element * vdaf->meas_len()}) {
      Bytes over = shares->input_shares[0];
      std::fill_n(over.begin() + static_cast<ptrdiff_t>(offset), element, 0xff);
      expect_code(prepare(0, shares->public_share, over), ErrorCode::kDecodeError, "element >= p");
    }
    Bytes public_longer = shares->public_share;
    public_longer.push_back(1);
    expect_code(prepare(0, public_longer, shares->input_shares[0]), ErrorCode::kDecodeError,
                "overlong public share");
    if (!shares->public_share.empty()) {
      expect_code(prepare(1, Bytes(shares->public_share.begin(), shares->public_share.end() - 1),
                          shares->input_shares[1]),
                  ErrorCode::kDecodeError, "truncated public share");
    }
    expect_code(prepare(-1, shares->public_share, shares->input_shares[0]),
                ErrorCode::kInvalidArgument, "agg_id -1");
    expect_code(
        prepare(static_cast<int>(vdaf->shares()), shares->public_share, shares->input_shares[1]),
        ErrorCode::kInvalidArgument, "agg_id = shares");
    expect_code(
        vdaf->PrepareReport(0, kCtx, Bytes(15, 0), shares->public_share, shares->input_shares[0]),
        ErrorCode::kInvalidArgument, "short nonce");

    // Verifier shares.
    const AggregationParameter& param = **vdaf->DecodeAggParam({}, nullptr);
    std::vector<Bytes> verifier_shares;
    std::vector<VerifyState> states;
    const Bytes verify_key = RandomBytes(random, 32);
    for (size_t agg = 0; agg < vdaf->shares(); ++agg) {
      auto init = vdaf->VerifyInitFromShares(verify_key, kCtx, static_cast<int>(agg), param, nonce,
                                             shares->public_share, shares->input_shares[agg]);
      ASSERT_TRUE(init);
      verifier_shares.push_back(init->verifier_share);
      states.push_back(init->state);
    }
    expect_code(vdaf->VerifyInitFromShares(Bytes(31, 0), kCtx, 0, param, nonce,
                                           shares->public_share, shares->input_shares[0]),
                ErrorCode::kInvalidArgument, "short verify key");
    auto prepared = prepare(0, shares->public_share, shares->input_shares[0]);
    ASSERT_TRUE(prepared);
    expect_code(vdaf->VerifyInit(verify_key, Bytes{'x'}, param, **prepared),
                ErrorCode::kInvalidArgument, "another ctx");
    ASSERT_TRUE(vdaf->VerifierSharesToMessage(kCtx, param, verifier_shares));
    {
      auto fewer = verifier_shares;
      fewer.pop_back();
      expect_code(vdaf->VerifierSharesToMessage(kCtx, param, fewer), ErrorCode::kInvalidArgument,
                  "too few verifier shares");
    }
    for (size_t agg = 0; agg < verifier_shares.size(); ++agg) {
      auto truncated = verifier_shares;
      truncated[agg].pop_back();
      expect_code(vdaf->VerifierSharesToMessage(kCtx, param, truncated), ErrorCode::kDecodeError,
                  "truncated verifier share");
      auto longer = verifier_shares;
      longer[agg].push_back(0);
      expect_code(vdaf->VerifierSharesToMessage(kCtx, param, longer), ErrorCode::kDecodeError,
                  "overlong verifier share");
      auto over = verifier_shares;
      std::fill_n(over[agg].begin(), element, 0xff);
      expect_code(vdaf->VerifierSharesToMessage(kCtx, param, over), ErrorCode::kDecodeError,
                  "verifier element >= p");
    }

    // States that are not this instance's.
    VerifyState wrong_field = states[0];
    wrong_field.memory = std::vector<Field255>(1);
    expect_code(vdaf->VerifyNext(kCtx, wrong_field, {}), ErrorCode::kDecodeError, "wrong field");
    VerifyState wrong_size = states[0];
    std::visit([](auto& elements) { elements.push_back({}); }, wrong_size.memory);
    expect_code(vdaf->VerifyNext(kCtx, wrong_size, states[0].seed), ErrorCode::kDecodeError,
                "wrong output length");
    VerifyState wrong_seed = states[0];
    wrong_seed.seed.push_back(0);
    expect_code(vdaf->VerifyNext(kCtx, wrong_seed, wrong_seed.seed), ErrorCode::kDecodeError,
                "wrong seed length");

    // Aggregate shares.
    const Bytes agg_share = EncodeFieldVector(vdaf->AggregateInit(param));
    EXPECT_EQ(agg_share.size(), vdaf->AggShareSize());
    ASSERT_TRUE(vdaf->DecodeAggShare(param, agg_share));
    expect_code(vdaf->DecodeAggShare(param, Bytes(agg_share.begin(), agg_share.end() - 1)),
                ErrorCode::kDecodeError, "truncated aggregate share");
    Bytes agg_longer = agg_share;
    agg_longer.resize(agg_share.size() + element);
    expect_code(vdaf->DecodeAggShare(param, agg_longer), ErrorCode::kDecodeError,
                "overlong aggregate share");
    Bytes agg_over = agg_share;
    std::fill_n(agg_over.begin(), element, 0xff);
    expect_code(vdaf->DecodeAggShare(param, agg_over), ErrorCode::kDecodeError,
                "aggregate element >= p");
    std::vector<Bytes> agg_shares(vdaf->shares(), agg_share);
    ASSERT_TRUE(vdaf->Unshard(param, agg_shares, 0));
    agg_shares.pop_back();
    expect_code(vdaf->Unshard(param, agg_shares, 0), ErrorCode::kInvalidArgument,
                "too few aggregate shares");
    agg_shares.push_back(agg_over);
    expect_code(vdaf->Unshard(param, agg_shares, 0), ErrorCode::kDecodeError,
                "malformed aggregate share");
  }
}

// A state survives its storage encoding (two aggregators; see vdaf.h).
TEST(Prio3, StateRoundTripsThroughStorage) {
  std::mt19937_64 random(14);
  auto vdaf = Must(Prio3::MultihotCountVec(7, 3, 3, 2));
  const Bytes nonce = RandomBytes(random, 16);
  auto shares = vdaf->Shard(kCtx, std::vector<uint64_t>{1, 0, 0, 1, 0, 0, 1}, nonce,
                            RandomBytes(random, vdaf->rand_size()));
  ASSERT_TRUE(shares);
  const AggregationParameter& param = **vdaf->DecodeAggParam({}, nullptr);
  const Bytes verify_key = RandomBytes(random, 32);
  std::vector<Bytes> verifier_shares;
  std::vector<VerifyState> states;
  for (int agg = 0; agg < 2; ++agg) {
    auto init = vdaf->VerifyInitFromShares(verify_key, kCtx, agg, param, nonce,
                                           shares->public_share, shares->input_shares[agg]);
    ASSERT_TRUE(init);
    verifier_shares.push_back(init->verifier_share);
    auto stored = DecodeVerifyState(EncodeVerifyState(init->state));
    ASSERT_TRUE(stored);
    states.push_back(*stored);
  }
  auto message = vdaf->VerifierSharesToMessage(kCtx, param, verifier_shares);
  ASSERT_TRUE(message);
  FieldVector sum = vdaf->AggregateInit(param);
  for (VerifyState& state : states) {
    auto done = vdaf->VerifyNext(kCtx, state, *message);
    ASSERT_TRUE(done && done->finished);
    ASSERT_TRUE(AddFieldVector(sum, done->out_share));
  }
  EXPECT_EQ(std::get<std::vector<Field128>>(sum)[3], Field128::One());
}

// ---- Batch verification ------------------------------------------------------------

// A variant with an honest measurement generator and a cheating client's
// encoded measurement, which verification must reject.
struct BatchCase {
  std::unique_ptr<Prio3> vdaf;
  std::function<Measurement(std::mt19937_64&)> honest;
  std::vector<uint64_t> cheating;
};

std::vector<BatchCase> BatchCases() {
  std::vector<BatchCase> cases;
  auto bits = [](std::mt19937_64& random, size_t length, size_t max_ones) {
    std::vector<uint64_t> values(length, 0);
    for (size_t i = 0; i < max_ones; ++i) values[random() % length] = 1;
    return values;
  };
  cases.push_back({Must(Prio3::Count(2)),
                   [](std::mt19937_64& random) { return Measurement(uint64_t{random() % 2}); },
                   {2}});
  cases.push_back({Must(Prio3::Sum(255, 2)),
                   [](std::mt19937_64& random) { return Measurement(uint64_t{random() % 256}); },
                   {2, 1, 1, 1, 1, 1, 1, 1}});
  for (size_t proofs = 1; proofs <= 3; ++proofs) {
    cases.push_back({Must(Prio3::SumVec(4, 3, 2, 2, proofs)),
                     [](std::mt19937_64& random) {
                       std::vector<uint64_t> values(4);
                       for (uint64_t& value : values) value = random() % 4;
                       return Measurement(values);
                     },
                     {1, 1, 0, 0, 2, 0, 1, 0}});
  }
  cases.push_back({Must(Prio3::SumVecWithMultiproof(Prio3::FieldKind::kField64, 2, 4, 3, 3, 2)),
                   [](std::mt19937_64& random) {
                     return Measurement(std::vector<uint64_t>{random() % 4, 0, 3, 1});
                   },
                   {1, 1, 0, 0, 0, 3, 1, 0}});
  cases.push_back({Must(Prio3::Histogram(10, 3, 2)),
                   [](std::mt19937_64& random) { return Measurement(uint64_t{random() % 10}); },
                   {0, 0, 1, 0, 0, 0, 0, 1, 0, 0}});
  cases.push_back({Must(Prio3::Histogram(100, 10, 3)),
                   [](std::mt19937_64& random) { return Measurement(uint64_t{random() % 100}); },
                   std::vector<uint64_t>(100, 0)});
  cases.push_back({Must(Prio3::MultihotCountVec(6, 2, 3, 2)),
                   [bits](std::mt19937_64& random) { return Measurement(bits(random, 6, 2)); },
                   {1, 1, 1, 0, 0, 0, 1, 1}});
  return cases;
}

struct BatchReport {
  Bytes nonce;
  ShardOutput shares;
  bool honest = true;
};

// Equal results: the same error code, or the same transition.
void ExpectSameResult(const Result<VerifyTransition>& batch, const Result<VerifyTransition>& single,
                      const std::string& where) {
  ASSERT_EQ(batch.has_value(), single.has_value()) << where;
  if (!single) {
    EXPECT_EQ(batch.error().code(), single.error().code()) << where;
    return;
  }
  EXPECT_EQ(batch->finished, single->finished) << where;
  EXPECT_EQ(EncodeVerifyState(batch->state), EncodeVerifyState(single->state)) << where;
  EXPECT_EQ(batch->verifier_share, single->verifier_share) << where;
  EXPECT_EQ(EncodeFieldVector(batch->out_share), EncodeFieldVector(single->out_share)) << where;
}

// VerifyInitBatch gives, entry by entry, exactly what VerifyInit gives, for
// every variant (1 to 3 proofs, 2 and 3 aggregators), every aggregator and
// batch sizes 1 to 9, over honest and cheating clients mixed; and finishing
// from the batch's transitions accepts exactly the honest reports.
TEST(Prio3, BatchVerifyInitEqualsSingleReports) {
  std::mt19937_64 random(21);
  for (const BatchCase& test : BatchCases()) {
    const Prio3& vdaf = *test.vdaf;
    const AggregationParameter& param = **vdaf.DecodeAggParam({}, nullptr);
    const Bytes verify_key = RandomBytes(random, 32);
    // Transitions kept from one batch to the next, whose vectors the next
    // batch may reuse.
    std::vector<std::vector<Result<VerifyTransition>>> outs(vdaf.shares());
    for (size_t size = 1; size <= 9; ++size) {
      std::vector<BatchReport> reports(size);
      for (BatchReport& report : reports) {
        report.nonce = RandomBytes(random, 16);
        report.honest = random() % 3 != 0;
        const Bytes rand = RandomBytes(random, vdaf.rand_size());
        auto shares = report.honest
                          ? vdaf.Shard(kCtx, test.honest(random), report.nonce, rand)
                          : vdaf.ShardEncodedForTesting(kCtx, test.cheating, report.nonce, rand);
        ASSERT_TRUE(shares) << shares.error().ToString();
        report.shares = std::move(*shares);
      }
      for (size_t agg = 0; agg < vdaf.shares(); ++agg) {
        std::vector<std::unique_ptr<PreparedReport>> prepared;
        std::vector<PreparedReport*> entries;
        for (const BatchReport& report : reports) {
          auto one =
              vdaf.PrepareReport(static_cast<int>(agg), kCtx, report.nonce,
                                 report.shares.public_share, report.shares.input_shares[agg]);
          ASSERT_TRUE(one) << one.error().ToString();
          prepared.push_back(std::move(*one));
          entries.push_back(prepared.back().get());
        }
        outs[agg].resize(size);
        vdaf.VerifyInitBatch(verify_key, kCtx, param, entries, outs[agg]);
        for (size_t i = 0; i < size; ++i) {
          ExpectSameResult(outs[agg][i], vdaf.VerifyInit(verify_key, kCtx, param, *entries[i]),
                           vdaf.name() + " aggregator " + std::to_string(agg) + ", batch of " +
                               std::to_string(size) + ", report " + std::to_string(i));
        }
      }
      for (size_t i = 0; i < size; ++i) {
        std::vector<Bytes> verifier_shares;
        for (size_t agg = 0; agg < vdaf.shares(); ++agg) {
          ASSERT_TRUE(outs[agg][i]) << outs[agg][i].error().ToString();
          verifier_shares.push_back(outs[agg][i]->verifier_share);
        }
        auto message = vdaf.VerifierSharesToMessage(kCtx, param, verifier_shares);
        bool accepted = message.has_value();
        for (size_t agg = 0; agg < vdaf.shares() && accepted; ++agg) {
          accepted = vdaf.VerifyNext(kCtx, outs[agg][i]->state, *message).has_value();
        }
        EXPECT_EQ(accepted, reports[i].honest) << vdaf.name() << ", report " << i;
      }
    }
  }
}

// A bad entry fails alone: a missing report, one prepared by another
// instance (of different lengths), one prepared with another ctx. The others
// verify as usual.
TEST(Prio3, BatchVerifyInitFailsOnlyBadEntries) {
  std::mt19937_64 random(22);
  auto vdaf = Must(Prio3::Histogram(10, 3, 2));
  auto other = Must(Prio3::Histogram(12, 3, 2));
  const AggregationParameter& param = **vdaf->DecodeAggParam({}, nullptr);
  const Bytes verify_key = RandomBytes(random, 32);
  auto prepare = [&](const Prio3& instance, int agg, const Bytes& ctx) {
    const Bytes nonce = RandomBytes(random, 16);
    auto shares = instance.Shard(ctx, Measurement(uint64_t{3}), nonce,
                                 RandomBytes(random, instance.rand_size()));
    EXPECT_TRUE(shares);
    auto prepared = instance.PrepareReport(agg, ctx, nonce, shares->public_share,
                                           shares->input_shares[static_cast<size_t>(agg)]);
    EXPECT_TRUE(prepared);
    return std::move(*prepared);
  };
  for (int agg = 0; agg < 2; ++agg) {
    std::vector<std::unique_ptr<PreparedReport>> prepared;
    prepared.push_back(prepare(*vdaf, agg, kCtx));
    prepared.push_back(prepare(*other, agg, kCtx));
    prepared.push_back(prepare(*vdaf, agg, kCtx));
    prepared.push_back(prepare(*vdaf, agg, Bytes{'x'}));
    prepared.push_back(prepare(*vdaf, agg, kCtx));
    std::vector<PreparedReport*> entries;
    for (const auto& report : prepared) entries.push_back(report.get());
    entries.push_back(nullptr);
    std::vector<Result<VerifyTransition>> out(entries.size());
    vdaf->VerifyInitBatch(verify_key, kCtx, param, entries, out);
    for (size_t i : {0, 2, 4}) {
      ASSERT_TRUE(out[i]) << out[i].error().ToString();
      ExpectSameResult(out[i], vdaf->VerifyInit(verify_key, kCtx, param, *entries[i]),
                       "report " + std::to_string(i));
    }
    // A helper's report is a seed: one of another instance with the same
    // field and lengths of public share looks like this instance's (it
    // fails at the decision), so only the leader can refuse report 1 here.
    if (agg == 1) {
      ExpectSameResult(out[1], vdaf->VerifyInit(verify_key, kCtx, param, *entries[1]), "report 1");
    }
    for (size_t i : {1, 3, 5}) {
      if (i == 1 && agg == 1) continue;
      ASSERT_FALSE(out[i]) << "report " << i;
      EXPECT_EQ(out[i].error().code(), ErrorCode::kInvalidArgument);
    }
    // A wrong key or output count fails every entry.
    std::vector<Result<VerifyTransition>> short_key(2);
    vdaf->VerifyInitBatch(Bytes(31), kCtx, param, std::span(entries).first(2), short_key);
    for (const auto& entry : short_key) EXPECT_FALSE(entry);
    std::vector<Result<VerifyTransition>> one(1);
    vdaf->VerifyInitBatch(verify_key, kCtx, param, std::span(entries).first(2), one);
    EXPECT_FALSE(one[0]);
  }
}

// ---- The FLP's building blocks ----------------------------------------------------------

template <typename F>
F NaiveEval(std::span<const F> coefficients, F x) {
  F value = F::Zero();
  for (size_t i = coefficients.size(); i-- > 0;) value = value * x + coefficients[i];
  return value;
}

template <typename F>
void CheckNttAgainstNaive(std::mt19937_64& random) {
  for (int log_size : {0, 1, 2, 3, 6}) {
    internal::Ntt<F> ntt(log_size);
    const size_t size = ntt.size();
    std::vector<F> coefficients(size);
    for (F& c : coefficients) c = F::FromUint64(random());
    std::vector<F> values = coefficients;
    ntt.Forward(values);
    const F root = internal::RootOfUnity<F>(log_size);
    F x = F::One();
    for (size_t i = 0; i < size; ++i) {
      ASSERT_EQ(values[i], NaiveEval<F>(coefficients, x)) << "size " << size << " index " << i;
      x *= root;
    }
    // Lagrange-basis evaluation at a random point agrees with the monomial
    // basis, and at a root of unity gives the value there.
    std::vector<F> nodes = internal::Powers(root, size), scaled;
    for (const F& node : nodes) scaled.push_back(node * F::FromUint64(size).Inverse());
    const F point = F::FromUint64(random());
    EXPECT_EQ(internal::EvalLagrange<F>(values, nodes, scaled, point),
              NaiveEval<F>(coefficients, point));
    EXPECT_EQ(internal::EvalLagrange<F>(values, nodes, scaled, nodes[size / 2]), values[size / 2]);
    std::vector<F> weights(size);
    internal::LagrangeWeights<F>(nodes, scaled, point, weights);
    F weighted = F::Zero();
    for (size_t i = 0; i < size; ++i) weighted += weights[i] * values[i];
    EXPECT_EQ(weighted, NaiveEval<F>(coefficients, point));
    ntt.Inverse(values);
    EXPECT_EQ(values, coefficients);
  }
}

TEST(Flp, NttAndLagrangeEvaluationMatchNaiveArithmetic) {
  std::mt19937_64 random(15);
  CheckNttAgainstNaive<Field64>(random);
  CheckNttAgainstNaive<Field128>(random);
  EXPECT_EQ(Field64::NthRootOfUnity(1), Field64::One());
  EXPECT_EQ(Field64::NthRootOfUnity(2), -Field64::One());
  EXPECT_EQ(Field64::RootOfUnityLog2(32), Field64::FromUint64(Field64::kGenerator));
  EXPECT_EQ(Field64::NthRootOfUnity(3), Field64::Zero());
}

// A test circuit with a degree-3 gadget called several times: its gadget
// polynomial has 3(p - 1) + 1 values in a proof and the verifier must extend
// them to the next power of two before reading the gadget outputs.
class CubicCircuit final : public flp::Circuit<Field64> {
 public:
  static std::shared_ptr<const CubicCircuit> Create(size_t length) {
    return std::make_shared<CubicCircuit>(length,
                                          *flp::Gadget<Field64>::PolyEval({0, 2, -3, 1}, length));
  }
  CubicCircuit(size_t length, flp::Gadget<Field64> gadget)
      : Circuit(length, 0, length, length, {std::move(gadget)}) {}
  Result<std::vector<Field64>> Encode(const Measurement&) const override {
    return MakeError(ErrorCode::kUnsupported, "test circuit");
  }
  void Eval(std::span<const Field64> meas, std::span<const Field64>, Field64,
            flp::GadgetCalls<Field64>& gadgets, std::span<Field64> out) const override {
    for (size_t i = 0; i < meas.size(); ++i) out[i] = gadgets.Call(0, meas.subspan(i, 1));
  }
  void Truncate(std::span<const Field64> meas, std::span<Field64> out) const override {
    std::copy(meas.begin(), meas.end(), out.begin());
  }
};

TEST(Flp, DegreeThreeGadgetNeedsExtensionAndStillDecides) {
  std::mt19937_64 random(16);
  for (size_t length : {1, 3, 5, 12}) {
    flp::Flp<Field64> flp(CubicCircuit::Create(length));
    const flp::Gadget<Field64>& gadget = flp.circuit().gadgets()[0];
    if (length > 1) {
      EXPECT_GT(gadget.eval_len(), gadget.gadget_poly_len());
    }
    auto random_vec = [&](size_t size) {
      std::vector<Field64> out(size);
      for (Field64& x : out) x = Field64::FromUint64(random());
      return out;
    };
    for (bool valid : {true, false}) {
      std::vector<Field64> meas(length);
      for (Field64& x : meas) x = Field64::FromUint64(random() % 3);
      if (!valid) meas[length / 2] = Field64::FromUint64(3);
      std::vector<Field64> proof(flp.proof_len());
      flp.Prove(meas, random_vec(flp.prove_rand_len()), {}, proof);
      // Two shares of the measurement and the proof; the verifier shares add up.
      std::vector<Field64> meas_share = random_vec(length),
                           proof_share = random_vec(flp.proof_len());
      std::vector<Field64> meas_rest = meas, proof_rest = proof;
      for (size_t i = 0; i < length; ++i) meas_rest[i] -= meas_share[i];
      for (size_t i = 0; i < proof.size(); ++i) proof_rest[i] -= proof_share[i];
      const std::vector<Field64> query_rand = random_vec(flp.query_rand_len());
      const Field64 half = Field64::FromUint64(2).Inverse();
      std::vector<Field64> verifier(flp.verifier_len()), other(flp.verifier_len());
      ASSERT_TRUE(flp.Query(meas_share, proof_share, query_rand, {}, half, verifier));
      ASSERT_TRUE(flp.Query(meas_rest, proof_rest, query_rand, {}, half, other));
      for (size_t i = 0; i < verifier.size(); ++i) verifier[i] += other[i];
      EXPECT_EQ(flp.Decide(verifier), valid) << "length " << length;
      // A proof with a changed gadget polynomial value is rejected.
      if (valid) {
        proof_rest.back() += Field64::One();
        ASSERT_TRUE(flp.Query(meas_rest, proof_rest, query_rand, {}, half, other));
        ASSERT_TRUE(flp.Query(meas_share, proof_share, query_rand, {}, half, verifier));
        for (size_t i = 0; i < verifier.size(); ++i) verifier[i] += other[i];
        EXPECT_FALSE(flp.Decide(verifier));
      }
    }
  }
}

// Two circuits that differ only in how they feed a ParallelSum(Mul, 2)
// gadget: full inputs through Call, or weighted leading inputs through
// CallScaled (the trailing ones missing, hence zero). Proofs and verifiers
// must be identical.
class PairCircuit final : public flp::Circuit<Field128> {
 public:
  PairCircuit(bool scaled, size_t calls)
      : Circuit(2 * calls, 0, 1, 1, {*flp::Gadget<Field128>::ParallelSumMul(2, calls)}),
        scaled_(scaled) {}
  Result<std::vector<Field128>> Encode(const Measurement&) const override {
    return MakeError(ErrorCode::kUnsupported, "test circuit");
  }
  void Eval(std::span<const Field128> meas, std::span<const Field128>, Field128,
            flp::GadgetCalls<Field128>& gadgets, std::span<Field128> out) const override {
    out[0] = Field128::Zero();
    for (size_t call = 0; call < meas.size() / 2; ++call) {
      const Field128 a = meas[2 * call], b = meas[2 * call + 1];
      if (scaled_) {
        const Field128 weight = gadgets.NextCallWeight(0);
        const Field128 inputs[2] = {weight * a, weight * b};
        out[0] += gadgets.CallScaled(0, inputs);
      } else {
        const Field128 inputs[4] = {a, b, Field128::Zero(), Field128::Zero()};
        out[0] += gadgets.Call(0, inputs);
      }
    }
  }
  void Truncate(std::span<const Field128> meas, std::span<Field128> out) const override {
    out[0] = meas[0];
  }

 private:
  bool scaled_;
};

TEST(Flp, ScaledCallsMatchPlainCalls) {
  std::mt19937_64 random(17);
  auto random_vec = [&](size_t size) {
    std::vector<Field128> out(size);
    for (Field128& x : out) x = Field128::FromUint64(random());
    return out;
  };
  for (size_t calls : {1, 3, 8}) {
    flp::Flp<Field128> plain(std::make_shared<PairCircuit>(false, calls));
    flp::Flp<Field128> scaled(std::make_shared<PairCircuit>(true, calls));
    const auto meas = random_vec(2 * calls), prove_rand = random_vec(plain.prove_rand_len());
    std::vector<Field128> proof_plain(plain.proof_len()), proof_scaled(scaled.proof_len());
    plain.Prove(meas, prove_rand, {}, proof_plain);
    scaled.Prove(meas, prove_rand, {}, proof_scaled);
    EXPECT_EQ(proof_plain, proof_scaled);
    const auto query_rand = random_vec(plain.query_rand_len());
    std::vector<Field128> verifier_plain(plain.verifier_len()),
        verifier_scaled(scaled.verifier_len());
    ASSERT_TRUE(plain.Query(meas, proof_plain, query_rand, {}, Field128::One(), verifier_plain));
    ASSERT_TRUE(scaled.Query(meas, proof_plain, query_rand, {}, Field128::One(), verifier_scaled));
    EXPECT_EQ(verifier_plain, verifier_scaled);
  }
}

TEST(Flp, QueryAtARootOfUnityAborts) {
  flp::Flp<Field64> flp(CubicCircuit::Create(1));
  std::vector<Field64> meas = {Field64::One()}, proof(flp.proof_len()),
                       verifier(flp.verifier_len());
  // p = 2, and -1 is a square root of unity.
  const std::vector<Field64> query_rand = {-Field64::One()};
  auto result = flp.Query(meas, proof, query_rand, {}, Field64::One(), verifier);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code(), ErrorCode::kVerifyFailed);
}

}  // namespace
}  // namespace canopy::poplar
