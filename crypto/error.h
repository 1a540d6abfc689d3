// The error type of every Canopy library function.
//
// Library code does not throw: a function that can fail returns
// `canopy::Result<T>`, which is `std::expected<T, canopy::Error>`. The error
// carries a machine-readable code, so callers (for example the DAP layer, which
// maps errors to problem documents) can branch on it, and a message for people.
// Messages never contain secret values.
#ifndef CANOPY_CRYPTO_ERROR_H_
#define CANOPY_CRYPTO_ERROR_H_

#include <expected>
#include <string>
#include <string_view>
#include <utility>

namespace canopy {

// What kind of failure an `Error` reports.
enum class ErrorCode {
  // An argument violates the function's contract (wrong length, out of range).
  kInvalidArgument,
  // An encoded value could not be decoded: truncated, overlong, trailing bytes,
  // a value out of range, non-zero padding.
  kDecodeError,
  // A cryptographic check failed: a bad proof, a sketch that does not vanish,
  // an authentication tag that does not verify.
  kVerifyFailed,
  // A valid request that this implementation does not support.
  kUnsupported,
  // A file or resource could not be read or written.
  kIoError,
  // Anything else: a broken invariant inside Canopy or a failing dependency.
  kInternal,
};

// Returns a stable lower-case name for `code`, for example "decode_error".
std::string_view ErrorCodeName(ErrorCode code);

// A failure: a code and a human-readable message.
class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "<code name>: <message>", for logs and command lines.
  std::string ToString() const;

 private:
  ErrorCode code_;
  std::string message_;
};

// The return type of fallible functions.
template <typename T>
using Result = std::expected<T, Error>;

// Shorthand for `std::unexpected(Error(code, message))`.
inline std::unexpected<Error> MakeError(ErrorCode code, std::string message) {
  return std::unexpected<Error>(Error(code, std::move(message)));
}

}  // namespace canopy

#endif  // CANOPY_CRYPTO_ERROR_H_
