#include "client_app/measurement_input.h"

#include <utility>

#include "dap/task.h"
#include "poplar/poplar1.h"

namespace canopy::client {
namespace {

std::unexpected<Error> InvalidAt(std::string_view where, const std::string& message) {
  return MakeError(ErrorCode::kInvalidArgument, std::string(where) + ": " + message);
}

std::string_view TrimSpaces(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// "\"text\"", built by appending: g++ 12 warns (-Wrestrict) about "\"" + string.
std::string Quoted(std::string_view text) {
  std::string quoted = "\"";
  quoted += text;
  quoted += '"';
  return quoted;
}

}  // namespace

Result<StringFormat> ParseStringFormat(std::string_view name) {
  if (name == "text") return StringFormat::kText;
  if (name == "bits") return StringFormat::kBits;
  return MakeError(ErrorCode::kInvalidArgument,
                   "unknown format \"" + std::string(name) + "\" (expected text or bits)");
}

Result<idpf::BitString> EncodeString(std::string_view text, size_t bits) {
  if (bits % 8 != 0) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the task's BITS (" + std::to_string(bits) +
                         ") is not a multiple of 8, so strings cannot be encoded as bytes; "
                         "use the bits format");
  }
  const size_t max_bytes = bits / 8;
  if (text.size() > max_bytes) {
    return MakeError(ErrorCode::kInvalidArgument,
                     "the string is " + std::to_string(text.size()) +
                         " bytes long; the task takes at most " + std::to_string(max_bytes) +
                         " bytes (BITS = " + std::to_string(bits) + ")");
  }
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return MakeError(ErrorCode::kInvalidArgument, "the string holds a NUL byte at offset " +
                                                      std::to_string(nul) +
                                                      ", which zero padding would make ambiguous");
  }
  std::vector<uint8_t> bytes(max_bytes, 0);
  std::copy(text.begin(), text.end(), bytes.begin());
  return idpf::BitString::FromAllBytes(bytes);
}

Result<idpf::BitString> ParseBitsMeasurement(std::string_view text, size_t bits) {
  if (text.size() != bits) {
    return MakeError(ErrorCode::kInvalidArgument, "expected exactly " + std::to_string(bits) +
                                                      " binary digits, got " +
                                                      std::to_string(text.size()) + " characters");
  }
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '0' && text[i] != '1') {
      return MakeError(ErrorCode::kInvalidArgument,
                       "character " + std::to_string(i) + " is not a binary digit");
    }
  }
  return idpf::BitString::Parse(text);
}

std::string DecodeString(const idpf::BitString& measurement) {
  std::span<const uint8_t> bytes = measurement.bytes();
  while (!bytes.empty() && bytes.back() == 0) bytes = bytes.first(bytes.size() - 1);
  return std::string(bytes.begin(), bytes.end());
}

Result<uint64_t> ParseNumber(std::string_view text) {
  if (text.empty()) return MakeError(ErrorCode::kInvalidArgument, "expected a number, got nothing");
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') {
      return MakeError(ErrorCode::kInvalidArgument,
                       Quoted(text) + " is not a non-negative decimal integer");
    }
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) {
      return MakeError(ErrorCode::kInvalidArgument,
                       Quoted(text) + " is too large (above 2^64 - 1)");
    }
    value = value * 10 + digit;
  }
  return value;
}

Result<std::vector<uint64_t>> ParseNumberList(std::string_view text) {
  std::vector<uint64_t> values;
  size_t position = 0;
  while (true) {
    const size_t comma = text.find(',');
    const std::string_view element = TrimSpaces(text.substr(0, comma));
    auto value = ParseNumber(element);
    if (!value) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "element " + std::to_string(position) + ": " + value.error().message());
    }
    values.push_back(*value);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
    ++position;
  }
  return values;
}

MeasurementParser::MeasurementParser(std::unique_ptr<poplar::Vdaf> vdaf, uint32_t vdaf_type,
                                     size_t bits, StringFormat format)
    : vdaf_(std::move(vdaf)), vdaf_type_(vdaf_type), bits_(bits), format_(format) {}
MeasurementParser::MeasurementParser(MeasurementParser&&) noexcept = default;
MeasurementParser& MeasurementParser::operator=(MeasurementParser&&) noexcept = default;
MeasurementParser::~MeasurementParser() = default;

Result<MeasurementParser> MeasurementParser::Create(const dap::TaskConfiguration& configuration,
                                                    StringFormat format) {
  auto vdaf = dap::MakeVdaf(configuration.vdaf_type, configuration.vdaf_configuration);
  if (!vdaf) return std::unexpected(vdaf.error());
  size_t bits = 0;
  if (configuration.vdaf_type == static_cast<uint32_t>(dap::VdafType::kPoplar1)) {
    bits = static_cast<const poplar::Poplar1&>(**vdaf).bits();
    if (format == StringFormat::kText && bits % 8 != 0) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "the task's BITS (" + std::to_string(bits) +
                           ") is not a multiple of 8: text strings cannot be encoded; use the "
                           "bits format (lines of exactly " +
                           std::to_string(bits) + " binary digits)");
    }
  }
  return MeasurementParser(std::move(*vdaf), configuration.vdaf_type, bits, format);
}

Result<void> MeasurementParser::CheckWithVdaf(const poplar::Measurement& measurement) const {
  // Sharding is the only way the VDAF interface checks a measurement; the
  // randomness does not matter for the check, so it is fixed.
  const std::vector<uint8_t> nonce(vdaf_->nonce_size(), 0);
  const std::vector<uint8_t> rand(vdaf_->rand_size(), 0);
  auto shards = vdaf_->Shard({}, measurement, nonce, rand);
  if (!shards) return std::unexpected(shards.error());
  return {};
}

Result<poplar::Measurement> MeasurementParser::Parse(std::string_view text,
                                                     std::string_view where) const {
  if (is_poplar1()) {
    auto encoded = format_ == StringFormat::kText ? EncodeString(text, bits_)
                                                  : ParseBitsMeasurement(text, bits_);
    if (!encoded) return InvalidAt(where, encoded.error().message());
    return poplar::Measurement(std::move(*encoded));
  }
  poplar::Measurement measurement;
  switch (static_cast<dap::VdafType>(vdaf_type_)) {
    case dap::VdafType::kPrio3SumVec:
    case dap::VdafType::kPrio3MultihotCountVec: {
      auto values = ParseNumberList(text);
      if (!values) return InvalidAt(where, values.error().message());
      measurement = std::move(*values);
      break;
    }
    default: {
      auto value = ParseNumber(TrimSpaces(text));
      if (!value) return InvalidAt(where, value.error().message());
      measurement = *value;
      break;
    }
  }
  if (auto checked = CheckWithVdaf(measurement); !checked) {
    return InvalidAt(where, checked.error().message());
  }
  return measurement;
}

Result<std::vector<poplar::Measurement>> MeasurementParser::ParseLines(
    std::istream& input, std::string_view name) const {
  std::vector<poplar::Measurement> measurements;
  std::string line;
  size_t number = 0;
  while (std::getline(input, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto measurement = Parse(line, std::string(name) + ":" + std::to_string(number));
    if (!measurement) return std::unexpected(measurement.error());
    measurements.push_back(std::move(*measurement));
  }
  if (input.bad()) {
    return MakeError(ErrorCode::kIoError,
                     std::string(name) + ": reading failed after line " + std::to_string(number));
  }
  return measurements;
}

}  // namespace canopy::client
