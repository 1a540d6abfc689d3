// Cryptographically secure randomness from the operating system (through
// OpenSSL's DRBG, seeded from getrandom).
#ifndef CANOPY_CRYPTO_RANDOM_H_
#define CANOPY_CRYPTO_RANDOM_H_

#include <cstdint>
#include <span>
#include <vector>

#include "crypto/error.h"

namespace canopy::crypto {

// Fills `out` with random bytes. Errors (kInternal): the generator failed,
// which only happens when the system cannot supply entropy.
Result<void> RandomBytes(std::span<uint8_t> out);

// Returns `size` random bytes; see RandomBytes.
Result<std::vector<uint8_t>> RandomVector(size_t size);

}  // namespace canopy::crypto

#endif  // CANOPY_CRYPTO_RANDOM_H_
