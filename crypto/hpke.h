// Hybrid Public Key Encryption (RFC 9180), base mode, for DAP's report shares
// and aggregate shares.
//
// Supported: KEM DHKEM(X25519, HKDF-SHA256) (0x0020), KDF HKDF-SHA256 (0x0001),
// AEADs AES-128-GCM (0x0001) and ChaCha20Poly1305 (0x0003). Other suites and
// the psk, auth and auth_psk modes are not implemented: DAP uses base mode.
//
// Built on OpenSSL 3.0 primitives (X25519, SHA-256, the AEADs); OpenSSL 3.0
// has no HPKE API of its own. Nothing here throws; every fallible function
// returns Result<T>. Secrets (private keys, shared secrets, AEAD keys, nonces,
// exporter secrets) live in objects that wipe them on destruction and are never
// put into error messages.
//
// Typical use in DAP:
//
//   // Client: one message per setup.
//   Result<Sealed> sealed = Seal(suite, collector_public_key, info, aad, share);
//   // Aggregator: load the private key once, then open many reports.
//   Result<RecipientKey> key = RecipientKey::Create(suite.kem, private_key);
//   Result<std::vector<uint8_t>> share = Open(suite, *key, enc, info, aad, ct);
#ifndef CANOPY_CRYPTO_HPKE_H_
#define CANOPY_CRYPTO_HPKE_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "crypto/error.h"

// OpenSSL's types, declared here so that users of this header need not see
// OpenSSL's headers (the crypto library links OpenSSL privately).
struct evp_pkey_st;
struct evp_pkey_ctx_st;
struct evp_cipher_ctx_st;

namespace canopy::crypto::hpke {

// The algorithm identifiers of RFC 9180, section 7. An enum may hold any
// 16-bit value (as decoded from a DAP HpkeConfig); CheckSuite says which ones
// this implementation supports.
enum class KemId : uint16_t { kX25519HkdfSha256 = 0x0020 };
enum class KdfId : uint16_t { kHkdfSha256 = 0x0001 };
enum class AeadId : uint16_t { kAes128Gcm = 0x0001, kChaCha20Poly1305 = 0x0003 };

// A ciphersuite: one KEM, one KDF, one AEAD.
struct Suite {
  KemId kem;
  KdfId kdf;
  AeadId aead;
};

// Sizes of the supported algorithms (RFC 9180, section 7): X25519's encoded
// public key (Npk = Nenc) and private key (Nsk), the AEAD nonce (Nn) and tag
// (Nt), both the same for AES-128-GCM and ChaCha20Poly1305.
inline constexpr size_t kX25519PublicKeySize = 32;
inline constexpr size_t kX25519PrivateKeySize = 32;
inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;

// The largest Export length for HKDF-SHA256: 255 * Nh.
inline constexpr size_t kMaxExportSize = 255 * 32;

// Succeeds when this implementation supports `kem`. Errors: kUnsupported.
Result<void> CheckKem(KemId kem);

// Succeeds when this implementation supports all three algorithms of `suite`.
// Errors: kUnsupported, naming the unsupported algorithm.
Result<void> CheckSuite(const Suite& suite);

// A secret byte string: move-only, wiped on destruction and when overwritten
// by a move. Usable wherever a std::span<const uint8_t> is expected.
class SecretBytes {
 public:
  SecretBytes() = default;
  // `size` zero bytes.
  explicit SecretBytes(size_t size) : bytes_(size) {}
  // A copy of `bytes`.
  explicit SecretBytes(std::span<const uint8_t> bytes) : bytes_(bytes.begin(), bytes.end()) {}
  ~SecretBytes() { Wipe(); }

  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;

  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  const uint8_t* data() const { return bytes_.data(); }
  uint8_t* data() { return bytes_.data(); }
  const uint8_t* begin() const { return bytes_.data(); }
  const uint8_t* end() const { return bytes_.data() + bytes_.size(); }
  uint8_t* begin() { return bytes_.data(); }
  uint8_t* end() { return bytes_.data() + bytes_.size(); }
  std::span<const uint8_t> span() const { return bytes_; }
  std::span<uint8_t> mutable_span() { return bytes_; }

 private:
  void Wipe();

