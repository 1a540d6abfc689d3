// HMAC-SHA256 and HKDF-SHA256 (RFC 2104, RFC 5869) on OpenSSL's SHA-256, for
// HPKE's key schedule.
//
// Inputs are given as several pieces, concatenated in order, so that callers
// building labelled inputs (HPKE's "HPKE-v1" || suite_id || label || ikm) never
// copy secrets into temporary buffers. The SHA-256 implementation is fetched
// from OpenSSL once per process: a fetch per call would cost more than the
// hashing itself on HPKE's short inputs.
#ifndef CANOPY_CRYPTO_INTERNAL_HKDF_H_
#define CANOPY_CRYPTO_INTERNAL_HKDF_H_

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>

#include "crypto/error.h"

namespace canopy::crypto::internal {

// A byte string given as pieces, concatenated in order.
using ByteParts = std::initializer_list<std::span<const uint8_t>>;

inline constexpr size_t kSha256Size = 32;

// The largest HKDF-Expand output for SHA-256: 255 blocks.
inline constexpr size_t kHkdfSha256MaxOutput = 255 * kSha256Size;

// out = HMAC-SHA256(key, concatenation of `message`). Keys longer than the
// 64-byte block are hashed first, as RFC 2104 says. Errors: kInternal when
// OpenSSL fails (out of memory, SHA-256 unavailable); `out` is then zeroed.
Result<void> HmacSha256(std::span<const uint8_t> key, ByteParts message,
                        std::span<uint8_t, kSha256Size> out);

// prk = HKDF-Extract(salt, concatenation of `ikm`) = HMAC-SHA256(salt, ikm).
// An empty salt means HashLen zero bytes, which HMAC pads to the same key.
// Errors: kInternal as HmacSha256.
Result<void> HkdfSha256Extract(std::span<const uint8_t> salt, ByteParts ikm,
                               std::span<uint8_t, kSha256Size> prk);

// Fills `out` with HKDF-Expand(prk, concatenation of `info`, out.size()).
// Errors: kInvalidArgument when out.size() > kHkdfSha256MaxOutput; kInternal
// as HmacSha256. On error `out` is zeroed.
Result<void> HkdfSha256Expand(std::span<const uint8_t> prk, ByteParts info, std::span<uint8_t> out);

}  // namespace canopy::crypto::internal

#endif  // CANOPY_CRYPTO_INTERNAL_HKDF_H_
