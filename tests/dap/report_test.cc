// Reports: built by a client, opened by each aggregator, verified; every
// binding of the AAD and info is checked by tampering with it.
#include "dap/report.h"

#include <gtest/gtest.h>

#include "dap/task.h"
#include "idpf/bit_string.h"

namespace canopy::dap {
namespace {

struct Aggregator {
  HpkeConfig config;
  std::optional<AggregatorHpkeKey> key;
};

Aggregator MakeAggregator(uint8_t config_id) {
  auto pair = crypto::hpke::GenerateKeyPair(crypto::hpke::KemId::kX25519HkdfSha256);
  EXPECT_TRUE(pair);
  Aggregator aggregator;
  aggregator.config = {config_id, 0x0020, 0x0001, 0x0001, pair->public_key};
  auto key =
      crypto::hpke::RecipientKey::Create(crypto::hpke::KemId::kX25519HkdfSha256, pair->private_key);
  EXPECT_TRUE(key);
  aggregator.key.emplace(AggregatorHpkeKey{aggregator.config, std::move(*key)});
  return aggregator;
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    target_.task_id[0] = 7;
    target_.task_configuration.leader_aggregator_endpoint = {'l'};
    target_.task_configuration.helper_aggregator_endpoint = {'h'};
    target_.task_configuration.time_precision = 60;
    target_.task_configuration.min_batch_size = 1;
    target_.task_configuration.vdaf_type = static_cast<uint32_t>(VdafType::kPoplar1);
    target_.task_configuration.vdaf_configuration = Poplar1Configuration(16);
    target_.leader_hpke_config = leader_.config;
    target_.helper_hpke_config = helper_.config;
    vdaf_ = std::move(*MakeVdaf(target_.task_configuration.vdaf_type,
                                target_.task_configuration.vdaf_configuration));
  }

  std::variant<PlaintextInputShare, ReportError> Open(const Report& report, Role role,
                                                      const TaskConfiguration& configuration) {
    const Aggregator& aggregator = role == Role::kLeader ? leader_ : helper_;
    const AggregatorHpkeKey* keys[] = {&*aggregator.key};
    const HpkeCiphertext& ciphertext = role == Role::kLeader ? report.leader_encrypted_input_share
                                                             : report.helper_encrypted_input_share;
    return OpenInputShare(target_.task_id, configuration, report.metadata, report.public_share,
                          ciphertext, role, keys);
  }

