#include "crypto/aes.h"

#include <immintrin.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <cstring>
#include <utility>

#include "crypto/secure_wipe.h"

namespace canopy::crypto {
namespace {

// ---- AES-NI path -----------------------------------------------------------
// Functions carry a target attribute so the rest of the project builds for the
// baseline x86-64 ISA; they run only after CpuHasAesni() said yes.

#define CANOPY_AESNI __attribute__((target("aes,sse4.1")))

template <int kRcon>
CANOPY_AESNI __m128i ExpandRoundKey(__m128i previous) {
  __m128i assist = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(previous, kRcon), 0xff);
  previous = _mm_xor_si128(previous, _mm_slli_si128(previous, 4));
  previous = _mm_xor_si128(previous, _mm_slli_si128(previous, 4));
  previous = _mm_xor_si128(previous, _mm_slli_si128(previous, 4));
  return _mm_xor_si128(previous, assist);
}

CANOPY_AESNI void ExpandKeyAesni(const uint8_t* key, uint8_t* round_keys) {
  __m128i k[11];
  k[0] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key));
  k[1] = ExpandRoundKey<0x01>(k[0]);
  k[2] = ExpandRoundKey<0x02>(k[1]);
  k[3] = ExpandRoundKey<0x04>(k[2]);
  k[4] = ExpandRoundKey<0x08>(k[3]);
  k[5] = ExpandRoundKey<0x10>(k[4]);
  k[6] = ExpandRoundKey<0x20>(k[5]);
  k[7] = ExpandRoundKey<0x40>(k[6]);
  k[8] = ExpandRoundKey<0x80>(k[7]);
  k[9] = ExpandRoundKey<0x1b>(k[8]);
  k[10] = ExpandRoundKey<0x36>(k[9]);
  for (int i = 0; i < 11; ++i) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(round_keys + 16 * i), k[i]);
  }
  SecureWipeObject(k);
}

// sigma(lo || hi) = hi || (hi XOR lo).
CANOPY_AESNI __attribute__((always_inline)) inline __m128i Sigma(__m128i block) {
  const __m128i high_half = _mm_set_epi64x(-1, 0);
  return _mm_xor_si128(_mm_shuffle_epi32(block, 0x4e), _mm_and_si128(block, high_half));
}

// Processes kWidth independent blocks so that their AES rounds overlap in the
// pipeline: one block's aesenc has a latency of several cycles, but the unit
// accepts a new one every cycle.
template <int kWidth, bool kHash>
CANOPY_AESNI inline void AesniBlocks(const __m128i* keys, const uint8_t* in, uint8_t* out) {
  __m128i state[kWidth];
  __m128i input[kWidth];
  for (int i = 0; i < kWidth; ++i) {
    input[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16 * i));
    if constexpr (kHash) input[i] = Sigma(input[i]);
    state[i] = _mm_xor_si128(input[i], keys[0]);
  }
  for (int round = 1; round < 10; ++round) {
    for (int i = 0; i < kWidth; ++i) state[i] = _mm_aesenc_si128(state[i], keys[round]);
  }
  for (int i = 0; i < kWidth; ++i) {
    state[i] = _mm_aesenclast_si128(state[i], keys[10]);
    if constexpr (kHash) state[i] = _mm_xor_si128(state[i], input[i]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * i), state[i]);
  }
}

template <bool kHash>
CANOPY_AESNI void AesniRun(const uint8_t* round_keys, const uint8_t* in, uint8_t* out,
                           size_t count) {
  __m128i keys[11];
  for (int i = 0; i < 11; ++i) {
    keys[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(round_keys + 16 * i));
  }
  size_t done = 0;
  for (; done + 8 <= count; done += 8) {
    AesniBlocks<8, kHash>(keys, in + 16 * done, out + 16 * done);
  }
  if (count - done >= 4) {
    AesniBlocks<4, kHash>(keys, in + 16 * done, out + 16 * done);
    done += 4;
  }
  for (; done < count; ++done) AesniBlocks<1, kHash>(keys, in + 16 * done, out + 16 * done);
}

