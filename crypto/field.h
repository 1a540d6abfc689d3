// Operations shared by every field type: the `Field` concept, vector encoding
// and decoding, and element-wise vector arithmetic.
//
// Canopy has three prime fields, each in its own header: `Field64`
// (crypto/field64.h), `Field128` (crypto/field128.h) and `Field255`
// (crypto/field255.h). Elements are always reduced: every value a field type
// holds is in [0, p). Arithmetic on elements is constant time.
#ifndef CANOPY_CRYPTO_FIELD_H_
#define CANOPY_CRYPTO_FIELD_H_

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "crypto/error.h"

namespace canopy::crypto {

// What the VDAF code needs of a field element type.
template <typename F>
concept Field = requires(F a, F b, const uint8_t* bytes, uint8_t* out, uint64_t small) {
  { F::kEncodedSize } -> std::convertible_to<size_t>;
  { F::Zero() } -> std::same_as<F>;
  { F::One() } -> std::same_as<F>;
  { F::FromUint64(small) } -> std::same_as<F>;
  { F::FromSampledBytes(bytes, &a) } -> std::same_as<bool>;
  { F::Decode(std::span<const uint8_t>()) } -> std::same_as<Result<F>>;
  {a.Encode(out)};
  { a + b } -> std::same_as<F>;
  { a - b } -> std::same_as<F>;
  { a* b } -> std::same_as<F>;
  { -a } -> std::same_as<F>;
  { a == b } -> std::same_as<bool>;
  { a.Inverse() } -> std::same_as<F>;
};

// Appends the little-endian encodings of `values` to `out`.
template <Field F>
void EncodeVec(std::span<const F> values, std::vector<uint8_t>& out) {
  size_t offset = out.size();
  out.resize(offset + values.size() * F::kEncodedSize);
  for (const F& value : values) {
    value.Encode(out.data() + offset);
    offset += F::kEncodedSize;
  }
}

// Returns the encoding of `values`.
template <Field F>
std::vector<uint8_t> EncodeVec(std::span<const F> values) {
  std::vector<uint8_t> out;
  EncodeVec(values, out);
  return out;
}

// Decodes a vector of elements. Errors (kDecodeError): a length that is not a
// multiple of the element size, or an element >= p.
template <Field F>
Result<std::vector<F>> DecodeVec(std::span<const uint8_t> encoded) {
  if (encoded.size() % F::kEncodedSize != 0) {
    return MakeError(ErrorCode::kDecodeError,
                     "field vector length " + std::to_string(encoded.size()) +
                         " is not a multiple of " + std::to_string(F::kEncodedSize));
  }
  std::vector<F> values;
  values.reserve(encoded.size() / F::kEncodedSize);
  for (size_t offset = 0; offset < encoded.size(); offset += F::kEncodedSize) {
    Result<F> value = F::Decode(encoded.subspan(offset, F::kEncodedSize));
    if (!value) return std::unexpected(value.error());
    values.push_back(*value);
  }
  return values;
}

// out[i] += in[i] for each i; the spans must have equal length.
template <Field F>
void AddInPlace(std::span<F> out, std::span<const F> in) {
  for (size_t i = 0; i < out.size(); ++i) out[i] = out[i] + in[i];
}

// out[i] -= in[i] for each i; the spans must have equal length.
template <Field F>
void SubInPlace(std::span<F> out, std::span<const F> in) {
  for (size_t i = 0; i < out.size(); ++i) out[i] = out[i] - in[i];
}

// Negates every element of `values`.
template <Field F>
void NegateInPlace(std::span<F> values) {
  for (F& value : values) value = -value;
}

}  // namespace canopy::crypto

#endif  // CANOPY_CRYPTO_FIELD_H_
