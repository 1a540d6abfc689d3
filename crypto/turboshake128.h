// TurboSHAKE128 (RFC 9861): the Keccak-p[1600, 12] sponge with a rate of 168
// bytes and a domain-separation byte D in [0x01, 0x7f].
#ifndef CANOPY_CRYPTO_TURBOSHAKE128_H_
#define CANOPY_CRYPTO_TURBOSHAKE128_H_

#include <cstddef>
#include <cstdint>
#include <span>

namespace canopy::crypto {

// Applies the 12-round Keccak-p[1600] permutation to `lanes` (lane i is the
// 64-bit little-endian word at x = i % 5, y = i / 5).
// Uses the fastest implementation this CPU supports.
void KeccakP1600Rounds12(uint64_t lanes[25]);

// The implementations, for tests and benchmarks: portable C++, and the same
// code compiled for BMI1/BMI2 (ANDN, RORX), which may only be called when
// KeccakP1600HasBmi() is true.
void KeccakP1600Rounds12Portable(uint64_t lanes[25]);
void KeccakP1600Rounds12Bmi(uint64_t lanes[25]);
bool KeccakP1600HasBmi();

// An incremental TurboSHAKE128 instance: absorb any number of times, then
// squeeze any number of times. Absorbing after the first squeeze is a
// programming error (it is ignored in release builds and asserts in debug
// builds). The state is wiped on destruction.
class TurboShake128 {
 public:
  static constexpr size_t kRateBytes = 168;

  // `domain_byte` must be in [0x01, 0x7f] (RFC 9861); VDAF uses 0x01 and 0x02.
  explicit TurboShake128(uint8_t domain_byte);
  ~TurboShake128();

  TurboShake128(const TurboShake128&) = default;
  TurboShake128& operator=(const TurboShake128&) = default;

  // Absorbs `data` into the sponge.
  void Absorb(std::span<const uint8_t> data);

  // Writes the next out.size() bytes of output. The first call pads the input.
  void Squeeze(std::span<uint8_t> out);

  // One-shot TurboSHAKE128(message, domain_byte, out.size()).
  static void Hash(std::span<const uint8_t> message, uint8_t domain_byte, std::span<uint8_t> out);

 private:
  void PadAndSwitchToSqueezing();

  uint64_t lanes_[25];
  size_t position_ = 0;  // Byte offset in the rate part of the state.
  uint8_t domain_byte_;
  bool squeezing_ = false;
};

}  // namespace canopy::crypto

#endif  // CANOPY_CRYPTO_TURBOSHAKE128_H_
