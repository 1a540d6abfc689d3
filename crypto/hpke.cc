#include "crypto/hpke.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>
#include <string_view>

#include "crypto/internal/hkdf.h"
#include "crypto/internal/hpke_internal.h"
#include "crypto/random.h"
#include "crypto/secure_wipe.h"

namespace canopy::crypto::hpke {
namespace {

// Nh of HKDF-SHA256, which is also Nsecret and Ndh of DHKEM(X25519, HKDF-SHA256).
constexpr size_t kHashSize = crypto::internal::kSha256Size;
constexpr size_t kX25519Size = 32;
static_assert(kX25519PublicKeySize == kX25519Size && kX25519PrivateKeySize == kX25519Size);

// ---- Errors and byte strings -----------------------------------------------

// An error after an OpenSSL call failed. OpenSSL's per-thread error queue is
// emptied so that its entries do not surface later in unrelated code.
std::unexpected<Error> OpenSslError(ErrorCode code, std::string message) {
  ERR_clear_error();
  return MakeError(code, std::move(message));
}

std::string Hex16(uint16_t value) {
  char text[8];
  std::snprintf(text, sizeof(text), "0x%04x", static_cast<unsigned>(value));
  return text;
}

std::span<const uint8_t> Bytes(std::string_view text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

// ---- Labelled HKDF (RFC 9180 section 4) ------------------------------------

constexpr std::string_view kVersionLabel = "HPKE-v1";

// suite_id = "KEM" || I2OSP(kem_id, 2), for the KEM's own derivations.
std::array<uint8_t, 5> KemSuiteId(KemId kem) {
  const auto id = static_cast<uint16_t>(kem);
  return {'K', 'E', 'M', static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id)};
}

// suite_id = "HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) || I2OSP(aead_id, 2).
std::array<uint8_t, 10> HpkeSuiteId(const Suite& suite) {
  std::array<uint8_t, 10> id = {'H', 'P', 'K', 'E'};
  const uint16_t ids[3] = {static_cast<uint16_t>(suite.kem), static_cast<uint16_t>(suite.kdf),
                           static_cast<uint16_t>(suite.aead)};
  for (size_t i = 0; i < 3; ++i) {
    id[4 + 2 * i] = static_cast<uint8_t>(ids[i] >> 8);
    id[5 + 2 * i] = static_cast<uint8_t>(ids[i]);
  }
  return id;
}

// LabeledExtract(salt, label, ikm) = Extract(salt, "HPKE-v1" || suite_id || label || ikm).
Result<void> LabeledExtract(std::span<const uint8_t> suite_id, std::span<const uint8_t> salt,
                            std::string_view label, std::span<const uint8_t> ikm,
                            std::span<uint8_t, kHashSize> prk) {
  return crypto::internal::HkdfSha256Extract(
      salt, {Bytes(kVersionLabel), suite_id, Bytes(label), ikm}, prk);
}

// LabeledExpand(prk, label, info, L) =
//   Expand(prk, I2OSP(L, 2) || "HPKE-v1" || suite_id || label || info, L).
Result<void> LabeledExpand(std::span<const uint8_t> suite_id, std::span<const uint8_t> prk,
                           std::string_view label, std::span<const uint8_t> info,
                           std::span<uint8_t> out) {
  if (out.size() > crypto::internal::kHkdfSha256MaxOutput) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "HPKE expand length " + std::to_string(out.size()) + " exceeds 255 * Nh");
  }
  const uint8_t length[2] = {static_cast<uint8_t>(out.size() >> 8),
                             static_cast<uint8_t>(out.size())};
  return crypto::internal::HkdfSha256Expand(
      prk, {length, Bytes(kVersionLabel), suite_id, Bytes(label), info}, out);
}

// ---- AEADs -----------------------------------------------------------------

size_t AeadKeySize(AeadId aead) { return aead == AeadId::kAes128Gcm ? 16 : 32; }

// The cipher, fetched once per process: the implicit fetch of EVP_aes_128_gcm()
// would repeat on every context. Never freed; needed until exit. Null for an
// AEAD this file does not support, or when OpenSSL lacks it.
const EVP_CIPHER* AeadCipher(AeadId aead) {
  switch (aead) {
    case AeadId::kAes128Gcm: {
      static const EVP_CIPHER* const cipher = EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr);
      return cipher;
    }
    case AeadId::kChaCha20Poly1305: {
      static const EVP_CIPHER* const cipher =
          EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
      return cipher;
    }
  }
  return nullptr;
}

// EVP_CipherUpdate takes an int length: feed long inputs in chunks. `out` is
// null for associated data. Both AEADs are stream modes, so each call outputs
// exactly its input length.
bool CipherUpdate(EVP_CIPHER_CTX* ctx, uint8_t* out, std::span<const uint8_t> in) {
  constexpr size_t kChunk = size_t{1} << 30;
  size_t offset = 0;
  while (offset < in.size()) {
    const size_t size = std::min(kChunk, in.size() - offset);
    int written = 0;
    if (EVP_CipherUpdate(ctx, out == nullptr ? nullptr : out + offset, &written, in.data() + offset,
                         static_cast<int>(size)) != 1) {
      return false;
    }
    if (out != nullptr && static_cast<size_t>(written) != size) return false;
    offset += size;
  }
  return true;
}

