// HPKE's inner steps (RFC 9180 sections 4 and 5.1), exposed for the
// known-answer tests, which check every intermediate value of the official
// vectors. Production code uses crypto/hpke.h only: these functions hand out
// raw key material.
#ifndef CANOPY_CRYPTO_INTERNAL_HPKE_INTERNAL_H_
#define CANOPY_CRYPTO_INTERNAL_HPKE_INTERNAL_H_

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "crypto/error.h"
#include "crypto/hpke.h"

namespace canopy::crypto::hpke::internal {

// Encap's outputs: the KEM shared secret and the encapsulated key.
struct EncapResult {
  SecretBytes shared_secret;
  std::vector<uint8_t> enc;
};

// Encap(pkR) with the ephemeral private key `ephemeral_private_key` (Nsk
// bytes). Errors: kUnsupported; kInvalidArgument (private key length);
// kDecodeError (public key length); kVerifyFailed (all-zero DH); kInternal.
Result<EncapResult> EncapWithEphemeral(KemId kem, std::span<const uint8_t> recipient_public_key,
                                       std::span<const uint8_t> ephemeral_private_key);

// Decap(enc, skR): the KEM shared secret. Errors: kDecodeError (enc length);
// kVerifyFailed (all-zero DH); kInternal.
Result<SecretBytes> Decap(std::span<const uint8_t> enc, const RecipientKey& recipient_key);

// KeySchedule's outputs in base mode, with its intermediate values.
struct KeyScheduleResult {
  std::vector<uint8_t> key_schedule_context;  // mode || psk_id_hash || info_hash
  SecretBytes secret;
  SecretBytes key;
  SecretBytes base_nonce;
  SecretBytes exporter_secret;
};

// KeySchedule(mode_base, shared_secret, info, psk = "", psk_id = "").
// Errors: kUnsupported (suite); kInternal.
Result<KeyScheduleResult> KeySchedule(const Suite& suite, std::span<const uint8_t> shared_secret,
                                      std::span<const uint8_t> info);

// base_nonce XOR I2OSP(sequence_number, Nn).
std::array<uint8_t, kNonceSize> ComputeNonce(std::span<const uint8_t, kNonceSize> base_nonce,
                                             uint64_t sequence_number);

// Contexts built straight from key-schedule outputs, starting at
// `sequence_number` (tests use this to reach the sequence limit). Errors:
// kUnsupported (suite); kInvalidArgument (key, nonce or exporter secret of the
// wrong length); kInternal.
Result<SenderContext> MakeSenderContext(const Suite& suite, std::span<const uint8_t> key,
                                        std::span<const uint8_t> base_nonce,
                                        std::span<const uint8_t> exporter_secret,
                                        uint64_t sequence_number = 0);
Result<RecipientContext> MakeRecipientContext(const Suite& suite, std::span<const uint8_t> key,
                                              std::span<const uint8_t> base_nonce,
                                              std::span<const uint8_t> exporter_secret,
                                              uint64_t sequence_number = 0);

}  // namespace canopy::crypto::hpke::internal

#endif  // CANOPY_CRYPTO_INTERNAL_HPKE_INTERNAL_H_