  std::vector<uint8_t> bytes_;  // Never resized after construction.
};

// A KEM key pair: the serialized private key (SerializePrivateKey, Nsk bytes)
// and public key (SerializePublicKey, Npk bytes). Move-only through
// SecretBytes; the private key is wiped on destruction.
struct KeyPair {
  SecretBytes private_key;
  std::vector<uint8_t> public_key;
};

// A fresh random key pair. Errors: kUnsupported (kem); kInternal (the random
// generator or OpenSSL failed).
Result<KeyPair> GenerateKeyPair(KemId kem);

// The key pair RFC 9180's DeriveKeyPair(ikm) gives (section 7.1.3): for X25519
// sk = LabeledExpand(LabeledExtract("", "dkp_prk", ikm), "sk", "", 32).
// Errors: kUnsupported (kem); kInvalidArgument when `ikm` is shorter than Nsk
// (32) bytes, which the RFC requires as a minimum of entropy; kInternal.
Result<KeyPair> DeriveKeyPair(KemId kem, std::span<const uint8_t> ikm);

// The serialized public key of a serialized private key. X25519 accepts any
// 32 bytes (the scalar is clamped, as RFC 7748 says). Errors: kUnsupported
// (kem); kInvalidArgument (wrong private key length); kInternal.
Result<std::vector<uint8_t>> PublicKeyFromPrivate(KemId kem, std::span<const uint8_t> private_key);

namespace internal {
struct Access;  // The implementation's door into the classes below.
}  // namespace internal

// A recipient's private key, decoded once for many Opens: it keeps OpenSSL's
// key object and the public key (which Decap needs, and which costs a scalar
// multiplication to compute). Move-only; OpenSSL wipes the key on free. Safe
// to share between threads for SetupBaseR and Open (they only read it).
class RecipientKey {
 public:
  // Decodes `private_key` (Nsk bytes). Errors: kUnsupported (kem);
  // kInvalidArgument (wrong length); kInternal (OpenSSL failed).
  static Result<RecipientKey> Create(KemId kem, std::span<const uint8_t> private_key);

  ~RecipientKey();
  RecipientKey(RecipientKey&& other) noexcept;
  RecipientKey& operator=(RecipientKey&& other) noexcept;
  RecipientKey(const RecipientKey&) = delete;
  RecipientKey& operator=(const RecipientKey&) = delete;

  KemId kem() const { return kem_; }
  // SerializePublicKey of the matching public key.
  std::span<const uint8_t> public_key() const { return public_key_; }

 private:
  friend struct internal::Access;
  RecipientKey() = default;
  void Free();

  KemId kem_ = KemId::kX25519HkdfSha256;
  evp_pkey_st* pkey_ = nullptr;
  // An EVP_PKEY_CTX already initialised for key agreement with pkey_: each
  // Decap duplicates it, which skips OpenSSL's algorithm fetch (about 2 us).
  evp_pkey_ctx_st* derive_template_ = nullptr;
  std::vector<uint8_t> public_key_;
};

namespace internal {

// The state both context roles share: the suite, the AEAD key (inside
// OpenSSL's cipher context, set up once), base_nonce, exporter_secret and
// the sequence number. Wiped on destruction. Use the role classes below.
class ContextCore {
 public:
  ContextCore() = default;
  ~ContextCore();
  ContextCore(ContextCore&& other) noexcept;
  ContextCore& operator=(ContextCore&& other) noexcept;
  ContextCore(const ContextCore&) = delete;
  ContextCore& operator=(const ContextCore&) = delete;

 private:
  friend struct Access;
  void Free();

  Suite suite_{};
  evp_cipher_ctx_st* cipher_ = nullptr;
  std::array<uint8_t, kNonceSize> base_nonce_{};
  std::array<uint8_t, 32> exporter_secret_{};
  uint64_t sequence_number_ = 0;
};

}  // namespace internal

// The sender's context of RFC 9180 section 5.2: encrypts messages in order.
// Move-only; its keys are wiped on destruction. Not safe for concurrent use.
class SenderContext {
 public:
  // Encrypts `plaintext` with the next nonce, base_nonce XOR I2OSP(seq, 12),
  // and advances the sequence number. Returns ciphertext || tag
  // (plaintext.size() + kTagSize bytes). Errors: kInvalidArgument when the
  // sequence number is exhausted (2^64 - 1 messages; RFC 9180 allows more,
  // which no DAP use approaches); kInternal when OpenSSL fails. A failed Seal
  // does not advance the sequence number.
  Result<std::vector<uint8_t>> Seal(std::span<const uint8_t> aad,
                                    std::span<const uint8_t> plaintext);

  // Export(exporter_context, L) = LabeledExpand(exporter_secret, "sec",
  // exporter_context, L). Errors: kInvalidArgument when length >
  // kMaxExportSize; kInternal.
  Result<SecretBytes> Export(std::span<const uint8_t> exporter_context, size_t length) const;

  // The sequence number the next Seal uses.
  uint64_t sequence_number() const;
  const Suite& suite() const;

 private:
  friend struct internal::Access;
  explicit SenderContext(internal::ContextCore core) : core_(std::move(core)) {}

