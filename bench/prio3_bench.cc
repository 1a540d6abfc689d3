// Benchmarks for Prio3, per report, with two aggregators: sharding,
// verify_init at the leader and at the helper (decoding the shares
// included, as the draft's verify_init takes them encoded), and the decision
// (verifier_shares_to_message over both verifier shares), and verify_init
// over batches of reports (VerifyInitBatch, four reports per 4-way XOF).
//
// Variants: Count, Sum (max_measurement 2^32 - 1), SumVec (length 1000, max
// 1 and 255), Histogram (length 100 and 1000), MultihotCountVec (length 100,
// max_weight 10), with chunk_length near the square root of the encoded
// length, as the draft recommends.
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "bench/bench_util.h"
#include "poplar/prio3.h"

namespace canopy::bench {
namespace {

using poplar::Prio3;

const std::vector<uint8_t> kCtx = {'b', 'e', 'n', 'c', 'h'};
const std::vector<uint8_t> kVerifyKey(32, 7);
const std::vector<uint8_t> kNonce(16, 3);

enum class Variant {
  kCount,
  kSum32,
  kSumVec1000Bits1,
  kSumVec1000Bits8,
  kHistogram100,
  kHistogram1000,
  kMultihot100,
};

struct Fixture {
  std::unique_ptr<Prio3> vdaf;
  poplar::Measurement measurement;
  poplar::ShardOutput shares;
  std::shared_ptr<const poplar::AggregationParameter> param;
  std::vector<std::vector<uint8_t>> verifier_shares;

