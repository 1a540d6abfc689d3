// The ping-pong topology: Poplar1 (two rounds) and Prio3 (one round) run
// through both parties' state machines give the plain counts, and messages
// out of turn are rejected.
#include "dap/ping_pong.h"

#include <gtest/gtest.h>

#include <random>

#include "dap/task.h"
#include "poplar/poplar1.h"

namespace canopy::dap {
namespace {

using Kind = PingPongState::Kind;
using idpf::BitString;

const std::vector<uint8_t> kCtx = {'d', 'a', 'p'};

std::vector<uint8_t> RandomBytes(std::mt19937_64& random, size_t size) {
  std::vector<uint8_t> bytes(size);
  for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(random());
  return bytes;
}

struct Outcome {
  poplar::FieldVector shares[2];
  bool accepted = false;
};

// Runs one report through the topology; `tamper` flips a bit of the
// helper's first inbound message.
Outcome RunReport(const poplar::Vdaf& vdaf, const poplar::AggregationParameter& agg_param,
                  const std::vector<uint8_t>& verify_key, const poplar::ShardOutput& shares,
                  const std::vector<uint8_t>& nonce, bool tamper) {
  Outcome outcome;
  std::unique_ptr<poplar::PreparedReport> prepared[2];
  for (int agg = 0; agg < 2; ++agg) {
    auto report =
        vdaf.PrepareReport(agg, kCtx, nonce, shares.public_share, shares.input_shares[agg]);
    EXPECT_TRUE(report) << report.error().ToString();
    prepared[agg] = std::move(*report);
  }
  PingPongState leader = PingPongLeaderInit(vdaf, verify_key, kCtx, agg_param, *prepared[0]);
  EXPECT_EQ(leader.kind, Kind::kContinued);
  std::vector<uint8_t> to_helper = leader.outbound;
  if (tamper) to_helper.back() ^= 1;
  PingPongState helper =
      PingPongHelperInit(vdaf, verify_key, kCtx, agg_param, *prepared[1], to_helper);
  // Alternate until both are finished or one rejects.
  bool leader_turn = true;
  for (int step = 0; step < 8; ++step) {
    PingPongState& from = leader_turn ? helper : leader;
    PingPongState& to = leader_turn ? leader : helper;
    if (from.kind == Kind::kRejected) return outcome;
    if (from.kind == Kind::kFinished) break;
    to = PingPongContinued(vdaf, leader_turn, kCtx, agg_param, std::move(to.verify_state), to.round,
                           from.outbound);
    if (to.kind == Kind::kRejected) return outcome;
    leader_turn = !leader_turn;
  }
  if (leader.kind == Kind::kRejected || helper.kind == Kind::kRejected) return outcome;
  outcome.shares[0] = std::move(leader.out_share);
  outcome.shares[1] = std::move(helper.out_share);
  outcome.accepted = true;
  return outcome;
}

TEST(PingPong, Poplar1CountsThroughBothRounds) {
  std::mt19937_64 random(7);
  auto vdaf = poplar::Poplar1::Create(8);
  ASSERT_TRUE(vdaf);
  auto verify_key = RandomBytes(random, 32);
  std::vector<BitString> prefixes = {*BitString::Parse("0"), *BitString::Parse("1")};
  auto agg_param = (*vdaf)->MakeAggParam(0, prefixes, nullptr);
  ASSERT_TRUE(agg_param);
  poplar::FieldVector sums[2] = {(*vdaf)->AggregateInit(**agg_param),
                                 (*vdaf)->AggregateInit(**agg_param)};
  uint64_t ones = 0, accepted = 0;
  for (int i = 0; i < 20; ++i) {
    auto nonce = RandomBytes(random, 16);
    BitString measurement;
    for (int bit = 0; bit < 8; ++bit) measurement = measurement.Extended(random() & 1);
    auto shares = (*vdaf)->Shard(kCtx, measurement, nonce, RandomBytes(random, 128));
    ASSERT_TRUE(shares);
    bool tamper = i % 5 == 4;
    Outcome outcome = RunReport(**vdaf, **agg_param, verify_key, *shares, nonce, tamper);
    EXPECT_EQ(outcome.accepted, !tamper);
    if (!outcome.accepted) continue;
    ++accepted;
    ones += measurement.StartsWith(prefixes[1]);
    for (int agg = 0; agg < 2; ++agg)
      ASSERT_TRUE(poplar::AddFieldVector(sums[agg], outcome.shares[agg]));
  }
  std::vector<std::vector<uint8_t>> encoded = {poplar::EncodeFieldVector(sums[0]),
                                               poplar::EncodeFieldVector(sums[1])};
  auto counts = (*vdaf)->Unshard(**agg_param, encoded, accepted);
  ASSERT_TRUE(counts);
  EXPECT_EQ((*counts)[0], accepted - ones);
  EXPECT_EQ((*counts)[1], ones);
}

TEST(PingPong, Prio3CountFinishesInOneRound) {
  std::mt19937_64 random(8);
  auto vdaf = MakeVdaf(static_cast<uint32_t>(VdafType::kPrio3Count), {});
  ASSERT_TRUE(vdaf) << vdaf.error().ToString();
  auto agg_param = (*vdaf)->DecodeAggParam({}, nullptr);
  ASSERT_TRUE(agg_param);
  auto verify_key = RandomBytes(random, (*vdaf)->verify_key_size());
  poplar::FieldVector sums[2] = {(*vdaf)->AggregateInit(**agg_param),
                                 (*vdaf)->AggregateInit(**agg_param)};
  uint64_t total = 0;
  for (int i = 0; i < 10; ++i) {
    auto nonce = RandomBytes(random, 16);
    uint64_t measurement = random() & 1;
    total += measurement;
    auto shares =
        (*vdaf)->Shard(kCtx, measurement, nonce, RandomBytes(random, (*vdaf)->rand_size()));
    ASSERT_TRUE(shares);
    Outcome outcome = RunReport(**vdaf, **agg_param, verify_key, *shares, nonce, false);
    ASSERT_TRUE(outcome.accepted);
    for (int agg = 0; agg < 2; ++agg)
      ASSERT_TRUE(poplar::AddFieldVector(sums[agg], outcome.shares[agg]));
  }
  std::vector<std::vector<uint8_t>> encoded = {poplar::EncodeFieldVector(sums[0]),
                                               poplar::EncodeFieldVector(sums[1])};
  auto counts = (*vdaf)->Unshard(**agg_param, encoded, 10);
  ASSERT_TRUE(counts);
  EXPECT_EQ((*counts)[0], total);
}

TEST(PingPong, MessagesOutOfTurnAreRejected) {
  std::mt19937_64 random(9);
  auto vdaf = poplar::Poplar1::Create(4);
  ASSERT_TRUE(vdaf);
  auto verify_key = RandomBytes(random, 32);
  auto agg_param = (*vdaf)->MakeAggParam(0, {*BitString::Parse("0")}, nullptr);
  ASSERT_TRUE(agg_param);
  auto nonce = RandomBytes(random, 16);
  auto shares = (*vdaf)->Shard(kCtx, *BitString::Parse("0110"), nonce, RandomBytes(random, 128));
  ASSERT_TRUE(shares);
  auto helper_report =
      (*vdaf)->PrepareReport(1, kCtx, nonce, shares->public_share, shares->input_shares[1]);
  ASSERT_TRUE(helper_report);
  // The helper refuses a "finish" or garbage where "initialize" belongs.
  auto finish = Encode(PingPongMessage{PingPongType::kFinish, {}, {}});
  ASSERT_TRUE(finish);
  EXPECT_EQ(
      PingPongHelperInit(**vdaf, verify_key, kCtx, **agg_param, **helper_report, *finish).kind,
      Kind::kRejected);
  const std::vector<uint8_t> garbage = {7, 7, 7};
  EXPECT_EQ(
      PingPongHelperInit(**vdaf, verify_key, kCtx, **agg_param, **helper_report, garbage).kind,
      Kind::kRejected);
}

// The batch forms give exactly the single forms' states, report by report,
// including rejections and null entries.
TEST(PingPong, BatchInitMatchesSingleInit) {
  std::mt19937_64 random(10);
  auto vdaf = poplar::Poplar1::Create(6);
  ASSERT_TRUE(vdaf);
  auto verify_key = RandomBytes(random, 32);
  auto agg_param =
      (*vdaf)->MakeAggParam(1, {*BitString::Parse("01"), *BitString::Parse("10")}, nullptr);
  ASSERT_TRUE(agg_param);
  constexpr size_t kReports = 7;
  std::vector<std::unique_ptr<poplar::PreparedReport>> prepared[2];
  for (size_t i = 0; i < kReports; ++i) {
    auto nonce = RandomBytes(random, 16);
    BitString measurement;
    for (int bit = 0; bit < 6; ++bit) measurement = measurement.Extended(random() & 1);
    auto shares = (*vdaf)->Shard(kCtx, measurement, nonce, RandomBytes(random, 128));
    ASSERT_TRUE(shares);
    for (int agg = 0; agg < 2; ++agg) {
      // Two preparations each: one for the single form, one for the batch.
      for (int copy = 0; copy < 2; ++copy) {
        auto report = (*vdaf)->PrepareReport(agg, kCtx, nonce, shares->public_share,
                                             shares->input_shares[agg]);
        ASSERT_TRUE(report);
        prepared[agg].push_back(std::move(*report));
      }
    }
  }
  std::vector<poplar::PreparedReport*> leader_batch, helper_batch;
  std::vector<PingPongState> leader_single, helper_single;
  std::vector<std::vector<uint8_t>> inbound(kReports);
  for (size_t i = 0; i < kReports; ++i) {
    leader_single.push_back(
        PingPongLeaderInit(**vdaf, verify_key, kCtx, **agg_param, *prepared[0][2 * i]));
    inbound[i] = leader_single.back().outbound;
    if (i == 3) inbound[i].back() ^= 1;  // Tampered: caught in a later round.
    if (i == 5) inbound[i] = {9, 9};     // Not a ping-pong message.
    helper_single.push_back(
        PingPongHelperInit(**vdaf, verify_key, kCtx, **agg_param, *prepared[1][2 * i], inbound[i]));
    leader_batch.push_back(prepared[0][2 * i + 1].get());
    helper_batch.push_back(i == 6 ? nullptr : prepared[1][2 * i + 1].get());
  }
  std::vector<PingPongState> leader_out(kReports), helper_out(kReports);
  PingPongLeaderInitBatch(**vdaf, verify_key, kCtx, **agg_param, leader_batch, leader_out);
  std::vector<std::span<const uint8_t>> inbound_spans(inbound.begin(), inbound.end());
  PingPongHelperInitBatch(**vdaf, verify_key, kCtx, **agg_param, helper_batch, inbound_spans,
                          helper_out);
  for (size_t i = 0; i < kReports; ++i) {
    EXPECT_EQ(leader_out[i].kind, leader_single[i].kind) << i;
    EXPECT_EQ(leader_out[i].outbound, leader_single[i].outbound) << i;
    Kind expected = i == 6 ? Kind::kRejected : helper_single[i].kind;
    EXPECT_EQ(helper_out[i].kind, expected) << i;
    if (expected != Kind::kRejected) {
      EXPECT_EQ(helper_out[i].outbound, helper_single[i].outbound);
    }
  }
  EXPECT_EQ(helper_out[5].kind, Kind::kRejected);
}

}  // namespace
}  // namespace canopy::dap
