#include "bench/bench_util.h"

#include <chrono>
#include <thread>
#include <x86intrin.h>

namespace canopy::bench {

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

void ReportCyclesPerItem(benchmark::State& state, double items_per_iteration,
                         const char* counter_name) {
  // A rate counter divides by the elapsed seconds and kInvert flips it, so
  // this shows seconds * Hz / items: cycles per item.
  double total_items = items_per_iteration * static_cast<double>(state.iterations());
  state.counters[counter_name] = benchmark::Counter(
      total_items / (TscGigahertz() * 1e9), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

}  // namespace canopy::bench
