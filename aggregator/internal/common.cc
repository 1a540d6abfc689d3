#include "aggregator/internal/common.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <iostream>

#include "crypto/secure_wipe.h"
#include "crypto/sha256.h"
#include "dap/http_client.h"
#include "dap/report.h"

namespace canopy::aggregator::internal {

std::string DapMediaType(std::string_view message) {
  return "application/ppm-dap;message=" + std::string(message);
}

namespace {

// SHA-256 of the parts one after the other, or the end of the process.
std::array<uint8_t, 32> Sha256OfPartsOrAbort(std::span<const std::span<const uint8_t>> parts) {
  std::array<uint8_t, 32> digest{};
  if (Result<void> hashed = crypto::Sha256OfParts(parts, digest); !hashed) {
    // Only when out of memory: a wrong digest would break the checksums
    // both aggregators compare, or make two requests look alike.
    std::cerr << "canopy-aggregator: " << hashed.error().message() << "; stopping\n";
    std::abort();
  }
  return digest;
}

}  // namespace

std::array<uint8_t, 32> Sha256(std::span<const uint8_t> data) {
  const std::span<const uint8_t> parts[] = {data};
  return Sha256OfPartsOrAbort(parts);
}

std::array<uint8_t, 32> ContentDigest(const dap::TaskId& task_id, std::span<const uint8_t> body) {
  // Hashed in two parts: a first level's request body is megabytes, and
  // copying it behind the task ID was 2 % of the helper's first round.
  const std::span<const uint8_t> parts[] = {task_id, body};
  return Sha256OfPartsOrAbort(parts);
}

JobId IdOfContentDigest(const std::array<uint8_t, 32>& digest) {
  JobId id;
  std::copy_n(digest.begin(), id.size(), id.begin());
  return id;
}

JobId ContentDerivedId(const dap::TaskId& task_id, std::span<const uint8_t> body) {
  return IdOfContentDigest(ContentDigest(task_id, body));
}

namespace {

const Bytes* StoredInitAnswerForHash(const AggregationJobRow& job, const Bytes& request_hash) {
  if (job.step == 0 && job.last_request_hash == request_hash) return &job.last_response;
  if (!job.init_request_hash.empty() && job.init_request_hash == request_hash) {
    return &job.init_response;
  }
  return nullptr;
}

}  // namespace

const Bytes* StoredInitAnswer(const AggregationJobRow& job, const Bytes& request_hash,
                              std::span<const uint8_t> body) {
  if (const Bytes* answer = StoredInitAnswerForHash(job, request_hash)) return answer;
  const std::array<uint8_t, 32> body_hash = Sha256(body);
  return StoredInitAnswerForHash(job, Bytes(body_hash.begin(), body_hash.end()));
}

std::variant<Bytes, dap::ReportError> OpenInputSharePayload(
    const dap::TaskId& task_id, const dap::TaskConfiguration& task_configuration,
    const dap::ReportMetadata& metadata, std::span<const uint8_t> public_share,
    const dap::HpkeCiphertext& ciphertext, dap::Role role,
    std::span<const dap::AggregatorHpkeKey* const> keys) {
  auto opened = dap::OpenInputShare(task_id, task_configuration, metadata, public_share, ciphertext,
                                    role, keys);
  if (auto* error = std::get_if<dap::ReportError>(&opened)) return *error;
  auto& plaintext = std::get<dap::PlaintextInputShare>(opened);
  if (!plaintext.private_extensions.empty()) {
    crypto::SecureWipeVector(plaintext.payload);
    return dap::ReportError::kUnsupportedExtension;
  }
  return std::move(plaintext.payload);
}

void UpdateChecksum(Checksum& checksum, const dap::ReportId& report_id) {
  auto digest = Sha256(report_id);
  for (size_t i = 0; i < checksum.size(); ++i) checksum[i] ^= digest[i];
}

uint64_t NowSeconds() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

int64_t NowMilliseconds() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

ServerResponse Problem(dap::ProblemType type, std::string detail, const dap::TaskId* task_id) {
  dap::ProblemDocument document;
  document.type = type;
  document.detail = std::move(detail);
  if (task_id != nullptr) document.task_id = *task_id;
  ServerResponse response;
  response.status = document.status();
  response.SetBody(dap::kProblemMediaType, document.ToJson());
  return response;
}

ServerResponse NotFound(std::string detail, const dap::TaskId* task_id) {
  return Problem(dap::ProblemType::kNotFound, std::move(detail), task_id);
}

ServerResponse MethodNotAllowed(std::string_view allowed) {
  ServerResponse response = Problem(dap::ProblemType::kMethodNotAllowed,
                                    "method not allowed here; allowed: " + std::string(allowed));
  response.SetHeader("Allow", std::string(allowed));
  return response;
}

bool HasMediaType(const ServerRequest& request, std::string_view message) {
  return dap::MediaTypeMatches(request.Header("content-type"), DapMediaType(message));
}

ServerResponse WrongMediaType(std::string_view message, const dap::TaskId& task_id) {
  ServerResponse response = Problem(dap::ProblemType::kInvalidMessage,
                                    "Content-Type must be " + DapMediaType(message), &task_id);
  response.status = 415;
  return response;
}

ServerResponse Message(int status, std::string_view message_name, std::vector<uint8_t> body) {
  ServerResponse response;
  response.status = status;
  response.SetBody(DapMediaType(message_name), std::move(body));
  return response;
}

namespace {

// Whether a URL reference starts with a scheme (RFC 3986: a letter, then
// letters, digits, '+', '-' or '.', then ':'), which makes it absolute; a
// "://" further on (in a query) does not.
bool HasScheme(std::string_view reference) {
  const size_t colon = reference.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  if (!std::isalpha(static_cast<unsigned char>(reference[0]))) return false;
  return std::all_of(reference.begin(), reference.begin() + colon, [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  });
}

}  // namespace

std::optional<std::string> LocationOnOrigin(const std::string& request_url,
                                            const std::string& location) {
  auto origin = dap::HttpUrl::Parse(request_url);
  if (!origin) return std::nullopt;
  if (HasScheme(location)) {
    // HttpUrl parses http only (the request's scheme) and lowercases hosts.
    auto target = dap::HttpUrl::Parse(location);
    if (!target || target->Authority() != origin->Authority()) return std::nullopt;
    return location;
  }
  return "http://" + origin->Authority() + (location.starts_with("/") ? "" : "/") + location;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  // Their digests are compared, not the strings: a comparison that stopped
  // at a length mismatch would tell a caller the token's length.
  auto digest = [](std::string_view text, std::span<uint8_t, crypto::kSha256DigestSize> out) {
    return crypto::Sha256(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()), out);
  };
  uint8_t a_digest[crypto::kSha256DigestSize];
  uint8_t b_digest[crypto::kSha256DigestSize];
  if (!digest(a, a_digest) || !digest(b, b_digest)) return false;
  return CRYPTO_memcmp(a_digest, b_digest, crypto::kSha256DigestSize) == 0;
}

dap::Bytes FirstBucketKey(const dap::Interval& interval) { return TimeBucketKey(interval.start); }

dap::Bytes LastBucketKey(const dap::Interval& interval) {
  return TimeBucketKey(interval.start + interval.duration - 1);
}

dap::Bytes IntervalBatchKey(const dap::Interval& interval) {
  dap::Bytes key = TimeBucketKey(interval.start);
  for (int shift = 56; shift >= 0; shift -= 8) {
    key.push_back(static_cast<uint8_t>(interval.duration >> shift));
  }
  return key;
}

std::optional<std::vector<dap::Bytes>> IntervalBucketKeys(const dap::Interval& interval) {
  if (interval.duration > kMaxIntervalBuckets) return std::nullopt;
  std::vector<dap::Bytes> keys;
  keys.reserve(interval.duration);
  for (uint64_t unit = 0; unit < interval.duration; ++unit) {
    keys.push_back(TimeBucketKey(interval.start + unit));
  }
  return keys;
}

std::string CollectionFailure(dap::ProblemType type, const std::string& detail) {
  return std::string(dap::ProblemToken(type)) + " " + detail;
}

}  // namespace canopy::aggregator::internal
