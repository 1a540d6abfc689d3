// The leader's stored form of a report opened at upload: its encoding, both
// forms' decoding, the upload's idempotency across forms (never by the opened
// share), and the wiping of the opened share.
#include "aggregator/internal/opened_report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "aggregator/internal/common.h"

namespace canopy::aggregator::internal {
namespace {

dap::Report SomeReport() {
  dap::Report report;
  for (size_t i = 0; i < report.metadata.report_id.size(); ++i) {
    report.metadata.report_id[i] = static_cast<uint8_t>(i + 1);
  }
  report.metadata.time = 1234;
  report.public_share = Bytes(300, 0x5a);
  report.leader_encrypted_input_share = {7, Bytes(32, 0x11), Bytes(80, 0x22)};
  report.helper_encrypted_input_share = {8, Bytes(32, 0x33), Bytes(90, 0x44)};
  return report;
}

const Bytes kLeaderShare(64, 0x99);

ClientReportRow AsUploadedRow(const dap::Report& report) {
  ClientReportRow row;
  row.report_id = report.metadata.report_id;
  row.encoded_report = *dap::Encode(report);
  row.form = StoredReportForm::kAsUploaded;
  return row;
}

ClientReportRow OpenedRow(const dap::Report& report, const Bytes& leader_share) {
  ClientReportRow row;
  row.report_id = report.metadata.report_id;
  row.encoded_report = *EncodeOpenedReport(report, leader_share);
  row.form = StoredReportForm::kLeaderShareOpened;
  return row;
}

TEST(OpenedReport, RoundTripsWithoutTheLeadersCiphertext) {
  const dap::Report report = SomeReport();
  auto encoded = EncodeOpenedReport(report, kLeaderShare);
  ASSERT_TRUE(encoded);
  // Metadata (16 + 8 + 2), public share (4 + 300), the leader ciphertext's
  // digest (32), leader share (4 + 64), helper ciphertext (1 + 2 + 32 + 4 +
  // 90).
  EXPECT_EQ(encoded->size(), 26u + 304 + 32 + 68 + 129);
  auto decoded = DecodeOpenedReport(*encoded);
  ASSERT_TRUE(decoded) << decoded.error().ToString();
  EXPECT_EQ(decoded->metadata, report.metadata);
  EXPECT_EQ(decoded->public_share, report.public_share);
  EXPECT_EQ(decoded->leader_ciphertext_digest,
            LeaderCiphertextDigest(report.leader_encrypted_input_share));
  EXPECT_EQ(decoded->leader_ciphertext_digest,
            Sha256(*dap::Encode(report.leader_encrypted_input_share)));
  EXPECT_EQ(decoded->leader_input_share, kLeaderShare);
  EXPECT_EQ(decoded->helper_encrypted_input_share, report.helper_encrypted_input_share);
}

TEST(OpenedReport, RefusesEveryTruncationAndTrailingBytes) {
  const Bytes encoded = *EncodeOpenedReport(SomeReport(), kLeaderShare);
  for (size_t length = 0; length < encoded.size(); ++length) {
    auto decoded = DecodeOpenedReport(std::span(encoded).first(length));
    ASSERT_FALSE(decoded) << "length " << length;
    EXPECT_EQ(decoded.error().code(), ErrorCode::kDecodeError);
  }
  Bytes longer = encoded;
  longer.push_back(0);
  auto decoded = DecodeOpenedReport(longer);
  ASSERT_FALSE(decoded);
  EXPECT_NE(decoded.error().message().find("stored opened report"), std::string::npos)
      << decoded.error().message();
}

TEST(OpenedReport, AnEmptyLeaderShareIsNeitherEncodedNorDecoded) {
  // An empty share would read as "not opened" (StoredReport's convention).
  EXPECT_FALSE(EncodeOpenedReport(SomeReport(), {}));
  Bytes encoded = *EncodeOpenedReport(SomeReport(), Bytes{1});
  // The share's length prefix follows the metadata, the public share and
  // the digest.
  const size_t share_length = 26 + 304 + 32;
  ASSERT_EQ(encoded[share_length + 3], 1);
  encoded[share_length + 3] = 0;
  encoded.erase(encoded.begin() + share_length + 4);
  EXPECT_FALSE(DecodeOpenedReport(encoded));
}

TEST(StoredReport, DecodesBothFormsAndWipesTheOpenedRow) {
  const dap::Report report = SomeReport();
  ClientReportRow uploaded = AsUploadedRow(report);
  auto from_uploaded = DecodeStoredReport(uploaded);
  ASSERT_TRUE(from_uploaded);
  EXPECT_EQ(from_uploaded->report, report);
  EXPECT_TRUE(from_uploaded->leader_input_share.empty());
  EXPECT_EQ(uploaded.encoded_report, *dap::Encode(report));  // Nothing secret: left alone.

  ClientReportRow opened = OpenedRow(report, kLeaderShare);
  auto from_opened = DecodeStoredReport(opened);
  ASSERT_TRUE(from_opened);
  EXPECT_EQ(from_opened->report.metadata, report.metadata);
  EXPECT_EQ(from_opened->report.public_share, report.public_share);
  EXPECT_EQ(from_opened->report.helper_encrypted_input_share, report.helper_encrypted_input_share);
  EXPECT_EQ(from_opened->leader_input_share, kLeaderShare);
  EXPECT_TRUE(std::all_of(opened.encoded_report.begin(), opened.encoded_report.end(),
                          [](uint8_t byte) { return byte == 0; }));

  ClientReportRow damaged = AsUploadedRow(report);
  damaged.encoded_report.pop_back();
  EXPECT_FALSE(DecodeStoredReport(damaged));
  damaged = OpenedRow(report, kLeaderShare);
  damaged.encoded_report.pop_back();
  EXPECT_FALSE(DecodeStoredReport(damaged));
}

TEST(StoredReport, RetriesAreRecognizedWithinAndAcrossForms) {
  const dap::Report report = SomeReport();
  EXPECT_TRUE(SameUploadedReport(OpenedRow(report, kLeaderShare), OpenedRow(report, kLeaderShare)));
  EXPECT_TRUE(SameUploadedReport(AsUploadedRow(report), AsUploadedRow(report)));
  EXPECT_TRUE(SameUploadedReport(AsUploadedRow(report), OpenedRow(report, kLeaderShare)));
  EXPECT_TRUE(SameUploadedReport(OpenedRow(report, kLeaderShare), AsUploadedRow(report)));
  // The opened share is never compared (its ciphertext, by digest, is):
  // here two shares under one ciphertext, which HPKE would not give.
  EXPECT_TRUE(
      SameUploadedReport(OpenedRow(report, kLeaderShare), OpenedRow(report, Bytes(64, 0x98))));
  for (int part = 0; part < 4; ++part) {
    dap::Report other = report;
    if (part == 0) other.metadata.time += 1;
    if (part == 1) other.public_share[7] ^= 1;
    if (part == 2) other.helper_encrypted_input_share.payload[0] ^= 1;
    // The leader's share encrypted again: another upload, even if its
    // plaintext were the same.
    if (part == 3) other.leader_encrypted_input_share.enc[0] ^= 1;
    EXPECT_FALSE(SameUploadedReport(AsUploadedRow(report), OpenedRow(other, kLeaderShare)))
        << "part " << part;
    EXPECT_FALSE(SameUploadedReport(OpenedRow(other, kLeaderShare), AsUploadedRow(report)))
        << "part " << part;
    EXPECT_FALSE(
        SameUploadedReport(OpenedRow(report, kLeaderShare), OpenedRow(other, kLeaderShare)))
        << "part " << part;
    EXPECT_FALSE(SameUploadedReport(AsUploadedRow(report), AsUploadedRow(other)))
        << "part " << part;
  }
  // A stored row that no longer decodes matches nothing.
  ClientReportRow damaged = AsUploadedRow(report);
  damaged.encoded_report.pop_back();
  EXPECT_FALSE(SameUploadedReport(damaged, OpenedRow(report, kLeaderShare)));
}

}  // namespace
}  // namespace canopy::aggregator::internal