// ---- X25519 on OpenSSL -----------------------------------------------------

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }  // Wipes a private key.
};
struct PkeyCtxDeleter {
  void operator()(EVP_PKEY_CTX* ctx) const { EVP_PKEY_CTX_free(ctx); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using PkeyCtx = std::unique_ptr<EVP_PKEY_CTX, PkeyCtxDeleter>;

// The u-coordinate 9 of Curve25519's base point.
constexpr std::array<uint8_t, kX25519Size> kBasePoint = {9};

// One thread's EVP_PKEY_CTX, initialised for EVP_PKEY_fromdata on X25519 keys.
// Making a key by EVP_PKEY_new_raw_public_key fetches the key manager every
// time, about 5 us, a tenth of an Open; reusing the context avoids that.
// EVP_PKEY_CTX is not safe to share, hence one per thread.
EVP_PKEY_CTX* ThreadFromdataCtx() {
  thread_local PkeyCtx ctx;
  if (ctx == nullptr) {
    PkeyCtx fresh(EVP_PKEY_CTX_new_from_name(nullptr, "X25519", nullptr));
    if (fresh == nullptr || EVP_PKEY_fromdata_init(fresh.get()) != 1) return nullptr;
    ctx = std::move(fresh);
  }
  return ctx.get();
}

// An OpenSSL X25519 key with public key `public_key` and, when `private_key`
// is not null, that private key. OpenSSL copies both and does not check that
// they match; callers rely on that (see LoadPrivate).
Result<Pkey> MakeKey(std::span<const uint8_t, kX25519Size> public_key, const uint8_t* private_key) {
  EVP_PKEY_CTX* ctx = ThreadFromdataCtx();
  if (ctx == nullptr) return OpenSslError(ErrorCode::kInternal, "OpenSSL has no X25519");
  OSSL_PARAM params[3];
  size_t count = 0;
  params[count++] = OSSL_PARAM_construct_octet_string(
      OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(public_key.data()), kX25519Size);
  if (private_key != nullptr) {
    params[count++] = OSSL_PARAM_construct_octet_string(
        OSSL_PKEY_PARAM_PRIV_KEY, const_cast<uint8_t*>(private_key), kX25519Size);
  }
  params[count] = OSSL_PARAM_construct_end();
  EVP_PKEY* key = nullptr;
  const int selection = private_key != nullptr ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY;
  if (EVP_PKEY_fromdata(ctx, &key, selection, params) != 1 || key == nullptr) {
    EVP_PKEY_free(key);
    return OpenSslError(ErrorCode::kInternal, "OpenSSL could not load an X25519 key");
  }
  return Pkey(key);
}

// The base point as a peer key, made once. OpenSSL allows concurrent use of
// one EVP_PKEY as a peer (it only reads it and counts references atomically).
EVP_PKEY* BasePointKey() {
  static EVP_PKEY* const key = [] {
    Result<Pkey> made = MakeKey(kBasePoint, nullptr);
    return made ? made->release() : nullptr;
  }();
  return key;
}

// out = X25519(own private key in `ctx`, peer). Fails with kVerifyFailed on
// the all-zero output, which a low-order peer point gives (RFC 7748 section 6.1;
// RFC 9180 section 7.1.4 requires the check). OpenSSL already refuses to
// derive it; the explicit comparison keeps the rule independent of that.
// An OpenSSL failure for any other reason (out of memory) is reported the
// same way, since the two cannot be told apart.
Result<void> Derive(EVP_PKEY_CTX* ctx, EVP_PKEY* peer, std::span<uint8_t, kX25519Size> out) {
  // validate_peer = 0: X25519 accepts every 32-byte string as a public key,
  // and OpenSSL's check would only build another context to say so.
  if (EVP_PKEY_derive_set_peer_ex(ctx, peer, /*validate_peer=*/0) != 1) {
    return OpenSslError(ErrorCode::kInternal, "OpenSSL could not set the X25519 peer key");
  }
  size_t length = out.size();
  static constexpr uint8_t kZero[kX25519Size] = {};
  if (EVP_PKEY_derive(ctx, out.data(), &length) != 1 || length != kX25519Size ||
      CRYPTO_memcmp(out.data(), kZero, kX25519Size) == 0) {
    SecureWipe(out.data(), out.size());
    return OpenSslError(ErrorCode::kVerifyFailed,
                        "X25519 output is zero: the public key is a low-order point");
  }
  return {};
}

// Derive with the peer public key given as bytes.
//
// Building an EVP_PKEY per call costs about 1.7 us even with a prepared
// context (EVP_PKEY_fromdata looks up the key type's names every time), while
// overwriting the public value of an existing key costs 0.04 us. So each
// thread keeps one public key object and rewrites it here. This is safe
// because it never leaves this function: the contexts that take a reference
// to it (`ctx`) are used for no further key agreement after a new public
// value is written, and other threads have their own object.
Result<void> DeriveWithPublicKey(EVP_PKEY_CTX* ctx,
                                 std::span<const uint8_t, kX25519Size> peer_public_key,
                                 std::span<uint8_t, kX25519Size> out) {
  thread_local Pkey peer;
  if (peer == nullptr) {
    Result<Pkey> made = MakeKey(peer_public_key, nullptr);
    if (!made) return std::unexpected(made.error());
    peer = std::move(*made);
  } else if (EVP_PKEY_set1_encoded_public_key(peer.get(), peer_public_key.data(), kX25519Size) !=
             1) {
    return OpenSslError(ErrorCode::kInternal, "OpenSSL could not load an X25519 public key");
  }
  return Derive(ctx, peer.get(), out);
}

// An X25519 private key ready for key agreement, with its public key.
struct LoadedPrivate {
  Pkey key;        // Holds a placeholder public key; use `public_key`.
  PkeyCtx derive;  // Initialised for key agreement with `key`.
  std::array<uint8_t, kX25519Size> public_key{};
};

// Loads a 32-byte private key and computes its public key.
//
// Given a private key alone, OpenSSL 3.0 computes the public key with its
// generic fixed-base code, measured at about 50 us here, slower than the
// assembly Montgomery ladder behind key agreement (about 37 us). So the key is
// loaded with a placeholder public key and the real one computed as
// X25519(sk, 9) through the ladder. Key agreement reads only the private half,
// so the placeholder never affects a result; it never leaves this file.
Result<LoadedPrivate> LoadPrivate(std::span<const uint8_t> private_key) {
  if (private_key.size() != kX25519Size) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        "X25519 private key is " + std::to_string(private_key.size()) + " bytes, not 32");
  }
  Result<Pkey> key = MakeKey(kBasePoint, private_key.data());
  if (!key) return std::unexpected(key.error());
  PkeyCtx derive(EVP_PKEY_CTX_new_from_pkey(nullptr, key->get(), nullptr));
  if (derive == nullptr || EVP_PKEY_derive_init(derive.get()) != 1) {
    return OpenSslError(ErrorCode::kInternal, "OpenSSL X25519 key agreement is unavailable");
  }
  EVP_PKEY* base = BasePointKey();
  if (base == nullptr) return OpenSslError(ErrorCode::kInternal, "OpenSSL has no X25519");
  LoadedPrivate loaded{std::move(*key), std::move(derive), {}};
  // A clamped scalar is never a multiple of the base point's prime order, so
  // this cannot give zero: a failure here is OpenSSL's.
  if (!Derive(loaded.derive.get(), base, loaded.public_key)) {
    return OpenSslError(ErrorCode::kInternal, "X25519 public key computation failed");
  }
  return loaded;
}

