// TLS presentation-language encoding (RFC 8446, section 3), as DAP-19 uses it:
// big-endian integers, fixed-size arrays, and variable-length vectors with a
// 1-, 2- or 4-byte length prefix and a declared range.
//
// The Reader never reads past its input, never allocates more than the input
// can hold, and stops at the first problem, remembering what and where.
#ifndef CANOPY_DAP_CODEC_H_
#define CANOPY_DAP_CODEC_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "crypto/error.h"

namespace canopy::dap {

// Appends encodings to a byte vector. A vector longer than its declared
// maximum marks the writer failed (the message cannot be encoded).
class Writer {
 public:
  // A writer that only counts the bytes it would write, so that a second,
  // real pass can allocate the whole encoding at once (growing a multi-megabyte
  // vector step by step costs more in page faults than the encoding itself).
  static Writer Counting() {
    Writer writer;
    writer.counting_ = true;
    return writer;
  }

  void Reserve(size_t bytes) { bytes_.reserve(bytes); }
  // The bytes written (or counted) so far.
  size_t size() const { return counting_ ? counted_ : bytes_.size(); }

  void U8(uint8_t value) {
    if (counting_) {
      ++counted_;
      return;
    }
    bytes_.push_back(value);
  }
  void U16(uint16_t value) { BigEndian(value, 2); }
  void U32(uint32_t value) { BigEndian(value, 4); }
  void U64(uint64_t value) { BigEndian(value, 8); }
  void Fixed(std::span<const uint8_t> bytes) {
    if (counting_) {
      counted_ += bytes.size();
      return;
    }
    bytes_.insert(bytes_.end(), bytes.begin(), bytes.end());
  }

  // opaque data<min..max> with a `prefix_bytes`-byte length (1, 2 or 4).
  void Opaque(std::span<const uint8_t> bytes, size_t prefix_bytes, uint64_t min, uint64_t max,
              const char* what);

  // Starts a vector whose elements are written next; EndVector fills in its
  // length prefix and checks its range.
  size_t BeginVector(size_t prefix_bytes);
  void EndVector(size_t start, size_t prefix_bytes, uint64_t min, uint64_t max, const char* what);

  bool ok() const { return error_.empty(); }
  // The encoding, or kInvalidArgument naming the field that did not fit.
  Result<std::vector<uint8_t>> Finish() &&;

 private:
  void BigEndian(uint64_t value, size_t bytes);
  void Fail(const char* what, uint64_t length, uint64_t min, uint64_t max);

  std::vector<uint8_t> bytes_;
  std::string error_;
  bool counting_ = false;
  size_t counted_ = 0;
};

// Reads encodings from a byte span.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> input) : input_(input) {}

  bool U8(uint8_t& value, const char* what);
  bool U16(uint16_t& value, const char* what);
  bool U32(uint32_t& value, const char* what);
  bool U64(uint64_t& value, const char* what);
  bool Fixed(std::span<uint8_t> out, const char* what);
  template <size_t N>
  bool Fixed(std::array<uint8_t, N>& out, const char* what) {
    return Fixed(std::span<uint8_t>(out), what);
  }

  // opaque data<min..max> with a `prefix_bytes`-byte length.
  bool Opaque(std::vector<uint8_t>& out, size_t prefix_bytes, uint64_t min, uint64_t max,
              const char* what);

  // Reads a vector's length prefix and returns a Reader over its body
  // (advancing past it); the caller reads elements until the sub-reader is
  // empty.
  bool Vector(Reader& body, size_t prefix_bytes, uint64_t min, uint64_t max, const char* what);

  // The rest of the input, for messages that end in "the rest of the body".
  Reader Rest();

  bool empty() const { return offset_ == input_.size(); }
  size_t remaining() const { return input_.size() - offset_; }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  // Records a problem (the first one wins) and returns false.
  bool Fail(const std::string& what);

  // Fails unless the whole input was read.
  bool ExpectEnd(const char* what);

  // Adopts the first error of a sub-reader.
  bool Merge(const Reader& sub);

 private:
  bool Take(size_t count, const uint8_t*& data, const char* what);

  std::span<const uint8_t> input_;
  size_t offset_ = 0;
  std::string error_;
};

// Decodes a whole message with `read(Reader&, T&)`, which must consume all of
// it. Errors (kDecodeError): the reader's first problem.
template <typename T, typename ReadFn>
Result<T> DecodeWith(std::span<const uint8_t> encoded, ReadFn read, const char* message_name) {
  Reader reader(encoded);
  T value{};
  if (read(reader, value)) reader.ExpectEnd(message_name);
  if (!reader.ok()) {
    return MakeError(ErrorCode::kDecodeError, std::string(message_name) + ": " + reader.error());
  }
  return value;
}

}  // namespace canopy::dap

#endif  // CANOPY_DAP_CODEC_H_
