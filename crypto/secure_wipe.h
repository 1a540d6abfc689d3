// Wiping secrets from memory in a way the compiler may not optimise away.
#ifndef CANOPY_CRYPTO_SECURE_WIPE_H_
#define CANOPY_CRYPTO_SECURE_WIPE_H_

#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

namespace canopy::crypto {

// Overwrites `size` bytes at `data` with zeros. The empty assembly statement
// tells the compiler the memory is read afterwards, so the stores stay (the
// technique of BoringSSL's OPENSSL_cleanse, inlined because the IDPF wipes
// small buffers on every level).
inline void SecureWipe(void* data, size_t size) {
  if (size == 0) return;
  std::memset(data, 0, size);
  __asm__ __volatile__("" : : "r"(data) : "memory");
}

// Wipes the bytes of a trivially copyable object or array.
template <typename T>
void SecureWipeObject(T& object) {
  SecureWipe(&object, sizeof(object));
}

// Wipes the elements of a vector of trivially copyable values (its size and
// capacity are kept, so a scratch buffer can be reused).
template <typename T>
void SecureWipeVector(std::vector<T>& values) {
  static_assert(std::is_trivially_copyable_v<T>);
  SecureWipe(values.data(), values.size() * sizeof(T));
}

// Wipes `values` when the guard is destroyed, on every return path. The
// vector must outlive the guard; a vector moved from in between is simply
// empty.
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

}  // namespace canopy::crypto

#endif  // CANOPY_CRYPTO_SECURE_WIPE_H_
