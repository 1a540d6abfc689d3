// Unpadded URL-safe base64 (RFC 4648, section 5), as DAP writes task IDs and
// job IDs in URLs and problem documents.
#ifndef CANOPY_DAP_BASE64URL_H_
#define CANOPY_DAP_BASE64URL_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/error.h"

namespace canopy::dap {

// Encodes without padding.
std::string Base64UrlEncode(std::span<const uint8_t> bytes);

// Decodes unpadded URL-safe base64. Errors (kDecodeError): a character
// outside the alphabet, padding, an impossible length (1 mod 4), or non-zero
// trailing bits (so that every byte string has exactly one encoding).
Result<std::vector<uint8_t>> Base64UrlDecode(std::string_view text);

}  // namespace canopy::dap

#endif  // CANOPY_DAP_BASE64URL_H_
