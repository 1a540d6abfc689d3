// Benchmarks of field arithmetic: multiplication throughput (independent
// products over a vector), multiplication latency (a dependent chain),
// addition throughput and inversion, for Field64, Field128 and Field255; and
// Field64's vector addition.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "bench/bench_util.h"
#include "crypto/field128.h"
#include "crypto/field255.h"
#include "crypto/field64.h"

namespace canopy::crypto {
namespace {

constexpr size_t kVectorSize = 1024;

// Uniformly random elements, from a fixed seed.
template <typename F>
std::vector<F> RandomElements(size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<F> elements;
  elements.reserve(count);
  uint8_t bytes[F::kEncodedSize];
  while (elements.size() < count) {
    for (uint8_t& byte : bytes) byte = static_cast<uint8_t>(rng());
    F element;
    if (F::FromSampledBytes(bytes, &element)) elements.push_back(element);
  }
  return elements;
}

// out[i] = a[i] * b[i]: independent products, so this measures throughput.
template <typename F>
void BM_FieldMulThroughput(benchmark::State& state) {
  std::vector<F> a = RandomElements<F>(kVectorSize, 1);
  std::vector<F> b = RandomElements<F>(kVectorSize, 2);
  std::vector<F> out(kVectorSize);
  bench::TscCycles cycles;
  for (auto _ : state) {
    for (size_t i = 0; i < kVectorSize; ++i) out[i] = a[i] * b[i];
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kVectorSize));
  cycles.Report(state, kVectorSize, "cycles_per_mul");
}

// x = x * y[i]: each product depends on the previous one, so this measures
// latency.
template <typename F>
void BM_FieldMulLatency(benchmark::State& state) {
  std::vector<F> y = RandomElements<F>(kVectorSize, 3);
  F x = RandomElements<F>(1, 4)[0];
  bench::TscCycles cycles;
  for (auto _ : state) {
    for (size_t i = 0; i < kVectorSize; ++i) x = x * y[i];
    benchmark::DoNotOptimize(x);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kVectorSize));
  cycles.Report(state, kVectorSize, "cycles_per_mul");
}

// out[i] = a[i] + b[i].
template <typename F>
void BM_FieldAddThroughput(benchmark::State& state) {
  std::vector<F> a = RandomElements<F>(kVectorSize, 5);
  std::vector<F> b = RandomElements<F>(kVectorSize, 6);
  std::vector<F> out(kVectorSize);
  bench::TscCycles cycles;
  for (auto _ : state) {
    for (size_t i = 0; i < kVectorSize; ++i) out[i] = a[i] + b[i];
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kVectorSize));
  cycles.Report(state, kVectorSize, "cycles_per_add");
}

// sum += addend for a vector of range(0) Field64 elements (200: an output
// share of 25 survivors at three bits a round), through AddField64Vectors
// (range(1) = 1) or its portable loop (0).
void BM_Field64AddVectors(benchmark::State& state) {
  const size_t length = static_cast<size_t>(state.range(0));
  const bool dispatched = state.range(1) == 1;
  std::vector<Field64> sum = RandomElements<Field64>(length, 9);
  const std::vector<Field64> addend = RandomElements<Field64>(length, 10);
  bench::TscCycles cycles;
  for (auto _ : state) {
    if (dispatched) {
      AddField64Vectors(sum, addend);
    } else {
      AddField64VectorsPortable(sum, addend);
    }
    benchmark::DoNotOptimize(sum.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(length));
  cycles.Report(state, static_cast<double>(length), "cycles_per_add");
}
BENCHMARK(BM_Field64AddVectors)->Args({200, 0})->Args({200, 1});

// x = x.Inverse() + y: a dependent chain of inversions.
template <typename F>
void BM_FieldInverse(benchmark::State& state) {
  F x = RandomElements<F>(1, 7)[0];
  const F y = RandomElements<F>(1, 8)[0];
  bench::TscCycles cycles;
  for (auto _ : state) {
    x = x.Inverse() + y;
    benchmark::DoNotOptimize(x);
  }
  state.SetItemsProcessed(state.iterations());
  cycles.Report(state, 1, "cycles_per_inverse");
}

BENCHMARK_TEMPLATE(BM_FieldMulThroughput, Field64);
BENCHMARK_TEMPLATE(BM_FieldMulThroughput, Field128);
BENCHMARK_TEMPLATE(BM_FieldMulThroughput, Field255);
BENCHMARK_TEMPLATE(BM_FieldMulLatency, Field64);
BENCHMARK_TEMPLATE(BM_FieldMulLatency, Field128);
BENCHMARK_TEMPLATE(BM_FieldMulLatency, Field255);
BENCHMARK_TEMPLATE(BM_FieldAddThroughput, Field64);
BENCHMARK_TEMPLATE(BM_FieldAddThroughput, Field128);
BENCHMARK_TEMPLATE(BM_FieldAddThroughput, Field255);
BENCHMARK_TEMPLATE(BM_FieldInverse, Field64);
BENCHMARK_TEMPLATE(BM_FieldInverse, Field128);
BENCHMARK_TEMPLATE(BM_FieldInverse, Field255);

}  // namespace
}  // namespace canopy::crypto
