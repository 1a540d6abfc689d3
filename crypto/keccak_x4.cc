// Four-way TurboSHAKE128: an AVX2 Keccak-p[1600, 12] over four interleaved
// states, with the scalar permutation as the portable fallback.
#include "crypto/keccak_x4.h"

#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <utility>

#include "crypto/secure_wipe.h"
#include "crypto/turboshake128.h"

namespace canopy::crypto {
namespace {

// Keccak-f[1600] round constants 12..23 (Keccak-p[1600, 12] is its last 12
// rounds).
constexpr uint64_t kRoundConstants[12] = {
    0x000000008000808BULL, 0x800000000000008BULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800AULL, 0x800000008000000AULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

// Rho's rotation of lane x + 5y.
constexpr int kRho[25] = {0,  1,  62, 28, 27, 36, 44, 6,  55, 20, 3,  10, 43,
                          25, 39, 41, 45, 15, 21, 8,  18, 2,  61, 56, 14};

// Pi moves lane (x, y) to (y, 2x + 3y); kPiSource[i] is the lane that lands
// at index i.
constexpr std::array<int, 25> PiSources() {
  std::array<int, 25> sources{};
  for (int x = 0; x < 5; ++x) {
    for (int y = 0; y < 5; ++y) sources[y + 5 * ((2 * x + 3 * y) % 5)] = x + 5 * y;
  }
  return sources;
}
constexpr std::array<int, 25> kPiSource = PiSources();

// ---- AVX2 path -------------------------------------------------------------
// The attribute lets the rest of the project build for baseline x86-64; this
// code runs only after KeccakX4HasAvx2() said yes.
#define CANOPY_AVX2 __attribute__((target("avx2")))

template <int kShift>
CANOPY_AVX2 inline __m256i Rotl(__m256i v) {
  if constexpr (kShift == 0) {
    return v;
  } else if constexpr (kShift == 8 || kShift == 56) {
    // Byte rotations are one shuffle instead of two shifts and an OR.
    const __m256i order =
        kShift == 8 ? _mm256_setr_epi8(7, 0, 1, 2, 3, 4, 5, 6, 15, 8, 9, 10, 11, 12, 13, 14, 7, 0,
                                       1, 2, 3, 4, 5, 6, 15, 8, 9, 10, 11, 12, 13, 14)
                    : _mm256_setr_epi8(1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11, 12, 13, 14, 15, 8, 1, 2,
                                       3, 4, 5, 6, 7, 0, 9, 10, 11, 12, 13, 14, 15, 8);
    return _mm256_shuffle_epi8(v, order);
  } else {
    return _mm256_or_si256(_mm256_slli_epi64(v, kShift), _mm256_srli_epi64(v, 64 - kShift));
  }
}

// Rho and pi for output lane i, as a template so every rotation is an
// immediate.
template <int kIndex>
CANOPY_AVX2 inline __m256i RhoPi(const __m256i* a, const __m256i* d) {
  constexpr int kSource = kPiSource[kIndex];
  return Rotl<kRho[kSource]>(_mm256_xor_si256(a[kSource], d[kSource % 5]));
}

template <int... kIndex>
CANOPY_AVX2 inline void RhoPiAll(const __m256i* a, const __m256i* d, __m256i* b,
                                 std::integer_sequence<int, kIndex...>) {
  ((b[kIndex] = RhoPi<kIndex>(a, d)), ...);
}

CANOPY_AVX2 void PermuteAvx2(KeccakStateX4& state) {
  __m256i a[25];
  for (int i = 0; i < 25; ++i) {
    a[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(state[i].data()));
  }
  for (int round = 0; round < 12; ++round) {
    // Theta.
    __m256i c[5], d[5];
    for (int x = 0; x < 5; ++x) {
      c[x] = _mm256_xor_si256(_mm256_xor_si256(a[x], a[x + 5]),
                              _mm256_xor_si256(_mm256_xor_si256(a[x + 10], a[x + 15]), a[x + 20]));
    }
    for (int x = 0; x < 5; ++x) d[x] = _mm256_xor_si256(c[(x + 4) % 5], Rotl<1>(c[(x + 1) % 5]));
    // Rho and pi (with theta's D folded in), then chi and iota.
    __m256i b[25];
    RhoPiAll(a, d, b, std::make_integer_sequence<int, 25>());
    for (int y = 0; y < 25; y += 5) {
      for (int x = 0; x < 5; ++x) {
        a[y + x] =
            _mm256_xor_si256(b[y + x], _mm256_andnot_si256(b[y + (x + 1) % 5], b[y + (x + 2) % 5]));
      }
    }
    a[0] =
        _mm256_xor_si256(a[0], _mm256_set1_epi64x(static_cast<long long>(kRoundConstants[round])));
  }
  for (int i = 0; i < 25; ++i) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(state[i].data()), a[i]);
  }
  // The registers held the state; clear them so no copy lingers.
  _mm256_zeroall();
}

#undef CANOPY_AVX2

// ---- Portable path ---------------------------------------------------------

void PermutePortable(KeccakStateX4& state) {
  uint64_t lanes[25];
  for (size_t k = 0; k < 4; ++k) {
    for (size_t i = 0; i < 25; ++i) lanes[i] = state[i][k];
    KeccakP1600Rounds12(lanes);
    for (size_t i = 0; i < 25; ++i) state[i][k] = lanes[i];
  }
  volatile uint64_t* words = lanes;
  for (size_t i = 0; i < 25; ++i) words[i] = 0;
}

// The little-endian lane for `bytes` (up to 8) starting at bit `shift`.
uint64_t LanePart(const uint8_t* bytes, size_t count, size_t shift) {
  uint64_t value = 0;
  if (count == 8) {  // A whole lane: one load (most of a long input).
    assert(shift == 0);
    std::memcpy(&value, bytes, 8);
    if constexpr (std::endian::native == std::endian::big) value = std::byteswap(value);
    return value;
  }
  for (size_t i = 0; i < count; ++i) value |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  return value << shift;
}

}  // namespace

