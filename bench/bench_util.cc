#include "bench/bench_util.h"

#include <x86intrin.h>

#include <algorithm>
#include <chrono>
#include <thread>

namespace canopy::bench {

double Minimum(const std::vector<double>& values) {
  return values.empty() ? 0.0 : *std::min_element(values.begin(), values.end());
}

double TscGigahertz() {
  static const double rate = [] {
    auto start_time = std::chrono::steady_clock::now();
    uint64_t start_ticks = __rdtsc();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    uint64_t end_ticks = __rdtsc();
    auto end_time = std::chrono::steady_clock::now();
    double nanoseconds = std::chrono::duration<double, std::nano>(end_time - start_time).count();
    return static_cast<double>(end_ticks - start_ticks) / nanoseconds;
  }();
  return rate;
}

TscCycles::TscCycles() : start_(__rdtsc()) {}

void TscCycles::Pause(benchmark::State& state) {
  state.PauseTiming();
  pause_start_ = __rdtsc();
}

void TscCycles::Resume(benchmark::State& state) {
  paused_ticks_ += __rdtsc() - pause_start_;
  state.ResumeTiming();
}

void TscCycles::Report(benchmark::State& state, double items_per_iteration,
                       const char* name) const {
  const uint64_t ticks = __rdtsc() - start_ - paused_ticks_;
  const double items = items_per_iteration * static_cast<double>(state.iterations());
  state.counters[name] = items > 0 ? static_cast<double>(ticks) / items : 0.0;
}

}  // namespace canopy::bench