  internal::ContextCore core_;
};

// The recipient's context of RFC 9180 section 5.2: decrypts messages in the
// order they were sealed. Move-only; keys wiped on destruction. Not safe for
// concurrent use.
class RecipientContext {
 public:
  // Decrypts `ciphertext` (ciphertext || tag) with the next nonce. Errors:
  // kDecodeError when `ciphertext` is shorter than the tag; kVerifyFailed when
  // the tag does not verify (wrong key, aad, info, order, or a modified
  // ciphertext) and no plaintext is returned; kInvalidArgument when the
  // sequence number is exhausted; kInternal. Only a successful Open advances
  // the sequence number, as the RFC says.
  Result<std::vector<uint8_t>> Open(std::span<const uint8_t> aad,
                                    std::span<const uint8_t> ciphertext);

  // As SenderContext::Export; both sides export the same values.
  Result<SecretBytes> Export(std::span<const uint8_t> exporter_context, size_t length) const;

  uint64_t sequence_number() const;
  const Suite& suite() const;

 private:
  friend struct internal::Access;
  explicit RecipientContext(internal::ContextCore core) : core_(std::move(core)) {}

  internal::ContextCore core_;
};

// What SetupBaseS returns: the encapsulated key to send, and the context.
struct SenderSetup {
  std::vector<uint8_t> enc;
  SenderContext context;
};

// SetupBaseS(pkR, info) with a fresh random ephemeral key. Errors:
// kUnsupported (suite); kDecodeError (`recipient_public_key` is not Npk
// bytes); kVerifyFailed (the public key is a low-order point, so the X25519
// output is all zero); kInternal.
Result<SenderSetup> SetupBaseS(const Suite& suite, std::span<const uint8_t> recipient_public_key,
                               std::span<const uint8_t> info);

// SetupBaseS with the ephemeral key pair DeriveKeyPair(ikm_e), as RFC 9180's
// test vectors do. Deterministic: for tests only, since reusing ikm_e across
// messages to different keys or with different plaintexts forfeits security.
// Errors: those of SetupBaseS and DeriveKeyPair.
Result<SenderSetup> SetupBaseSWithEphemeral(const Suite& suite,
                                            std::span<const uint8_t> recipient_public_key,
                                            std::span<const uint8_t> info,
                                            std::span<const uint8_t> ikm_e);

// SetupBaseR(enc, skR, info). Errors: kUnsupported (suite); kInvalidArgument
// (the key is for another KEM than suite.kem); kDecodeError (`enc` is not Nenc
// bytes); kVerifyFailed (`enc` is a low-order point); kInternal. A wrong key or
// info is not detected here: the first Open fails instead.
Result<RecipientContext> SetupBaseR(const Suite& suite, std::span<const uint8_t> enc,
                                    const RecipientKey& recipient_key,
                                    std::span<const uint8_t> info);

// SetupBaseR from a serialized private key; decodes it on every call, which
// costs a scalar multiplication more than the RecipientKey overload. Errors:
// those of RecipientKey::Create and SetupBaseR.
Result<RecipientContext> SetupBaseR(const Suite& suite, std::span<const uint8_t> enc,
                                    std::span<const uint8_t> recipient_private_key,
                                    std::span<const uint8_t> info);

// A single-shot encryption: the encapsulated key and ciphertext || tag.
struct Sealed {
  std::vector<uint8_t> enc;
  std::vector<uint8_t> ciphertext;
};

// Single-shot Seal (RFC 9180 section 6.1): SetupBaseS, then one Seal.
// Errors: those of SetupBaseS and SenderContext::Seal.
Result<Sealed> Seal(const Suite& suite, std::span<const uint8_t> recipient_public_key,
                    std::span<const uint8_t> info, std::span<const uint8_t> aad,
                    std::span<const uint8_t> plaintext);

// Single-shot Open: SetupBaseR, then one Open. Errors: those of SetupBaseR and
// RecipientContext::Open; in particular kVerifyFailed for any wrong key, aad,
// info or modified ciphertext, and kDecodeError for a malformed `enc` or a
// ciphertext shorter than the tag.
Result<std::vector<uint8_t>> Open(const Suite& suite, const RecipientKey& recipient_key,
                                  std::span<const uint8_t> enc, std::span<const uint8_t> info,
                                  std::span<const uint8_t> aad,
                                  std::span<const uint8_t> ciphertext);

// Single-shot Open from a serialized private key (decoded on every call; see
// SetupBaseR). Errors: those of RecipientKey::Create and the overload above.
Result<std::vector<uint8_t>> Open(const Suite& suite,
                                  std::span<const uint8_t> recipient_private_key,
                                  std::span<const uint8_t> enc, std::span<const uint8_t> info,
                                  std::span<const uint8_t> aad,
                                  std::span<const uint8_t> ciphertext);

}  // namespace canopy::crypto::hpke

#endif  // CANOPY_CRYPTO_HPKE_H_
