#include "idpf/bit_string.h"

#include <algorithm>

namespace canopy::idpf {
namespace {

size_t ByteLength(size_t bits) { return (bits + 7) / 8; }

}  // namespace

Result<BitString> BitString::FromBytes(std::span<const uint8_t> bytes, size_t length) {
  if (bytes.size() != ByteLength(length)) {
    return MakeError(ErrorCode::kDecodeError, "a " + std::to_string(length) + "-bit string takes " +
                                                  std::to_string(ByteLength(length)) +
                                                  " bytes, got " + std::to_string(bytes.size()));
  }
  if (length % 8 != 0) {
    uint8_t padding_mask = static_cast<uint8_t>(0xff >> (length % 8));
    if ((bytes.back() & padding_mask) != 0) {
      return MakeError(ErrorCode::kDecodeError, "padding bits of a bit string are not zero");
    }
  }
  BitString result;
  result.bytes_.assign(bytes.begin(), bytes.end());
  result.length_ = length;
  return result;
}

BitString BitString::FromAllBytes(std::span<const uint8_t> bytes) {
  BitString result;
  result.bytes_.assign(bytes.begin(), bytes.end());
  result.length_ = 8 * bytes.size();
  return result;
}

BitString BitString::FromUint64(uint64_t value, size_t length) {
  BitString result;
  for (size_t i = 0; i < length; ++i) result = result.Extended((value >> (length - 1 - i)) & 1);
  return result;
}

Result<BitString> BitString::Parse(std::string_view text) {
  BitString result;
  result.bytes_.reserve(ByteLength(text.size()));
  for (char c : text) {
    if (c != '0' && c != '1') {
      return MakeError(ErrorCode::kInvalidArgument,
                       "a bit string may hold only '0' and '1', found '" + std::string(1, c) + "'");
    }
    result = result.Extended(c == '1');
  }
  return result;
}

BitString BitString::Prefix(size_t length) const {
  BitString result;
  result.length_ = length;
  result.bytes_.assign(bytes_.begin(), bytes_.begin() + static_cast<ptrdiff_t>(ByteLength(length)));
  if (length % 8 != 0) result.bytes_.back() &= static_cast<uint8_t>(0xff << (8 - length % 8));
  return result;
}

BitString BitString::Extended(bool bit) const {
  BitString result = *this;
  if (result.length_ % 8 == 0) result.bytes_.push_back(0);
  if (bit) result.bytes_.back() |= static_cast<uint8_t>(0x80 >> (result.length_ % 8));
  ++result.length_;
  return result;
}

bool BitString::StartsWith(const BitString& prefix) const {
  return prefix.length_ <= length_ && Prefix(prefix.length_) == prefix;
}

std::string BitString::ToString() const {
  std::string text;
  text.reserve(length_);
  for (size_t i = 0; i < length_; ++i) text.push_back(Bit(i) ? '1' : '0');
  return text;
}

std::strong_ordering operator<=>(const BitString& a, const BitString& b) {
  // Padding bits are zero, so comparing the bytes orders by the common bits
  // first; equal bytes then leave the shorter string first.
  if (auto order = std::lexicographical_compare_three_way(a.bytes_.begin(), a.bytes_.end(),
                                                          b.bytes_.begin(), b.bytes_.end());
      order != 0) {
    // A longer string's extra zero byte can make the byte comparison differ
    // from the bit comparison only when one string is a prefix of the other.
    size_t common = std::min(a.length_, b.length_);
    if (a.Prefix(common) == b.Prefix(common)) return a.length_ <=> b.length_;
    return order;
  }
  return a.length_ <=> b.length_;
}

void AppendExtensions(const BitString& prefix, size_t extra_bits, std::vector<BitString>& out) {
  // Doubling the list bit by bit copies each string once per bit it gains.
  std::vector<BitString> level = {prefix};
  for (size_t bit = 0; bit < extra_bits; ++bit) {
    std::vector<BitString> next;
    next.reserve(2 * level.size());
    for (const BitString& string : level) {
      next.push_back(string.Extended(false));
      next.push_back(string.Extended(true));
    }
    level = std::move(next);
  }
  for (BitString& string : level) out.push_back(std::move(string));
}

}  // namespace canopy::idpf
