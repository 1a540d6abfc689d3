// Building and opening reports: the client's side of DAP-19 upload (shard,
// then encrypt each input share to its aggregator) and the aggregators' side
// (decrypt and decode an input share, mapping each failure to the report
// error the draft prescribes).
#ifndef CANOPY_DAP_REPORT_H_
#define CANOPY_DAP_REPORT_H_

#include <span>
#include <variant>

#include "crypto/error.h"
#include "crypto/hpke.h"
#include "dap/messages.h"
#include "poplar/vdaf.h"

namespace canopy::dap {

// The HPKE suite an HpkeConfig names.
crypto::hpke::Suite SuiteOf(const HpkeConfig& config);

// The first configuration of `list` whose suite Canopy supports (the list is
// in decreasing order of preference). Errors (kUnsupported): none is.
Result<HpkeConfig> ChooseHpkeConfig(const HpkeConfigList& list);

// Everything a client needs to build reports for a task.
struct UploadTarget {
  TaskId task_id{};
  TaskConfiguration task_configuration;
  HpkeConfig leader_hpke_config;
  HpkeConfig helper_hpke_config;
};

// Builds one report: a random report ID, sharding with the VDAF context
// "dap-19" || task_id and the report ID as nonce, then each input share sealed
// to its aggregator with info "dap-19 input share" || 0x01 || role and the
// InputShareAad. Errors: the VDAF's (for example a measurement out of range,
// kInvalidArgument), HPKE's (an unsupported suite, kUnsupported), or
// kInternal when randomness fails.
Result<Report> BuildReport(const UploadTarget& target, const poplar::Vdaf& vdaf,
                           const poplar::Measurement& measurement, Time time);

// An aggregator's private HPKE key and its configuration.
struct AggregatorHpkeKey {
  HpkeConfig config;
  crypto::hpke::RecipientKey key;
};

// Opens an aggregator's encrypted input share. `role` is the opening
// aggregator's. Returns the decoded PlaintextInputShare, or the report error
// to answer with: hpke_unknown_config_id when no key has the ciphertext's
// config ID, hpke_decrypt_error when decryption fails, invalid_message when
// the plaintext does not decode.
std::variant<PlaintextInputShare, ReportError> OpenInputShare(
    const TaskId& task_id, const TaskConfiguration& task_configuration,
    const ReportMetadata& metadata, std::span<const uint8_t> public_share,
    const HpkeCiphertext& ciphertext, Role role, std::span<const AggregatorHpkeKey* const> keys);

}  // namespace canopy::dap

#endif  // CANOPY_DAP_REPORT_H_
