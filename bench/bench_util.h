// Helpers shared by the benchmark programs.
#ifndef CANOPY_BENCH_BENCH_UTIL_H_
#define CANOPY_BENCH_BENCH_UTIL_H_

#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

namespace canopy::bench {

// The time-stamp counter's rate in GHz, measured once against the steady
// clock. The TSC ticks at a constant nominal rate, which can differ from the
// core's actual (turbo) clock: treat "cycles" as nominal-clock cycles.
double TscGigahertz();

// Counts time-stamp-counter ticks over a benchmark loop, excluding paused
// stretches, and reports them per item:
//
//   TscCycles cycles;
//   for (auto _ : state) { ... }
//   cycles.Report(state, items_per_iteration, "cycles_per_block");
class TscCycles {
 public:
  TscCycles();

  // Pause and resume the benchmark's timer and this counter together.
  void Pause(benchmark::State& state);
  void Resume(benchmark::State& state);

  // Adds counter `name`: ticks / (iterations * items_per_iteration).
  void Report(benchmark::State& state, double items_per_iteration, const char* name) const;

 private:
  uint64_t start_;
  uint64_t paused_ticks_ = 0;
  uint64_t pause_start_ = 0;
};

// The smallest of a benchmark's repetitions: a statistic beside mean,
// median and stddev, for
//   BENCHMARK(...)->ComputeStatistics("min", bench::Minimum);
// and then --benchmark_repetitions=N prints a _min row (times and counters).
// On a shared machine other work only ever adds time, so the minimum of
// several repetitions is the steadiest estimate of a benchmark's own cost.
double Minimum(const std::vector<double>& values);

}  // namespace canopy::bench

#endif  // CANOPY_BENCH_BENCH_UTIL_H_
