// Working buffers that a thread's IDPF evaluations share, so that a batch of
// reports streams through the same few kilobytes instead of allocating its
// own per report.
#ifndef CANOPY_IDPF_INTERNAL_SCRATCH_H_
#define CANOPY_IDPF_INTERNAL_SCRATCH_H_

#include <algorithm>
#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "crypto/secure_wipe.h"

namespace canopy::idpf::internal {

// A buffer that only grows: taking n elements zero-fills only what the
// buffer never had, once, instead of on every level of every report (the
// vectors it replaced were resized, and so zero-filled, at every step of
// every walk). It remembers how much of it was used since it was last
// wiped, so that a wipe covers exactly that.
template <typename T>
class ScratchBuffer {
 public:
  // The first `count` elements, holding whatever the last use left there
  // (or zeros).
  std::span<T> Take(size_t count) {
    if (storage_.size() < count) {
      // A larger buffer, the old one wiped before it is freed (no caller
      // needs what a buffer held before a Take).
      Wipe();
      std::vector<T> grown(count);
      storage_.swap(grown);
    }
    used_ = std::max(used_, count);
    return std::span<T>(storage_.data(), count);
  }

  // Zeroes everything taken since the last wipe.
  void Wipe() {
    crypto::SecureWipe(storage_.data(), used_ * sizeof(T));
    used_ = 0;
  }

  void swap(ScratchBuffer& other) noexcept {
    storage_.swap(other.storage_);
    std::swap(used_, other.used_);
  }

  ~ScratchBuffer() { Wipe(); }

 private:
  std::vector<T> storage_;
  size_t used_ = 0;
};

}  // namespace canopy::idpf::internal

#endif  // CANOPY_IDPF_INTERNAL_SCRATCH_H_
