// Turning what a user writes into the measurements a task's VDAF takes.
//
// Poplar1 (BITS bits a measurement):
//   text format  a string of bytes, zero-padded to BITS / 8 bytes (BITS must
//                be a multiple of 8). A longer string is refused, never cut;
//                a string holding a NUL byte is refused, because zero padding
//                would make "a" and "a\0" the same measurement. The empty
//                string is valid: all zero bytes.
//   bits format  exactly BITS characters '0' or '1', most significant first
//                (for any BITS).
// Prio3:
//   Count               0 or 1
//   Sum                 an integer in [0, max_measurement]
//   Histogram           a bucket index in [0, length)
//   SumVec,             `length` integers separated by commas (spaces around
//   MultihotCountVec    them allowed), for example "0,1,0,3"
// Numbers are decimal, without sign. Bounds are checked by the VDAF itself,
// whose messages name the bound.
//
// Input files hold one measurement a line; a line ends with LF, or CRLF (the
// CR is dropped). A final line without LF counts; the LF that ends the file
// does not start another line.
#ifndef CANOPY_CLIENT_APP_MEASUREMENT_INPUT_H_
#define CANOPY_CLIENT_APP_MEASUREMENT_INPUT_H_

#include <cstddef>
#include <cstdint>
#include <istream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/error.h"
#include "dap/messages.h"
#include "idpf/bit_string.h"
#include "poplar/vdaf.h"

namespace canopy::client {

// How Poplar1 measurements are written.
enum class StringFormat { kText, kBits };

// Parses "text" or "bits". Errors (kInvalidArgument): anything else.
Result<StringFormat> ParseStringFormat(std::string_view name);

// A string as a Poplar1 measurement of `bits` bits: its bytes, zero-padded.
// Errors (kInvalidArgument): bits is not a multiple of 8 (use the bits
// format), the string is longer than bits / 8 bytes (naming both lengths), or
// it holds a NUL byte (naming its offset).
Result<idpf::BitString> EncodeString(std::string_view text, size_t bits);

// "0110..." of exactly `bits` digits as a Poplar1 measurement. Errors
// (kInvalidArgument): another length (naming both), or a character other
// than '0' and '1' (naming its offset).
Result<idpf::BitString> ParseBitsMeasurement(std::string_view text, size_t bits);

// A string measurement back as text: its bytes without the trailing zero
// padding. For messages and tests.
std::string DecodeString(const idpf::BitString& measurement);

// A decimal integer below 2^64, without sign or spaces. Errors
// (kInvalidArgument): empty, another character, or too large.
Result<uint64_t> ParseNumber(std::string_view text);

// Comma-separated decimal integers ("1, 0,3"); spaces around the numbers are
// allowed. Errors (kInvalidArgument): an empty element or a bad number,
// naming its position (from 0).
Result<std::vector<uint64_t>> ParseNumberList(std::string_view text);

// Parses measurements for one task: knows its VDAF, and for Poplar1 its BITS
// and the chosen format.
class MeasurementParser {
 public:
  // Errors: those of dap::MakeVdaf for a configuration naming no VDAF Canopy
  // builds; kInvalidArgument for the text format with a Poplar1 BITS that is
  // not a multiple of 8 (the message says to use the bits format).
  static Result<MeasurementParser> Create(const dap::TaskConfiguration& configuration,
                                          StringFormat format = StringFormat::kText);

  MeasurementParser(MeasurementParser&&) noexcept;
  MeasurementParser& operator=(MeasurementParser&&) noexcept;
  ~MeasurementParser();

  // Parses one measurement. `where` names it in messages ("urls.txt:12",
  // "--string #3"). Errors (kInvalidArgument), each starting with `where`:
  // those of EncodeString, ParseBitsMeasurement, ParseNumber and
  // ParseNumberList, and the VDAF's refusal of an out-of-range value, which
  // names the bound.
  Result<poplar::Measurement> Parse(std::string_view text, std::string_view where) const;

  // Reads one measurement a line from `input` (named `name` in messages, as
  // "name:line"). Errors: the first bad line's, as Parse; kIoError when
  // reading fails.
  Result<std::vector<poplar::Measurement>> ParseLines(std::istream& input,
                                                      std::string_view name) const;

  // True for Poplar1 tasks.
  bool is_poplar1() const { return bits_ > 0; }
  // Poplar1's BITS, or 0.
  size_t bits() const { return bits_; }
  StringFormat format() const { return format_; }
  const poplar::Vdaf& vdaf() const { return *vdaf_; }

 private:
  MeasurementParser(std::unique_ptr<poplar::Vdaf> vdaf, uint32_t vdaf_type, size_t bits,
                    StringFormat format);

  // The VDAF's own range checks, by sharding with fixed randomness.
  Result<void> CheckWithVdaf(const poplar::Measurement& measurement) const;

  std::unique_ptr<poplar::Vdaf> vdaf_;
  uint32_t vdaf_type_;
  size_t bits_;
  StringFormat format_;
};

}  // namespace canopy::client

#endif  // CANOPY_CLIENT_APP_MEASUREMENT_INPUT_H_
