// BitString: a string of bits, the IDPF's input and Poplar1's candidate
// prefixes. Bits are numbered from 0 and packed most significant bit first,
// which is how VDAF draft-20 turns bytes into an IDPF index and how it encodes
// prefixes in the aggregation parameter.
#ifndef CANOPY_IDPF_BIT_STRING_H_
#define CANOPY_IDPF_BIT_STRING_H_

#include <compare>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/error.h"

namespace canopy::idpf {

class BitString {
 public:
  // The empty string.
  BitString() = default;

  // The first `length` bits of `bytes` (MSB first). Errors (kDecodeError):
  // `bytes` is not exactly ceil(length / 8) bytes long, or a padding bit of the
  // last byte is set.
  static Result<BitString> FromBytes(std::span<const uint8_t> bytes, size_t length);

  // All 8 * bytes.size() bits of `bytes`, for example a client's string.
  static BitString FromAllBytes(std::span<const uint8_t> bytes);

  // The `length` low bits of `value`, most significant first (length <= 64).
  static BitString FromUint64(uint64_t value, size_t length);

  // Parses "0110..."; errors (kInvalidArgument) on any other character.
  static Result<BitString> Parse(std::string_view text);

  size_t size() const { return length_; }
  bool empty() const { return length_ == 0; }

  // Bit `index` (< size()).
  bool Bit(size_t index) const { return (bytes_[index / 8] >> (7 - index % 8)) & 1; }

  // The first `length` bits (length <= size()).
  BitString Prefix(size_t length) const;

  // This string with `bit` appended.
  BitString Extended(bool bit) const;

  // True when this string starts with `prefix`.
  bool StartsWith(const BitString& prefix) const;

  // ceil(size() / 8) bytes, MSB first, with zero padding bits.
  std::span<const uint8_t> bytes() const { return bytes_; }

  // "0110...", for messages and tests.
  std::string ToString() const;

  // Lexicographic order of the bit sequences, a proper prefix first: the
  // order of Python tuples of bools that the draft's is_valid uses.
  friend std::strong_ordering operator<=>(const BitString& a, const BitString& b);
  friend bool operator==(const BitString& a, const BitString& b) = default;

 private:
  std::vector<uint8_t> bytes_;
  size_t length_ = 0;
};

// Appends to `out` all 2^extra_bits extensions of `prefix`, in increasing
// order: the candidates a heavy-hitters walk asks for below a survivor.
void AppendExtensions(const BitString& prefix, size_t extra_bits, std::vector<BitString>& out);

}  // namespace canopy::idpf

#endif  // CANOPY_IDPF_BIT_STRING_H_
