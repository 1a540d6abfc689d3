// Fixed-key AES-128, the block function behind XofFixedKeyAes128.
//
// The IDPF's inner levels spend nearly all their time here, so the interface is
// batched: callers hand over many independent blocks at once and the AES-NI
// path keeps eight of them in flight. Where AES-NI is missing (checked once at
// run time) the portable path uses OpenSSL's EVP AES-128-ECB.
#ifndef CANOPY_CRYPTO_AES_H_
#define CANOPY_CRYPTO_AES_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace canopy::crypto {

// An AES-128 key schedule for a fixed (public or per-report) key. Move-only;
// the round keys are wiped on destruction.
class FixedKeyAes128 {
 public:
  static constexpr size_t kBlockSize = 16;
  static constexpr size_t kKeySize = 16;

  // Which code computes the blocks. kAuto picks the fastest the CPU has
  // (VAES for counter blocks, then AES-NI); kAesni stops at AES-NI; kPortable
  // forces OpenSSL's EVP path. Tests compare all three.
  enum class Implementation { kAuto, kAesni, kPortable };

  // Expands `key`. Chooses the AES-NI or the portable path once, here.
  explicit FixedKeyAes128(std::span<const uint8_t, kKeySize> key,
                          Implementation implementation = Implementation::kAuto);
  ~FixedKeyAes128();

  FixedKeyAes128(FixedKeyAes128&& other) noexcept;
  FixedKeyAes128& operator=(FixedKeyAes128&& other) noexcept;
  FixedKeyAes128(const FixedKeyAes128&) = delete;
  FixedKeyAes128& operator=(const FixedKeyAes128&) = delete;

  // Encrypts `count` 16-byte blocks: out[i] = AES(key, in[i]). `in` and `out`
  // may be the same buffer.
  void EncryptBlocks(const uint8_t* in, uint8_t* out, size_t count) const;

  // The circular correlation-robust hash of VDAF's XofFixedKeyAes128 on
  // `count` blocks: out[i] = AES(key, sigma(in[i])) XOR sigma(in[i]), where
  // sigma(lo || hi) = hi || (hi XOR lo) on 8-byte halves. `in` and `out` may be
  // the same buffer.
  void HashBlocks(const uint8_t* in, uint8_t* out, size_t count) const;

  // The hash of counter blocks, which is what XofFixedKeyAes128 computes:
  // for each of `seed_count` 16-byte seeds and each j < blocks_per_seed,
  // out[seed * blocks_per_seed + j] = Hash(seed XOR le128(first_counter +
  // j)): block first_counter + j of each seed's stream. Building the inputs in
  // registers saves a pass over memory on the IDPF's hot path. `out` must not
  // overlap `seeds`.
  void HashCounterBlocks(const uint8_t* seeds, size_t seed_count, size_t blocks_per_seed,
                         uint8_t* out, uint64_t first_counter = 0) const;

  // True when this instance runs on the AES-NI path.
  bool uses_aesni() const { return use_aesni_; }

  // Asks the CPU to bring the round keys into cache (a hint; no effect on
  // results). Batches call it for the next report while hashing the current
  // one: each report has its own keys, which are cold after a level.
  void Prefetch() const {
    for (size_t offset = 0; offset < round_keys_.size(); offset += 64) {
      __builtin_prefetch(round_keys_.data() + offset);
    }
    __builtin_prefetch(round_keys_.data() + round_keys_.size() - 1);
  }

  // True when the CPU has AES-NI and SSE4.1.
  static bool CpuHasAesni();

  // True when the CPU also has VAES and AVX2.
  static bool CpuHasVaes();

  // True when this instance uses VAES for counter blocks.
  bool uses_vaes() const { return use_vaes_; }

 private:
  void Wipe();

  alignas(16) std::array<uint8_t, 11 * kBlockSize> round_keys_{};
  std::array<uint8_t, kKeySize> key_{};  // Kept for the portable path.
  void* portable_context_ = nullptr;     // EVP_CIPHER_CTX* on the portable path.
  bool use_aesni_ = false;
  bool use_vaes_ = false;
};

}  // namespace canopy::crypto

#endif  // CANOPY_CRYPTO_AES_H_
