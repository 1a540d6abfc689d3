// Benchmarks for IdpfBBCGGI21 at BITS = 256: key generation, and evaluation
// per (report, candidate prefix) at inner levels as a heavy-hitters walk does
// it (each level's candidates are the children of half of the previous
// level's, evaluated from the cached parent states), against evaluation of
// every prefix from the root.
#include <benchmark/benchmark.h>

#include <array>
#include <optional>
#include <random>
#include <vector>

#include "bench/bench_util.h"
#include "idpf/idpf.h"

namespace canopy::bench {
namespace {

using idpf::BitString;
using idpf::CachedEvaluator;
using idpf::GeneratedKeys;
using idpf::Idpf;
using idpf::InnerValue;
using idpf::LeafValue;

constexpr size_t kBits = 256;
const std::vector<uint8_t> kCtx = {'b', 'e', 'n', 'c', 'h'};

struct Fixture {
  Idpf idpf = *Idpf::Create(kBits);
  std::array<uint8_t, 16> nonce{};
  GeneratedKeys keys;
  BitString alpha;

  Fixture() {
    std::mt19937_64 random(1);
    for (size_t i = 0; i < kBits; ++i) alpha = alpha.Extended(random() & 1);
    std::vector<InnerValue> beta_inner(kBits - 1, {idpf::Field64::One(), idpf::Field64::One()});
    LeafValue beta_leaf = {idpf::Field255::One(), idpf::Field255::One()};
    std::array<uint8_t, 32> rand;
    for (uint8_t& byte : rand) byte = static_cast<uint8_t>(random());
    keys = *idpf.Gen(alpha, beta_inner, beta_leaf, kCtx, nonce, rand);
  }
};

const Fixture& SharedFixture() {
  static const Fixture fixture;
  return fixture;
}

// Candidate sets for a walk with `width` candidates per level: level l holds
// the children of the first width / 2 candidates of level l - 1.
std::vector<std::vector<BitString>> WalkCandidates(size_t width) {
  std::vector<std::vector<BitString>> levels(kBits);
  levels[0] = {*BitString::Parse("0"), *BitString::Parse("1")};
  for (size_t level = 1; level < kBits; ++level) {
    for (const BitString& parent : levels[level - 1]) {
      if (levels[level].size() >= width) break;
      levels[level].push_back(parent.Extended(false));
      levels[level].push_back(parent.Extended(true));
    }
  }
  return levels;
}

void BM_IdpfGen(benchmark::State& state) {
  const Fixture& fixture = SharedFixture();
  std::vector<InnerValue> beta_inner(kBits - 1, {idpf::Field64::One(), idpf::Field64::One()});
  LeafValue beta_leaf = {idpf::Field255::One(), idpf::Field255::One()};
  std::array<uint8_t, 32> rand{};
  TscCycles cycles;
  for (auto _ : state) {
    auto keys = fixture.idpf.Gen(fixture.alpha, beta_inner, beta_leaf, kCtx, fixture.nonce, rand);
    benchmark::DoNotOptimize(keys);
    rand[0]++;
  }
  cycles.Report(state, 1, "cycles_per_gen");
}
BENCHMARK(BM_IdpfGen)->Unit(benchmark::kMicrosecond);

// The shared plans of a walk: level l's plan starts from level l - 1's set.
std::vector<std::shared_ptr<const idpf::EvaluationPlan>> WalkPlans(size_t width) {
  std::vector<std::vector<BitString>> levels = WalkCandidates(width);
  std::vector<std::shared_ptr<const idpf::EvaluationPlan>> plans;
  std::shared_ptr<const idpf::PrefixSet> previous;
  for (size_t level = 0; level < kBits; ++level) {
    auto set = *idpf::PrefixSet::Create(level, levels[level]);
    plans.push_back(idpf::EvaluationPlan::Create(set, previous));
    previous = set;
  }
  return plans;
}

// One iteration evaluates one inner level of one report's walk; the walk
// restarts (untimed) when it reaches the last inner level.
void BM_IdpfWalkInnerLevel(benchmark::State& state) {
  const Fixture& fixture = SharedFixture();
  const size_t width = static_cast<size_t>(state.range(0));
  const auto plans = WalkPlans(width);
  // Time only the levels where every level has `width` candidates.
  size_t first_full_level = 0;
  while (plans[first_full_level]->target()->size() < width) ++first_full_level;

  std::optional<CachedEvaluator> evaluator;
  std::vector<InnerValue> values(width);
  size_t level = 0;
  auto restart = [&] {
    evaluator.emplace(*CachedEvaluator::Create(fixture.idpf, 0, fixture.keys.public_share,
                                               fixture.keys.keys[0], kCtx, fixture.nonce));
    for (level = 0; level < first_full_level; ++level) {
      std::span<InnerValue> out(values.data(), plans[level]->target()->size());
      benchmark::DoNotOptimize(evaluator->EvaluateInner(*plans[level], out));
    }
  };
  restart();
  TscCycles cycles;
  for (auto _ : state) {
    if (level + 1 == kBits) {
      cycles.Pause(state);
      restart();
      cycles.Resume(state);
    }
    benchmark::DoNotOptimize(evaluator->EvaluateInner(*plans[level], values));
    benchmark::ClobberMemory();
    ++level;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * width));
  cycles.Report(state, static_cast<double>(width), "cycles_per_candidate");
}
BENCHMARK(BM_IdpfWalkInnerLevel)->Arg(2)->Arg(16)->Arg(128);

// The draft's eval: every prefix walked from the root, at a middle level.
void BM_IdpfEvalFromRootLevel128(benchmark::State& state) {
  const Fixture& fixture = SharedFixture();
  const size_t width = static_cast<size_t>(state.range(0));
  const std::vector<BitString> prefixes = WalkCandidates(width)[128];
  TscCycles cycles;
  for (auto _ : state) {
    auto values = fixture.idpf.EvalInner(0, fixture.keys.public_share, fixture.keys.keys[0], 128,
                                         prefixes, kCtx, fixture.nonce);
    benchmark::DoNotOptimize(values);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * width));
  cycles.Report(state, static_cast<double>(width), "cycles_per_candidate");
}
BENCHMARK(BM_IdpfEvalFromRootLevel128)->Arg(2)->Arg(16)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace canopy::bench
