// Small helpers shared by the aggregator's endpoints and drivers.
#ifndef CANOPY_AGGREGATOR_INTERNAL_COMMON_H_
#define CANOPY_AGGREGATOR_INTERNAL_COMMON_H_

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "aggregator/datastore.h"
#include "aggregator/http_types.h"
#include "crypto/error.h"
#include "dap/messages.h"
#include "dap/problem.h"

namespace canopy::dap {
struct AggregatorHpkeKey;
}  // namespace canopy::dap

namespace canopy::aggregator::internal {

// "application/ppm-dap;message=<name>".
std::string DapMediaType(std::string_view message);

std::array<uint8_t, 32> Sha256(std::span<const uint8_t> data);

// A resource ID derived from the request that creates it (DAP-19 suggests
// content-derived IDs, which make creation idempotent for free): the first
// 16 bytes of SHA-256(task_id || body).
JobId ContentDerivedId(const dap::TaskId& task_id, std::span<const uint8_t> body);

// SHA-256(task_id || body), whose first 16 bytes are the ContentDerivedId
// (IdOfContentDigest). The helper also keeps it as an init request's hash,
// so that a first round's megabytes of body are hashed once, not twice.
std::array<uint8_t, 32> ContentDigest(const dap::TaskId& task_id, std::span<const uint8_t> body);

// The first 16 bytes of `digest`: the ContentDerivedId of the request it is
// the ContentDigest of.
JobId IdOfContentDigest(const std::array<uint8_t, 32>& digest);

// The helper's stored answer to the init request of `job` whose hash is
// `request_hash` (its ContentDigest) and body `body`, or null: the last
// answer while the job is at step 0, the one kept for the init after. Jobs
// stored by earlier builds hold SHA-256(body) as the hash; it is computed
// and tried only when `request_hash` matches nothing.
const Bytes* StoredInitAnswer(const AggregationJobRow& job, const Bytes& request_hash,
                              std::span<const uint8_t> body);

// Opens an aggregator's input share (dap::OpenInputShare) and returns its
// payload, the VDAF's encoding of the share (secret: the caller wipes it).
// Besides OpenInputShare's errors, a plaintext with private extensions is
// refused with unsupported_extension: Canopy defines none. Its payload is
// wiped then.
std::variant<Bytes, dap::ReportError> OpenInputSharePayload(
    const dap::TaskId& task_id, const dap::TaskConfiguration& task_configuration,
    const dap::ReportMetadata& metadata, std::span<const uint8_t> public_share,
    const dap::HpkeCiphertext& ciphertext, dap::Role role,
    std::span<const dap::AggregatorHpkeKey* const> keys);

// XORs SHA-256(report_id) into `checksum` (DAP-19's report checksum).
void UpdateChecksum(Checksum& checksum, const dap::ReportId& report_id);

// POSIX time now, in seconds and milliseconds.
uint64_t NowSeconds();
int64_t NowMilliseconds();

// A problem-document response.
ServerResponse Problem(dap::ProblemType type, std::string detail,
                       const dap::TaskId* task_id = nullptr);

// A 404 answer for a resource that does not exist (or no longer does): a
// problem document (about:blank, RFC 9457) saying so.
ServerResponse NotFound(std::string detail, const dap::TaskId* task_id = nullptr);

// A 405 answer for a method the resource does not allow: a problem document
// (about:blank) and an Allow header listing `allowed` ("GET, DELETE").
ServerResponse MethodNotAllowed(std::string_view allowed);

// Whether the request's Content-Type is DAP's media type for `message`
// ("upload-req", ...), and the 415 answer when it is not.
bool HasMediaType(const ServerRequest& request, std::string_view message);
ServerResponse WrongMediaType(std::string_view message, const dap::TaskId& task_id);

// A response with a DAP message body.
ServerResponse Message(int status, std::string_view message_name, std::vector<uint8_t> body);

// The URL that a Location header answered to a request to `request_url`
// names: a path, on the request's authority, or an absolute URL on the same
// scheme and authority. nullopt for an absolute URL anywhere else (or one
// that does not parse): the leader sends its peer token with every request
// to the helper, and an answer (the helper's, or a proxy's) must not be
// able to send it, or the leader's requests, to another host.
std::optional<std::string> LocationOnOrigin(const std::string& request_url,
                                            const std::string& location);

// Compares two secrets (bearer tokens) in time independent of their content
// and of their lengths: their SHA-256 digests are compared. False also when
// hashing fails.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// The bucket keys of a time_interval batch: one per time unit in
// [start, start + duration). The first and last key bound a range query.
dap::Bytes FirstBucketKey(const dap::Interval& interval);
dap::Bytes LastBucketKey(const dap::Interval& interval);

// The key a time_interval batch's collection history is kept under: its
// first bucket key followed by its duration. It names the interval exactly,
// so a batch that merely starts in the same bucket is a different batch
// (and overlaps the collected one). Never a bucket key (8 bytes) or a
// BatchID (32 bytes).
dap::Bytes IntervalBatchKey(const dap::Interval& interval);

// The most time_precision units a batch interval may span.
inline constexpr uint64_t kMaxIntervalBuckets = uint64_t{1} << 20;

// The bucket key of every unit of `interval`, oldest first, or nullopt when
// it spans more than kMaxIntervalBuckets units.
std::optional<std::vector<dap::Bytes>> IntervalBucketKeys(const dap::Interval& interval);

// How a failed collection job keeps its problem: "<token> <detail>".
std::string CollectionFailure(dap::ProblemType type, const std::string& detail);

}  // namespace canopy::aggregator::internal

#endif  // CANOPY_AGGREGATOR_INTERNAL_COMMON_H_
