// Benchmarks for HPKE base mode with DHKEM(X25519, HKDF-SHA256) and
// HKDF-SHA256: key generation, single-shot Seal (a DAP client's upload) and
// Open (an aggregator's per-report cost), on 100-byte and 4 KiB messages, for
// AES-128-GCM (arg 0) and ChaCha20Poly1305 (arg 1). Seal does two X25519
// scalar multiplications (the ephemeral public key and the shared point), Open
// one; the per-message cost inside an established context is measured apart.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <utility>
#include <vector>

#include "bench/bench_util.h"
#include "crypto/hpke.h"

namespace canopy::bench {
namespace {

namespace hpke = crypto::hpke;

hpke::Suite SuiteOf(const benchmark::State& state) {
  return {hpke::KemId::kX25519HkdfSha256, hpke::KdfId::kHkdfSha256,
          state.range(0) == 0 ? hpke::AeadId::kAes128Gcm : hpke::AeadId::kChaCha20Poly1305};
}

const char* AeadName(const benchmark::State& state) {
  return state.range(0) == 0 ? "aes-128-gcm" : "chacha20-poly1305";
}

// Setup outside the timed loop cannot fail short of a broken OpenSSL.
template <typename T>
T ValueOrAbort(Result<T> result) {
  if (!result) std::abort();
  return std::move(*result);
}

const std::vector<uint8_t> kInfo = {'d', 'a', 'p', '-', '0', '9', ' ', 'i', 'n', 'p', 'u', 't'};
const std::vector<uint8_t> kAad(48, 0x11);  // About a DAP task id and report metadata.

void BM_HpkeGenerateKeyPair(benchmark::State& state) {
  TscCycles cycles;
  for (auto _ : state) {
    Result<hpke::KeyPair> pair = hpke::GenerateKeyPair(hpke::KemId::kX25519HkdfSha256);
    benchmark::DoNotOptimize(pair);
  }
  cycles.Report(state, 1, "cycles_per_op");
}
BENCHMARK(BM_HpkeGenerateKeyPair)->Unit(benchmark::kMicrosecond);

// Decoding a serialized private key once (startup cost of an aggregator).
void BM_HpkeRecipientKeyCreate(benchmark::State& state) {
  hpke::KeyPair pair = ValueOrAbort(hpke::GenerateKeyPair(hpke::KemId::kX25519HkdfSha256));
  TscCycles cycles;
  for (auto _ : state) {
    Result<hpke::RecipientKey> key =
        hpke::RecipientKey::Create(hpke::KemId::kX25519HkdfSha256, pair.private_key);
    benchmark::DoNotOptimize(key);
  }
  cycles.Report(state, 1, "cycles_per_op");
}
BENCHMARK(BM_HpkeRecipientKeyCreate)->Unit(benchmark::kMicrosecond);

// Args: AEAD (0 AES-128-GCM, 1 ChaCha20Poly1305), plaintext bytes.
void BM_HpkeSeal(benchmark::State& state) {
  const hpke::Suite suite = SuiteOf(state);
  state.SetLabel(AeadName(state));
  hpke::KeyPair pair = ValueOrAbort(hpke::GenerateKeyPair(suite.kem));
  const std::vector<uint8_t> plaintext(static_cast<size_t>(state.range(1)), 0x5a);
  TscCycles cycles;
  for (auto _ : state) {
    Result<hpke::Sealed> sealed = hpke::Seal(suite, pair.public_key, kInfo, kAad, plaintext);
    if (!sealed) state.SkipWithError("Seal failed");
    benchmark::DoNotOptimize(sealed);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * plaintext.size()));
  cycles.Report(state, 1, "cycles_per_op");
}
BENCHMARK(BM_HpkeSeal)->ArgsProduct({{0, 1}, {100, 4096}})->Unit(benchmark::kMicrosecond);

// The aggregator's path: a RecipientKey decoded once, one Open per report.
void BM_HpkeOpen(benchmark::State& state) {
  const hpke::Suite suite = SuiteOf(state);
  state.SetLabel(AeadName(state));
  hpke::KeyPair pair = ValueOrAbort(hpke::GenerateKeyPair(suite.kem));
  hpke::RecipientKey key = ValueOrAbort(hpke::RecipientKey::Create(suite.kem, pair.private_key));
  const std::vector<uint8_t> plaintext(static_cast<size_t>(state.range(1)), 0x5a);
  hpke::Sealed sealed = ValueOrAbort(hpke::Seal(suite, pair.public_key, kInfo, kAad, plaintext));
  TscCycles cycles;
  for (auto _ : state) {
    Result<std::vector<uint8_t>> opened =
        hpke::Open(suite, key, sealed.enc, kInfo, kAad, sealed.ciphertext);
    if (!opened) state.SkipWithError("Open failed");
    benchmark::DoNotOptimize(opened);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * plaintext.size()));
  cycles.Report(state, 1, "cycles_per_op");
}
BENCHMARK(BM_HpkeOpen)->ArgsProduct({{0, 1}, {100, 4096}})->Unit(benchmark::kMicrosecond);

// Open from the serialized private key: decodes it (a second scalar
// multiplication) on every call. For comparison with BM_HpkeOpen.
void BM_HpkeOpenFromPrivateKeyBytes(benchmark::State& state) {
  const hpke::Suite suite = SuiteOf(state);
  state.SetLabel(AeadName(state));
  hpke::KeyPair pair = ValueOrAbort(hpke::GenerateKeyPair(suite.kem));
  const std::vector<uint8_t> plaintext(static_cast<size_t>(state.range(1)), 0x5a);
  hpke::Sealed sealed = ValueOrAbort(hpke::Seal(suite, pair.public_key, kInfo, kAad, plaintext));
  TscCycles cycles;
  for (auto _ : state) {
    Result<std::vector<uint8_t>> opened =
        hpke::Open(suite, pair.private_key, sealed.enc, kInfo, kAad, sealed.ciphertext);
    if (!opened) state.SkipWithError("Open failed");
    benchmark::DoNotOptimize(opened);
  }
  cycles.Report(state, 1, "cycles_per_op");
}
BENCHMARK(BM_HpkeOpenFromPrivateKeyBytes)->Args({0, 100})->Unit(benchmark::kMicrosecond);

// One message inside an established context: nonce, AEAD, no KEM.
void BM_HpkeContextSeal(benchmark::State& state) {
  const hpke::Suite suite = SuiteOf(state);
  state.SetLabel(AeadName(state));
  hpke::KeyPair pair = ValueOrAbort(hpke::GenerateKeyPair(suite.kem));
  hpke::SenderSetup setup = ValueOrAbort(hpke::SetupBaseS(suite, pair.public_key, kInfo));
  const std::vector<uint8_t> plaintext(static_cast<size_t>(state.range(1)), 0x5a);
  TscCycles cycles;
  for (auto _ : state) {
    Result<std::vector<uint8_t>> ciphertext = setup.context.Seal(kAad, plaintext);
    benchmark::DoNotOptimize(ciphertext);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * plaintext.size()));
  cycles.Report(state, 1, "cycles_per_op");
}
BENCHMARK(BM_HpkeContextSeal)->ArgsProduct({{0, 1}, {100, 4096}});

}  // namespace
}  // namespace canopy::bench