// ---- DHKEM(X25519, HKDF-SHA256) (RFC 9180 section 4.1) ---------------------

// The private key of DeriveKeyPair(ikm).
Result<SecretBytes> DerivePrivateKey(KemId kem, std::span<const uint8_t> ikm) {
  if (ikm.size() < kX25519PrivateKeySize) {
    return MakeError(
        ErrorCode::kInvalidArgument,
        "DeriveKeyPair needs at least 32 bytes of ikm, got " + std::to_string(ikm.size()));
  }
  const std::array<uint8_t, 5> suite_id = KemSuiteId(kem);
  std::array<uint8_t, kHashSize> dkp_prk;
  Result<void> extracted = LabeledExtract(suite_id, {}, "dkp_prk", ikm, dkp_prk);
  SecretBytes private_key(kX25519PrivateKeySize);
  Result<void> expanded =
      extracted ? LabeledExpand(suite_id, dkp_prk, "sk", {}, private_key.mutable_span())
                : extracted;
  SecureWipeObject(dkp_prk);
  if (!expanded) return std::unexpected(expanded.error());
  return private_key;
}

Result<KeyPair> KeyPairFromPrivate(SecretBytes private_key) {
  Result<LoadedPrivate> loaded = LoadPrivate(private_key);
  if (!loaded) return std::unexpected(loaded.error());
  return KeyPair{std::move(private_key),
                 std::vector<uint8_t>(loaded->public_key.begin(), loaded->public_key.end())};
}

// shared_secret = LabeledExpand(LabeledExtract("", "eae_prk", dh), "shared_secret",
//                               enc || pkRm, Nsecret).
Result<SecretBytes> ExtractAndExpand(KemId kem, std::span<const uint8_t, kX25519Size> dh,
                                     std::span<const uint8_t> enc,
                                     std::span<const uint8_t> recipient_public_key) {
  const std::array<uint8_t, 5> suite_id = KemSuiteId(kem);
  std::array<uint8_t, 2 * kX25519Size> kem_context;
  std::copy(enc.begin(), enc.end(), kem_context.begin());
  std::copy(recipient_public_key.begin(), recipient_public_key.end(),
            kem_context.begin() + kX25519Size);
  std::array<uint8_t, kHashSize> eae_prk;
  Result<void> extracted = LabeledExtract(suite_id, {}, "eae_prk", dh, eae_prk);
  SecretBytes shared_secret(kHashSize);
  Result<void> expanded = extracted ? LabeledExpand(suite_id, eae_prk, "shared_secret", kem_context,
                                                    shared_secret.mutable_span())
                                    : extracted;
  SecureWipeObject(eae_prk);
  if (!expanded) return std::unexpected(expanded.error());
  return shared_secret;
}

