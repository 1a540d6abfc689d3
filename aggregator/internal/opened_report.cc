#include "aggregator/internal/opened_report.h"

#include <cstdint>
#include <optional>
#include <utility>

#include "aggregator/internal/common.h"
#include "crypto/secure_wipe.h"
#include "dap/codec.h"

namespace canopy::aggregator::internal {
namespace {

constexpr uint64_t kMax32 = 0xffffffffULL;

bool Read(dap::Reader& r, OpenedReport& m) {
  return dap::Read(r, m.metadata) && r.Opaque(m.public_share, 4, 0, kMax32, "public_share") &&
         r.Fixed(m.leader_ciphertext_digest, "leader_ciphertext_digest") &&
         r.Opaque(m.leader_input_share, 4, 1, kMax32, "leader_input_share") &&
         dap::Read(r, m.helper_encrypted_input_share);
}

// What identifies an upload in either form, without the opened share.
struct UploadIdentity {
  dap::ReportMetadata metadata;
  Bytes public_share;
  std::array<uint8_t, 32> leader_ciphertext_digest{};
  dap::HpkeCiphertext helper_encrypted_input_share;
  friend bool operator==(const UploadIdentity&, const UploadIdentity&) = default;
};

std::optional<UploadIdentity> UploadIdentityOf(const ClientReportRow& row) {
  if (row.form == StoredReportForm::kLeaderShareOpened) {
    auto opened = DecodeOpenedReport(row.encoded_report);
    if (!opened) return std::nullopt;
    return UploadIdentity{std::move(opened->metadata), std::move(opened->public_share),
                          opened->leader_ciphertext_digest,
                          std::move(opened->helper_encrypted_input_share)};
  }
  auto report = dap::Decode<dap::Report>(row.encoded_report);
  if (!report) return std::nullopt;
  return UploadIdentity{std::move(report->metadata), std::move(report->public_share),
                        LeaderCiphertextDigest(report->leader_encrypted_input_share),
                        std::move(report->helper_encrypted_input_share)};
}

}  // namespace

OpenedReport::~OpenedReport() { crypto::SecureWipeVector(leader_input_share); }

std::array<uint8_t, 32> LeaderCiphertextDigest(const dap::HpkeCiphertext& ciphertext) {
  dap::Writer writer;
  dap::Write(writer, ciphertext);
  auto encoded = std::move(writer).Finish();
  // A ciphertext that decoded always encodes; an empty digest would match
  // no real one.
  return encoded ? Sha256(*encoded) : std::array<uint8_t, 32>{};
}

Result<Bytes> EncodeOpenedReport(const dap::Report& report,
                                 std::span<const uint8_t> leader_input_share) {
  const std::array<uint8_t, 32> digest =
      LeaderCiphertextDigest(report.leader_encrypted_input_share);
  auto write = [&](dap::Writer& w) {
    dap::Write(w, report.metadata);
    w.Opaque(report.public_share, 4, 0, kMax32, "public_share");
    w.Fixed(digest);
    w.Opaque(leader_input_share, 4, 1, kMax32, "leader_input_share");
    dap::Write(w, report.helper_encrypted_input_share);
  };
  dap::Writer counter = dap::Writer::Counting();
  write(counter);
  dap::Writer writer;
  writer.Reserve(counter.size());  // One allocation: no partial copies of the share to wipe.
  write(writer);
  return std::move(writer).Finish();
}

Result<OpenedReport> DecodeOpenedReport(std::span<const uint8_t> encoded) {
  return dap::DecodeWith<OpenedReport>(encoded, Read, "stored opened report");
}

StoredReport::~StoredReport() { crypto::SecureWipeVector(leader_input_share); }

Result<StoredReport> DecodeStoredReport(ClientReportRow& row) {
  StoredReport stored;
  if (row.form == StoredReportForm::kLeaderShareOpened) {
    auto opened = DecodeOpenedReport(row.encoded_report);
    WipeIfOpened(row);
    if (!opened) return std::unexpected(opened.error());
    stored.report.metadata = std::move(opened->metadata);
    stored.report.public_share = std::move(opened->public_share);
    stored.report.helper_encrypted_input_share = std::move(opened->helper_encrypted_input_share);
    stored.leader_input_share = std::move(opened->leader_input_share);
    return stored;
  }
  auto report = dap::Decode<dap::Report>(row.encoded_report);
  if (!report) return std::unexpected(report.error());
  stored.report = std::move(*report);
  return stored;
}

bool SameUploadedReport(const ClientReportRow& stored, const ClientReportRow& retry) {
  std::optional<UploadIdentity> stored_identity = UploadIdentityOf(stored);
  std::optional<UploadIdentity> retry_identity = UploadIdentityOf(retry);
  return stored_identity && retry_identity && *stored_identity == *retry_identity;
}

void WipeIfOpened(ClientReportRow& row) {
  if (row.form == StoredReportForm::kLeaderShareOpened)
    crypto::SecureWipeVector(row.encoded_report);
}

}  // namespace canopy::aggregator::internal