// Hashes seed XOR le128(first_counter + j) for j < kBlocksPerSeed, for kSeeds
// seeds, all in flight together (kSeeds * kBlocksPerSeed <= 8).
template <size_t kSeeds, size_t kBlocksPerSeed>
CANOPY_AESNI inline void AesniCounterGroup(const __m128i* keys, const uint8_t* seeds,
                                           uint64_t first_counter, uint8_t* out) {
  constexpr size_t kWidth = kSeeds * kBlocksPerSeed;
  __m128i input[kWidth], state[kWidth];
  for (size_t s = 0; s < kSeeds; ++s) {
    const __m128i seed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(seeds + 16 * s));
    for (size_t j = 0; j < kBlocksPerSeed; ++j) {
      __m128i block =
          _mm_xor_si128(seed, _mm_cvtsi64_si128(static_cast<long long>(first_counter + j)));
      input[s * kBlocksPerSeed + j] = Sigma(block);
    }
  }
  for (size_t i = 0; i < kWidth; ++i) state[i] = _mm_xor_si128(input[i], keys[0]);
  for (int round = 1; round < 10; ++round) {
    for (size_t i = 0; i < kWidth; ++i) state[i] = _mm_aesenc_si128(state[i], keys[round]);
  }
  for (size_t i = 0; i < kWidth; ++i) {
    state[i] = _mm_xor_si128(_mm_aesenclast_si128(state[i], keys[10]), input[i]);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16 * i), state[i]);
  }
}

template <size_t kBlocksPerSeed>
CANOPY_AESNI void AesniCounterRun(const __m128i* keys, const uint8_t* seeds, size_t seed_count,
                                  uint64_t first_counter, uint8_t* out) {
  constexpr size_t kSeedsPerGroup = 8 / kBlocksPerSeed;
  size_t s = 0;
  for (; s + kSeedsPerGroup <= seed_count; s += kSeedsPerGroup) {
    AesniCounterGroup<kSeedsPerGroup, kBlocksPerSeed>(keys, seeds + 16 * s, first_counter,
                                                      out + 16 * kBlocksPerSeed * s);
  }
  for (; s < seed_count; ++s) {
    AesniCounterGroup<1, kBlocksPerSeed>(keys, seeds + 16 * s, first_counter,
                                         out + 16 * kBlocksPerSeed * s);
  }
}

CANOPY_AESNI void AesniHashCounterBlocks(const uint8_t* round_keys, const uint8_t* seeds,
                                         size_t seed_count, size_t blocks_per_seed,
                                         uint64_t first_counter, uint8_t* out);

// ---- VAES path (AVX2 registers: two blocks per instruction) ----------------

#define CANOPY_VAES __attribute__((target("vaes,avx2,aes,sse4.1")))

CANOPY_VAES __attribute__((always_inline)) inline __m256i Sigma256(__m256i blocks) {
  const __m256i high_halves = _mm256_set_epi64x(-1, 0, -1, 0);
  return _mm256_xor_si256(_mm256_shuffle_epi32(blocks, 0x4e),
                          _mm256_and_si256(blocks, high_halves));
}

// Hashes kRegisters pairs of blocks, given as (unhashed) inputs.
template <size_t kRegisters>
CANOPY_VAES inline void VaesHashPairs(const __m256i* keys, __m256i* inputs, uint8_t* out) {
  __m256i state[kRegisters];
  for (size_t i = 0; i < kRegisters; ++i) {
    inputs[i] = Sigma256(inputs[i]);
    state[i] = _mm256_xor_si256(inputs[i], keys[0]);
  }
  for (int round = 1; round < 10; ++round) {
    for (size_t i = 0; i < kRegisters; ++i) state[i] = _mm256_aesenc_epi128(state[i], keys[round]);
  }
  for (size_t i = 0; i < kRegisters; ++i) {
    state[i] = _mm256_xor_si256(_mm256_aesenclast_epi128(state[i], keys[10]), inputs[i]);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 32 * i), state[i]);
  }
}

// Hashes kRegisters registers of two counter blocks each into out: with
// one seed per register (its blocks first_counter and first_counter + 1),
// or two consecutive seeds per register (block first_counter of each);
// `counters` holds the counters in the lanes' low words.
template <size_t kRegisters>
CANOPY_VAES inline void VaesCounterRegisters(const __m256i* keys, const uint8_t* seeds,
                                             bool one_seed_per_register, __m256i counters,
                                             uint8_t* out) {
  __m256i inputs[kRegisters];
  for (size_t i = 0; i < kRegisters; ++i) {
    const __m256i blocks =
        one_seed_per_register
            ? _mm256_broadcastsi128_si256(
                  _mm_loadu_si128(reinterpret_cast<const __m128i*>(seeds + 16 * i)))
            : _mm256_loadu_si256(reinterpret_cast<const __m256i*>(seeds + 32 * i));
    inputs[i] = _mm256_xor_si256(blocks, counters);
  }
  VaesHashPairs<kRegisters>(keys, inputs, out);
}

