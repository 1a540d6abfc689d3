#include "crypto/error.h"

namespace canopy {

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kDecodeError:
      return "decode_error";
    case ErrorCode::kVerifyFailed:
      return "verify_failed";
    case ErrorCode::kUnsupported:
      return "unsupported";
    case ErrorCode::kIoError:
      return "io_error";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

std::string Error::ToString() const {
  std::string text(ErrorCodeName(code_));
  text += ": ";
  text += message_;
  return text;
}

}  // namespace canopy
