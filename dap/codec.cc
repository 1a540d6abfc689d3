#include "dap/codec.h"

#include <utility>

namespace canopy::dap {

void Writer::BigEndian(uint64_t value, size_t bytes) {
  if (counting_) {
    counted_ += bytes;
    return;
  }
  uint8_t buffer[8];
  for (size_t i = 0; i < bytes; ++i)
    buffer[i] = static_cast<uint8_t>(value >> (8 * (bytes - 1 - i)));
  bytes_.insert(bytes_.end(), buffer, buffer + bytes);
}

void Writer::Fail(const char* what, uint64_t length, uint64_t min, uint64_t max) {
  if (error_.empty()) {
    error_ = std::string(what) + " has length " + std::to_string(length) + ", outside [" +
             std::to_string(min) + ", " + std::to_string(max) + "]";
  }
}

void Writer::Opaque(std::span<const uint8_t> bytes, size_t prefix_bytes, uint64_t min, uint64_t max,
                    const char* what) {
  if (bytes.size() < min || bytes.size() > max) Fail(what, bytes.size(), min, max);
  BigEndian(bytes.size(), prefix_bytes);
  Fixed(bytes);
}

size_t Writer::BeginVector(size_t prefix_bytes) {
  const size_t start = size();
  if (counting_) {
    counted_ += prefix_bytes;
  } else {
    bytes_.resize(start + prefix_bytes);
  }
  return start;
}

void Writer::EndVector(size_t start, size_t prefix_bytes, uint64_t min, uint64_t max,
                       const char* what) {
  const uint64_t length = size() - start - prefix_bytes;
  if (length < min || length > max) Fail(what, length, min, max);
  if (counting_) return;
  for (size_t i = 0; i < prefix_bytes; ++i) {
    bytes_[start + i] = static_cast<uint8_t>(length >> (8 * (prefix_bytes - 1 - i)));
  }
}

Result<std::vector<uint8_t>> Writer::Finish() && {
  if (!error_.empty()) return MakeError(ErrorCode::kInvalidArgument, "cannot encode: " + error_);
  return std::move(bytes_);
}

bool Reader::Fail(const std::string& what) {
  if (error_.empty()) error_ = what;
  return false;
}

bool Reader::Take(size_t count, const uint8_t*& data, const char* what) {
  if (!error_.empty()) return false;
  if (count > remaining()) {
    return Fail(std::string(what) + " is truncated (needs " + std::to_string(count) + " bytes, " +
                std::to_string(remaining()) + " left)");
  }
  data = input_.data() + offset_;
  offset_ += count;
  return true;
}

namespace {
uint64_t LoadBigEndian(const uint8_t* data, size_t bytes) {
  uint64_t value = 0;
  for (size_t i = 0; i < bytes; ++i) value = (value << 8) | data[i];
  return value;
}
}  // namespace

bool Reader::U8(uint8_t& value, const char* what) {
  const uint8_t* data;
  if (!Take(1, data, what)) return false;
  value = data[0];
  return true;
}

bool Reader::U16(uint16_t& value, const char* what) {
  const uint8_t* data;
  if (!Take(2, data, what)) return false;
  value = static_cast<uint16_t>(LoadBigEndian(data, 2));
  return true;
}

bool Reader::U32(uint32_t& value, const char* what) {
  const uint8_t* data;
  if (!Take(4, data, what)) return false;
  value = static_cast<uint32_t>(LoadBigEndian(data, 4));
  return true;
}

bool Reader::U64(uint64_t& value, const char* what) {
  const uint8_t* data;
  if (!Take(8, data, what)) return false;
  value = LoadBigEndian(data, 8);
  return true;
}

bool Reader::Fixed(std::span<uint8_t> out, const char* what) {
  const uint8_t* data;
  if (!Take(out.size(), data, what)) return false;
  std::copy(data, data + out.size(), out.begin());
  return true;
}

bool Reader::Vector(Reader& body, size_t prefix_bytes, uint64_t min, uint64_t max,
                    const char* what) {
  const uint8_t* prefix;
  if (!Take(prefix_bytes, prefix, what)) return false;
  const uint64_t length = LoadBigEndian(prefix, prefix_bytes);
  if (length < min || length > max) {
    return Fail(std::string(what) + " has length " + std::to_string(length) + ", outside [" +
                std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  // The length is checked against the input before anything is allocated.
  const uint8_t* data;
  if (!Take(static_cast<size_t>(length), data, what)) return false;
  body = Reader(std::span<const uint8_t>(data, static_cast<size_t>(length)));
  return true;
}

bool Reader::Opaque(std::vector<uint8_t>& out, size_t prefix_bytes, uint64_t min, uint64_t max,
                    const char* what) {
  Reader body({});
  if (!Vector(body, prefix_bytes, min, max, what)) return false;
  out.assign(body.input_.begin(), body.input_.end());
  return true;
}

Reader Reader::Rest() {
  Reader rest(input_.subspan(offset_));
  offset_ = input_.size();
  return rest;
}

bool Reader::ExpectEnd(const char* what) {
  if (!error_.empty()) return false;
  if (!empty()) {
    return Fail(std::string(what) + " has " + std::to_string(remaining()) + " trailing bytes");
  }
  return true;
}

bool Reader::Merge(const Reader& sub) {
  if (!sub.error_.empty()) return Fail(sub.error_);
  return ok();
}

}  // namespace canopy::dap