Result<void> CheckPublicKey(std::span<const uint8_t> public_key, const char* what) {
  if (public_key.size() != kX25519PublicKeySize) {
    return MakeError(
        ErrorCode::kDecodeError,
        std::string(what) + " is " + std::to_string(public_key.size()) + " bytes, not 32");
  }
  return {};
}

}  // namespace

// ---- Suites ----------------------------------------------------------------

Result<void> CheckKem(KemId kem) {
  if (kem == KemId::kX25519HkdfSha256) return {};
  return MakeError(ErrorCode::kUnsupported,
                   "HPKE KEM " + Hex16(static_cast<uint16_t>(kem)) + " is not supported");
}

Result<void> CheckSuite(const Suite& suite) {
  Result<void> kem = CheckKem(suite.kem);
  if (!kem) return kem;
  if (suite.kdf != KdfId::kHkdfSha256) {
    return MakeError(ErrorCode::kUnsupported,
                     "HPKE KDF " + Hex16(static_cast<uint16_t>(suite.kdf)) + " is not supported");
  }
  if (suite.aead != AeadId::kAes128Gcm && suite.aead != AeadId::kChaCha20Poly1305) {
    // Includes 0xffff, the export-only AEAD, which DAP never uses.
    return MakeError(ErrorCode::kUnsupported,
                     "HPKE AEAD " + Hex16(static_cast<uint16_t>(suite.aead)) + " is not supported");
  }
  return {};
}

// ---- SecretBytes -----------------------------------------------------------

SecretBytes::SecretBytes(SecretBytes&& other) noexcept : bytes_(std::move(other.bytes_)) {
  other.bytes_.clear();
}

SecretBytes& SecretBytes::operator=(SecretBytes&& other) noexcept {
  if (this != &other) {
    Wipe();
    bytes_ = std::move(other.bytes_);
    other.bytes_.clear();
  }
  return *this;
}

void SecretBytes::Wipe() {
  SecureWipe(bytes_.data(), bytes_.size());
  bytes_.clear();
}

// ---- Key pairs -------------------------------------------------------------

Result<KeyPair> GenerateKeyPair(KemId kem) {
  Result<void> supported = CheckKem(kem);
  if (!supported) return std::unexpected(supported.error());
  // Every 32-byte string is an X25519 private key (RFC 7748 clamps it).
  SecretBytes private_key(kX25519PrivateKeySize);
  Result<void> random = RandomBytes(private_key.mutable_span());
  if (!random) return std::unexpected(random.error());
  return KeyPairFromPrivate(std::move(private_key));
}

Result<KeyPair> DeriveKeyPair(KemId kem, std::span<const uint8_t> ikm) {
  Result<void> supported = CheckKem(kem);
  if (!supported) return std::unexpected(supported.error());
  Result<SecretBytes> private_key = DerivePrivateKey(kem, ikm);
  if (!private_key) return std::unexpected(private_key.error());
  return KeyPairFromPrivate(std::move(*private_key));
}

Result<std::vector<uint8_t>> PublicKeyFromPrivate(KemId kem, std::span<const uint8_t> private_key) {
  Result<void> supported = CheckKem(kem);
  if (!supported) return std::unexpected(supported.error());
  Result<LoadedPrivate> loaded = LoadPrivate(private_key);
  if (!loaded) return std::unexpected(loaded.error());
  return std::vector<uint8_t>(loaded->public_key.begin(), loaded->public_key.end());
}

// ---- The implementation's access to private state ----------------------------

namespace internal {

struct Access {
  static EVP_PKEY_CTX* DeriveTemplate(const RecipientKey& key) { return key.derive_template_; }

