#include "idpf/internal/level_xofs.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "crypto/keccak_x4.h"
#include "crypto/secure_wipe.h"
#include "crypto/xof.h"

namespace canopy::idpf::internal {
namespace {

using crypto::XofFixedKeyAes128;
using crypto::XofTurboShake128;

// VDAF draft-20's format_dst(1, 0, usage) || ctx: version 18, algorithm class
// 1 (IDPF), algorithm 0, then the usage (0 for extend, 1 for convert).
std::vector<uint8_t> IdpfDst(uint16_t usage, std::span<const uint8_t> ctx) {
  constexpr size_t kHeaderSize = 8;
  std::vector<uint8_t> dst(kHeaderSize + ctx.size());
  const uint8_t header[kHeaderSize] = {
      18, 1, 0, 0, 0, 0, static_cast<uint8_t>(usage >> 8), static_cast<uint8_t>(usage)};
  std::memcpy(dst.data(), header, kHeaderSize);
  if (!ctx.empty()) std::memcpy(dst.data() + kHeaderSize, ctx.data(), ctx.size());
  return dst;
}

constexpr uint16_t kExtendUsage = 0;
constexpr uint16_t kConvertUsage = 1;

}  // namespace

LevelXofs::LevelXofs(size_t bits, std::span<const uint8_t> ctx, Nonce nonce)
    : bits_(bits),
      extend_dst_(IdpfDst(kExtendUsage, ctx)),
      convert_dst_(IdpfDst(kConvertUsage, ctx)),
      extend_cipher_(XofFixedKeyAes128::DeriveFixedKey(extend_dst_, nonce)),
      convert_cipher_(XofFixedKeyAes128::DeriveFixedKey(convert_dst_, nonce)) {
  std::memcpy(nonce_.data(), nonce.data(), kNonceSize);
}

LevelXofs::~LevelXofs() = default;

Extended LevelXofs::Extend(size_t level, const Seed& seed) const {
  Extended out;
  if (IsLeaf(level)) {
    XofTurboShake128 xof(seed, extend_dst_, nonce_);
    xof.Next(out.seeds[0]);
    xof.Next(out.seeds[1]);
  } else {
    Seed blocks[2];
    XofFixedKeyAes128::InputBlock(seed, 0, blocks[0].data());
    XofFixedKeyAes128::InputBlock(seed, 1, blocks[1].data());
    extend_cipher_.HashBlocks(blocks[0].data(), out.seeds[0].data(), 2);
  }
  out.ctrl[0] = SplitControlBit(out.seeds[0]);
  out.ctrl[1] = SplitControlBit(out.seeds[1]);
  return out;
}

void LevelXofs::ConvertInner(const Seed& seed, Seed* next_seed, InnerValue* value) const {
  XofFixedKeyAes128 xof(convert_cipher_, seed);
  xof.Next(*next_seed);
  if (value != nullptr) xof.NextVec<Field64>(*value);
}

void LevelXofs::ConvertLeaf(const Seed& seed, Seed* next_seed, LeafValue* value) const {
  XofTurboShake128 xof(seed, convert_dst_, nonce_);
  xof.Next(*next_seed);
  if (value != nullptr) xof.NextVec<Field255>(*value);
}

void LevelXofs::ExtendInnerBatch(std::span<const Seed> seeds, Seed* out) const {
  if (seeds.empty()) return;
  extend_cipher_.HashCounterBlocks(seeds[0].data(), seeds.size(), 2, out[0].data());
}

void LevelXofs::ConvertInnerBatch(std::span<const Seed> seeds, Seed* next_seeds,
                                  InnerValue* values) const {
  if (seeds.empty()) return;
  // Block 0 of each stream is the next seed, block 1 the value: each is
  // hashed straight into its place, one block per seed.
  if (next_seeds != nullptr) {
    convert_cipher_.HashCounterBlocks(seeds[0].data(), seeds.size(), 1, next_seeds[0].data());
  }
  if (values == nullptr) return;
  // The value's block lands in the value's own bytes, then is sampled there
  // (each element is read before it is written).
  static_assert(sizeof(InnerValue) == kKeySize);
  auto* value_bytes = reinterpret_cast<uint8_t*>(values);
  convert_cipher_.HashCounterBlocks(seeds[0].data(), seeds.size(), 1, value_bytes, 1);
  if constexpr (std::endian::native == std::endian::little) {
    // A Field64 holds its value as a native 64-bit word, which on this byte
    // order is the draw's bytes as they are: when every draw is below p
    // (almost always; a rejection has probability about 2^-32), the values
    // are already in place, and one comparison pass without stores says so.
    bool all_below = true;
    for (size_t i = 0; i < seeds.size(); ++i) {
      all_below &= values[i][0].value() < Field64::kModulus;
      all_below &= values[i][1].value() < Field64::kModulus;
    }
    if (all_below) return;
  }
  for (size_t i = 0; i < seeds.size(); ++i) {
    const uint8_t* block = value_bytes + kKeySize * i;
    const bool first = Field64::FromSampledBytes(block, &values[i][0]);
    const bool second = Field64::FromSampledBytes(block + Field64::kEncodedSize, &values[i][1]);
    if (!first || !second) {
      // A rejected draw (probability about 2^-31): resample from the stream.
      Seed next_seed;
      ConvertInner(seeds[i], &next_seed, &values[i]);
      crypto::SecureWipeObject(next_seed);
    }
  }
}

template <size_t kOut, typename Use>
void LevelXofs::LeafXofBatch(std::span<const uint8_t> dst, std::span<const Seed> seeds,
                             Use use) const {
  // XofTurboShake128's framing: len(dst) (2 bytes LE) || dst || len(seed)
  // || seed || binder, here with the same dst and binder in every lane.
  const uint8_t dst_length[2] = {static_cast<uint8_t>(dst.size()),
                                 static_cast<uint8_t>(dst.size() >> 8)};
  const uint8_t seed_length = static_cast<uint8_t>(kKeySize);
  uint8_t outputs[4][kOut];
  // The framing before the seed is the same in every group: absorbed once.
  crypto::TurboShake128x4 prefix(0x01);
  prefix.AbsorbAll(dst_length);
  prefix.AbsorbAll(dst);
  prefix.AbsorbAll(std::span<const uint8_t>(&seed_length, 1));
  crypto::TurboShake128x4 xof = prefix;
  for (size_t first = 0; first < seeds.size(); first += 4) {
    const size_t lanes = std::min<size_t>(4, seeds.size() - first);
    // Lanes past the end repeat the first seed; their output is dropped.
    std::array<std::span<const uint8_t>, 4> lane_seeds;
    for (size_t k = 0; k < 4; ++k) lane_seeds[k] = seeds[first + (k < lanes ? k : 0)];
    xof = prefix;
    xof.Absorb(lane_seeds);
    xof.AbsorbAll(nonce_);
    xof.Squeeze({outputs[0], outputs[1], outputs[2], outputs[3]});
    for (size_t k = 0; k < lanes; ++k) use(first + k, outputs[k]);
  }
  crypto::SecureWipeObject(outputs);
}

void LevelXofs::ExtendLeafBatch(std::span<const Seed> seeds, Seed* out) const {
  LeafXofBatch<2 * kKeySize>(extend_dst_, seeds, [out](size_t i, const uint8_t* bytes) {
    std::memcpy(out[2 * i].data(), bytes, kKeySize);
    std::memcpy(out[2 * i + 1].data(), bytes + kKeySize, kKeySize);
  });
}

void LevelXofs::ConvertLeafBatch(std::span<const Seed> seeds, Seed* next_seeds,
                                 LeafValue* values) const {
  constexpr size_t kValueBytes = kValueLen * Field255::kEncodedSize;
  LeafXofBatch<kKeySize + kValueBytes>(convert_dst_, seeds, [&](size_t i, const uint8_t* bytes) {
    if (next_seeds != nullptr) std::memcpy(next_seeds[i].data(), bytes, kKeySize);
    if (values == nullptr) return;
    const bool first = Field255::FromSampledBytes(bytes + kKeySize, &values[i][0]);
    const bool second =
        Field255::FromSampledBytes(bytes + kKeySize + Field255::kEncodedSize, &values[i][1]);
    // A rejected draw (probability about 2^-250): resample from the
    // stream, one XOF at a time.
    if (!first || !second) {
      Seed next_seed;
      ConvertLeaf(seeds[i], &next_seed, &values[i]);
      crypto::SecureWipeObject(next_seed);
    }
  });
}

}  // namespace canopy::idpf::internal
