// TurboSHAKE128 (RFC 9861) on top of a scalar Keccak-p[1600, 12] permutation.
#include "crypto/turboshake128.h"

#include <bit>
#include <cassert>
#include <cstring>

namespace canopy::crypto {
namespace {

constexpr size_t kRateLanes = TurboShake128::kRateBytes / 8;  // 21.

// Keccak-f[1600] round constants 12..23: Keccak-p[1600, 12] is the last 12
// rounds of Keccak-f[1600], so it uses the last 12 constants.
constexpr uint64_t kRoundConstants[12] = {
    0x000000008000808BULL, 0x800000000000008BULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800AULL, 0x800000008000000AULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

// Loads a little-endian 64-bit word. memcpy avoids alignment and aliasing
// problems and compiles to a single load on little-endian machines.
inline uint64_t LoadLe64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
  return v;
}

// Stores `v` as a little-endian 64-bit word.
inline void StoreLe64(uint8_t* p, uint64_t v) {
  if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
  std::memcpy(p, &v, sizeof(v));
}

// Zeroes the lanes through a volatile pointer so that the compiler cannot drop
// the writes as dead stores (the object is about to die). Whole-lane stores
// keep this cheap next to a short hash.
void WipeLanes(uint64_t (&lanes)[25]) {
  volatile uint64_t* words = lanes;
  for (size_t i = 0; i < 25; ++i) words[i] = 0;
}

}  // namespace

// One Keccak round from the lanes named A##xx to the lanes named E##xx, in the
// style of XKCP's 64-bit "opt64" code: the lanes live in local variables so the
// compiler can keep most of them in registers, and rho, pi and chi are fused
// per output row. Lane names: first letter is the row y (b, g, k, m, s for
// y = 0..4), second the column x (a, e, i, o, u for x = 0..4).
//
// Chi computes b ^ (~c & d) per lane, which costs a NOT on baseline x86-64
// (no ANDN). Holding the six lanes be, bi, go, ki, mi, sa complemented (XKCP's
// "bebigokimisa" pattern) lets De Morgan turn all but one NOT per row into an
// OR or a plain AND. The complements pass through the linear steps (theta
// and rho-pi) as known flips; the chi expressions below are the De Morgan
// forms for where those flips land, and they leave the same six lanes
// complemented, so the pattern holds from round to round.
#define CANOPY_KECCAK_ROUND(A, E, rc)                          \
  do {                                                         \
    const uint64_t Ca = A##ba ^ A##ga ^ A##ka ^ A##ma ^ A##sa; \
    const uint64_t Ce = A##be ^ A##ge ^ A##ke ^ A##me ^ A##se; \
    const uint64_t Ci = A##bi ^ A##gi ^ A##ki ^ A##mi ^ A##si; \
    const uint64_t Co = A##bo ^ A##go ^ A##ko ^ A##mo ^ A##so; \
    const uint64_t Cu = A##bu ^ A##gu ^ A##ku ^ A##mu ^ A##su; \
    const uint64_t Da = Cu ^ std::rotl(Ce, 1);                 \
    const uint64_t De = Ca ^ std::rotl(Ci, 1);                 \
    const uint64_t Di = Ce ^ std::rotl(Co, 1);                 \
    const uint64_t Do = Ci ^ std::rotl(Cu, 1);                 \
    const uint64_t Du = Co ^ std::rotl(Ca, 1);                 \
    uint64_t B0, B1, B2, B3, B4;                               \
    /* Output row y = 0. */                                    \
    B0 = A##ba ^ Da;                                           \
    B1 = std::rotl(A##ge ^ De, 44);                            \
    B2 = std::rotl(A##ki ^ Di, 43);                            \
    B3 = std::rotl(A##mo ^ Do, 21);                            \
    B4 = std::rotl(A##su ^ Du, 14);                            \
    E##ba = B0 ^ (B1 | B2) ^ (rc);                             \
    E##be = B1 ^ (~B2 | B3);                                   \
    E##bi = B2 ^ (B3 & B4);                                    \
    E##bo = B3 ^ (B4 | B0);                                    \
    E##bu = B4 ^ (B0 & B1);                                    \
    /* Output row y = 1. */                                    \
    B0 = std::rotl(A##bo ^ Do, 28);                            \
    B1 = std::rotl(A##gu ^ Du, 20);                            \
    B2 = std::rotl(A##ka ^ Da, 3);                             \
    B3 = std::rotl(A##me ^ De, 45);                            \
    B4 = std::rotl(A##si ^ Di, 61);                            \
    E##ga = B0 ^ (B1 | B2);                                    \
    E##ge = B1 ^ (B2 & B3);                                    \
    E##gi = B2 ^ (B3 | ~B4);                                   \
    E##go = B3 ^ (B4 | B0);                                    \
    E##gu = B4 ^ (B0 & B1);                                    \
    /* Output row y = 2. */                                    \
    B0 = std::rotl(A##be ^ De, 1);                             \
    B1 = std::rotl(A##gi ^ Di, 6);                             \
    B2 = std::rotl(A##ko ^ Do, 25);                            \
    B3 = std::rotl(A##mu ^ Du, 8);                             \
    B4 = std::rotl(A##sa ^ Da, 18);                            \
    E##ka = B0 ^ (B1 | B2);                                    \
    E##ke = B1 ^ (B2 & B3);                                    \
    E##ki = B2 ^ (~B3 & B4);                                   \
    E##ko = ~B3 ^ (B4 | B0);                                   \
    E##ku = B4 ^ (B0 & B1);                                    \
    /* Output row y = 3. */                                    \
    B0 = std::rotl(A##bu ^ Du, 27);                            \
    B1 = std::rotl(A##ga ^ Da, 36);                            \
    B2 = std::rotl(A##ke ^ De, 10);                            \
    B3 = std::rotl(A##mi ^ Di, 15);                            \
    B4 = std::rotl(A##so ^ Do, 56);                            \
    E##ma = B0 ^ (B1 & B2);                                    \
    E##me = B1 ^ (B2 | B3);                                    \
    E##mi = B2 ^ (~B3 | B4);                                   \
    E##mo = ~B3 ^ (B4 & B0);                                   \
    E##mu = B4 ^ (B0 | B1);                                    \
    /* Output row y = 4. */                                    \
    B0 = std::rotl(A##bi ^ Di, 62);                            \
    B1 = std::rotl(A##go ^ Do, 55);                            \
    B2 = std::rotl(A##ku ^ Du, 39);                            \
    B3 = std::rotl(A##ma ^ Da, 41);                            \
    B4 = std::rotl(A##se ^ De, 2);                             \
    E##sa = B0 ^ (~B1 & B2);                                   \
    E##se = ~B1 ^ (B2 | B3);                                   \
    E##si = B2 ^ (B3 & B4);                                    \
    E##so = B3 ^ (B4 | B0);                                    \
    E##su = B4 ^ (B0 & B1);                                    \
  } while (0)

// The lanes held complemented inside KeccakP1600Rounds12 (see above).
constexpr int kComplementedLanes[6] = {1, 2, 8, 12, 17, 20};

namespace {

// The permutation's body, inlined into each target-specific variant below so
// that every variant is compiled for its own instruction set.
__attribute__((always_inline)) inline void KeccakP1600Rounds12Body(uint64_t lanes[25]) {
  for (int i : kComplementedLanes) lanes[i] = ~lanes[i];
  uint64_t Aba = lanes[0], Abe = lanes[1], Abi = lanes[2], Abo = lanes[3], Abu = lanes[4];
  uint64_t Aga = lanes[5], Age = lanes[6], Agi = lanes[7], Ago = lanes[8], Agu = lanes[9];
  uint64_t Aka = lanes[10], Ake = lanes[11], Aki = lanes[12], Ako = lanes[13], Aku = lanes[14];
  uint64_t Ama = lanes[15], Ame = lanes[16], Ami = lanes[17], Amo = lanes[18], Amu = lanes[19];
  uint64_t Asa = lanes[20], Ase = lanes[21], Asi = lanes[22], Aso = lanes[23], Asu = lanes[24];
  uint64_t Eba, Ebe, Ebi, Ebo, Ebu, Ega, Ege, Egi, Ego, Egu, Eka, Eke, Eki, Eko, Eku;
  uint64_t Ema, Eme, Emi, Emo, Emu, Esa, Ese, Esi, Eso, Esu;

  // Two rounds per iteration ping-pong between the A and E lane sets, so no
  // copying between rounds is needed. A fully unrolled version measured 15 to
  // 20% slower with g++ 12 here (more spilling), so the loop stays.
  for (int round = 0; round < 12; round += 2) {
    CANOPY_KECCAK_ROUND(A, E, kRoundConstants[round]);
    CANOPY_KECCAK_ROUND(E, A, kRoundConstants[round + 1]);
  }

  lanes[0] = Aba, lanes[1] = Abe, lanes[2] = Abi, lanes[3] = Abo, lanes[4] = Abu;
  lanes[5] = Aga, lanes[6] = Age, lanes[7] = Agi, lanes[8] = Ago, lanes[9] = Agu;
  lanes[10] = Aka, lanes[11] = Ake, lanes[12] = Aki, lanes[13] = Ako, lanes[14] = Aku;
  lanes[15] = Ama, lanes[16] = Ame, lanes[17] = Ami, lanes[18] = Amo, lanes[19] = Amu;
  lanes[20] = Asa, lanes[21] = Ase, lanes[22] = Asi, lanes[23] = Aso, lanes[24] = Asu;
  for (int i : kComplementedLanes) lanes[i] = ~lanes[i];
}

}  // namespace

void KeccakP1600Rounds12Portable(uint64_t lanes[25]) { KeccakP1600Rounds12Body(lanes); }

#if defined(__x86_64__) && defined(__GNUC__)
// BMI1 and BMI2 give ANDN and RORX (a rotation into another register): fewer
// moves, about 5% faster here.
__attribute__((target("bmi,bmi2"))) void KeccakP1600Rounds12Bmi(uint64_t lanes[25]) {
  KeccakP1600Rounds12Body(lanes);
}

bool KeccakP1600HasBmi() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
  }();
  return has;
}
#else
void KeccakP1600Rounds12Bmi(uint64_t lanes[25]) { KeccakP1600Rounds12Body(lanes); }
bool KeccakP1600HasBmi() { return false; }
#endif

namespace {

using Permutation = void (*)(uint64_t*);

// Chosen once, at the first call's static initialisation.
Permutation SelectedPermutation() {
  static const Permutation selected =
      KeccakP1600HasBmi() ? &KeccakP1600Rounds12Bmi : &KeccakP1600Rounds12Portable;
  return selected;
}

}  // namespace

void KeccakP1600Rounds12(uint64_t lanes[25]) { SelectedPermutation()(lanes); }

#undef CANOPY_KECCAK_ROUND

TurboShake128::TurboShake128(uint8_t domain_byte) : lanes_{}, domain_byte_(domain_byte) {
  assert(domain_byte >= 0x01 && domain_byte <= 0x7f);
}

TurboShake128::~TurboShake128() { WipeLanes(lanes_); }

void TurboShake128::Absorb(std::span<const uint8_t> data) {
  assert(!squeezing_);
  if (squeezing_) return;

  const uint8_t* p = data.data();
  size_t n = data.size();
  while (n > 0) {
    if (position_ == 0 && n >= kRateBytes) {
      // A whole block: the bulk of a long input goes through here.
      for (size_t i = 0; i < kRateLanes; ++i) lanes_[i] ^= LoadLe64(p + 8 * i);
      p += kRateBytes;
      n -= kRateBytes;
      position_ = kRateBytes;
    } else if (position_ % 8 == 0 && n >= 8) {
      // A whole lane at a lane boundary.
      lanes_[position_ / 8] ^= LoadLe64(p);
      p += 8;
      n -= 8;
      position_ += 8;
    } else {
      // A single byte: only to reach a lane boundary or for a short tail.
      lanes_[position_ / 8] ^= static_cast<uint64_t>(*p) << (8 * (position_ % 8));
      ++p;
      --n;
      ++position_;
    }
    if (position_ == kRateBytes) {
      KeccakP1600Rounds12(lanes_);
      position_ = 0;
    }
  }
}

void TurboShake128::PadAndSwitchToSqueezing() {
  // position_ < kRateBytes always holds while absorbing, since a full block
  // is permuted at once; so D goes in this block, and when M filled the last
  // block exactly, D starts a fresh one as the RFC requires.
  lanes_[position_ / 8] ^= static_cast<uint64_t>(domain_byte_) << (8 * (position_ % 8));
  lanes_[(kRateBytes - 1) / 8] ^= static_cast<uint64_t>(0x80) << (8 * ((kRateBytes - 1) % 8));
  KeccakP1600Rounds12(lanes_);
  position_ = 0;
  squeezing_ = true;
}

void TurboShake128::Squeeze(std::span<uint8_t> out) {
  if (!squeezing_) PadAndSwitchToSqueezing();

  uint8_t* p = out.data();
  size_t n = out.size();
  while (n > 0) {
    // Permute lazily, so that output never costs a permutation it does not use.
    if (position_ == kRateBytes) {
      KeccakP1600Rounds12(lanes_);
      position_ = 0;
    }
    size_t take = kRateBytes - position_;
    if (take > n) take = n;
    if constexpr (std::endian::native == std::endian::little) {
      // The lanes are little-endian words, so their memory is the byte string.
      std::memcpy(p, reinterpret_cast<const uint8_t*>(lanes_) + position_, take);
    } else {
      uint8_t block[kRateBytes];
      for (size_t i = 0; i < kRateLanes; ++i) StoreLe64(block + 8 * i, lanes_[i]);
      std::memcpy(p, block + position_, take);
    }
    p += take;
    n -= take;
    position_ += take;
  }
}

void TurboShake128::Hash(std::span<const uint8_t> message, uint8_t domain_byte,
                         std::span<uint8_t> out) {
  TurboShake128 sponge(domain_byte);
  sponge.Absorb(message);
  sponge.Squeeze(out);
}

}  // namespace canopy::crypto