  static Result<ContextCore> MakeCore(const Suite& suite, std::span<const uint8_t> key,
                                      std::span<const uint8_t> base_nonce,
                                      std::span<const uint8_t> exporter_secret,
                                      uint64_t sequence_number, bool encrypt) {
    Result<void> supported = CheckSuite(suite);
    if (!supported) return std::unexpected(supported.error());
    if (key.size() != AeadKeySize(suite.aead) || base_nonce.size() != kNonceSize ||
        exporter_secret.size() != kHashSize) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "HPKE context key, nonce or exporter secret has the wrong length");
    }
    const EVP_CIPHER* cipher = AeadCipher(suite.aead);
    if (cipher == nullptr) return OpenSslError(ErrorCode::kInternal, "OpenSSL lacks the AEAD");
    ContextCore core;
    core.suite_ = suite;
    core.cipher_ = EVP_CIPHER_CTX_new();
    // The key schedule is set up once here; each message only sets its nonce.
    if (core.cipher_ == nullptr || EVP_CipherInit_ex2(core.cipher_, cipher, key.data(), nullptr,
                                                      encrypt ? 1 : 0, nullptr) != 1) {
      return OpenSslError(ErrorCode::kInternal, "OpenSSL could not set up the AEAD");
    }
    std::copy(base_nonce.begin(), base_nonce.end(), core.base_nonce_.begin());
    std::copy(exporter_secret.begin(), exporter_secret.end(), core.exporter_secret_.begin());
    core.sequence_number_ = sequence_number;
    return core;
  }

  static Result<void> StartMessage(ContextCore& core) {
    // The sequence number is 64 bits: a context refuses its last value rather
    // than wrap around, which would reuse a nonce.
    if (core.sequence_number_ == std::numeric_limits<uint64_t>::max()) {
      return MakeError(ErrorCode::kInvalidArgument, "HPKE context message limit reached");
    }
    std::array<uint8_t, kNonceSize> nonce = ComputeNonce(core.base_nonce_, core.sequence_number_);
    const bool ok =
        EVP_CipherInit_ex2(core.cipher_, nullptr, nullptr, nonce.data(), -1, nullptr) == 1;
    SecureWipeObject(nonce);
    if (!ok) return OpenSslError(ErrorCode::kInternal, "OpenSSL could not set the AEAD nonce");
    return {};
  }

  static Result<std::vector<uint8_t>> Seal(ContextCore& core, std::span<const uint8_t> aad,
                                           std::span<const uint8_t> plaintext) {
    Result<void> started = StartMessage(core);
    if (!started) return std::unexpected(started.error());
    std::vector<uint8_t> ciphertext(plaintext.size() + kTagSize);
    int final_size = 0;
    if (!CipherUpdate(core.cipher_, nullptr, aad) ||
        !CipherUpdate(core.cipher_, ciphertext.data(), plaintext) ||
        EVP_CipherFinal_ex(core.cipher_, ciphertext.data() + plaintext.size(), &final_size) != 1 ||
        final_size != 0 ||
        EVP_CIPHER_CTX_ctrl(core.cipher_, EVP_CTRL_AEAD_GET_TAG, kTagSize,
                            ciphertext.data() + plaintext.size()) != 1) {
      return OpenSslError(ErrorCode::kInternal, "OpenSSL AEAD encryption failed");
    }
    ++core.sequence_number_;
    return ciphertext;
  }

  static Result<std::vector<uint8_t>> Open(ContextCore& core, std::span<const uint8_t> aad,
                                           std::span<const uint8_t> ciphertext) {
    if (ciphertext.size() < kTagSize) {
      return MakeError(ErrorCode::kDecodeError, "HPKE ciphertext of " +
                                                    std::to_string(ciphertext.size()) +
                                                    " bytes is shorter than the tag");
    }
    Result<void> started = StartMessage(core);
    if (!started) return std::unexpected(started.error());
    const size_t size = ciphertext.size() - kTagSize;
    std::array<uint8_t, kTagSize> tag;
    std::copy(ciphertext.begin() + static_cast<std::ptrdiff_t>(size), ciphertext.end(),
              tag.begin());
    if (EVP_CIPHER_CTX_ctrl(core.cipher_, EVP_CTRL_AEAD_SET_TAG, kTagSize, tag.data()) != 1) {
      return OpenSslError(ErrorCode::kInternal, "OpenSSL could not set the AEAD tag");
    }
    std::vector<uint8_t> plaintext(size);
    int final_size = 0;
    const bool processed = CipherUpdate(core.cipher_, nullptr, aad) &&
                           CipherUpdate(core.cipher_, plaintext.data(), ciphertext.first(size));
    // Final checks the tag. The decryption above already wrote unauthenticated
    // plaintext, which must not escape: wipe it on any failure.
    if (!processed || EVP_CipherFinal_ex(core.cipher_, plaintext.data() + size, &final_size) != 1 ||
        final_size != 0) {
      SecureWipe(plaintext.data(), plaintext.size());
      return OpenSslError(ErrorCode::kVerifyFailed, "HPKE ciphertext does not authenticate");
    }
    ++core.sequence_number_;
    return plaintext;
  }

  static Result<SecretBytes> Export(const ContextCore& core,
                                    std::span<const uint8_t> exporter_context, size_t length) {
    if (length > kMaxExportSize) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "HPKE export length " + std::to_string(length) + " exceeds 255 * Nh");
    }
    SecretBytes exported(length);
    Result<void> expanded = LabeledExpand(HpkeSuiteId(core.suite_), core.exporter_secret_, "sec",
                                          exporter_context, exported.mutable_span());
    if (!expanded) return std::unexpected(expanded.error());
    return exported;
  }

  static uint64_t SequenceNumber(const ContextCore& core) { return core.sequence_number_; }
  static const Suite& SuiteOf(const ContextCore& core) { return core.suite_; }

  static ContextCore& Core(SenderContext& context) { return context.core_; }
  static ContextCore& Core(RecipientContext& context) { return context.core_; }
  static SenderContext MakeSender(ContextCore core) { return SenderContext(std::move(core)); }
  static RecipientContext MakeRecipient(ContextCore core) {
    return RecipientContext(std::move(core));
  }

  static Result<RecipientKey> MakeRecipientKey(KemId kem, std::span<const uint8_t> private_key) {
    Result<void> supported = CheckKem(kem);
    if (!supported) return std::unexpected(supported.error());
    Result<LoadedPrivate> loaded = LoadPrivate(private_key);
    if (!loaded) return std::unexpected(loaded.error());
    // Reload with the true public key, so that the long-lived OpenSSL key is
    // consistent whatever OpenSSL later does with it.
    Result<Pkey> key = MakeKey(loaded->public_key, private_key.data());
    if (!key) return std::unexpected(key.error());
    PkeyCtx derive(EVP_PKEY_CTX_new_from_pkey(nullptr, key->get(), nullptr));
    if (derive == nullptr || EVP_PKEY_derive_init(derive.get()) != 1) {
      return OpenSslError(ErrorCode::kInternal, "OpenSSL X25519 key agreement is unavailable");
    }
    RecipientKey recipient_key;
    recipient_key.kem_ = kem;
    recipient_key.pkey_ = key->release();
    recipient_key.derive_template_ = derive.release();
    recipient_key.public_key_.assign(loaded->public_key.begin(), loaded->public_key.end());
    return recipient_key;
  }
};

