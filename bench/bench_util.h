// Helpers shared by the benchmark programs.
#ifndef CANOPY_BENCH_BENCH_UTIL_H_
#define CANOPY_BENCH_BENCH_UTIL_H_

#include <benchmark/benchmark.h>

#include <cstdint>

namespace canopy::bench {

// The time-stamp counter's rate in GHz, measured once against the steady
// clock. On current x86 cores the TSC runs at the nominal clock, so
// nanoseconds times this rate approximates core cycles.
double TscGigahertz();

// Adds a "cycles_per_<unit>" counter: the average TSC cycles per item, where
// `items_per_iteration` items are processed in each benchmark iteration.
void ReportCyclesPerItem(benchmark::State& state, double items_per_iteration,
                         const char* counter_name);

}  // namespace canopy::bench

#endif  // CANOPY_BENCH_BENCH_UTIL_H_
