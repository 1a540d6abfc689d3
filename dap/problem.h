// DAP problem documents (RFC 9457, "application/problem+json") with the
// error types of DAP-19, section "Errors".
#ifndef CANOPY_DAP_PROBLEM_H_
#define CANOPY_DAP_PROBLEM_H_

#include <optional>
#include <string>
#include <string_view>

#include "crypto/error.h"
#include "dap/messages.h"

namespace canopy::dap {

inline constexpr std::string_view kProblemMediaType = "application/problem+json";

// The DAP error types (urn:ietf:params:ppm:dap:error:<token>), and four that
// are not DAP's own: authentication failures, unknown resources, methods a
// resource does not allow and internal errors use "about:blank" with their
// HTTP status, since servers must not invent tokens in the DAP namespace.
enum class ProblemType {
  kInvalidMessage,
  kUnrecognizedTask,
  kUnrecognizedAggregationJob,
  kBatchInvalid,
  kInvalidBatchSize,
  kInvalidAggregationParameter,
  kBatchMismatch,
  kStepMismatch,
  kBatchOverlap,
  kUnsupportedExtension,
  kInvalidExtension,
  kUnauthorized,      // about:blank, 403
  kInternal,          // about:blank, 500
  kNotFound,          // about:blank, 404
  kMethodNotAllowed,  // about:blank, 405
};

// The draft's token ("invalidMessage"), or "" for the non-DAP types.
std::string_view ProblemToken(ProblemType type);

// The "type" URI: "urn:ietf:params:ppm:dap:error:<token>" or "about:blank".
std::string ProblemTypeUri(ProblemType type);

// The HTTP status Canopy answers with: 404 for an unknown task, job or
// resource, 403 for a failed authentication, 405 for a method the resource
// does not allow, 500 for an internal error, 400 otherwise.
int ProblemStatus(ProblemType type);

// A problem document.
struct ProblemDocument {
  ProblemType type = ProblemType::kInvalidMessage;
  std::string detail;             // For people; never holds secrets.
  std::optional<TaskId> task_id;  // Becomes the "taskid" member.

  int status() const { return ProblemStatus(type); }

  // The JSON body: type, title, status, detail and, when known, taskid.
  std::string ToJson() const;

  // Parses a body (as a client receives it). Errors (kDecodeError): not JSON,
  // no "type", or a DAP type Canopy does not know.
  static Result<ProblemDocument> FromJson(std::string_view json);
};

}  // namespace canopy::dap

#endif  // CANOPY_DAP_PROBLEM_H_
