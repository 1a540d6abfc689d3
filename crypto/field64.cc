#include "crypto/field64.h"

#include <string>

namespace canopy::crypto {

Result<Field64> Field64::Decode(std::span<const uint8_t> bytes) {
  if (bytes.size() != kEncodedSize) {
    return MakeError(ErrorCode::kDecodeError,
                     "Field64 element must be 8 bytes, got " + std::to_string(bytes.size()));
  }
  uint64_t value = LoadLittleEndian(bytes.data());
  if (value >= kModulus) {
    return MakeError(ErrorCode::kDecodeError, "Field64 element is not below the modulus");
  }
  return FromReduced(value);
}

}  // namespace canopy::crypto
