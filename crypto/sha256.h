// SHA-256 (FIPS 180-4) on OpenSSL, with the algorithm fetched once per
// process and a hashing context per thread: OpenSSL 3's one-shot SHA256()
// fetches the algorithm at every call, which costs three times the hashing
// of a short input (measured in docs/PERFORMANCE.md).
#ifndef CANOPY_CRYPTO_SHA256_H_
#define CANOPY_CRYPTO_SHA256_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "crypto/error.h"

namespace canopy::crypto {

inline constexpr size_t kSha256DigestSize = 32;

// out = SHA-256(data). Errors: kInternal when OpenSSL fails (out of memory,
// SHA-256 unavailable); `out` is then zeroed.
Result<void> Sha256(std::span<const uint8_t> data, std::span<uint8_t, kSha256DigestSize> out);

// out = SHA-256 of the parts one after the other, without joining them
// first (a request body of megabytes need not be copied to put an ID before
// it). Errors: as above.
Result<void> Sha256OfParts(std::span<const std::span<const uint8_t>> parts,
                           std::span<uint8_t, kSha256DigestSize> out);

}  // namespace canopy::crypto

#endif  // CANOPY_CRYPTO_SHA256_H_
