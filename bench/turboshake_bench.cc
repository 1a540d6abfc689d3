// Benchmarks for TurboSHAKE128: the bare Keccak-p[1600, 12] permutation and
// hashing throughput for short, medium and long messages.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "bench/bench_util.h"
#include "crypto/turboshake128.h"

namespace canopy::bench {
namespace {

void BM_TurboShake128Permutation(benchmark::State& state) {
  uint64_t lanes[25] = {};
  TscCycles cycles;
  for (auto _ : state) {
    crypto::KeccakP1600Rounds12(lanes);
    // The state feeds the next call, so the calls cannot overlap or vanish.
    benchmark::DoNotOptimize(lanes);
  }
  cycles.Report(state, 1, "cycles_per_permutation");
}
BENCHMARK(BM_TurboShake128Permutation);

// Each implementation of the permutation (0: portable, 1: BMI1/BMI2).
void BM_TurboShake128PermutationImplementation(benchmark::State& state) {
  const bool bmi = state.range(0) == 1;
  if (bmi && !crypto::KeccakP1600HasBmi()) {
    state.SkipWithError("no BMI1/BMI2 on this CPU");
    return;
  }
  uint64_t lanes[25] = {};
  TscCycles cycles;
  for (auto _ : state) {
    if (bmi) {
      crypto::KeccakP1600Rounds12Bmi(lanes);
    } else {
      crypto::KeccakP1600Rounds12Portable(lanes);
    }
    benchmark::DoNotOptimize(lanes);
  }
  state.SetLabel(bmi ? "bmi" : "portable");
  cycles.Report(state, 1, "cycles_per_permutation");
}
BENCHMARK(BM_TurboShake128PermutationImplementation)->Arg(0)->Arg(1);

// One-shot TurboSHAKE128 of state.range(0) bytes with a 32-byte output, as a
// VDAF seed derivation would use it.
void BM_TurboShake128Hash(benchmark::State& state) {
  const size_t length = static_cast<size_t>(state.range(0));
  std::vector<uint8_t> message(length);
  for (size_t i = 0; i < length; ++i) message[i] = static_cast<uint8_t>(i);
  uint8_t out[32];
  TscCycles cycles;
  for (auto _ : state) {
    crypto::TurboShake128::Hash(message, 0x01, out);
    benchmark::DoNotOptimize(out);
    benchmark::ClobberMemory();
  }
  const double bytes = static_cast<double>(length);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
  cycles.Report(state, bytes, "cycles_per_byte");
}
BENCHMARK(BM_TurboShake128Hash)->Arg(64)->Arg(1024)->Arg(64 * 1024);

}  // namespace
}  // namespace canopy::bench
