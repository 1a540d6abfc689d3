#include "aggregator/internal/opened_report.h"

#include <cstdint>
#include <optional>
#include <utility>

#include "crypto/secure_wipe.h"
#include "dap/codec.h"

namespace canopy::aggregator::internal {
namespace {

constexpr uint64_t kMax32 = 0xffffffffULL;

bool Read(dap::Reader& r, OpenedReport& m) {
  return dap::Read(r, m.metadata) && r.Opaque(m.public_share, 4, 0, kMax32, "public_share") &&
         r.Opaque(m.leader_input_share, 4, 1, kMax32, "leader_input_share") &&
         dap::Read(r, m.helper_encrypted_input_share);
}

// The parts of a stored row that both forms keep: metadata, public share,
// helper's ciphertext.
struct SharedParts {
  dap::ReportMetadata metadata;
  Bytes public_share;
  dap::HpkeCiphertext helper_encrypted_input_share;
  friend bool operator==(const SharedParts&, const SharedParts&) = default;
};

std::optional<SharedParts> SharedPartsOf(const ClientReportRow& row) {
  if (row.form == StoredReportForm::kLeaderShareOpened) {
    auto opened = DecodeOpenedReport(row.encoded_report);
    if (!opened) return std::nullopt;
    return SharedParts{std::move(opened->metadata), std::move(opened->public_share),
                       std::move(opened->helper_encrypted_input_share)};
  }
  auto report = dap::Decode<dap::Report>(row.encoded_report);
  if (!report) return std::nullopt;
  return SharedParts{std::move(report->metadata), std::move(report->public_share),
                     std::move(report->helper_encrypted_input_share)};
}

}  // namespace

OpenedReport::~OpenedReport() { crypto::SecureWipeVector(leader_input_share); }

Result<Bytes> EncodeOpenedReport(const dap::Report& report,
                                 std::span<const uint8_t> leader_input_share) {
  auto write = [&](dap::Writer& w) {
    dap::Write(w, report.metadata);
    w.Opaque(report.public_share, 4, 0, kMax32, "public_share");
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
  if (stored.form == retry.form) return stored.encoded_report == retry.encoded_report;
  std::optional<SharedParts> stored_parts = SharedPartsOf(stored);
  std::optional<SharedParts> retry_parts = SharedPartsOf(retry);
  return stored_parts && retry_parts && *stored_parts == *retry_parts;
}

void WipeIfOpened(ClientReportRow& row) {
  if (row.form == StoredReportForm::kLeaderShareOpened)
    crypto::SecureWipeVector(row.encoded_report);
}

}  // namespace canopy::aggregator::internal