bool KeccakX4HasAvx2() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") != 0;
  }();
  return has;
}

void KeccakP1600Rounds12x4(KeccakStateX4& state, KeccakX4Implementation implementation) {
  if (implementation == KeccakX4Implementation::kAuto && KeccakX4HasAvx2()) {
    PermuteAvx2(state);
  } else {
    PermutePortable(state);
  }
}

TurboShake128x4::TurboShake128x4(uint8_t domain_byte, KeccakX4Implementation implementation)
    : domain_byte_(domain_byte), implementation_(implementation) {
  assert(domain_byte >= 0x01 && domain_byte <= 0x7f);
}

TurboShake128x4::~TurboShake128x4() { SecureWipeObject(state_); }

void TurboShake128x4::Permute() { KeccakP1600Rounds12x4(state_, implementation_); }

void TurboShake128x4::AbsorbAll(std::span<const uint8_t> data) { Absorb({data, data, data, data}); }

void TurboShake128x4::Absorb(const std::array<std::span<const uint8_t>, 4>& data) {
  assert(!squeezing_);
  const size_t n = data[0].size();
  if (squeezing_ || data[1].size() != n || data[2].size() != n || data[3].size() != n) return;
  size_t done = 0;
  while (done < n) {
    const size_t in_lane = position_ % 8;
    if (n - done >= 8 && position_ + 8 <= kRateBytes) {
      // Eight bytes with one load per instance. Off a lane boundary they
      // straddle two lanes (a seed after an odd-length prefix does): the
      // byte-wise path below cost about four instructions a byte there.
      const size_t lane = position_ / 8;
      const unsigned shift = static_cast<unsigned>(8 * in_lane);
      for (size_t k = 0; k < 4; ++k) {
        const uint64_t value = LanePart(data[k].data() + done, 8, 0);
        state_[lane][k] ^= value << shift;
        if (shift != 0) state_[lane + 1][k] ^= value >> (64 - shift);
      }
      done += 8;
      position_ += 8;
      if (position_ == kRateBytes) {
        Permute();
        position_ = 0;
      }
      continue;
    }
    // Up to the end of the current lane (and never past the message).
    const size_t take = std::min(8 - in_lane, n - done);
    for (size_t k = 0; k < 4; ++k) {
      state_[position_ / 8][k] ^= LanePart(data[k].data() + done, take, 8 * in_lane);
    }
    done += take;
    position_ += take;
    if (position_ == kRateBytes) {
      Permute();
      position_ = 0;
    }
  }
}

void TurboShake128x4::PadAndSwitchToSqueezing() {
  // As in TurboShake128: a full block is permuted as soon as it fills, so the
  // domain byte always fits in the current block.
  for (size_t k = 0; k < 4; ++k) {
    state_[position_ / 8][k] ^= static_cast<uint64_t>(domain_byte_) << (8 * (position_ % 8));
    state_[(kRateBytes - 1) / 8][k] ^= static_cast<uint64_t>(0x80) << (8 * ((kRateBytes - 1) % 8));
  }
  Permute();
  position_ = 0;
  squeezing_ = true;
}

void TurboShake128x4::Squeeze(const std::array<std::span<uint8_t>, 4>& out) {
  const size_t n = out[0].size();
  if (out[1].size() != n || out[2].size() != n || out[3].size() != n) return;
  if (!squeezing_) PadAndSwitchToSqueezing();
  size_t done = 0;
  while (done < n) {
    if (position_ == kRateBytes) {
      Permute();
      position_ = 0;
    }
    const size_t in_lane = position_ % 8;
    const size_t take = std::min(8 - in_lane, n - done);
    for (size_t k = 0; k < 4; ++k) {
      uint64_t lane = state_[position_ / 8][k] >> (8 * in_lane);
      if (take == 8) {
        if constexpr (std::endian::native == std::endian::big) lane = std::byteswap(lane);
        std::memcpy(out[k].data() + done, &lane, 8);
      } else {
        for (size_t i = 0; i < take; ++i) out[k][done + i] = static_cast<uint8_t>(lane >> (8 * i));
      }
    }
    done += take;
    position_ += take;
  }
}

}  // namespace canopy::crypto