// ---- Inner steps (crypto/internal/hpke_internal.h) ---------------------------

Result<EncapResult> EncapWithEphemeral(KemId kem, std::span<const uint8_t> recipient_public_key,
                                       std::span<const uint8_t> ephemeral_private_key) {
  Result<void> supported = CheckKem(kem);
  if (!supported) return std::unexpected(supported.error());
  Result<void> valid = CheckPublicKey(recipient_public_key, "HPKE recipient public key");
  if (!valid) return std::unexpected(valid.error());
  Result<LoadedPrivate> ephemeral = LoadPrivate(ephemeral_private_key);
  if (!ephemeral) return std::unexpected(ephemeral.error());

  std::array<uint8_t, kX25519Size> dh;
  Result<void> derived = DeriveWithPublicKey(
      ephemeral->derive.get(), recipient_public_key.first<kX25519PublicKeySize>(), dh);
  if (!derived) return std::unexpected(derived.error());
  Result<SecretBytes> shared_secret =
      ExtractAndExpand(kem, dh, ephemeral->public_key, recipient_public_key);
  SecureWipeObject(dh);
  if (!shared_secret) return std::unexpected(shared_secret.error());
  return EncapResult{std::move(*shared_secret), std::vector<uint8_t>(ephemeral->public_key.begin(),
                                                                     ephemeral->public_key.end())};
}

Result<SecretBytes> Decap(std::span<const uint8_t> enc, const RecipientKey& recipient_key) {
  Result<void> valid = CheckPublicKey(enc, "HPKE encapsulated key");
  if (!valid) return std::unexpected(valid.error());
  const EVP_PKEY_CTX* prepared = Access::DeriveTemplate(recipient_key);
  if (prepared == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument, "HPKE recipient key is empty (moved from)");
  }
  // Duplicating the prepared context is safe from several threads at once: it
  // only reads the template (OpenSSL's rule for const arguments).
  PkeyCtx derive(EVP_PKEY_CTX_dup(prepared));
  if (derive == nullptr) {
    return OpenSslError(ErrorCode::kInternal, "OpenSSL could not copy the key agreement context");
  }
  std::array<uint8_t, kX25519Size> dh;
  Result<void> derived = DeriveWithPublicKey(derive.get(), enc.first<kX25519PublicKeySize>(), dh);
  if (!derived) return std::unexpected(derived.error());
  Result<SecretBytes> shared_secret =
      ExtractAndExpand(recipient_key.kem(), dh, enc, recipient_key.public_key());
  SecureWipeObject(dh);
  return shared_secret;
}

Result<KeyScheduleResult> KeySchedule(const Suite& suite, std::span<const uint8_t> shared_secret,
                                      std::span<const uint8_t> info) {
  Result<void> supported = CheckSuite(suite);
  if (!supported) return std::unexpected(supported.error());
  const std::array<uint8_t, 10> suite_id = HpkeSuiteId(suite);

  // key_schedule_context = mode || psk_id_hash || info_hash, mode_base = 0,
  // psk_id_hash = LabeledExtract("", "psk_id_hash", psk_id = "").
  KeyScheduleResult result;
  result.key_schedule_context.assign(1 + 2 * kHashSize, 0);
  auto psk_id_hash = std::span(result.key_schedule_context).subspan<1, kHashSize>();
  auto info_hash = std::span(result.key_schedule_context).subspan<1 + kHashSize, kHashSize>();
  Result<void> step = LabeledExtract(suite_id, {}, "psk_id_hash", {}, psk_id_hash);
  if (step) step = LabeledExtract(suite_id, {}, "info_hash", info, info_hash);

  // secret = LabeledExtract(shared_secret, "secret", psk = "").
  result.secret = SecretBytes(kHashSize);
  if (step) {
    step = LabeledExtract(suite_id, shared_secret, "secret", {},
                          result.secret.mutable_span().first<kHashSize>());
  }
  result.key = SecretBytes(AeadKeySize(suite.aead));
  result.base_nonce = SecretBytes(kNonceSize);
  result.exporter_secret = SecretBytes(kHashSize);
  const std::span<const uint8_t> context = result.key_schedule_context;
  if (step) {
    step = LabeledExpand(suite_id, result.secret, "key", context, result.key.mutable_span());
  }
  if (step) {
    step = LabeledExpand(suite_id, result.secret, "base_nonce", context,
                         result.base_nonce.mutable_span());
  }
  if (step) {
    step = LabeledExpand(suite_id, result.secret, "exp", context,
                         result.exporter_secret.mutable_span());
  }
  if (!step) return std::unexpected(step.error());
  return result;
}

std::array<uint8_t, kNonceSize> ComputeNonce(std::span<const uint8_t, kNonceSize> base_nonce,
                                             uint64_t sequence_number) {
  std::array<uint8_t, kNonceSize> nonce;
  std::copy(base_nonce.begin(), base_nonce.end(), nonce.begin());
  for (size_t i = 0; i < 8; ++i) {
    nonce[kNonceSize - 1 - i] ^= static_cast<uint8_t>(sequence_number >> (8 * i));
  }
  return nonce;
}