// The VAES form of AesniHashCounterBlocks for one or two blocks per seed:
// sixteen blocks in flight in eight registers, then the rest in four, two
// and one register (a report's batches are small: their tails are a large
// part of them), and an odd last block on the 128-bit path.
CANOPY_VAES bool VaesHashCounterBlocks(const uint8_t* round_keys, const uint8_t* seeds,
                                       size_t seed_count, size_t blocks_per_seed,
                                       uint64_t first_counter, uint8_t* out) {
  if (blocks_per_seed != 1 && blocks_per_seed != 2) return false;
  __m256i keys[11];
  for (int i = 0; i < 11; ++i) {
    keys[i] = _mm256_broadcastsi128_si256(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(round_keys + 16 * i)));
  }
  const bool one_seed_per_register = blocks_per_seed == 2;
  const auto counter = static_cast<long long>(first_counter);
  const auto next_counter = static_cast<long long>(first_counter + 1);  // Unsigned: wraps.
  const __m256i counters = one_seed_per_register ? _mm256_set_epi64x(0, next_counter, 0, counter)
                                                 : _mm256_set_epi64x(0, counter, 0, counter);
  // Each register takes 32 bytes of seeds (two seeds) or 16 (one), and
  // writes 32 bytes of output.
  const size_t seed_bytes_per_register = one_seed_per_register ? 16 : 32;
  const size_t total = seed_count * blocks_per_seed;
  const size_t registers = total / 2;
  size_t done = 0;
  for (; done + 8 <= registers; done += 8) {
    VaesCounterRegisters<8>(keys, seeds + seed_bytes_per_register * done, one_seed_per_register,
                            counters, out + 32 * done);
  }
  if (done + 4 <= registers) {
    VaesCounterRegisters<4>(keys, seeds + seed_bytes_per_register * done, one_seed_per_register,
                            counters, out + 32 * done);
    done += 4;
  }
  if (done + 2 <= registers) {
    VaesCounterRegisters<2>(keys, seeds + seed_bytes_per_register * done, one_seed_per_register,
                            counters, out + 32 * done);
    done += 2;
  }
  if (done < registers) {
    VaesCounterRegisters<1>(keys, seeds + seed_bytes_per_register * done, one_seed_per_register,
                            counters, out + 32 * done);
    ++done;
  }
  if (2 * done < total) {
    // One seed's single block is left (one block per seed, an odd count).
    AesniHashCounterBlocks(round_keys, seeds + 16 * (seed_count - 1), 1, 1, first_counter,
                           out + 16 * (total - 1));
  }
  return true;
}

// Hashes seed XOR le128(first_counter + j) for every seed and
// j < blocks_per_seed, eight blocks in flight at a time.
CANOPY_AESNI void AesniHashCounterBlocks(const uint8_t* round_keys, const uint8_t* seeds,
                                         size_t seed_count, size_t blocks_per_seed,
                                         uint64_t first_counter, uint8_t* out) {
  __m128i keys[11];
  for (int i = 0; i < 11; ++i) {
    keys[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(round_keys + 16 * i));
  }
  switch (blocks_per_seed) {
    case 1:
      AesniCounterRun<1>(keys, seeds, seed_count, first_counter, out);
      return;
    case 2:
      AesniCounterRun<2>(keys, seeds, seed_count, first_counter, out);
      return;
    default:
      for (size_t s = 0; s < seed_count; ++s) {
        for (size_t j = 0; j < blocks_per_seed; ++j) {
          alignas(16) uint8_t block[16];
          __m128i seed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(seeds + 16 * s));
          seed = _mm_xor_si128(seed, _mm_cvtsi64_si128(static_cast<long long>(first_counter + j)));
          _mm_store_si128(reinterpret_cast<__m128i*>(block), seed);
          AesniBlocks<1, true>(keys, block, out + 16 * (s * blocks_per_seed + j));
        }
      }
  }
}

// ---- Portable path ---------------------------------------------------------

void PortableSigma(const uint8_t* block, uint8_t* sigma) {
  for (int i = 0; i < 8; ++i) {
    sigma[i] = block[8 + i];
    sigma[8 + i] = block[8 + i] ^ block[i];
  }
}

// Blocks per EVP call: enough to amortise the call, small enough for L1.
constexpr size_t kPortableChunk = 64;

void PortableEncrypt(void* context, const uint8_t* in, uint8_t* out, size_t count) {
  auto* evp = static_cast<EVP_CIPHER_CTX*>(context);
  while (count > 0) {
    size_t chunk = std::min(count, kPortableChunk);
    // EVP_Cipher does not touch the context's state in ECB mode, so concurrent
    // callers sharing one key schedule are safe.
    EVP_Cipher(evp, out, in, static_cast<unsigned int>(chunk * 16));
    in += chunk * 16;
    out += chunk * 16;
    count -= chunk;
  }
}

}  // namespace

