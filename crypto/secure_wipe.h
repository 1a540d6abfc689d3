// Wiping secrets from memory in a way the compiler may not optimise away.
#ifndef CANOPY_CRYPTO_SECURE_WIPE_H_
#define CANOPY_CRYPTO_SECURE_WIPE_H_

#include <cstddef>

namespace canopy::crypto {

// Overwrites `size` bytes at `data` with zeros (OPENSSL_cleanse).
void SecureWipe(void* data, size_t size);

// Wipes the bytes of a trivially copyable object or array.
template <typename T>
void SecureWipeObject(T& object) {
  SecureWipe(&object, sizeof(object));
}

}  // namespace canopy::crypto

#endif  // CANOPY_CRYPTO_SECURE_WIPE_H_
