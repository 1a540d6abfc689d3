#include "crypto/xof.h"

#include <cstdlib>
#include <cstring>

#include "crypto/secure_wipe.h"

namespace canopy::crypto {
namespace {

constexpr uint8_t kTurboShakeXofDomain = 0x01;
constexpr uint8_t kFixedKeyDerivationDomain = 0x02;

void AbsorbLengthPrefixedDst(TurboShake128& sponge, std::span<const uint8_t> dst) {
  if (dst.size() > 0xffff) std::abort();  // The draft caps dst at 2^16 - 1 bytes.
  const uint8_t length[2] = {static_cast<uint8_t>(dst.size()),
                             static_cast<uint8_t>(dst.size() >> 8)};
  sponge.Absorb(length);
  sponge.Absorb(dst);
}

}  // namespace

// ---- XofTurboShake128 --------------------------------------------------------

XofTurboShake128::XofTurboShake128(std::span<const uint8_t> seed, std::span<const uint8_t> dst,
                                   std::span<const uint8_t> binder)
    : sponge_(kTurboShakeXofDomain) {
  AbsorbPrefix(seed, dst);
  sponge_.Absorb(binder);
}

XofTurboShake128::XofTurboShake128(std::span<const uint8_t> seed, std::span<const uint8_t> dst,
                                   BinderParts binder_parts)
    : sponge_(kTurboShakeXofDomain) {
  AbsorbPrefix(seed, dst);
  for (std::span<const uint8_t> part : binder_parts) sponge_.Absorb(part);
}

TurboShake128 XofTurboShake128::AbsorbSeedAndDst(std::span<const uint8_t> seed,
                                                 std::span<const uint8_t> dst) {
  XofTurboShake128 xof(seed, dst, std::span<const uint8_t>());
  return xof.sponge_;
}

XofTurboShake128::XofTurboShake128(const TurboShake128& seed_and_dst, BinderParts binder_parts)
    : sponge_(seed_and_dst) {
  for (std::span<const uint8_t> part : binder_parts) sponge_.Absorb(part);
}

void XofTurboShake128::AbsorbPrefix(std::span<const uint8_t> seed, std::span<const uint8_t> dst) {
  if (seed.size() > 0xff) std::abort();  // The seed length is one byte.
  AbsorbLengthPrefixedDst(sponge_, dst);
  const uint8_t seed_length = static_cast<uint8_t>(seed.size());
  sponge_.Absorb(std::span<const uint8_t>(&seed_length, 1));
  sponge_.Absorb(seed);
}

std::array<uint8_t, XofTurboShake128::kSeedSize> XofTurboShake128::DeriveSeed(
    std::span<const uint8_t> seed, std::span<const uint8_t> dst, std::span<const uint8_t> binder) {
  std::array<uint8_t, kSeedSize> derived;
  XofTurboShake128(seed, dst, binder).Next(derived);
  return derived;
}

// ---- XofFixedKeyAes128 -------------------------------------------------------

FixedKeyAes128 XofFixedKeyAes128::DeriveFixedKey(std::span<const uint8_t> dst,
                                                 std::span<const uint8_t> binder) {
  TurboShake128 sponge(kFixedKeyDerivationDomain);
  AbsorbLengthPrefixedDst(sponge, dst);
  sponge.Absorb(binder);
  std::array<uint8_t, FixedKeyAes128::kKeySize> key;
  sponge.Squeeze(key);
  return FixedKeyAes128(key);
}

XofFixedKeyAes128::XofFixedKeyAes128(const FixedKeyAes128& cipher,
                                     std::span<const uint8_t, kSeedSize> seed)
    : cipher_(&cipher) {
  std::memcpy(seed_.data(), seed.data(), kSeedSize);
}

XofFixedKeyAes128::XofFixedKeyAes128(std::span<const uint8_t, kSeedSize> seed,
                                     std::span<const uint8_t> dst, std::span<const uint8_t> binder)
    : cipher_(nullptr) {
  owned_cipher_ = new FixedKeyAes128(DeriveFixedKey(dst, binder));
  cipher_ = owned_cipher_;
  std::memcpy(seed_.data(), seed.data(), kSeedSize);
}

XofFixedKeyAes128::~XofFixedKeyAes128() {
  delete owned_cipher_;
  SecureWipeObject(seed_);
  SecureWipeObject(block_);
}

void XofFixedKeyAes128::InputBlock(std::span<const uint8_t, kSeedSize> seed, uint64_t index,
                                   uint8_t* out) {
  std::memcpy(out, seed.data(), kSeedSize);
  // The block index is a 128-bit little-endian counter; the IDPF never gets
  // near 2^64 blocks, so only the low half can be non-zero.
  for (int i = 0; i < 8; ++i) out[i] ^= static_cast<uint8_t>(index >> (8 * i));
}

void XofFixedKeyAes128::RefillBlock() {
  InputBlock(seed_, next_block_index_++, block_.data());
  cipher_->HashBlocks(block_.data(), block_.data(), 1);
  block_offset_ = 0;
}

void XofFixedKeyAes128::Next(std::span<uint8_t> out) {
  size_t written = 0;
  while (written < out.size()) {
    if (block_offset_ == block_.size()) RefillBlock();
    size_t take = std::min(out.size() - written, block_.size() - block_offset_);
    std::memcpy(out.data() + written, block_.data() + block_offset_, take);
    written += take;
    block_offset_ += take;
  }
}

std::array<uint8_t, XofFixedKeyAes128::kSeedSize> XofFixedKeyAes128::DeriveSeed(
    std::span<const uint8_t, kSeedSize> seed, std::span<const uint8_t> dst,
    std::span<const uint8_t> binder) {
  std::array<uint8_t, kSeedSize> derived;
  XofFixedKeyAes128(seed, dst, binder).Next(derived);
  return derived;
}

}  // namespace canopy::crypto
