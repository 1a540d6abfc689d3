// The leader's stored form of a report whose input share it opened at
// upload (StoredReportForm::kLeaderShareOpened): the report as uploaded, but
// with the leader's share in plaintext instead of its HPKE ciphertext, so
// that the walk's first round does no HPKE (an X25519 operation a report,
// 40 % of the leader's first round; see docs/aggregator.md for why the
// opened share at rest changes nothing an attacker can learn).
#ifndef CANOPY_AGGREGATOR_INTERNAL_OPENED_REPORT_H_
#define CANOPY_AGGREGATOR_INTERNAL_OPENED_REPORT_H_

#include <array>
#include <cstdint>
#include <span>

#include "aggregator/datastore.h"
#include "crypto/error.h"
#include "dap/messages.h"

namespace canopy::aggregator::internal {

// A decoded opened report. Move-only; the leader's share is wiped on
// destruction.
struct OpenedReport {
  dap::ReportMetadata metadata;
  Bytes public_share;
  // SHA-256 of the leader's HpkeCiphertext as uploaded (its encoding), which
  // is not kept: a retry of the upload is recognized by it, so that the
  // comparison never reads the plaintext (LeaderCiphertextDigest).
  std::array<uint8_t, 32> leader_ciphertext_digest{};
  // The payload of the leader's PlaintextInputShare (the VDAF's encoding of
  // its input share). Its private extensions are not kept: a report with
  // any is refused at upload. Secret.
  Bytes leader_input_share;
  dap::HpkeCiphertext helper_encrypted_input_share;

  OpenedReport() = default;
  OpenedReport(OpenedReport&&) = default;
  OpenedReport& operator=(OpenedReport&&) = default;
  ~OpenedReport();
};

// SHA-256 of the HpkeCiphertext's DAP encoding.
std::array<uint8_t, 32> LeaderCiphertextDigest(const dap::HpkeCiphertext& ciphertext);

// The stored encoding of `report` with `leader_input_share` in place of its
// leader's ciphertext: ReportMetadata, opaque public_share<0..2^32-1>, the
// 32-byte LeaderCiphertextDigest of the leader's ciphertext, opaque
// leader_input_share<1..2^32-1>, HpkeCiphertext of the helper's share (DAP's
// encodings). The result holds the secret share: the caller wipes it.
// Errors: kInvalidArgument when a field is out of its range.
Result<Bytes> EncodeOpenedReport(const dap::Report& report,
                                 std::span<const uint8_t> leader_input_share);

// Decodes EncodeOpenedReport's encoding, all of it. Errors: kDecodeError
// naming the field that is short, too long, or followed by trailing bytes.
Result<OpenedReport> DecodeOpenedReport(std::span<const uint8_t> encoded);

// A stored report of either form, decoded: the report (in the opened form,
// without the leader's ciphertext) and, in the opened form, the leader's
// share, which is then wiped on destruction.
struct StoredReport {
  dap::Report report;
  Bytes leader_input_share;  // Empty: the share is in report's ciphertext.

  StoredReport() = default;
  StoredReport(StoredReport&&) = default;
  StoredReport& operator=(StoredReport&&) = default;
  ~StoredReport();
};

// Decodes `row`'s report, whatever its form, and wipes the row's bytes when
// they hold an opened share. Errors: kDecodeError, as the form's decoder
// gives it.
Result<StoredReport> DecodeStoredReport(ClientReportRow& row);

// Whether `retry`, uploaded now, is the report `stored` holds, for the
// upload's idempotency (a report uploaded again byte for byte is accepted
// again), in either form: metadata, public share and helper's ciphertext
// compared as they are, the leader's ciphertext by its digest. The opened
// share is never compared: an answer that depended on it would let whoever
// knows the rest of a report test guesses of the leader's share.
bool SameUploadedReport(const ClientReportRow& stored, const ClientReportRow& retry);

// Wipes the row's bytes when they hold an opened share (any other form's
// are left alone).
void WipeIfOpened(ClientReportRow& row);

}  // namespace canopy::aggregator::internal

#endif  // CANOPY_AGGREGATOR_INTERNAL_OPENED_REPORT_H_