  Aggregator leader_ = MakeAggregator(1);
  Aggregator helper_ = MakeAggregator(2);
  UploadTarget target_;
  std::unique_ptr<poplar::Vdaf> vdaf_;
};

TEST_F(ReportTest, BothAggregatorsOpenAndVerify) {
  const idpf::BitString string = idpf::BitString::FromUint64(0xbeef, 16);
  Result<Report> report = BuildReport(target_, *vdaf_, string, 1234);
  ASSERT_TRUE(report) << report.error().ToString();
  EXPECT_EQ(report->leader_encrypted_input_share.config_id, 1);
  EXPECT_EQ(report->helper_encrypted_input_share.config_id, 2);
  // The report survives its wire encoding.
  ASSERT_EQ(*Decode<Report>(*Encode(*report)), *report);

  auto leader_share = Open(*report, Role::kLeader, target_.task_configuration);
  auto helper_share = Open(*report, Role::kHelper, target_.task_configuration);
  ASSERT_TRUE(std::holds_alternative<PlaintextInputShare>(leader_share));
  ASSERT_TRUE(std::holds_alternative<PlaintextInputShare>(helper_share));

  // Level 0 with prefixes 0 and 1: the count lands on prefix "1" (0xbeef).
  const Bytes ctx = VdafContext(target_.task_id);
  auto param = vdaf_->DecodeAggParam(Bytes{0, 0, 0, 0, 0, 2, 0x00, 0x80}, nullptr);
  ASSERT_TRUE(param);
  const Bytes verify_key(32, 3);
  std::unique_ptr<poplar::PreparedReport> prepared[2];
  const PlaintextInputShare* shares[2] = {&std::get<PlaintextInputShare>(leader_share),
                                          &std::get<PlaintextInputShare>(helper_share)};
  std::vector<Bytes> round0, round1;
  poplar::VerifyTransition init[2], next[2];
  for (int agg = 0; agg < 2; ++agg) {
    prepared[agg] = std::move(*vdaf_->PrepareReport(agg, ctx, report->metadata.report_id,
                                                    report->public_share, shares[agg]->payload));
    init[agg] = *vdaf_->VerifyInit(verify_key, ctx, **param, *prepared[agg]);
    round0.push_back(init[agg].verifier_share);
  }
  Bytes message0 = *vdaf_->VerifierSharesToMessage(ctx, **param, round0);
  for (int agg = 0; agg < 2; ++agg) {
    next[agg] = *vdaf_->VerifyNext(ctx, init[agg].state, message0);
    round1.push_back(next[agg].verifier_share);
  }
  Bytes message1 = *vdaf_->VerifierSharesToMessage(ctx, **param, round1);
  std::vector<Bytes> agg_shares;
  for (int agg = 0; agg < 2; ++agg) {
    auto done = vdaf_->VerifyNext(ctx, next[agg].state, message1);
    ASSERT_TRUE(done && done->finished);
    agg_shares.push_back(poplar::EncodeFieldVector(done->out_share));
  }
  auto counts = vdaf_->Unshard(**param, agg_shares, 1);
  ASSERT_TRUE(counts);
  EXPECT_EQ(*counts, (poplar::AggregateResult{0, 1}));
}

TEST_F(ReportTest, EveryBindingIsChecked) {
  Result<Report> report = BuildReport(target_, *vdaf_, idpf::BitString::FromUint64(5, 16), 99);
  ASSERT_TRUE(report);
  auto error_of = [](const std::variant<PlaintextInputShare, ReportError>& result) {
    return std::holds_alternative<ReportError>(result) ? std::get<ReportError>(result)
                                                       : static_cast<ReportError>(0);
  };
  // The helper's share under the leader's role (info differs), and vice versa.
  Report swapped = *report;
  std::swap(swapped.leader_encrypted_input_share, swapped.helper_encrypted_input_share);
  swapped.leader_encrypted_input_share.config_id = 1;
  EXPECT_EQ(error_of(Open(swapped, Role::kLeader, target_.task_configuration)),
            ReportError::kHpkeDecryptError);
  // An unknown config ID.
  Report unknown = *report;
  unknown.leader_encrypted_input_share.config_id = 9;
  EXPECT_EQ(error_of(Open(unknown, Role::kLeader, target_.task_configuration)),
            ReportError::kHpkeUnknownConfigId);
  // Each part of the AAD: metadata time, report ID, public share, task configuration.
  Report later = *report;
  later.metadata.time += 1;
  EXPECT_EQ(error_of(Open(later, Role::kHelper, target_.task_configuration)),
            ReportError::kHpkeDecryptError);
  Report other_id = *report;
  other_id.metadata.report_id[0] ^= 1;
  EXPECT_EQ(error_of(Open(other_id, Role::kHelper, target_.task_configuration)),
            ReportError::kHpkeDecryptError);
  Report other_public = *report;
  other_public.public_share[5] ^= 1;
  EXPECT_EQ(error_of(Open(other_public, Role::kLeader, target_.task_configuration)),
            ReportError::kHpkeDecryptError);
  TaskConfiguration other_task = target_.task_configuration;
  other_task.min_batch_size = 2;
  EXPECT_EQ(error_of(Open(*report, Role::kLeader, other_task)), ReportError::kHpkeDecryptError);
  // A flipped ciphertext bit.
  Report flipped = *report;
  flipped.helper_encrypted_input_share.payload[3] ^= 0x10;
  EXPECT_EQ(error_of(Open(flipped, Role::kHelper, target_.task_configuration)),
            ReportError::kHpkeDecryptError);
}

TEST_F(ReportTest, MeasurementsOutOfRangeAreRefusedAtTheClient) {
  EXPECT_FALSE(BuildReport(target_, *vdaf_, idpf::BitString::FromUint64(5, 15), 99));
  EXPECT_FALSE(BuildReport(target_, *vdaf_, uint64_t{1}, 99));
}

TEST(HpkeConfigChoice, PicksTheFirstSupportedSuite) {
  HpkeConfigList list;
  list.configs.push_back({1, 0x0010, 1, 1, {4}});  // P-256: unsupported.
  list.configs.push_back({2, 0x0020, 1, 1, {5}});
  EXPECT_EQ(ChooseHpkeConfig(list)->id, 2);
  list.configs.pop_back();
  EXPECT_FALSE(ChooseHpkeConfig(list));
}

}  // namespace
}  // namespace canopy::dap
