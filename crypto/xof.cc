#include "crypto/xof.h"

#include <bit>
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

// ---- XofTurboShake128x4 ------------------------------------------------------

namespace {

uint64_t LoadLe64(const uint8_t* bytes) {
  uint64_t value;
  std::memcpy(&value, bytes, sizeof(value));
  if constexpr (std::endian::native == std::endian::big) value = std::byteswap(value);
  return value;
}

void StoreLe64(uint8_t* bytes, uint64_t value) {
  if constexpr (std::endian::native == std::endian::big) value = std::byteswap(value);
  std::memcpy(bytes, &value, sizeof(value));
}

constexpr size_t kRateBytes = TurboShake128::kRateBytes;

}  // namespace

XofTurboShake128x4::XofTurboShake128x4(size_t lanes, const Lanes<const uint8_t>& seeds,
                                       std::span<const uint8_t> dst,
                                       KeccakX4Implementation implementation)
    : lanes_(lanes),
      stride_(lanes > 1 ? kMaxLanes : 1),
      wide_(lanes > 1 && implementation == KeccakX4Implementation::kAuto && KeccakX4HasAvx2()) {
  if (lanes == 0 || lanes > kMaxLanes || dst.size() > 0xffff || seeds[0].size() > 0xff) {
    std::abort();
  }
  const uint8_t dst_length[2] = {static_cast<uint8_t>(dst.size()),
                                 static_cast<uint8_t>(dst.size() >> 8)};
  AbsorbBinderAll(dst_length);
  AbsorbBinderAll(dst);
  const uint8_t seed_length = static_cast<uint8_t>(seeds[0].size());
  AbsorbBinderAll(std::span<const uint8_t>(&seed_length, 1));
  AbsorbBinder(seeds);
}

XofTurboShake128x4::~XofTurboShake128x4() { SecureWipeObject(state_); }

void XofTurboShake128x4::AbsorbBinder(const Lanes<const uint8_t>& binder) { Absorb(binder); }

void XofTurboShake128x4::AbsorbBinderAll(std::span<const uint8_t> binder) {
  Absorb({binder, binder, binder, binder});
}

void XofTurboShake128x4::Permute() {
  if (wide_) {
    KeccakP1600Rounds12x4(state_);
  } else if (lanes_ == 1) {
    KeccakP1600Rounds12(flat_words());  // Stride 1: the words are one scalar state.
  } else {
    uint64_t lane[25];
    for (size_t k = 0; k < lanes_; ++k) {
      for (size_t i = 0; i < 25; ++i) lane[i] = Word(i, k);
      KeccakP1600Rounds12(lane);
      for (size_t i = 0; i < 25; ++i) Word(i, k) = lane[i];
    }
    SecureWipeObject(lane);
  }
}

void XofTurboShake128x4::Absorb(const Lanes<const uint8_t>& data) {
  const size_t n = data[0].size();
  bool equal = true;
  for (size_t k = 1; k < lanes_; ++k) equal = equal && data[k].size() == n;
  if (squeezing_ || !equal) std::abort();
  size_t done = 0;
  while (done < n) {
    if (position_ % 8 == 0 && n - done >= 8) {
      // Whole words, up to the end of the block: the bulk of a long binder.
      const size_t words = std::min((kRateBytes - position_) / 8, (n - done) / 8);
      const size_t first = position_ / 8;
      if (lanes_ == 1) {
        // The source in a local: the state's words could alias the span's
        // size, which would then be reloaded every word.
        uint64_t* lane = flat_words() + first;
        const uint8_t* source = data[0].data() + done;
        for (size_t w = 0; w < words; ++w) lane[w] ^= LoadLe64(source + 8 * w);
      } else if (lanes_ == kMaxLanes) {
        // All four lanes: a fixed inner loop the compiler unrolls.
        for (size_t w = 0; w < words; ++w) {
          for (size_t k = 0; k < kMaxLanes; ++k) {
            state_[first + w][k] ^= LoadLe64(data[k].data() + done + 8 * w);
          }
        }
      } else {
        for (size_t w = 0; w < words; ++w) {
          for (size_t k = 0; k < lanes_; ++k) {
            Word(first + w, k) ^= LoadLe64(data[k].data() + done + 8 * w);
          }
        }
      }
      done += 8 * words;
      position_ += 8 * words;
    } else {
      // One byte: to reach a word boundary, or a short tail.
      const size_t shift = 8 * (position_ % 8);
      for (size_t k = 0; k < lanes_; ++k) {
        Word(position_ / 8, k) ^= static_cast<uint64_t>(data[k][done]) << shift;
      }
      ++done;
      ++position_;
    }
    if (position_ == kRateBytes) {
      Permute();
      position_ = 0;
    }
  }
}

void XofTurboShake128x4::PadAndSwitchToSqueezing() {
  // A full block is permuted as soon as it fills, so the domain byte always
  // fits in the current block (as in TurboShake128).
  for (size_t k = 0; k < lanes_; ++k) {
    Word(position_ / 8, k) ^= static_cast<uint64_t>(kTurboShakeXofDomain) << (8 * (position_ % 8));
    Word((kRateBytes - 1) / 8, k) ^= static_cast<uint64_t>(0x80) << (8 * ((kRateBytes - 1) % 8));
  }
  Permute();
  position_ = 0;
  squeezing_ = true;
}

void XofTurboShake128x4::Next(const Lanes<uint8_t>& out) {
  const size_t n = out[0].size();
  for (size_t k = 1; k < lanes_; ++k) {
    if (out[k].size() != n) std::abort();
  }
  if (!squeezing_) PadAndSwitchToSqueezing();
  size_t done = 0;
  while (done < n) {
    // Permute lazily, so that output never costs a permutation it does not use.
    if (position_ == kRateBytes) {
      Permute();
      position_ = 0;
    }
    if (position_ % 8 == 0 && n - done >= 8) {
      const size_t words = std::min((kRateBytes - position_) / 8, (n - done) / 8);
      const size_t first = position_ / 8;
      if (lanes_ == 1 && std::endian::native == std::endian::little) {
        // One contiguous state: its memory is the byte string.
        std::memcpy(out[0].data() + done, flat_words() + first, 8 * words);
      } else if (lanes_ == kMaxLanes) {
        const std::array<uint64_t, kMaxLanes>* state = &state_[first];
        uint8_t* targets[kMaxLanes] = {out[0].data() + done, out[1].data() + done,
                                       out[2].data() + done, out[3].data() + done};
        for (size_t w = 0; w < words; ++w) {
          for (size_t k = 0; k < kMaxLanes; ++k) StoreLe64(targets[k] + 8 * w, state[w][k]);
        }
      } else {
        for (size_t w = 0; w < words; ++w) {
          for (size_t k = 0; k < lanes_; ++k) {
            StoreLe64(out[k].data() + done + 8 * w, Word(first + w, k));
          }
        }
      }
      done += 8 * words;
      position_ += 8 * words;
    } else {
      const size_t shift = 8 * (position_ % 8);
      for (size_t k = 0; k < lanes_; ++k) {
        out[k][done] = static_cast<uint8_t>(Word(position_ / 8, k) >> shift);
      }
      ++done;
      ++position_;
    }
  }
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
