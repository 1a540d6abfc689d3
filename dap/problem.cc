#include "dap/problem.h"

#include <array>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "dap/base64url.h"

namespace canopy::dap {
namespace {

constexpr std::string_view kUrnPrefix = "urn:ietf:params:ppm:dap:error:";

struct ProblemInfo {
  ProblemType type;
  std::string_view token;
  std::string_view title;
};

constexpr std::array<ProblemInfo, 15> kProblems = {{
    {ProblemType::kInvalidMessage, "invalidMessage",
     "The message could not be parsed or is invalid."},
    {ProblemType::kUnrecognizedTask, "unrecognizedTask", "The task ID is unknown."},
    {ProblemType::kUnrecognizedAggregationJob, "unrecognizedAggregationJob",
     "The aggregation job ID is unknown."},
    {ProblemType::kBatchInvalid, "batchInvalid", "The batch boundary check failed."},
    {ProblemType::kInvalidBatchSize, "invalidBatchSize",
     "The batch has an invalid number of reports."},
    {ProblemType::kInvalidAggregationParameter, "invalidAggregationParameter",
     "The aggregation parameter is invalid for this batch."},
    {ProblemType::kBatchMismatch, "batchMismatch",
     "The aggregators disagree on the reports aggregated in the batch."},
    {ProblemType::kStepMismatch, "stepMismatch",
     "The aggregators disagree on the step of the aggregation job."},
    {ProblemType::kBatchOverlap, "batchOverlap",
     "The query includes reports that were collected in another batch."},
    {ProblemType::kUnsupportedExtension, "unsupportedExtension", "An extension is not supported."},
    {ProblemType::kInvalidExtension, "invalidExtension",
     "An extension list is out of order or malformed."},
    {ProblemType::kUnauthorized, "", "The request is not authorized."},
    {ProblemType::kInternal, "", "The server failed to handle the request."},
    {ProblemType::kNotFound, "", "There is no such resource."},
    {ProblemType::kMethodNotAllowed, "", "The resource does not allow this method."},
}};

const ProblemInfo& InfoOf(ProblemType type) {
  for (const ProblemInfo& info : kProblems) {
    if (info.type == type) return info;
  }
  return kProblems.back();
}

}  // namespace

std::string_view ProblemToken(ProblemType type) { return InfoOf(type).token; }

std::string ProblemTypeUri(ProblemType type) {
  std::string_view token = ProblemToken(type);
  if (token.empty()) return "about:blank";
  return std::string(kUrnPrefix) + std::string(token);
}

int ProblemStatus(ProblemType type) {
  switch (type) {
    case ProblemType::kUnrecognizedTask:
    case ProblemType::kUnrecognizedAggregationJob:
    case ProblemType::kNotFound:
      return 404;
    case ProblemType::kMethodNotAllowed:
      return 405;
    case ProblemType::kUnauthorized:
      return 403;
    case ProblemType::kInternal:
      return 500;
    default:
      return 400;
  }
}

std::string ProblemDocument::ToJson() const {
  boost::json::object object;
  object["type"] = ProblemTypeUri(type);
  object["title"] = std::string(InfoOf(type).title);
  object["status"] = status();
  if (!detail.empty()) object["detail"] = detail;
  if (task_id) object["taskid"] = Base64UrlEncode(*task_id);
  return boost::json::serialize(object);
}

Result<ProblemDocument> ProblemDocument::FromJson(std::string_view json) {
  boost::system::error_code error;
  boost::json::value value = boost::json::parse(json, error);
  if (error || !value.is_object()) {
    return MakeError(ErrorCode::kDecodeError, "problem document is not a JSON object");
  }
  const boost::json::object& object = value.as_object();
  const boost::json::value* type = object.if_contains("type");
  if (type == nullptr || !type->is_string()) {
    return MakeError(ErrorCode::kDecodeError, "problem document has no \"type\"");
  }
  ProblemDocument document;
  const std::string_view uri = type->as_string();
  bool known = false;
  if (uri.starts_with(kUrnPrefix)) {
    for (const ProblemInfo& info : kProblems) {
      if (!info.token.empty() && uri.substr(kUrnPrefix.size()) == info.token) {
        document.type = info.type;
        known = true;
      }
    }
  } else {
    // A type outside DAP's: told apart by its status.
    const boost::json::value* status = object.if_contains("status");
    const int64_t code = status != nullptr && status->is_int64() ? status->as_int64() : 0;
    known = true;
    document.type = code >= 500   ? ProblemType::kInternal
                    : code == 404 ? ProblemType::kNotFound
                    : code == 405 ? ProblemType::kMethodNotAllowed
                                  : ProblemType::kUnauthorized;
  }
  if (!known) {
    return MakeError(ErrorCode::kDecodeError, "unknown DAP problem type " + std::string(uri));
  }
  if (const boost::json::value* detail = object.if_contains("detail");
      detail && detail->is_string()) {
    document.detail = std::string(detail->as_string());
  }
  if (const boost::json::value* task = object.if_contains("taskid"); task && task->is_string()) {
    Result<std::vector<uint8_t>> bytes = Base64UrlDecode(task->as_string());
    if (bytes && bytes->size() == 32) {
      TaskId id;
      std::copy(bytes->begin(), bytes->end(), id.begin());
      document.task_id = id;
    }
  }
  return document;
}

}  // namespace canopy::dap
