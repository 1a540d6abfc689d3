// Four independent TurboSHAKE128 (RFC 9861) instances stepped together, so
// that one 4-way Keccak-p[1600, 12] permutation serves four messages.
//
// Use it when four hashes of equal-length inputs are needed at once, for
// example the verification randomness of four reports: on AVX2 one 4-way
// permutation costs little more than one scalar permutation. Each instance
// produces exactly the output of crypto::TurboShake128 on its own input.
//
// All four instances absorb the same number of bytes and squeeze the same
// number of bytes; that keeps their sponges in step. The implementation is
// chosen at run time: AVX2 where the CPU has it, otherwise a portable one that
// runs the scalar permutation four times.
#ifndef CANOPY_CRYPTO_KECCAK_X4_H_
#define CANOPY_CRYPTO_KECCAK_X4_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace canopy::crypto {

// Four interleaved Keccak-p[1600] states: state[lane][k] is lane `lane`
// (x = lane % 5, y = lane / 5, as in KeccakP1600Rounds12) of instance k.
using KeccakStateX4 = std::array<std::array<uint64_t, 4>, 25>;

// Which permutation a TurboShake128x4 (or KeccakP1600Rounds12x4) runs.
// kAuto picks AVX2 when the CPU supports it; kPortable forces the scalar
// permutation (for tests of both paths, and for CPUs without AVX2).
enum class KeccakX4Implementation { kAuto, kPortable };

// True when the CPU runs the AVX2 4-way permutation.
bool KeccakX4HasAvx2();

// Applies Keccak-p[1600, 12] to each of the four states.
void KeccakP1600Rounds12x4(KeccakStateX4& state,
                           KeccakX4Implementation implementation = KeccakX4Implementation::kAuto);

// Four TurboSHAKE128 instances with one domain-separation byte. Absorb, then
// squeeze; absorbing after the first squeeze is a programming error (ignored
// in release builds, asserts in debug builds). Copyable, so a state that has
// absorbed a common prefix can be reused. The state is wiped on destruction.
class TurboShake128x4 {
 public:
  static constexpr size_t kRateBytes = 168;
  static constexpr size_t kInstances = 4;

  // `domain_byte` must be in [0x01, 0x7f].
  explicit TurboShake128x4(uint8_t domain_byte,
                           KeccakX4Implementation implementation = KeccakX4Implementation::kAuto);
  ~TurboShake128x4();
  TurboShake128x4(const TurboShake128x4&) = default;
  TurboShake128x4& operator=(const TurboShake128x4&) = default;

  // Absorbs the same `data` into all four instances.
  void AbsorbAll(std::span<const uint8_t> data);

  // Absorbs data[k] into instance k. All four spans must have the same size;
  // different sizes are a programming error (nothing is absorbed then).
  void Absorb(const std::array<std::span<const uint8_t>, 4>& data);

  // Writes the next out[k].size() bytes of instance k to out[k]. All four
  // spans must have the same size (otherwise nothing is written). The first
  // call pads the inputs.
  void Squeeze(const std::array<std::span<uint8_t>, 4>& out);

 private:
  void Permute();
  void PadAndSwitchToSqueezing();

  KeccakStateX4 state_{};
  size_t position_ = 0;  // Byte offset in the rate part, equal for all four.
  uint8_t domain_byte_;
  bool squeezing_ = false;
  KeccakX4Implementation implementation_;
};

}  // namespace canopy::crypto

#endif  // CANOPY_CRYPTO_KECCAK_X4_H_