Result<SenderContext> MakeSenderContext(const Suite& suite, std::span<const uint8_t> key,
                                        std::span<const uint8_t> base_nonce,
                                        std::span<const uint8_t> exporter_secret,
                                        uint64_t sequence_number) {
  Result<ContextCore> core =
      Access::MakeCore(suite, key, base_nonce, exporter_secret, sequence_number, true);
  if (!core) return std::unexpected(core.error());
  return Access::MakeSender(std::move(*core));
}

Result<RecipientContext> MakeRecipientContext(const Suite& suite, std::span<const uint8_t> key,
                                              std::span<const uint8_t> base_nonce,
                                              std::span<const uint8_t> exporter_secret,
                                              uint64_t sequence_number) {
  Result<ContextCore> core =
      Access::MakeCore(suite, key, base_nonce, exporter_secret, sequence_number, false);
  if (!core) return std::unexpected(core.error());
  return Access::MakeRecipient(std::move(*core));
}

// ---- ContextCore -------------------------------------------------------------

ContextCore::~ContextCore() { Free(); }

void ContextCore::Free() {
  EVP_CIPHER_CTX_free(cipher_);  // Wipes the AEAD key schedule.
  cipher_ = nullptr;
  SecureWipeObject(base_nonce_);
  SecureWipeObject(exporter_secret_);
  sequence_number_ = 0;
}

ContextCore::ContextCore(ContextCore&& other) noexcept
    : suite_(other.suite_),
      cipher_(std::exchange(other.cipher_, nullptr)),
      base_nonce_(other.base_nonce_),
      exporter_secret_(other.exporter_secret_),
      sequence_number_(other.sequence_number_) {
  other.Free();
}

ContextCore& ContextCore::operator=(ContextCore&& other) noexcept {
  if (this != &other) {
    Free();
    suite_ = other.suite_;
    cipher_ = std::exchange(other.cipher_, nullptr);
    base_nonce_ = other.base_nonce_;
    exporter_secret_ = other.exporter_secret_;
    sequence_number_ = other.sequence_number_;
    other.Free();
  }
  return *this;
}

}  // namespace internal

// ---- RecipientKey --------------------------------------------------------------

Result<RecipientKey> RecipientKey::Create(KemId kem, std::span<const uint8_t> private_key) {
  return internal::Access::MakeRecipientKey(kem, private_key);
}

RecipientKey::~RecipientKey() { Free(); }

void RecipientKey::Free() {
  EVP_PKEY_CTX_free(derive_template_);
  derive_template_ = nullptr;
  EVP_PKEY_free(pkey_);  // Wipes the private key.
  pkey_ = nullptr;
  public_key_.clear();
}

RecipientKey::RecipientKey(RecipientKey&& other) noexcept
    : kem_(other.kem_),
      pkey_(std::exchange(other.pkey_, nullptr)),
      derive_template_(std::exchange(other.derive_template_, nullptr)),
      public_key_(std::move(other.public_key_)) {
  other.public_key_.clear();
}

RecipientKey& RecipientKey::operator=(RecipientKey&& other) noexcept {
  if (this != &other) {
    Free();
    kem_ = other.kem_;
    pkey_ = std::exchange(other.pkey_, nullptr);
    derive_template_ = std::exchange(other.derive_template_, nullptr);
    public_key_ = std::move(other.public_key_);
    other.public_key_.clear();
  }
  return *this;
}

// ---- Contexts ------------------------------------------------------------------

Result<std::vector<uint8_t>> SenderContext::Seal(std::span<const uint8_t> aad,
                                                 std::span<const uint8_t> plaintext) {
  return internal::Access::Seal(core_, aad, plaintext);
}

Result<SecretBytes> SenderContext::Export(std::span<const uint8_t> exporter_context,
                                          size_t length) const {
  return internal::Access::Export(core_, exporter_context, length);
}

uint64_t SenderContext::sequence_number() const { return internal::Access::SequenceNumber(core_); }

const Suite& SenderContext::suite() const { return internal::Access::SuiteOf(core_); }

Result<std::vector<uint8_t>> RecipientContext::Open(std::span<const uint8_t> aad,
                                                    std::span<const uint8_t> ciphertext) {
  return internal::Access::Open(core_, aad, ciphertext);
}

Result<SecretBytes> RecipientContext::Export(std::span<const uint8_t> exporter_context,
                                             size_t length) const {
  return internal::Access::Export(core_, exporter_context, length);
}

uint64_t RecipientContext::sequence_number() const {
  return internal::Access::SequenceNumber(core_);
}

const Suite& RecipientContext::suite() const { return internal::Access::SuiteOf(core_); }

// ---- Setup and single-shot APIs ---------------------------------------------------

