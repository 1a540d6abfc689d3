#include "crypto/random.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <climits>

namespace canopy::crypto {

Result<void> RandomBytes(std::span<uint8_t> out) {
  size_t offset = 0;
  while (offset < out.size()) {
    size_t chunk = std::min<size_t>(out.size() - offset, INT_MAX);
    if (RAND_bytes(out.data() + offset, static_cast<int>(chunk)) != 1) {
      return MakeError(ErrorCode::kInternal, "the system random generator failed");
    }
    offset += chunk;
  }
  return {};
}

Result<std::vector<uint8_t>> RandomVector(size_t size) {
  std::vector<uint8_t> bytes(size);
  Result<void> filled = RandomBytes(bytes);
  if (!filled) return std::unexpected(filled.error());
  return bytes;
}

}  // namespace canopy::crypto
