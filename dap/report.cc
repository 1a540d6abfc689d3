#include "dap/report.h"

#include "crypto/random.h"
#include "crypto/secure_wipe.h"

namespace canopy::dap {
namespace {

Result<Bytes> InputShareAadBytes(const TaskId& task_id, const TaskConfiguration& configuration,
                                 const ReportMetadata& metadata,
                                 std::span<const uint8_t> public_share) {
  InputShareAad aad{task_id, configuration, metadata,
                    Bytes(public_share.begin(), public_share.end())};
  return Encode(aad);
}

}  // namespace

crypto::hpke::Suite SuiteOf(const HpkeConfig& config) {
  return {static_cast<crypto::hpke::KemId>(config.kem_id),
          static_cast<crypto::hpke::KdfId>(config.kdf_id),
          static_cast<crypto::hpke::AeadId>(config.aead_id)};
}

Result<HpkeConfig> ChooseHpkeConfig(const HpkeConfigList& list) {
  for (const HpkeConfig& config : list.configs) {
    if (crypto::hpke::CheckSuite(SuiteOf(config))) return config;
  }
  return MakeError(ErrorCode::kUnsupported, "no HPKE configuration with a supported suite");
}

Result<Report> BuildReport(const UploadTarget& target, const poplar::Vdaf& vdaf,
                           const poplar::Measurement& measurement, Time time) {
  Report report;
  report.metadata.time = time;
  if (Result<void> filled = crypto::RandomBytes(report.metadata.report_id); !filled) {
    return std::unexpected(filled.error());
  }
  Result<std::vector<uint8_t>> rand = crypto::RandomVector(vdaf.rand_size());
  if (!rand) return std::unexpected(rand.error());
  Result<poplar::ShardOutput> shares =
      vdaf.Shard(VdafContext(target.task_id), measurement, report.metadata.report_id, *rand);
  if (!shares) return std::unexpected(shares.error());
  report.public_share = std::move(shares->public_share);

  Result<Bytes> aad = InputShareAadBytes(target.task_id, target.task_configuration, report.metadata,
                                         report.public_share);
  if (!aad) return std::unexpected(aad.error());
  const HpkeConfig* configs[2] = {&target.leader_hpke_config, &target.helper_hpke_config};
  const Role roles[2] = {Role::kLeader, Role::kHelper};
  HpkeCiphertext* outputs[2] = {&report.leader_encrypted_input_share,
                                &report.helper_encrypted_input_share};
  for (int i = 0; i < 2; ++i) {
    Result<Bytes> plaintext = Encode(PlaintextInputShare{{}, std::move(shares->input_shares[i])});
    if (!plaintext) return std::unexpected(plaintext.error());
    Result<crypto::hpke::Sealed> sealed = crypto::hpke::Seal(
        SuiteOf(*configs[i]), configs[i]->public_key, InputShareInfo(roles[i]), *aad, *plaintext);
    crypto::SecureWipe(plaintext->data(), plaintext->size());
    if (!sealed) return std::unexpected(sealed.error());
    *outputs[i] =
        HpkeCiphertext{configs[i]->id, std::move(sealed->enc), std::move(sealed->ciphertext)};
  }
  return report;
}

std::variant<PlaintextInputShare, ReportError> OpenInputShare(
    const TaskId& task_id, const TaskConfiguration& task_configuration,
    const ReportMetadata& metadata, std::span<const uint8_t> public_share,
    const HpkeCiphertext& ciphertext, Role role, std::span<const AggregatorHpkeKey* const> keys) {
  const AggregatorHpkeKey* key = nullptr;
  for (const AggregatorHpkeKey* candidate : keys) {
    if (candidate != nullptr && candidate->config.id == ciphertext.config_id) key = candidate;
  }
  if (key == nullptr) return ReportError::kHpkeUnknownConfigId;
  Result<Bytes> aad = InputShareAadBytes(task_id, task_configuration, metadata, public_share);
  if (!aad) return ReportError::kInvalidMessage;
  Result<std::vector<uint8_t>> plaintext =
      crypto::hpke::Open(SuiteOf(key->config), key->key, ciphertext.enc, InputShareInfo(role), *aad,
                         ciphertext.payload);
  if (!plaintext) return ReportError::kHpkeDecryptError;
  Result<PlaintextInputShare> share = Decode<PlaintextInputShare>(*plaintext);
  crypto::SecureWipe(plaintext->data(), plaintext->size());
  if (!share) return ReportError::kInvalidMessage;
  return std::move(*share);
}

}  // namespace canopy::dap
