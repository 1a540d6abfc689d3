#include "poplar/vdaf.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace canopy::poplar {
namespace {

void AppendBigEndian(std::vector<uint8_t>& out, uint64_t value, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i)
    out.push_back(static_cast<uint8_t>(value >> (8 * (bytes - 1 - i))));
}

// Reads a big-endian integer of `bytes` bytes at `offset`, advancing it.
bool ReadBigEndian(std::span<const uint8_t> in, size_t& offset, size_t bytes, uint64_t& value) {
  if (in.size() - offset < bytes || offset > in.size()) return false;
  value = 0;
  for (size_t i = 0; i < bytes; ++i) value = (value << 8) | in[offset + i];
  offset += bytes;
  return true;
}

template <typename F>
Result<void> AddVectors(std::vector<F>& sum, const std::vector<F>& addend) {
  if (sum.size() != addend.size()) {
    return MakeError(ErrorCode::kInvalidArgument, "cannot add field vectors of lengths " +
                                                      std::to_string(sum.size()) + " and " +
                                                      std::to_string(addend.size()));
  }
  if constexpr (std::is_same_v<F, crypto::Field64>) {
    crypto::AddField64Vectors(sum, addend);
  } else {
    for (size_t i = 0; i < sum.size(); ++i) sum[i] = sum[i] + addend[i];
  }
  return {};
}

}  // namespace

size_t FieldVectorSize(const FieldVector& vector) {
  return std::visit([](const auto& elements) { return elements.size(); }, vector);
}

std::vector<uint8_t> EncodeFieldVector(const FieldVector& vector) {
  return std::visit(
      [](const auto& elements) {
        using F = typename std::decay_t<decltype(elements)>::value_type;
        return crypto::EncodeVec<F>(elements);
      },
      vector);
}

Result<void> AddFieldVector(FieldVector& sum, const FieldVector& addend) {
  if (sum.index() != addend.index()) {
    return MakeError(ErrorCode::kInvalidArgument, "cannot add vectors of different fields");
  }
  return std::visit(
      [&addend](auto& elements) -> Result<void> {
        using V = std::decay_t<decltype(elements)>;
        return AddVectors(elements, std::get<V>(addend));
      },
      sum);
}

std::string ToDecimal(unsigned __int128 value) {
  if (value == 0) return "0";
  std::string digits;
  while (value != 0) {
    digits.push_back(static_cast<char>('0' + static_cast<int>(value % 10)));
    value /= 10;
  }
  std::reverse(digits.begin(), digits.end());
  return digits;
}

std::vector<uint8_t> EncodeVerifyState(const VerifyState& state) {
  std::vector<uint8_t> out;
  out.push_back(state.step);
  AppendBigEndian(out, state.level, 4);
  out.push_back(static_cast<uint8_t>(state.agg_id));
  out.push_back(static_cast<uint8_t>(state.memory.index()));
  AppendBigEndian(out, FieldVectorSize(state.memory), 4);
  std::vector<uint8_t> elements = EncodeFieldVector(state.memory);
  out.insert(out.end(), elements.begin(), elements.end());
  AppendBigEndian(out, state.seed.size(), 4);
  out.insert(out.end(), state.seed.begin(), state.seed.end());
  return out;
}

Result<VerifyState> DecodeVerifyState(std::span<const uint8_t> encoded) {
  auto malformed = [] {
    return MakeError(ErrorCode::kDecodeError, "malformed verification state");
  };
  VerifyState state;
  size_t offset = 0;
  uint64_t step, level, agg_id, field, count, seed_length;
  if (!ReadBigEndian(encoded, offset, 1, step) || !ReadBigEndian(encoded, offset, 4, level) ||
      !ReadBigEndian(encoded, offset, 1, agg_id) || !ReadBigEndian(encoded, offset, 1, field) ||
      !ReadBigEndian(encoded, offset, 4, count) || agg_id > 254 || field > 2) {
    return malformed();
  }
  state.step = static_cast<uint8_t>(step);
  state.level = static_cast<uint32_t>(level);
  state.agg_id = static_cast<int>(agg_id);
  const size_t element_size = field == 0 ? 8 : field == 1 ? 16 : 32;
  if (count > (encoded.size() - offset) / element_size) return malformed();
  std::span<const uint8_t> elements = encoded.subspan(offset, count * element_size);
  offset += count * element_size;
  Result<void> decoded;
  auto decode_into = [&](auto tag) -> Result<void> {
    using F = decltype(tag);
    auto values = crypto::DecodeVec<F>(elements);
    if (!values) return std::unexpected(values.error());
    state.memory = std::move(*values);
    return {};
  };
  decoded = field == 0   ? decode_into(Field64())
            : field == 1 ? decode_into(Field128())
                         : decode_into(Field255());
  if (!decoded) return std::unexpected(decoded.error());
  if (!ReadBigEndian(encoded, offset, 4, seed_length) || seed_length != encoded.size() - offset) {
    return malformed();
  }
  state.seed.assign(encoded.begin() + static_cast<ptrdiff_t>(offset), encoded.end());
  return state;
}

Result<VerifyTransition> Vdaf::VerifyInitFromShares(std::span<const uint8_t> verify_key,
                                                    std::span<const uint8_t> ctx, int agg_id,
                                                    const AggregationParameter& agg_param,
                                                    std::span<const uint8_t> nonce,
                                                    std::span<const uint8_t> public_share,
                                                    std::span<const uint8_t> input_share) const {
  Result<std::unique_ptr<PreparedReport>> report =
      PrepareReport(agg_id, ctx, nonce, public_share, input_share);
  if (!report) return std::unexpected(report.error());
  return VerifyInit(verify_key, ctx, agg_param, **report);
}

void Vdaf::VerifyInitBatch(std::span<const uint8_t> verify_key, std::span<const uint8_t> ctx,
                           const AggregationParameter& agg_param,
                           std::span<PreparedReport* const> reports,
                           std::span<Result<VerifyTransition>> out) const {
  if (out.size() != reports.size()) {
    for (Result<VerifyTransition>& entry : out) {
      entry = MakeError(ErrorCode::kInvalidArgument, "a batch needs one output per report");
    }
    return;
  }
  for (size_t i = 0; i < reports.size(); ++i) {
    if (reports[i] == nullptr) {
      out[i] = MakeError(ErrorCode::kInvalidArgument, "a batch entry holds no report");
      continue;
    }
    out[i] = VerifyInit(verify_key, ctx, agg_param, *reports[i]);
  }
}

std::vector<uint8_t> VdafDomainSeparationTag(uint32_t algorithm_id, uint16_t usage,
                                             std::span<const uint8_t> ctx) {
  constexpr uint8_t kVersion = 18;
  constexpr uint8_t kVdafAlgorithmClass = 0;
  std::vector<uint8_t> dst(8 + ctx.size());
  const uint8_t header[8] = {kVersion,
                             kVdafAlgorithmClass,
                             static_cast<uint8_t>(algorithm_id >> 24),
                             static_cast<uint8_t>(algorithm_id >> 16),
                             static_cast<uint8_t>(algorithm_id >> 8),
                             static_cast<uint8_t>(algorithm_id),
                             static_cast<uint8_t>(usage >> 8),
                             static_cast<uint8_t>(usage)};
  std::memcpy(dst.data(), header, 8);
  if (!ctx.empty()) std::memcpy(dst.data() + 8, ctx.data(), ctx.size());
  return dst;
}

}  // namespace canopy::poplar
