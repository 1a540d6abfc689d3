// Scope guards that wipe vectors of secrets (field elements, seeds) when they
// go out of scope, on every return path.
#ifndef CANOPY_POPLAR_INTERNAL_WIPE_H_
#define CANOPY_POPLAR_INTERNAL_WIPE_H_

#include <vector>

#include "crypto/secure_wipe.h"

namespace canopy::poplar::internal {

using crypto::SecureWipeVector;

// Wipes `values` when the guard is destroyed. The vector must outlive the
// guard; a vector moved from in between is simply empty.
template <typename T>
class WipeOnExit {
 public:
  explicit WipeOnExit(std::vector<T>& values) : values_(values) {}
  ~WipeOnExit() { SecureWipeVector(values_); }
  WipeOnExit(const WipeOnExit&) = delete;
  WipeOnExit& operator=(const WipeOnExit&) = delete;

 private:
  std::vector<T>& values_;
};

}  // namespace canopy::poplar::internal

#endif  // CANOPY_POPLAR_INTERNAL_WIPE_H_
