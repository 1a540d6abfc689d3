// The messages of DAP-19 (draft-ietf-ppm-dap-19), one struct each, with strict
// encoding and decoding in TLS presentation syntax.
//
// For every message type M there are:
//   void Write(Writer&, const M&);     appends the encoding
//   bool Read(Reader&, M&);            reads one, recording the first problem
//   Result<std::vector<uint8_t>> Encode(const M&);   whole-message encoding
//   Result<M> Decode<M>(bytes);        whole-message decoding: refuses
//                                      truncation, trailing bytes, lengths out
//                                      of range and unknown enum values
//
// Encode fails (kInvalidArgument) only when a field is too long for its
// declared range; Decode fails with kDecodeError naming the field.
#ifndef CANOPY_DAP_MESSAGES_H_
#define CANOPY_DAP_MESSAGES_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/error.h"
#include "dap/codec.h"

namespace canopy::dap {

// The draft's version tag, in every domain-separation string.
inline constexpr std::string_view kVersionTag = "dap-19";

using Bytes = std::vector<uint8_t>;
using ReportId = std::array<uint8_t, 16>;
using TaskId = std::array<uint8_t, 32>;
using BatchId = std::array<uint8_t, 32>;
using Time = uint64_t;      // In units of the task's time_precision.
using Duration = uint64_t;  // Likewise.

enum class Role : uint8_t { kCollector = 0, kClient = 1, kLeader = 2, kHelper = 3 };

enum class BatchMode : uint8_t { kTimeInterval = 1, kLeaderSelected = 2 };

// DAP-19's report errors (renumbered from -18).
enum class ReportError : uint8_t {
  kBatchCollected = 1,
  kReportReplayed = 2,
  kReportDropped = 3,
  kHpkeUnknownConfigId = 4,
  kHpkeDecryptError = 5,
  kVdafVerifyError = 6,
  kInvalidMessage = 7,
  kReportTooEarly = 8,
  kUnknownVerificationKeyId = 9,
  kUnsupportedExtension = 10,
};

// The name of a report error, as the draft spells it ("report_replayed").
std::string_view ReportErrorName(ReportError error);

struct Interval {
  Time start = 0;
  Duration duration = 0;
  friend bool operator==(const Interval&, const Interval&) = default;
};

struct HpkeCiphertext {
  uint8_t config_id = 0;
  Bytes enc;      // <1..2^16-1>
  Bytes payload;  // <1..2^32-1>
  friend bool operator==(const HpkeCiphertext&, const HpkeCiphertext&) = default;
};

// Report, task, aggregation-job and collection-job extensions share a shape.
struct Extension {
  uint16_t type = 0;
  Bytes data;  // <0..2^16-1>
  friend bool operator==(const Extension&, const Extension&) = default;
};

struct HpkeConfig {
  uint8_t id = 0;
  uint16_t kem_id = 0;
  uint16_t kdf_id = 0;
  uint16_t aead_id = 0;
  Bytes public_key;  // <1..2^16-1>
  friend bool operator==(const HpkeConfig&, const HpkeConfig&) = default;
};

struct HpkeConfigList {
  std::vector<HpkeConfig> configs;  // <10..2^16-1> bytes
  friend bool operator==(const HpkeConfigList&, const HpkeConfigList&) = default;
};

// Task extension type 1: reports outside this interval are refused.
inline constexpr uint16_t kTaskIntervalExtension = 1;

struct TaskConfiguration {
  Bytes task_info;                   // <0..2^8-1> (DAP-19)
  Bytes leader_aggregator_endpoint;  // Url <1..2^16-1>, bound into AADs byte for byte
  Bytes helper_aggregator_endpoint;
  uint64_t time_precision = 0;  // Seconds.
  uint64_t min_batch_size = 0;
  BatchMode batch_mode = BatchMode::kTimeInterval;
  Bytes batch_config;  // <0..2^16-1>
  uint32_t vdaf_type = 0;
  Bytes vdaf_configuration;           // <0..2^16-1>
  std::vector<Extension> extensions;  // <0..2^16-1> bytes
  friend bool operator==(const TaskConfiguration&, const TaskConfiguration&) = default;
};

struct ReportMetadata {
  ReportId report_id{};
  Time time = 0;
  std::vector<Extension> public_extensions;
  friend bool operator==(const ReportMetadata&, const ReportMetadata&) = default;
};

struct Report {
  ReportMetadata metadata;
  Bytes public_share;  // <0..2^32-1>
  HpkeCiphertext leader_encrypted_input_share;
  HpkeCiphertext helper_encrypted_input_share;
  friend bool operator==(const Report&, const Report&) = default;
};

struct UploadRequest {
  std::vector<Report> reports;  // The rest of the body.
  friend bool operator==(const UploadRequest&, const UploadRequest&) = default;
};

struct PlaintextInputShare {
  std::vector<Extension> private_extensions;
  Bytes payload;  // <1..2^32-1>
  friend bool operator==(const PlaintextInputShare&, const PlaintextInputShare&) = default;
};

struct InputShareAad {
  TaskId task_id{};
  TaskConfiguration task_configuration;
  ReportMetadata metadata;
  Bytes public_share;
  friend bool operator==(const InputShareAad&, const InputShareAad&) = default;
};

struct ReportUploadStatus {
  ReportId report_id{};
  ReportError error = ReportError::kInvalidMessage;
  friend bool operator==(const ReportUploadStatus&, const ReportUploadStatus&) = default;
};

struct UploadErrors {
  std::vector<ReportUploadStatus> statuses;  // The rest of the body.
  friend bool operator==(const UploadErrors&, const UploadErrors&) = default;
};

struct ReportShare {
  ReportMetadata metadata;
  Bytes public_share;
  HpkeCiphertext encrypted_input_share;
  friend bool operator==(const ReportShare&, const ReportShare&) = default;
};

struct VerifyInit {
  ReportShare report_share;
  Bytes payload;  // <1..2^32-1>: the leader's ping-pong message.
  friend bool operator==(const VerifyInit&, const VerifyInit&) = default;
};

// Aggregation job extension type 1: the leader-selected batch's ID.
inline constexpr uint16_t kLeaderSelectedBatchIdExtension = 1;

struct AggregationJobInitReq {
  uint8_t verification_key_id = 0;
  Bytes agg_param;  // <0..2^32-1>
  std::vector<Extension> extensions;
  std::vector<VerifyInit> verify_inits;  // The rest of the body.
  friend bool operator==(const AggregationJobInitReq&, const AggregationJobInitReq&) = default;
};

enum class VerifyRespType : uint8_t { kContinue = 0, kFinish = 1, kReject = 2 };

struct VerifyResp {
  ReportId report_id{};
  VerifyRespType type = VerifyRespType::kFinish;
  Bytes payload;                                            // kContinue: <1..2^32-1>
  ReportError report_error = ReportError::kInvalidMessage;  // kReject
  friend bool operator==(const VerifyResp&, const VerifyResp&) = default;
};

struct AggregationJobResp {
  std::vector<VerifyResp> verify_resps;  // The rest of the body.
  friend bool operator==(const AggregationJobResp&, const AggregationJobResp&) = default;
};

struct VerifyContinue {
  ReportId report_id{};
  Bytes payload;  // <1..2^32-1>
  friend bool operator==(const VerifyContinue&, const VerifyContinue&) = default;
};

struct AggregationJobContinueReq {
  uint16_t step = 0;
  std::vector<VerifyContinue> verify_continues;  // The rest of the body.
  friend bool operator==(const AggregationJobContinueReq&,
                         const AggregationJobContinueReq&) = default;
};

// A query (collector -> leader) or batch selector (leader -> helper): the
// batch mode and its configuration, which for time_interval is an Interval
// (both) and for leader_selected is empty (query) or a BatchID (selector).
struct Query {
  BatchMode batch_mode = BatchMode::kTimeInterval;
  Bytes config;  // <0..2^16-1>
  friend bool operator==(const Query&, const Query&) = default;
};
using BatchSelector = Query;

// Builders and parsers of the batch-mode configurations.
Query TimeIntervalQuery(const Interval& batch_interval);
Query LeaderSelectedQuery();
BatchSelector LeaderSelectedBatchSelector(const BatchId& batch_id);
// Errors (kDecodeError): not a time_interval configuration.
Result<Interval> BatchIntervalOf(const Query& query);
// Errors (kDecodeError): not a leader_selected selector with a BatchID.
Result<BatchId> BatchIdOf(const BatchSelector& selector);

struct CollectionJobReq {
  Query query;
  Bytes agg_param;  // <0..2^32-1>
  std::vector<Extension> extensions;
  friend bool operator==(const CollectionJobReq&, const CollectionJobReq&) = default;
};

struct CollectionJobResp {
  uint64_t report_count = 0;
  Interval interval;
  HpkeCiphertext leader_encrypted_agg_share;
  HpkeCiphertext helper_encrypted_agg_share;
  friend bool operator==(const CollectionJobResp&, const CollectionJobResp&) = default;
};

struct AggregateShareReq {
  CollectionJobReq collection_job_req;
  BatchSelector batch_selector;
  uint64_t report_count = 0;
  std::array<uint8_t, 32> checksum{};
  friend bool operator==(const AggregateShareReq&, const AggregateShareReq&) = default;
};

struct AggregateShare {
  HpkeCiphertext encrypted_aggregate_share;
  friend bool operator==(const AggregateShare&, const AggregateShare&) = default;
};

struct AggregateShareAad {
  TaskId task_id{};
  TaskConfiguration task_configuration;
  CollectionJobReq collection_job_req;
  friend bool operator==(const AggregateShareAad&, const AggregateShareAad&) = default;
};

// The VDAF ping-pong message (VDAF draft-20, "Ping-pong topology").
enum class PingPongType : uint8_t { kInitialize = 0, kContinue = 1, kFinish = 2 };
struct PingPongMessage {
  PingPongType type = PingPongType::kInitialize;
  Bytes verifier_message;  // kContinue and kFinish
  Bytes verifier_share;    // kInitialize and kContinue
  friend bool operator==(const PingPongMessage&, const PingPongMessage&) = default;
};

#define CANOPY_DAP_MESSAGE(M)        \
  void Write(Writer& w, const M& m); \
  bool Read(Reader& r, M& m);
CANOPY_DAP_MESSAGE(Extension)
CANOPY_DAP_MESSAGE(ReportUploadStatus)
CANOPY_DAP_MESSAGE(Interval)
CANOPY_DAP_MESSAGE(HpkeCiphertext)
CANOPY_DAP_MESSAGE(HpkeConfig)
CANOPY_DAP_MESSAGE(HpkeConfigList)
CANOPY_DAP_MESSAGE(TaskConfiguration)
CANOPY_DAP_MESSAGE(ReportMetadata)
CANOPY_DAP_MESSAGE(Report)
CANOPY_DAP_MESSAGE(UploadRequest)
CANOPY_DAP_MESSAGE(PlaintextInputShare)
CANOPY_DAP_MESSAGE(InputShareAad)
CANOPY_DAP_MESSAGE(UploadErrors)
CANOPY_DAP_MESSAGE(ReportShare)
CANOPY_DAP_MESSAGE(VerifyInit)
CANOPY_DAP_MESSAGE(AggregationJobInitReq)
CANOPY_DAP_MESSAGE(VerifyResp)
CANOPY_DAP_MESSAGE(AggregationJobResp)
CANOPY_DAP_MESSAGE(VerifyContinue)
CANOPY_DAP_MESSAGE(AggregationJobContinueReq)
CANOPY_DAP_MESSAGE(Query)
CANOPY_DAP_MESSAGE(CollectionJobReq)
CANOPY_DAP_MESSAGE(CollectionJobResp)
CANOPY_DAP_MESSAGE(AggregateShareReq)
CANOPY_DAP_MESSAGE(AggregateShare)
CANOPY_DAP_MESSAGE(AggregateShareAad)
CANOPY_DAP_MESSAGE(PingPongMessage)
#undef CANOPY_DAP_MESSAGE

// The whole-message encoding of `message`.
template <typename M>
Result<std::vector<uint8_t>> Encode(const M& message) {
  Writer counter = Writer::Counting();
  Write(counter, message);
  Writer writer;
  writer.Reserve(counter.size());
  Write(writer, message);
  return std::move(writer).Finish();
}

// Decodes exactly one `M` from `encoded`.
template <typename M>
Result<M> Decode(std::span<const uint8_t> encoded) {
  return DecodeWith<M>(
      encoded, [](Reader& r, M& m) { return Read(r, m); }, "DAP message");
}

// HPKE `info` strings: "dap-19 input share" || 0x01 || server role, and
// "dap-19 aggregate share" || server role || 0x00 (role of the aggregator that
// encrypts).
Bytes InputShareInfo(Role server_role);
Bytes AggregateShareInfo(Role server_role);

// The VDAF application context of a task: "dap-19" || task_id.
Bytes VdafContext(const TaskId& task_id);

}  // namespace canopy::dap

#endif  // CANOPY_DAP_MESSAGES_H_
