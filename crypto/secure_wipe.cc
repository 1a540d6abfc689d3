#include "crypto/secure_wipe.h"

#include <openssl/crypto.h>

namespace canopy::crypto {

void SecureWipe(void* data, size_t size) { OPENSSL_cleanse(data, size); }

}  // namespace canopy::crypto
