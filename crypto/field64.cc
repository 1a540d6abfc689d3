#include "crypto/field64.h"

#include <string>

namespace canopy::crypto {

std::unexpected<Error> Field64::DecodeError(size_t length) {
  if (length != kEncodedSize) {
    return MakeError(ErrorCode::kDecodeError,
                     "Field64 element must be 8 bytes, got " + std::to_string(length));
  }
  return MakeError(ErrorCode::kDecodeError, "Field64 element is not below the modulus");
}

}  // namespace canopy::crypto
