// Benchmarks for Poplar1 at BITS = 256 (and 16, to compare with published
// figures): sharding, verification of one report at one level by both
// aggregators (inner levels and the leaf, 2 to 256 candidates), and the whole
// walk of one report through every level.
//
// "Verification" here is everything both aggregators compute for a report at
// a level: verify_init, the two verifier-message combinations and both
// verify_next rounds, from a report prepared (decoded) at an earlier level, as
// the helper's cache keeps it during a walk.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cassert>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "bench/bench_util.h"
#include "crypto/keccak_x4.h"
#include "crypto/turboshake128.h"
#include "poplar/poplar1.h"

namespace canopy::bench {
namespace {

using idpf::BitString;
using poplar::AggregationParameter;
using poplar::Poplar1;

const std::vector<uint8_t> kCtx = {'b', 'e', 'n', 'c', 'h'};
const std::vector<uint8_t> kVerifyKey(32, 7);

BitString RandomString(std::mt19937_64& random, size_t bits) {
  BitString string;
  for (size_t i = 0; i < bits; ++i) string = string.Extended(random() & 1);
  return string;
}

// The aggregation parameters of a walk with `width` candidates per level
// (fewer near the root): level l holds the children of the first width / 2
// candidates of level l - 1, and the path of `alpha` is always among them.
std::vector<std::shared_ptr<const AggregationParameter>> WalkParams(const Poplar1& vdaf,
                                                                    const BitString& alpha,
                                                                    size_t width) {
  std::vector<std::shared_ptr<const AggregationParameter>> params;
  std::vector<BitString> candidates = {*BitString::Parse("0"), *BitString::Parse("1")};
  for (size_t level = 0; level < vdaf.bits(); ++level) {
    if (level > 0) {
      std::set<BitString> next = {alpha.Prefix(level + 1)};
      for (const BitString& parent : candidates) {
        if (next.size() + 2 > width) break;
        next.insert(parent.Extended(false));
        next.insert(parent.Extended(true));
      }
      candidates.assign(next.begin(), next.end());
    }
    params.push_back(
        *vdaf.MakeAggParam(level, candidates, params.empty() ? nullptr : params.back().get()));
  }
  return params;
}

// One client's report at both aggregators.
struct TwoAggregatorReport {
  std::unique_ptr<poplar::PreparedReport> prepared[2];
};

TwoAggregatorReport Prepare(const Poplar1& vdaf, const poplar::ShardOutput& shares,
                            std::span<const uint8_t> nonce) {
  TwoAggregatorReport report;
  for (int agg = 0; agg < 2; ++agg) {
    report.prepared[agg] = std::move(
        *vdaf.PrepareReport(agg, kCtx, nonce, shares.public_share, shares.input_shares[agg]));
  }
  return report;
}

// Both aggregators' verification of one report at one level.
void VerifyBoth(const Poplar1& vdaf, const AggregationParameter& param,
                TwoAggregatorReport& report) {
  auto init0 = vdaf.VerifyInit(kVerifyKey, kCtx, param, *report.prepared[0]);
  auto init1 = vdaf.VerifyInit(kVerifyKey, kCtx, param, *report.prepared[1]);
  std::vector<uint8_t> round0[2] = {std::move(init0->verifier_share),
                                    std::move(init1->verifier_share)};
  auto message0 = vdaf.VerifierSharesToMessage(kCtx, param, round0);
  auto next0 = vdaf.VerifyNext(kCtx, std::move(init0->state), *message0);
  auto next1 = vdaf.VerifyNext(kCtx, std::move(init1->state), *message0);
  std::vector<uint8_t> round1[2] = {std::move(next0->verifier_share),
                                    std::move(next1->verifier_share)};
  auto message1 = vdaf.VerifierSharesToMessage(kCtx, param, round1);
  auto out0 = vdaf.VerifyNext(kCtx, std::move(next0->state), *message1);
  auto out1 = vdaf.VerifyNext(kCtx, std::move(next1->state), *message1);
  benchmark::DoNotOptimize(out0);
  benchmark::DoNotOptimize(out1);
}

struct Fixture {
  std::unique_ptr<Poplar1> vdaf;
  BitString alpha;
  std::vector<uint8_t> nonce = std::vector<uint8_t>(16, 3);
  poplar::ShardOutput shares;

