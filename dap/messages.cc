#include "dap/messages.h"

#include <cstring>

namespace canopy::dap {
namespace {

constexpr uint64_t kMax8 = (1ULL << 8) - 1;
constexpr uint64_t kMax16 = (1ULL << 16) - 1;
constexpr uint64_t kMax32 = (1ULL << 32) - 1;

// A vector of elements with a 2-byte (or 4-byte) length prefix.
template <typename T>
void WriteList(Writer& w, const std::vector<T>& items, size_t prefix, uint64_t min, uint64_t max,
               const char* what) {
  const size_t start = w.BeginVector(prefix);
  for (const T& item : items) Write(w, item);
  w.EndVector(start, prefix, min, max, what);
}

template <typename T>
bool ReadList(Reader& r, std::vector<T>& items, size_t prefix, uint64_t min, uint64_t max,
              const char* what) {
  Reader body({});
  if (!r.Vector(body, prefix, min, max, what)) return false;
  items.clear();
  while (!body.empty()) {
    T item{};
    if (!Read(body, item)) return r.Merge(body);
    items.push_back(std::move(item));
  }
  return true;
}

// Elements filling the rest of the body (the draft's "streaming messages").
template <typename T>
void WriteRest(Writer& w, const std::vector<T>& items) {
  for (const T& item : items) Write(w, item);
}

template <typename T>
bool ReadRest(Reader& r, std::vector<T>& items) {
  Reader rest = r.Rest();
  items.clear();
  while (!rest.empty()) {
    T item{};
    if (!Read(rest, item)) return r.Merge(rest);
    items.push_back(std::move(item));
  }
  return true;
}

bool ReadBatchMode(Reader& r, BatchMode& mode) {
  uint8_t value = 0;
  if (!r.U8(value, "batch_mode")) return false;
  if (value != 1 && value != 2) return r.Fail("unknown batch_mode " + std::to_string(value));
  mode = static_cast<BatchMode>(value);
  return true;
}

bool ReadReportError(Reader& r, ReportError& error) {
  uint8_t value = 0;
  if (!r.U8(value, "report_error")) return false;
  if (value < 1 || value > 10) return r.Fail("unknown report_error " + std::to_string(value));
  error = static_cast<ReportError>(value);
  return true;
}

// text || tail. (Built with memcpy: GCC 12 warns falsely on vector::insert
// after a range construction.)
Bytes Concat(std::string_view text, std::span<const uint8_t> tail) {
  Bytes out(text.size() + tail.size());
  std::memcpy(out.data(), text.data(), text.size());
  if (!tail.empty()) std::memcpy(out.data() + text.size(), tail.data(), tail.size());
  return out;
}

}  // namespace

void Write(Writer& w, const Extension& m) {
  w.U16(m.type);
  w.Opaque(m.data, 2, 0, kMax16, "extension_data");
}

bool Read(Reader& r, Extension& m) {
  return r.U16(m.type, "extension_type") && r.Opaque(m.data, 2, 0, kMax16, "extension_data");
}

std::string_view ReportErrorName(ReportError error) {
  switch (error) {
    case ReportError::kBatchCollected:
      return "batch_collected";
    case ReportError::kReportReplayed:
      return "report_replayed";
    case ReportError::kReportDropped:
      return "report_dropped";
    case ReportError::kHpkeUnknownConfigId:
      return "hpke_unknown_config_id";
    case ReportError::kHpkeDecryptError:
      return "hpke_decrypt_error";
    case ReportError::kVdafVerifyError:
      return "vdaf_verify_error";
    case ReportError::kInvalidMessage:
      return "invalid_message";
    case ReportError::kReportTooEarly:
      return "report_too_early";
    case ReportError::kUnknownVerificationKeyId:
      return "unknown_verification_key_id";
    case ReportError::kUnsupportedExtension:
      return "unsupported_extension";
  }
  return "unknown";
}

void Write(Writer& w, const Interval& m) {
  w.U64(m.start);
  w.U64(m.duration);
}
bool Read(Reader& r, Interval& m) {
  return r.U64(m.start, "start") && r.U64(m.duration, "duration");
}

void Write(Writer& w, const HpkeCiphertext& m) {
  w.U8(m.config_id);
  w.Opaque(m.enc, 2, 1, kMax16, "enc");
  w.Opaque(m.payload, 4, 1, kMax32, "payload");
}
bool Read(Reader& r, HpkeCiphertext& m) {
  return r.U8(m.config_id, "config_id") && r.Opaque(m.enc, 2, 1, kMax16, "enc") &&
         r.Opaque(m.payload, 4, 1, kMax32, "payload");
}

void Write(Writer& w, const HpkeConfig& m) {
  w.U8(m.id);
  w.U16(m.kem_id);
  w.U16(m.kdf_id);
  w.U16(m.aead_id);
  w.Opaque(m.public_key, 2, 1, kMax16, "public_key");
}
bool Read(Reader& r, HpkeConfig& m) {
  return r.U8(m.id, "id") && r.U16(m.kem_id, "kem_id") && r.U16(m.kdf_id, "kdf_id") &&
         r.U16(m.aead_id, "aead_id") && r.Opaque(m.public_key, 2, 1, kMax16, "public_key");
}

void Write(Writer& w, const HpkeConfigList& m) {
  WriteList(w, m.configs, 2, 10, kMax16, "HpkeConfigList");
}
bool Read(Reader& r, HpkeConfigList& m) {
  return ReadList(r, m.configs, 2, 10, kMax16, "HpkeConfigList");
}

void Write(Writer& w, const TaskConfiguration& m) {
  w.Opaque(m.task_info, 1, 0, kMax8, "task_info");
  w.Opaque(m.leader_aggregator_endpoint, 2, 1, kMax16, "leader_aggregator_endpoint");
  w.Opaque(m.helper_aggregator_endpoint, 2, 1, kMax16, "helper_aggregator_endpoint");
  w.U64(m.time_precision);
  w.U64(m.min_batch_size);
  w.U8(static_cast<uint8_t>(m.batch_mode));
  w.Opaque(m.batch_config, 2, 0, kMax16, "batch_config");
  w.U32(m.vdaf_type);
  w.Opaque(m.vdaf_configuration, 2, 0, kMax16, "vdaf_configuration");
  WriteList(w, m.extensions, 2, 0, kMax16, "task extensions");
}
bool Read(Reader& r, TaskConfiguration& m) {
  return r.Opaque(m.task_info, 1, 0, kMax8, "task_info") &&
         r.Opaque(m.leader_aggregator_endpoint, 2, 1, kMax16, "leader_aggregator_endpoint") &&
         r.Opaque(m.helper_aggregator_endpoint, 2, 1, kMax16, "helper_aggregator_endpoint") &&
         r.U64(m.time_precision, "time_precision") && r.U64(m.min_batch_size, "min_batch_size") &&
         ReadBatchMode(r, m.batch_mode) && r.Opaque(m.batch_config, 2, 0, kMax16, "batch_config") &&
         r.U32(m.vdaf_type, "vdaf_type") &&
         r.Opaque(m.vdaf_configuration, 2, 0, kMax16, "vdaf_configuration") &&
         ReadList(r, m.extensions, 2, 0, kMax16, "task extensions");
}

void Write(Writer& w, const ReportMetadata& m) {
  w.Fixed(m.report_id);
  w.U64(m.time);
  WriteList(w, m.public_extensions, 2, 0, kMax16, "public_extensions");
}
bool Read(Reader& r, ReportMetadata& m) {
  return r.Fixed(m.report_id, "report_id") && r.U64(m.time, "time") &&
         ReadList(r, m.public_extensions, 2, 0, kMax16, "public_extensions");
}

void Write(Writer& w, const Report& m) {
  Write(w, m.metadata);
  w.Opaque(m.public_share, 4, 0, kMax32, "public_share");
  Write(w, m.leader_encrypted_input_share);
  Write(w, m.helper_encrypted_input_share);
}
bool Read(Reader& r, Report& m) {
  return Read(r, m.metadata) && r.Opaque(m.public_share, 4, 0, kMax32, "public_share") &&
         Read(r, m.leader_encrypted_input_share) && Read(r, m.helper_encrypted_input_share);
}

void Write(Writer& w, const UploadRequest& m) { WriteRest(w, m.reports); }
bool Read(Reader& r, UploadRequest& m) { return ReadRest(r, m.reports); }

void Write(Writer& w, const PlaintextInputShare& m) {
  WriteList(w, m.private_extensions, 2, 0, kMax16, "private_extensions");
  w.Opaque(m.payload, 4, 1, kMax32, "payload");
}
bool Read(Reader& r, PlaintextInputShare& m) {
  return ReadList(r, m.private_extensions, 2, 0, kMax16, "private_extensions") &&
         r.Opaque(m.payload, 4, 1, kMax32, "payload");
}

void Write(Writer& w, const InputShareAad& m) {
  w.Fixed(m.task_id);
  Write(w, m.task_configuration);
  Write(w, m.metadata);
  w.Opaque(m.public_share, 4, 0, kMax32, "public_share");
}
bool Read(Reader& r, InputShareAad& m) {
  return r.Fixed(m.task_id, "task_id") && Read(r, m.task_configuration) && Read(r, m.metadata) &&
         r.Opaque(m.public_share, 4, 0, kMax32, "public_share");
}

void Write(Writer& w, const ReportUploadStatus& m) {
  w.Fixed(m.report_id);
  w.U8(static_cast<uint8_t>(m.error));
}
bool Read(Reader& r, ReportUploadStatus& m) {
  return r.Fixed(m.report_id, "report_id") && ReadReportError(r, m.error);
}

void Write(Writer& w, const UploadErrors& m) { WriteRest(w, m.statuses); }
bool Read(Reader& r, UploadErrors& m) { return ReadRest(r, m.statuses); }

void Write(Writer& w, const ReportShare& m) {
  Write(w, m.metadata);
  w.Opaque(m.public_share, 4, 0, kMax32, "public_share");
  Write(w, m.encrypted_input_share);
}
bool Read(Reader& r, ReportShare& m) {
  return Read(r, m.metadata) && r.Opaque(m.public_share, 4, 0, kMax32, "public_share") &&
         Read(r, m.encrypted_input_share);
}

void Write(Writer& w, const VerifyInit& m) {
  Write(w, m.report_share);
  w.Opaque(m.payload, 4, 1, kMax32, "payload");
}
bool Read(Reader& r, VerifyInit& m) {
  return Read(r, m.report_share) && r.Opaque(m.payload, 4, 1, kMax32, "payload");
}

void Write(Writer& w, const AggregationJobInitReq& m) {
  w.U8(m.verification_key_id);
  w.Opaque(m.agg_param, 4, 0, kMax32, "agg_param");
  WriteList(w, m.extensions, 2, 0, kMax16, "aggregation job extensions");
  WriteRest(w, m.verify_inits);
}
bool Read(Reader& r, AggregationJobInitReq& m) {
  return r.U8(m.verification_key_id, "verification_key_id") &&
         r.Opaque(m.agg_param, 4, 0, kMax32, "agg_param") &&
         ReadList(r, m.extensions, 2, 0, kMax16, "aggregation job extensions") &&
         ReadRest(r, m.verify_inits);
}

void Write(Writer& w, const VerifyResp& m) {
  w.Fixed(m.report_id);
  w.U8(static_cast<uint8_t>(m.type));
  switch (m.type) {
    case VerifyRespType::kContinue:
      w.Opaque(m.payload, 4, 1, kMax32, "payload");
      break;
    case VerifyRespType::kFinish:
      break;
    case VerifyRespType::kReject:
      w.U8(static_cast<uint8_t>(m.report_error));
      break;
  }
}
bool Read(Reader& r, VerifyResp& m) {
  uint8_t type = 0;
  if (!r.Fixed(m.report_id, "report_id") || !r.U8(type, "verify_resp_type")) return false;
  switch (type) {
    case 0:
      m.type = VerifyRespType::kContinue;
      return r.Opaque(m.payload, 4, 1, kMax32, "payload");
    case 1:
      m.type = VerifyRespType::kFinish;
      return true;
    case 2:
      m.type = VerifyRespType::kReject;
      return ReadReportError(r, m.report_error);
    default:
      return r.Fail("unknown verify_resp_type " + std::to_string(type));
  }
}

void Write(Writer& w, const AggregationJobResp& m) { WriteRest(w, m.verify_resps); }
bool Read(Reader& r, AggregationJobResp& m) { return ReadRest(r, m.verify_resps); }

void Write(Writer& w, const VerifyContinue& m) {
  w.Fixed(m.report_id);
  w.Opaque(m.payload, 4, 1, kMax32, "payload");
}
bool Read(Reader& r, VerifyContinue& m) {
  return r.Fixed(m.report_id, "report_id") && r.Opaque(m.payload, 4, 1, kMax32, "payload");
}

void Write(Writer& w, const AggregationJobContinueReq& m) {
  w.U16(m.step);
  WriteRest(w, m.verify_continues);
}
bool Read(Reader& r, AggregationJobContinueReq& m) {
  return r.U16(m.step, "step") && ReadRest(r, m.verify_continues);
}

void Write(Writer& w, const Query& m) {
  w.U8(static_cast<uint8_t>(m.batch_mode));
  w.Opaque(m.config, 2, 0, kMax16, "config");
}
bool Read(Reader& r, Query& m) {
  return ReadBatchMode(r, m.batch_mode) && r.Opaque(m.config, 2, 0, kMax16, "config");
}

Query TimeIntervalQuery(const Interval& batch_interval) {
  Writer w;
  Write(w, batch_interval);
  return Query{BatchMode::kTimeInterval, *std::move(w).Finish()};
}

Query LeaderSelectedQuery() { return Query{BatchMode::kLeaderSelected, {}}; }

BatchSelector LeaderSelectedBatchSelector(const BatchId& batch_id) {
  return BatchSelector{BatchMode::kLeaderSelected, Bytes(batch_id.begin(), batch_id.end())};
}

Result<Interval> BatchIntervalOf(const Query& query) {
  if (query.batch_mode != BatchMode::kTimeInterval) {
    return MakeError(ErrorCode::kDecodeError, "not a time_interval query");
  }
  return DecodeWith<Interval>(
      query.config, [](Reader& r, Interval& i) { return Read(r, i); },
      "time_interval configuration");
}

Result<BatchId> BatchIdOf(const BatchSelector& selector) {
  if (selector.batch_mode != BatchMode::kLeaderSelected) {
    return MakeError(ErrorCode::kDecodeError, "not a leader_selected batch selector");
  }
  return DecodeWith<BatchId>(
      selector.config, [](Reader& r, BatchId& id) { return r.Fixed(id, "batch_id"); },
      "leader_selected configuration");
}

void Write(Writer& w, const CollectionJobReq& m) {
  Write(w, m.query);
  w.Opaque(m.agg_param, 4, 0, kMax32, "agg_param");
  WriteList(w, m.extensions, 2, 0, kMax16, "collection job extensions");
}
bool Read(Reader& r, CollectionJobReq& m) {
  return Read(r, m.query) && r.Opaque(m.agg_param, 4, 0, kMax32, "agg_param") &&
         ReadList(r, m.extensions, 2, 0, kMax16, "collection job extensions");
}

void Write(Writer& w, const CollectionJobResp& m) {
  w.U64(m.report_count);
  Write(w, m.interval);
  Write(w, m.leader_encrypted_agg_share);
  Write(w, m.helper_encrypted_agg_share);
}
bool Read(Reader& r, CollectionJobResp& m) {
  return r.U64(m.report_count, "report_count") && Read(r, m.interval) &&
         Read(r, m.leader_encrypted_agg_share) && Read(r, m.helper_encrypted_agg_share);
}

void Write(Writer& w, const AggregateShareReq& m) {
  Write(w, m.collection_job_req);
  Write(w, m.batch_selector);
  w.U64(m.report_count);
  w.Fixed(m.checksum);
}
bool Read(Reader& r, AggregateShareReq& m) {
  return Read(r, m.collection_job_req) && Read(r, m.batch_selector) &&
         r.U64(m.report_count, "report_count") && r.Fixed(m.checksum, "checksum");
}

void Write(Writer& w, const AggregateShare& m) { Write(w, m.encrypted_aggregate_share); }
bool Read(Reader& r, AggregateShare& m) { return Read(r, m.encrypted_aggregate_share); }

void Write(Writer& w, const AggregateShareAad& m) {
  w.Fixed(m.task_id);
  Write(w, m.task_configuration);
  Write(w, m.collection_job_req);
}
bool Read(Reader& r, AggregateShareAad& m) {
  return r.Fixed(m.task_id, "task_id") && Read(r, m.task_configuration) &&
         Read(r, m.collection_job_req);
}

void Write(Writer& w, const PingPongMessage& m) {
  w.U8(static_cast<uint8_t>(m.type));
  if (m.type != PingPongType::kInitialize)
    w.Opaque(m.verifier_message, 4, 0, kMax32, "verifier_message");
  if (m.type != PingPongType::kFinish) w.Opaque(m.verifier_share, 4, 0, kMax32, "verifier_share");
}
bool Read(Reader& r, PingPongMessage& m) {
  uint8_t type = 0;
  if (!r.U8(type, "ping-pong type")) return false;
  if (type > 2) return r.Fail("unknown ping-pong message type " + std::to_string(type));
  m.type = static_cast<PingPongType>(type);
  if (m.type != PingPongType::kInitialize &&
      !r.Opaque(m.verifier_message, 4, 0, kMax32, "verifier_message")) {
    return false;
  }
  if (m.type != PingPongType::kFinish &&
      !r.Opaque(m.verifier_share, 4, 0, kMax32, "verifier_share")) {
    return false;
  }
  return true;
}

Bytes InputShareInfo(Role server_role) {
  const uint8_t tail[2] = {0x01, static_cast<uint8_t>(server_role)};
  return Concat(std::string(kVersionTag) + " input share", tail);
}

Bytes AggregateShareInfo(Role server_role) {
  const uint8_t tail[2] = {static_cast<uint8_t>(server_role), 0x00};
  return Concat(std::string(kVersionTag) + " aggregate share", tail);
}

Bytes VdafContext(const TaskId& task_id) { return Concat(kVersionTag, task_id); }

}  // namespace canopy::dap