namespace {

Result<SenderSetup> SetupSender(const Suite& suite, std::span<const uint8_t> recipient_public_key,
                                std::span<const uint8_t> info,
                                std::span<const uint8_t> ephemeral_private_key) {
  Result<internal::EncapResult> encapsulated =
      internal::EncapWithEphemeral(suite.kem, recipient_public_key, ephemeral_private_key);
  if (!encapsulated) return std::unexpected(encapsulated.error());
  Result<internal::KeyScheduleResult> schedule =
      internal::KeySchedule(suite, encapsulated->shared_secret, info);
  if (!schedule) return std::unexpected(schedule.error());
  Result<SenderContext> context = internal::MakeSenderContext(
      suite, schedule->key, schedule->base_nonce, schedule->exporter_secret);
  if (!context) return std::unexpected(context.error());
  return SenderSetup{std::move(encapsulated->enc), std::move(*context)};
}

}  // namespace

Result<SenderSetup> SetupBaseS(const Suite& suite, std::span<const uint8_t> recipient_public_key,
                               std::span<const uint8_t> info) {
  Result<void> supported = CheckSuite(suite);
  if (!supported) return std::unexpected(supported.error());
  // GenerateKeyPair for X25519: any 32 random bytes are a private key.
  SecretBytes ephemeral(kX25519PrivateKeySize);
  Result<void> random = RandomBytes(ephemeral.mutable_span());
  if (!random) return std::unexpected(random.error());
  return SetupSender(suite, recipient_public_key, info, ephemeral);
}

Result<SenderSetup> SetupBaseSWithEphemeral(const Suite& suite,
                                            std::span<const uint8_t> recipient_public_key,
                                            std::span<const uint8_t> info,
                                            std::span<const uint8_t> ikm_e) {
  Result<void> supported = CheckSuite(suite);
  if (!supported) return std::unexpected(supported.error());
  Result<SecretBytes> ephemeral = DerivePrivateKey(suite.kem, ikm_e);
  if (!ephemeral) return std::unexpected(ephemeral.error());
  return SetupSender(suite, recipient_public_key, info, *ephemeral);
}

Result<RecipientContext> SetupBaseR(const Suite& suite, std::span<const uint8_t> enc,
                                    const RecipientKey& recipient_key,
                                    std::span<const uint8_t> info) {
  Result<void> supported = CheckSuite(suite);
  if (!supported) return std::unexpected(supported.error());
  if (recipient_key.kem() != suite.kem) {
    return MakeError(ErrorCode::kInvalidArgument, "HPKE recipient key is for another KEM");
  }
  Result<SecretBytes> shared_secret = internal::Decap(enc, recipient_key);
  if (!shared_secret) return std::unexpected(shared_secret.error());
  Result<internal::KeyScheduleResult> schedule = internal::KeySchedule(suite, *shared_secret, info);
  if (!schedule) return std::unexpected(schedule.error());
  return internal::MakeRecipientContext(suite, schedule->key, schedule->base_nonce,
                                        schedule->exporter_secret);
}

Result<RecipientContext> SetupBaseR(const Suite& suite, std::span<const uint8_t> enc,
                                    std::span<const uint8_t> recipient_private_key,
                                    std::span<const uint8_t> info) {
  Result<void> supported = CheckSuite(suite);
  if (!supported) return std::unexpected(supported.error());
  Result<RecipientKey> key = RecipientKey::Create(suite.kem, recipient_private_key);
  if (!key) return std::unexpected(key.error());
  return SetupBaseR(suite, enc, *key, info);
}

Result<Sealed> Seal(const Suite& suite, std::span<const uint8_t> recipient_public_key,
                    std::span<const uint8_t> info, std::span<const uint8_t> aad,
                    std::span<const uint8_t> plaintext) {
  Result<SenderSetup> setup = SetupBaseS(suite, recipient_public_key, info);
  if (!setup) return std::unexpected(setup.error());
  Result<std::vector<uint8_t>> ciphertext = setup->context.Seal(aad, plaintext);
  if (!ciphertext) return std::unexpected(ciphertext.error());
  return Sealed{std::move(setup->enc), std::move(*ciphertext)};
}

Result<std::vector<uint8_t>> Open(const Suite& suite, const RecipientKey& recipient_key,
                                  std::span<const uint8_t> enc, std::span<const uint8_t> info,
                                  std::span<const uint8_t> aad,
                                  std::span<const uint8_t> ciphertext) {
  // A ciphertext too short to hold a tag fails before the scalar multiplication.
  if (ciphertext.size() < kTagSize) {
    return MakeError(ErrorCode::kDecodeError, "HPKE ciphertext of " +
                                                  std::to_string(ciphertext.size()) +
                                                  " bytes is shorter than the tag");
  }
  Result<RecipientContext> context = SetupBaseR(suite, enc, recipient_key, info);
  if (!context) return std::unexpected(context.error());
  return context->Open(aad, ciphertext);
}

Result<std::vector<uint8_t>> Open(const Suite& suite,
                                  std::span<const uint8_t> recipient_private_key,
                                  std::span<const uint8_t> enc, std::span<const uint8_t> info,
                                  std::span<const uint8_t> aad,
                                  std::span<const uint8_t> ciphertext) {
  Result<void> supported = CheckSuite(suite);
  if (!supported) return std::unexpected(supported.error());
  Result<RecipientKey> key = RecipientKey::Create(suite.kem, recipient_private_key);
  if (!key) return std::unexpected(key.error());
  return Open(suite, *key, enc, info, aad, ciphertext);
}

}  // namespace canopy::crypto::hpke
