#include "aggregator/internal/lru_cache.h"

#include <chrono>

#include "crypto/random.h"

namespace canopy::aggregator::internal {

uint64_t KeyedIdHash::Secret() {
  static const uint64_t secret = [] {
    std::array<uint8_t, 8> bytes{};
    uint64_t value = 0;
    if (crypto::RandomBytes(bytes)) {
      std::memcpy(&value, bytes.data(), sizeof(value));
    } else {
      // Never expected; the clock still differs between processes.
      value = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    }
    return value;
  }();
  return secret;
}

}  // namespace canopy::aggregator::internal