  explicit Fixture(size_t bits) : vdaf(*Poplar1::Create(bits)) {
    std::mt19937_64 random(bits);
    alpha = RandomString(random, bits);
    std::vector<uint8_t> rand(Poplar1::kRandSize, 5);
    shares = *vdaf->Shard(kCtx, alpha, nonce, rand);
  }
};

// The 4-way Keccak-p[1600,12] that hashes the verification randomness of four
// reports (and the IDPF's leaf XOFs) at once: arg 0 runs the AVX2 path, 1 the
// portable one; cycles are per permutation (a quarter of a 4-way call).
void BM_KeccakP1600Rounds12x4(benchmark::State& state) {
  const auto implementation = state.range(0) == 0 ? crypto::KeccakX4Implementation::kAuto
                                                  : crypto::KeccakX4Implementation::kPortable;
  crypto::KeccakStateX4 lanes{};
  TscCycles cycles;
  for (auto _ : state) {
    crypto::KeccakP1600Rounds12x4(lanes, implementation);
    benchmark::DoNotOptimize(lanes);
  }
  cycles.Report(state, 4.0, "cycles_per_permutation");
}
BENCHMARK(BM_KeccakP1600Rounds12x4)->Arg(0)->Arg(1);

void BM_Poplar1Shard(benchmark::State& state) {
  Fixture fixture(static_cast<size_t>(state.range(0)));
  std::vector<uint8_t> rand(Poplar1::kRandSize, 9);
  for (auto _ : state) {
    auto shares = fixture.vdaf->Shard(kCtx, fixture.alpha, fixture.nonce, rand);
    benchmark::DoNotOptimize(shares);
    rand[0]++;
  }
}
BENCHMARK(BM_Poplar1Shard)->Arg(16)->Arg(256)->Unit(benchmark::kMicrosecond);

// Decoding a report's shares (both aggregators): done once per report per walk.
void BM_Poplar1PrepareReport(benchmark::State& state) {
  Fixture fixture(256);
  for (auto _ : state) {
    TwoAggregatorReport report = Prepare(*fixture.vdaf, fixture.shares, fixture.nonce);
    benchmark::DoNotOptimize(report);
  }
}
BENCHMARK(BM_Poplar1PrepareReport)->Unit(benchmark::kMicrosecond);

// One iteration verifies one report at one inner level (both aggregators),
// walking down the levels; the walk restarts, untimed, at the leaf.
void BM_Poplar1VerifyInnerLevel(benchmark::State& state) {
  Fixture fixture(256);
  const size_t width = static_cast<size_t>(state.range(0));
  const auto params = WalkParams(*fixture.vdaf, fixture.alpha, width);
  size_t first_full_level = 0;
  while (static_cast<const poplar::Poplar1AggParam&>(*params[first_full_level]).prefixes.size() <
         width) {
    ++first_full_level;
  }
  TwoAggregatorReport report;
  size_t level = 0;
  auto restart = [&] {
    report = Prepare(*fixture.vdaf, fixture.shares, fixture.nonce);
    for (level = 0; level < first_full_level; ++level)
      VerifyBoth(*fixture.vdaf, *params[level], report);
  };
  restart();
  TscCycles cycles;
  for (auto _ : state) {
    if (level + 1 == fixture.vdaf->bits()) {
      cycles.Pause(state);
      restart();
      cycles.Resume(state);
    }
    VerifyBoth(*fixture.vdaf, *params[level], report);
    ++level;
  }
  // Per aggregator: each does half of this work.
  state.counters["candidates"] = static_cast<double>(width);
  cycles.Report(state, 2.0 * static_cast<double>(width), "cycles_per_agg_candidate");
}
BENCHMARK(BM_Poplar1VerifyInnerLevel)->Arg(2)->Arg(16)->Arg(64)->Arg(256);

// Both aggregators' verification of a batch of reports at one level, as the
// DAP layer runs an aggregation job: one VerifyInitBatch per aggregator, then
// the rounds report by report. `init` keeps the transitions of the previous
// batch, whose vectors the next batch reuses.
void VerifyBatchBoth(const Poplar1& vdaf, const AggregationParameter& param,
                     std::vector<TwoAggregatorReport>& reports,
                     std::vector<Result<poplar::VerifyTransition>> (&init)[2]) {
  for (int agg = 0; agg < 2; ++agg) {
    std::vector<poplar::PreparedReport*> entries;
    entries.reserve(reports.size());
    for (TwoAggregatorReport& report : reports) entries.push_back(report.prepared[agg].get());
    init[agg].resize(reports.size());
    vdaf.VerifyInitBatch(kVerifyKey, kCtx, param, entries, init[agg]);
  }
  for (size_t r = 0; r < reports.size(); ++r) {
    std::vector<uint8_t> round0[2] = {std::move(init[0][r]->verifier_share),
                                      std::move(init[1][r]->verifier_share)};
    auto message0 = vdaf.VerifierSharesToMessage(kCtx, param, round0);
    auto next0 = vdaf.VerifyNext(kCtx, std::move(init[0][r]->state), *message0);
    auto next1 = vdaf.VerifyNext(kCtx, std::move(init[1][r]->state), *message0);
    std::vector<uint8_t> round1[2] = {std::move(next0->verifier_share),
                                      std::move(next1->verifier_share)};
    auto message1 = vdaf.VerifierSharesToMessage(kCtx, param, round1);
    auto out0 = vdaf.VerifyNext(kCtx, std::move(next0->state), *message1);
    auto out1 = vdaf.VerifyNext(kCtx, std::move(next1->state), *message1);
    benchmark::DoNotOptimize(out0);
    benchmark::DoNotOptimize(out1);
  }
}

// Distinct reports for a batch: the same measurement under different nonces
// (so every report has its own keys and randomness).
std::vector<TwoAggregatorReport> PrepareBatch(const Fixture& fixture, size_t count) {
  assert(count <= 65536);  // Two bytes of the nonce tell the reports apart.
  std::vector<TwoAggregatorReport> batch;
  std::vector<uint8_t> rand(Poplar1::kRandSize, 5);
  for (size_t i = 0; i < count; ++i) {
    std::vector<uint8_t> nonce = fixture.nonce;
    nonce[0] = static_cast<uint8_t>(i);
    nonce[1] = static_cast<uint8_t>(i >> 8);
    rand[0] = static_cast<uint8_t>(i);
    const poplar::ShardOutput shares = *fixture.vdaf->Shard(kCtx, fixture.alpha, nonce, rand);
    batch.push_back(Prepare(*fixture.vdaf, shares, nonce));
  }
  return batch;
}

// One iteration verifies a batch of range(1) reports at one inner level
// (both aggregators), walking down the levels; the walk restarts, untimed,
// at the leaf.
void BM_Poplar1VerifyInnerLevelBatch(benchmark::State& state) {
  Fixture fixture(256);
  const size_t width = static_cast<size_t>(state.range(0));
  const size_t reports = static_cast<size_t>(state.range(1));
  const auto params = WalkParams(*fixture.vdaf, fixture.alpha, width);
  size_t first_full_level = 0;
  while (static_cast<const poplar::Poplar1AggParam&>(*params[first_full_level]).prefixes.size() <
         width) {
    ++first_full_level;
  }
  std::vector<TwoAggregatorReport> batch;
  std::vector<Result<poplar::VerifyTransition>> init[2];
  size_t level = 0;
  auto restart = [&] {
    batch = PrepareBatch(fixture, reports);
    for (level = 0; level < first_full_level; ++level) {
      VerifyBatchBoth(*fixture.vdaf, *params[level], batch, init);
    }
  };
  restart();
  TscCycles cycles;
  for (auto _ : state) {
    if (level + 1 == fixture.vdaf->bits()) {
      cycles.Pause(state);
      restart();
      cycles.Resume(state);
    }
    VerifyBatchBoth(*fixture.vdaf, *params[level], batch, init);
    ++level;
  }
  state.counters["candidates"] = static_cast<double>(width);
  state.counters["reports"] = static_cast<double>(reports);
  cycles.Report(state, 2.0 * static_cast<double>(width * reports), "cycles_per_agg_candidate");
  state.counters["ns_per_agg_candidate"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * 2.0 * static_cast<double>(width * reports),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Poplar1VerifyInnerLevelBatch)
    ->ComputeStatistics("min", Minimum)
    ->Args({2, 64})
    ->Args({16, 64})
    ->Args({64, 64})
    ->Args({256, 64})
    ->Unit(benchmark::kMicrosecond);

// The aggregation parameters of a walk of `stride` bits a round with
// `survivors` survivors a round (fewer near the root), as the heavy-hitters
// walk asks them: each round's candidates are every `stride`-bit extension of
// its survivors, which are alpha's prefix and the first others among the
// previous round's candidates. Inner levels only. Each parameter is made
// from the one before it, so each report's evaluator keeps a round's first
// level and the next round starts from it.
std::vector<std::shared_ptr<const AggregationParameter>> StrideWalkParams(const Poplar1& vdaf,
                                                                          const BitString& alpha,
                                                                          size_t survivors,
                                                                          size_t stride) {
  auto extend = [stride](const std::vector<BitString>& prefixes) {
    std::vector<BitString> out = prefixes;
    for (size_t bit = 0; bit < stride; ++bit) {
      std::vector<BitString> next;
      for (const BitString& prefix : out) {
        next.push_back(prefix.Extended(false));
        next.push_back(prefix.Extended(true));
      }
      out = std::move(next);
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  std::vector<std::shared_ptr<const AggregationParameter>> params;
  std::vector<BitString> candidates = extend({BitString()});
  size_t level = stride - 1;
  params.push_back(*vdaf.MakeAggParam(level, candidates, nullptr));
  while (level + stride < vdaf.bits() - 1) {
    std::set<BitString> kept = {alpha.Prefix(level + 1)};
    for (const BitString& candidate : candidates) {
      if (kept.size() >= survivors) break;
      kept.insert(candidate);
    }
    candidates = extend(std::vector<BitString>(kept.begin(), kept.end()));
    level += stride;
    params.push_back(*vdaf.MakeAggParam(level, candidates, params.back().get()));
  }
  return params;
}

// One iteration verifies a batch of range(2) reports (both aggregators) in
// one round of a walk of range(1) bits a round with range(0) survivors a
// round: the work of a heavy-hitters walk's later rounds (the demo's and
// discovery_load's workloads keep 13 to 28 survivors at 3 or 4 bits a
// round). A batch of 64 reports stays in the caches from round to round; one
// of 8,192 does not, as a million reports' states do not in an aggregator;
// one of 65,536 does not fit the third-level cache either (its states are
// read from memory, as at a million). One survivor measures the part of a
// report's round that does not grow with the candidates. The first round,
// from the root, and restarts are untimed. Counters: per (report, round) and
// per candidate, per aggregator.
void BM_Poplar1VerifyStrideBatch(benchmark::State& state) {
  Fixture fixture(256);
  const size_t survivors = static_cast<size_t>(state.range(0));
  const size_t stride = static_cast<size_t>(state.range(1));
  const size_t reports = static_cast<size_t>(state.range(2));
  const auto params = StrideWalkParams(*fixture.vdaf, fixture.alpha, survivors, stride);
  std::vector<TwoAggregatorReport> batch;
  std::vector<Result<poplar::VerifyTransition>> init[2];
  size_t round = 0;
  auto restart = [&] {
    batch = PrepareBatch(fixture, reports);
    VerifyBatchBoth(*fixture.vdaf, *params[0], batch, init);
    round = 1;
  };
  restart();
  TscCycles cycles;
  size_t candidates = 0;
  for (auto _ : state) {
    if (round == params.size()) {
      cycles.Pause(state);
      restart();
      cycles.Resume(state);
    }
    candidates += static_cast<const poplar::Poplar1AggParam&>(*params[round]).prefixes.size();
    VerifyBatchBoth(*fixture.vdaf, *params[round], batch, init);
    ++round;
  }
  const double report_rounds = 2.0 * static_cast<double>(reports);
  state.counters["candidates"] =
      static_cast<double>(candidates) / static_cast<double>(state.iterations());
  cycles.Report(state, report_rounds, "cycles_per_agg_report_round");
  // Rates inverted: seconds per item, printed with a unit.
  state.counters["per_agg_report_round"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * report_rounds,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["per_agg_candidate"] =
      benchmark::Counter(static_cast<double>(candidates) * report_rounds,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_Poplar1VerifyStrideBatch)
    ->ComputeStatistics("min", Minimum)
    ->Args({24, 4, 64})
    ->Args({24, 3, 64})
    ->Args({24, 3, 8192})
    ->Args({1, 3, 64})
    ->Args({12, 3, 64})
    ->Args({12, 3, 65536})
    ->Args({24, 2, 64})
    ->Args({24, 1, 64})
    ->Unit(benchmark::kMicrosecond);

// One iteration verifies a batch of range(1) reports at the leaf (both
// aggregators), from node states cached at level BITS - 2 (walked there
// untimed).
void BM_Poplar1VerifyLeafBatch(benchmark::State& state) {
  Fixture fixture(256);
  const size_t width = static_cast<size_t>(state.range(0));
  const size_t reports = static_cast<size_t>(state.range(1));
  const auto params = WalkParams(*fixture.vdaf, fixture.alpha, width);
  std::vector<TwoAggregatorReport> batch;
  std::vector<Result<poplar::VerifyTransition>> init[2];
  auto refill = [&] {
    batch = PrepareBatch(fixture, reports);
    for (size_t level = 0; level + 1 < fixture.vdaf->bits(); ++level) {
      VerifyBatchBoth(*fixture.vdaf, *params[level], batch, init);
    }
  };
  TscCycles cycles;
  for (auto _ : state) {
    cycles.Pause(state);
    refill();
    cycles.Resume(state);
    VerifyBatchBoth(*fixture.vdaf, *params.back(), batch, init);
  }
  state.counters["candidates"] = static_cast<double>(width);
  state.counters["reports"] = static_cast<double>(reports);
  cycles.Report(state, 2.0 * static_cast<double>(width * reports), "cycles_per_agg_candidate");
}
BENCHMARK(BM_Poplar1VerifyLeafBatch)
    ->ComputeStatistics("min", Minimum)
    ->Args({16, 8})
    ->Iterations(40)
    ->Unit(benchmark::kMicrosecond);

// One iteration verifies one report at the leaf (both aggregators) from the
// node states cached at level BITS - 2. Reports are walked there in batches,
// untimed.
void BM_Poplar1VerifyLeaf(benchmark::State& state) {
  Fixture fixture(256);
  const size_t width = static_cast<size_t>(state.range(0));
  const auto params = WalkParams(*fixture.vdaf, fixture.alpha, width);
  constexpr size_t kBatch = 8;
  std::vector<TwoAggregatorReport> batch(kBatch);
  size_t next = kBatch;
  auto refill = [&] {
    for (TwoAggregatorReport& report : batch) {
      report = Prepare(*fixture.vdaf, fixture.shares, fixture.nonce);
      for (size_t level = 0; level + 1 < fixture.vdaf->bits(); ++level) {
        VerifyBoth(*fixture.vdaf, *params[level], report);
      }
    }
    next = 0;
  };
  refill();
  TscCycles cycles;
  for (auto _ : state) {
    if (next == kBatch) {
      cycles.Pause(state);
      refill();
      cycles.Resume(state);
    }
    VerifyBoth(*fixture.vdaf, *params.back(), batch[next++]);
  }
  state.counters["candidates"] = static_cast<double>(width);
  cycles.Report(state, 2.0 * static_cast<double>(width), "cycles_per_agg_candidate");
}
BENCHMARK(BM_Poplar1VerifyLeaf)->Arg(2)->Arg(16)->Arg(64)->Arg(256)->Unit(benchmark::kMicrosecond);

// A whole walk of one report through every level with up to `width`
// candidates per level, both aggregators, including decoding the shares.
void BM_Poplar1WholeWalk(benchmark::State& state) {
  Fixture fixture(static_cast<size_t>(state.range(0)));
  const size_t width = static_cast<size_t>(state.range(1));
  const auto params = WalkParams(*fixture.vdaf, fixture.alpha, width);
  for (auto _ : state) {
    TwoAggregatorReport report = Prepare(*fixture.vdaf, fixture.shares, fixture.nonce);
    for (const auto& param : params) VerifyBoth(*fixture.vdaf, *param, report);
  }
}
BENCHMARK(BM_Poplar1WholeWalk)
    ->ComputeStatistics("min", Minimum)
    ->Args({16, 16})
    ->Args({256, 16})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace canopy::bench