bool FixedKeyAes128::CpuHasVaes() {
  static const bool has = [] {
    __builtin_cpu_init();
    return CpuHasAesni() && __builtin_cpu_supports("vaes") && __builtin_cpu_supports("avx2");
  }();
  return has;
}

bool FixedKeyAes128::CpuHasAesni() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("aes") && __builtin_cpu_supports("sse4.1");
  }();
  return has;
}

FixedKeyAes128::FixedKeyAes128(std::span<const uint8_t, kKeySize> key,
                               Implementation implementation) {
  use_aesni_ = implementation != Implementation::kPortable && CpuHasAesni();
  use_vaes_ = implementation == Implementation::kAuto && CpuHasVaes();
  if (use_aesni_) {
    ExpandKeyAesni(key.data(), round_keys_.data());
    return;
  }
  std::memcpy(key_.data(), key.data(), kKeySize);
  EVP_CIPHER_CTX* context = EVP_CIPHER_CTX_new();
  if (context == nullptr ||
      EVP_EncryptInit_ex(context, EVP_aes_128_ecb(), nullptr, key_.data(), nullptr) != 1) {
    // Out of memory, or OpenSSL without AES: nothing sensible remains to do.
    std::abort();
  }
  EVP_CIPHER_CTX_set_padding(context, 0);
  portable_context_ = context;
}

FixedKeyAes128::~FixedKeyAes128() { Wipe(); }

void FixedKeyAes128::Wipe() {
  SecureWipeObject(round_keys_);
  SecureWipeObject(key_);
  if (portable_context_ != nullptr) {
    EVP_CIPHER_CTX_free(static_cast<EVP_CIPHER_CTX*>(portable_context_));  // Also wipes.
    portable_context_ = nullptr;
  }
}

FixedKeyAes128::FixedKeyAes128(FixedKeyAes128&& other) noexcept
    : round_keys_(other.round_keys_),
      key_(other.key_),
      portable_context_(std::exchange(other.portable_context_, nullptr)),
      use_aesni_(other.use_aesni_),
      use_vaes_(other.use_vaes_) {
  other.Wipe();
}

FixedKeyAes128& FixedKeyAes128::operator=(FixedKeyAes128&& other) noexcept {
  if (this != &other) {
    Wipe();
    round_keys_ = other.round_keys_;
    key_ = other.key_;
    portable_context_ = std::exchange(other.portable_context_, nullptr);
    use_aesni_ = other.use_aesni_;
    use_vaes_ = other.use_vaes_;
    other.Wipe();
  }
  return *this;
}

void FixedKeyAes128::EncryptBlocks(const uint8_t* in, uint8_t* out, size_t count) const {
  if (use_aesni_) {
    AesniRun<false>(round_keys_.data(), in, out, count);
  } else {
    PortableEncrypt(portable_context_, in, out, count);
  }
}

void FixedKeyAes128::HashCounterBlocks(const uint8_t* seeds, size_t seed_count,
                                       size_t blocks_per_seed, uint8_t* out,
                                       uint64_t first_counter) const {
  if (use_vaes_ && VaesHashCounterBlocks(round_keys_.data(), seeds, seed_count, blocks_per_seed,
                                         first_counter, out)) {
    return;
  }
  if (use_aesni_) {
    AesniHashCounterBlocks(round_keys_.data(), seeds, seed_count, blocks_per_seed, first_counter,
                           out);
    return;
  }
  // Portable: build the inputs in `out`, then hash in place.
  for (size_t s = 0; s < seed_count; ++s) {
    for (size_t j = 0; j < blocks_per_seed; ++j) {
      uint8_t* block = out + 16 * (s * blocks_per_seed + j);
      std::memcpy(block, seeds + 16 * s, 16);
      const uint64_t counter = first_counter + j;
      for (size_t b = 0; b < 8; ++b) block[b] ^= static_cast<uint8_t>(counter >> (8 * b));
    }
  }
  HashBlocks(out, out, seed_count * blocks_per_seed);
}

void FixedKeyAes128::HashBlocks(const uint8_t* in, uint8_t* out, size_t count) const {
  if (use_aesni_) {
    AesniRun<true>(round_keys_.data(), in, out, count);
    return;
  }
  uint8_t sigma[kPortableChunk * 16];
  while (count > 0) {
    size_t chunk = std::min(count, kPortableChunk);
    for (size_t i = 0; i < chunk; ++i) PortableSigma(in + 16 * i, sigma + 16 * i);
    PortableEncrypt(portable_context_, sigma, out, chunk);
    for (size_t i = 0; i < 16 * chunk; ++i) out[i] ^= sigma[i];
    in += 16 * chunk;
    out += 16 * chunk;
    count -= chunk;
  }
  SecureWipeObject(sigma);
}

}  // namespace canopy::crypto
