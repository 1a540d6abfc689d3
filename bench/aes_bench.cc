// Benchmarks for fixed-key AES: the hash of XofFixedKeyAes128 on one block at
// a time (a dependent chain, like one path down the tree) and batched (many
// independent blocks, like many candidates), on the AES-NI and portable paths;
// and the per-report cost of deriving the fixed key.
#include <benchmark/benchmark.h>

#include <array>
#include <vector>

#include "bench/bench_util.h"
#include "crypto/aes.h"
#include "crypto/xof.h"

namespace canopy::bench {
namespace {

using crypto::FixedKeyAes128;

constexpr std::array<uint8_t, 16> kKey = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

FixedKeyAes128::Implementation ImplementationOf(const benchmark::State& state) {
  return state.range(0) == 0 ? FixedKeyAes128::Implementation::kAuto
                             : FixedKeyAes128::Implementation::kPortable;
}

// Each block is the previous output, so no two AES calls overlap.
void BM_FixedKeyAesHashChained(benchmark::State& state) {
  FixedKeyAes128 aes(kKey, ImplementationOf(state));
  state.SetLabel(aes.uses_aesni() ? "aes-ni" : "portable");
  std::array<uint8_t, 16> block{};
  TscCycles cycles;
  for (auto _ : state) {
    aes.HashBlocks(block.data(), block.data(), 1);
    benchmark::DoNotOptimize(block);
  }
  cycles.Report(state, 1, "cycles_per_block");
}
BENCHMARK(BM_FixedKeyAesHashChained)->Arg(0)->Arg(1);

// state.range(1) independent blocks per call.
void BM_FixedKeyAesHashBatched(benchmark::State& state) {
  FixedKeyAes128 aes(kKey, ImplementationOf(state));
  state.SetLabel(aes.uses_aesni() ? "aes-ni" : "portable");
  const size_t count = static_cast<size_t>(state.range(1));
  std::vector<uint8_t> blocks(16 * count);
  for (size_t i = 0; i < blocks.size(); ++i) blocks[i] = static_cast<uint8_t>(i);
  TscCycles cycles;
  for (auto _ : state) {
    aes.HashBlocks(blocks.data(), blocks.data(), count);
    benchmark::DoNotOptimize(blocks.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * count));
  cycles.Report(state, static_cast<double>(count), "cycles_per_block");
}
BENCHMARK(BM_FixedKeyAesHashBatched)->ArgsProduct({{0, 1}, {8, 64, 256}});

// The IDPF's calls: state.range(0) seeds of state.range(1) counter blocks
// each (2 for extend, 1 for convert), on the fastest path this CPU has. A
// report's batches are small (13 to 200 seeds at an inner level), so the
// counts that leave a tail of every size matter as much as the round ones.
void BM_FixedKeyAesHashCounterBlocks(benchmark::State& state) {
  FixedKeyAes128 aes(kKey);
  state.SetLabel(aes.uses_vaes() ? "vaes" : aes.uses_aesni() ? "aes-ni" : "portable");
  const size_t seeds = static_cast<size_t>(state.range(0));
  const size_t blocks_per_seed = static_cast<size_t>(state.range(1));
  std::vector<uint8_t> input(16 * seeds), output(16 * seeds * blocks_per_seed);
  for (size_t i = 0; i < input.size(); ++i) input[i] = static_cast<uint8_t>(i);
  TscCycles cycles;
  for (auto _ : state) {
    aes.HashCounterBlocks(input.data(), seeds, blocks_per_seed, output.data());
    benchmark::DoNotOptimize(output.data());
    benchmark::ClobberMemory();
  }
  const size_t blocks = seeds * blocks_per_seed;
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * blocks));
  cycles.Report(state, static_cast<double>(blocks), "cycles_per_block");
}
BENCHMARK(BM_FixedKeyAesHashCounterBlocks)->ArgsProduct({{13, 15, 24, 96}, {1, 2}});

// Key derivation (TurboSHAKE128) plus AES key expansion: paid once per report
// and usage when cached, once per node when not.
void BM_FixedKeyDerivation(benchmark::State& state) {
  std::vector<uint8_t> dst = {18, 1, 0, 0, 0, 0, 0, 0, 's', 'o', 'm', 'e'};
  std::array<uint8_t, 16> nonce{};
  TscCycles cycles;
  for (auto _ : state) {
    FixedKeyAes128 cipher = crypto::XofFixedKeyAes128::DeriveFixedKey(dst, nonce);
    benchmark::DoNotOptimize(&cipher);
    nonce[0]++;
  }
  cycles.Report(state, 1, "cycles_per_key");
}
BENCHMARK(BM_FixedKeyDerivation);

}  // namespace
}  // namespace canopy::bench
