#include "crypto/field255.h"

#include <string>

namespace canopy::crypto {

Result<Field255> Field255::Decode(std::span<const uint8_t> bytes) {
  if (bytes.size() != kEncodedSize) {
    return MakeError(ErrorCode::kDecodeError,
                     "Field255 element must be 32 bytes, got " + std::to_string(bytes.size()));
  }
  Limbs value = LoadLittleEndian(bytes.data());
  if (!IsBelowModulus(value)) {
    return MakeError(ErrorCode::kDecodeError, "Field255 element is not below the modulus");
  }
  return FromReduced(value);
}

}  // namespace canopy::crypto