  explicit Fixture(Variant variant) {
    switch (variant) {
      case Variant::kCount:
        vdaf = *Prio3::Count(2);
        measurement = uint64_t{1};
        break;
      case Variant::kSum32:
        vdaf = *Prio3::Sum((uint64_t{1} << 32) - 1, 2);
        measurement = uint64_t{123456789};
        break;
      case Variant::kSumVec1000Bits1:
        vdaf = *Prio3::SumVec(1000, 1, Prio3::RecommendedChunkLength(1000), 2);
        measurement = std::vector<uint64_t>(1000, 1);
        break;
      case Variant::kSumVec1000Bits8:
        vdaf = *Prio3::SumVec(1000, 255, Prio3::RecommendedChunkLength(8000), 2);
        measurement = std::vector<uint64_t>(1000, 200);
        break;
      case Variant::kHistogram100:
        vdaf = *Prio3::Histogram(100, Prio3::RecommendedChunkLength(100), 2);
        measurement = uint64_t{42};
        break;
      case Variant::kHistogram1000:
        vdaf = *Prio3::Histogram(1000, Prio3::RecommendedChunkLength(1000), 2);
        measurement = uint64_t{420};
        break;
      case Variant::kMultihot100: {
        vdaf = *Prio3::MultihotCountVec(100, 10, Prio3::RecommendedChunkLength(104), 2);
        std::vector<uint64_t> bits(100, 0);
        for (size_t i = 0; i < 100; i += 11) bits[i] = 1;
        measurement = bits;
        break;
      }
    }
    shares = *vdaf->Shard(kCtx, measurement, kNonce, std::vector<uint8_t>(vdaf->rand_size(), 5));
    param = *vdaf->DecodeAggParam({}, nullptr);
    for (int agg = 0; agg < 2; ++agg) {
      auto init = vdaf->VerifyInitFromShares(kVerifyKey, kCtx, agg, *param, kNonce,
                                             shares.public_share, shares.input_shares[agg]);
      verifier_shares.push_back(init->verifier_share);
    }
  }
};

void BM_Prio3Shard(benchmark::State& state, Variant variant) {
  Fixture fixture(variant);
  std::vector<uint8_t> rand(fixture.vdaf->rand_size(), 9);
  TscCycles cycles;
  for (auto _ : state) {
    auto shares = fixture.vdaf->Shard(kCtx, fixture.measurement, kNonce, rand);
    benchmark::DoNotOptimize(shares);
    rand[0]++;
  }
  state.SetLabel(fixture.vdaf->name());
  cycles.Report(state, 1.0, "cycles");
}

// verify_init of one aggregator (0: the leader; 1: the helper, which expands
// its shares from a seed).
void BM_Prio3VerifyInit(benchmark::State& state, Variant variant) {
  Fixture fixture(variant);
  const int agg = static_cast<int>(state.range(0));
  TscCycles cycles;
  for (auto _ : state) {
    auto init = fixture.vdaf->VerifyInitFromShares(kVerifyKey, kCtx, agg, *fixture.param, kNonce,
                                                   fixture.shares.public_share,
                                                   fixture.shares.input_shares[agg]);
    benchmark::DoNotOptimize(init);
  }
  state.SetLabel(fixture.vdaf->name() + (agg == 0 ? " leader" : " helper"));
  cycles.Report(state, 1.0, "cycles");
}

// verify_init of one aggregator (range(0): 0 the leader, 1 the helper) over
// a batch of range(1) distinct reports (the same measurement under different
// nonces and randomness), as the DAP layer runs an aggregation job: each
// report is prepared (decoded), then one VerifyInitBatch verifies them all.
// The transitions of one iteration are reused by the next, as a caller
// verifying batch after batch would. "per_report" is CPU time per report,
// comparable to BM_Prio3VerifyInit.
void BM_Prio3VerifyInitBatch(benchmark::State& state, Variant variant) {
  Fixture fixture(variant);
  const int agg = static_cast<int>(state.range(0));
  const size_t count = static_cast<size_t>(state.range(1));
  std::vector<std::vector<uint8_t>> nonces;
  std::vector<poplar::ShardOutput> shares;
  std::vector<uint8_t> rand(fixture.vdaf->rand_size(), 5);
  for (size_t i = 0; i < count; ++i) {
    std::vector<uint8_t> nonce = kNonce;
    nonce[0] = static_cast<uint8_t>(i);
    nonce[1] = static_cast<uint8_t>(i >> 8);
    rand[0] = static_cast<uint8_t>(i);
    rand[1] = static_cast<uint8_t>(i >> 8);
    shares.push_back(*fixture.vdaf->Shard(kCtx, fixture.measurement, nonce, rand));
    nonces.push_back(std::move(nonce));
  }
  std::vector<std::unique_ptr<poplar::PreparedReport>> prepared(count);
  std::vector<poplar::PreparedReport*> entries(count);
  std::vector<Result<poplar::VerifyTransition>> out(count);
  TscCycles cycles;
  for (auto _ : state) {
    for (size_t i = 0; i < count; ++i) {
      prepared[i] = *fixture.vdaf->PrepareReport(agg, kCtx, nonces[i], shares[i].public_share,
                                                 shares[i].input_shares[agg]);
      entries[i] = prepared[i].get();
    }
    fixture.vdaf->VerifyInitBatch(kVerifyKey, kCtx, *fixture.param, entries, out);
    benchmark::DoNotOptimize(out);
  }
  for (const Result<poplar::VerifyTransition>& entry : out) {
    if (!entry) state.SkipWithError("a report was rejected");
  }
  state.SetLabel(fixture.vdaf->name() + (agg == 0 ? " leader" : " helper"));
  state.counters["per_report"] =
      benchmark::Counter(static_cast<double>(count), benchmark::Counter::kIsIterationInvariantRate |
                                                         benchmark::Counter::kInvert);
  cycles.Report(state, static_cast<double>(count), "cycles_per_report");
}

// The decision over both verifier shares.
void BM_Prio3Decide(benchmark::State& state, Variant variant) {
  Fixture fixture(variant);
  TscCycles cycles;
  for (auto _ : state) {
    auto message =
        fixture.vdaf->VerifierSharesToMessage(kCtx, *fixture.param, fixture.verifier_shares);
    benchmark::DoNotOptimize(message);
  }
  state.SetLabel(fixture.vdaf->name());
  cycles.Report(state, 1.0, "cycles");
}

#define CANOPY_PRIO3_BENCHMARKS(name, variant)                                    \
  BENCHMARK_CAPTURE(BM_Prio3Shard, name, variant)->Unit(benchmark::kMicrosecond); \
  BENCHMARK_CAPTURE(BM_Prio3VerifyInit, name, variant)                            \
      ->Arg(0)                                                                    \
      ->Arg(1)                                                                    \
      ->Unit(benchmark::kMicrosecond);                                            \
  BENCHMARK_CAPTURE(BM_Prio3Decide, name, variant)->Unit(benchmark::kMicrosecond)

CANOPY_PRIO3_BENCHMARKS(Count, Variant::kCount);
CANOPY_PRIO3_BENCHMARKS(Sum32, Variant::kSum32);
CANOPY_PRIO3_BENCHMARKS(SumVec1000Bits1, Variant::kSumVec1000Bits1);
CANOPY_PRIO3_BENCHMARKS(SumVec1000Bits8, Variant::kSumVec1000Bits8);
CANOPY_PRIO3_BENCHMARKS(Histogram100, Variant::kHistogram100);
CANOPY_PRIO3_BENCHMARKS(Histogram1000, Variant::kHistogram1000);
CANOPY_PRIO3_BENCHMARKS(MultihotCountVec100, Variant::kMultihot100);

#define CANOPY_PRIO3_BATCH_BENCHMARK(name, variant)         \
  BENCHMARK_CAPTURE(BM_Prio3VerifyInitBatch, name, variant) \
      ->ComputeStatistics("min", Minimum)                   \
      ->ArgsProduct({{0, 1}, {1, 4, 16}})                   \
      ->Unit(benchmark::kMicrosecond)

CANOPY_PRIO3_BATCH_BENCHMARK(Count, Variant::kCount);
CANOPY_PRIO3_BATCH_BENCHMARK(Histogram1000, Variant::kHistogram1000);

}  // namespace
}  // namespace canopy::bench
