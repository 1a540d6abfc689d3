// The two extendable-output functions (XOFs) of VDAF draft-20, section "XOFs".
//
// XofTurboShake128 is the general-purpose XOF. XofFixedKeyAes128 is the fast
// one the IDPF uses at its inner levels; its AES key depends only on the
// domain-separation tag and the binder (the report's nonce), so callers that
// evaluate many seeds of one report derive the key once (DeriveFixedKey) and
// build each XOF from the cached key.
#ifndef CANOPY_CRYPTO_XOF_H_
#define CANOPY_CRYPTO_XOF_H_

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <vector>

#include "crypto/aes.h"
#include "crypto/field.h"
#include "crypto/keccak_x4.h"
#include "crypto/secure_wipe.h"
#include "crypto/turboshake128.h"

namespace canopy::crypto {

// A binder given as several pieces, concatenated in order (for example
// `{agg_id_byte, nonce}`), so that callers need not build the concatenation.
using BinderParts = std::initializer_list<std::span<const uint8_t>>;

// What both XOFs share: field-element sampling on top of `Next`.
template <typename Derived>
class XofBase {
 public:
  // The next element of `F`, by the draft's rejection sampling: read
  // F::kEncodedSize bytes, mask to the bit length of p, retry while >= p.
  template <Field F>
  F NextElement() {
    uint8_t bytes[F::kEncodedSize];
    F element;
    do {
      static_cast<Derived*>(this)->Next(bytes);
    } while (!F::FromSampledBytes(bytes, &element));
    return element;
  }

  // Fills `out` with the next elements (the draft's `next_vec`). Reads the
  // stream in chunks: a chunk never holds more draws than elements still
  // missing, so exactly the bytes of element-by-element sampling are consumed.
  template <Field F>
  void NextVec(std::span<F> out) {
    constexpr size_t kChunk = 64;
    uint8_t bytes[kChunk * F::kEncodedSize];
    size_t filled = 0;
    while (filled < out.size()) {
      const size_t draws = std::min(kChunk, out.size() - filled);
      static_cast<Derived*>(this)->Next(std::span<uint8_t>(bytes, draws * F::kEncodedSize));
      for (size_t i = 0; i < draws; ++i) {
        if (F::FromSampledBytes(bytes + i * F::kEncodedSize, &out[filled])) ++filled;
      }
    }
  }

  // Returns the next `length` elements (the draft's `next_vec`).
  template <Field F>
  std::vector<F> NextVec(size_t length) {
    std::vector<F> out(length);
    NextVec<F>(out);
    return out;
  }
};

// XofTurboShake128: TurboSHAKE128 with D = 0x01 over
// len(dst) (2 bytes LE) || dst || len(seed) (1 byte) || seed || binder.
class XofTurboShake128 : public XofBase<XofTurboShake128> {
 public:
  static constexpr size_t kSeedSize = 32;

  // `seed` may be any length up to 255 bytes (the draft's default is 32; the
  // IDPF's leaf level uses 16) and `dst` up to 65535 bytes; longer values are
  // a programming error and abort.
  XofTurboShake128(std::span<const uint8_t> seed, std::span<const uint8_t> dst,
                   std::span<const uint8_t> binder);
  XofTurboShake128(std::span<const uint8_t> seed, std::span<const uint8_t> dst,
                   BinderParts binder_parts);

  // A sponge that has absorbed everything before the binder. XOFs that share
  // seed and dst and differ in their binder (Poplar1's verification randomness
  // of one report at each level) start from a copy of it.
  static TurboShake128 AbsorbSeedAndDst(std::span<const uint8_t> seed,
                                        std::span<const uint8_t> dst);

  // An XOF continuing `seed_and_dst` (from AbsorbSeedAndDst) with the binder.
  XofTurboShake128(const TurboShake128& seed_and_dst, BinderParts binder_parts);

  // Writes the next out.size() bytes of the stream.
  void Next(std::span<uint8_t> out) { sponge_.Squeeze(out); }

  // The draft's derive_seed: the first kSeedSize bytes of the stream.
  static std::array<uint8_t, kSeedSize> DeriveSeed(std::span<const uint8_t> seed,
                                                   std::span<const uint8_t> dst,
                                                   std::span<const uint8_t> binder);

  // The draft's expand_into_vec.
  template <Field F>
  static std::vector<F> ExpandIntoVec(std::span<const uint8_t> seed, std::span<const uint8_t> dst,
                                      std::span<const uint8_t> binder, size_t length) {
    XofTurboShake128 xof(seed, dst, binder);
    return xof.NextVec<F>(length);
  }

 private:
  void AbsorbPrefix(std::span<const uint8_t> seed, std::span<const uint8_t> dst);

  TurboShake128 sponge_;
};

// Up to four XofTurboShake128 streams stepped together, so that one 4-way
// Keccak-p[1600, 12] permutation (crypto/keccak_x4.h) serves four of them:
// Prio3 verifies four reports at once this way. Lane k produces exactly the
// stream of XofTurboShake128(seeds[k], dst, binder of lane k).
//
// The lanes share the domain-separation tag, and every lane absorbs and
// squeezes the same number of bytes, which keeps the sponges in step. Any
// of 1 to 4 lanes may be in use: one lane alone runs the scalar permutation
// (a 4-way permutation costs more than one scalar one), and so does every
// lane on a CPU without AVX2. Copyable; the state is wiped on destruction.
class XofTurboShake128x4 {
 public:
  static constexpr size_t kMaxLanes = 4;
  template <typename T>
  using Lanes = std::array<std::span<T>, kMaxLanes>;

  // Absorbs len(dst) || dst || len(seed) || seeds[k] into lane k, for the
  // first `lanes` lanes (1 to 4; spans of unused lanes are ignored). The
  // seeds must all have the same size, up to 255 bytes, and dst at most
  // 65535 bytes; anything else is a programming error and aborts.
  XofTurboShake128x4(size_t lanes, const Lanes<const uint8_t>& seeds, std::span<const uint8_t> dst,
                     KeccakX4Implementation implementation = KeccakX4Implementation::kAuto);
  ~XofTurboShake128x4();
  XofTurboShake128x4(const XofTurboShake128x4&) = default;
  XofTurboShake128x4& operator=(const XofTurboShake128x4&) = default;

  size_t lanes() const { return lanes_; }

  // Absorbs the next piece of each lane's binder: binder[k] into lane k. The
  // pieces of the lanes in use must have equal sizes, and every piece must
  // come before the first Next; anything else aborts.
  void AbsorbBinder(const Lanes<const uint8_t>& binder);
  // Absorbs the same piece into every lane.
  void AbsorbBinderAll(std::span<const uint8_t> binder);

  // Writes the next out[k].size() bytes of lane k's stream to out[k]; the
  // sizes must be equal for the lanes in use (otherwise aborts).
  void Next(const Lanes<uint8_t>& out);

  // Rejection sampling of kSampleSize-byte draws, lane by lane, as
  // XofBase::NextVec does: lane k offers its draws in stream order to
  // accept(k, index, draw), where index is the number lane k has accepted so
  // far, until it has accepted counts[k]. Each round squeezes as many draws
  // as the neediest lane still misses (at most a chunk), and then calls
  // after_round(accepted) with every lane's count so far. A lane that
  // finishes early ignores the rest of its round's draws, so its stream may
  // be read past what it used: sample only from an XOF that is read no
  // further.
  template <size_t kSampleSize, typename Accept, typename AfterRound>
  void SampleLanes(const std::array<size_t, kMaxLanes>& counts, Accept&& accept,
                   AfterRound&& after_round) {
    constexpr size_t kChunk = 64;
    uint8_t draws_bytes[kMaxLanes][kChunk * kSampleSize];
    std::array<size_t, kMaxLanes> accepted{};
    size_t used = 0;  // Bytes of each lane's draws to wipe.
    for (;;) {
      size_t draws = 0;
      for (size_t k = 0; k < lanes_; ++k) draws = std::max(draws, counts[k] - accepted[k]);
      if (draws == 0) break;
      draws = std::min(draws, kChunk);
      const size_t bytes = draws * kSampleSize;
      used = std::max(used, bytes);
      Next({std::span<uint8_t>(draws_bytes[0], bytes), std::span<uint8_t>(draws_bytes[1], bytes),
            std::span<uint8_t>(draws_bytes[2], bytes), std::span<uint8_t>(draws_bytes[3], bytes)});
      for (size_t k = 0; k < lanes_; ++k) {
        // In locals: `accept` may write bytes, which could alias the array.
        size_t lane_accepted = accepted[k];
        const size_t lane_count = counts[k];
        const uint8_t* lane_draws = draws_bytes[k];
        for (size_t d = 0; d < draws && lane_accepted < lane_count; ++d) {
          if (accept(k, lane_accepted, lane_draws + d * kSampleSize)) ++lane_accepted;
        }
        accepted[k] = lane_accepted;
      }
      after_round(static_cast<const std::array<size_t, kMaxLanes>&>(accepted));
    }
    for (size_t k = 0; k < lanes_; ++k) SecureWipe(draws_bytes[k], used);
  }

 private:
  // Lane k's word i: lanes interleaved as KeccakStateX4 for the 4-way
  // permutation, or one contiguous scalar state (stride 1) for one lane.
  uint64_t& Word(size_t i, size_t k) { return flat_words()[i * stride_ + k]; }
  uint64_t* flat_words() { return &state_[0][0]; }
  void Permute();
  void Absorb(const Lanes<const uint8_t>& data);
  void PadAndSwitchToSqueezing();

  KeccakStateX4 state_{};
  size_t lanes_;
  size_t stride_;        // kMaxLanes when the lanes are interleaved, else 1.
  bool wide_;            // Runs the AVX2 4-way permutation.
  size_t position_ = 0;  // Byte offset in the rate part, equal for all lanes.
  bool squeezing_ = false;
};

// XofFixedKeyAes128: block i of the stream is
// AES(k, sigma(seed XOR le128(i))) XOR sigma(seed XOR le128(i)), with
// k = TurboSHAKE128(len(dst) (2 bytes LE) || dst || binder, D = 0x02, 16).
class XofFixedKeyAes128 : public XofBase<XofFixedKeyAes128> {
 public:
  static constexpr size_t kSeedSize = 16;

  // The AES key schedule for (dst, binder), to be shared by every XOF of the
  // same report and usage.
  static FixedKeyAes128 DeriveFixedKey(std::span<const uint8_t> dst,
                                       std::span<const uint8_t> binder);

  // An XOF over a borrowed key schedule, which must outlive it.
  XofFixedKeyAes128(const FixedKeyAes128& cipher, std::span<const uint8_t, kSeedSize> seed);

  // An XOF that derives (and owns) its key schedule.
  XofFixedKeyAes128(std::span<const uint8_t, kSeedSize> seed, std::span<const uint8_t> dst,
                    std::span<const uint8_t> binder);
  ~XofFixedKeyAes128();

  XofFixedKeyAes128(const XofFixedKeyAes128&) = delete;
  XofFixedKeyAes128& operator=(const XofFixedKeyAes128&) = delete;

  // Writes the next out.size() bytes of the stream.
  void Next(std::span<uint8_t> out);

  // The draft's derive_seed.
  static std::array<uint8_t, kSeedSize> DeriveSeed(std::span<const uint8_t, kSeedSize> seed,
                                                   std::span<const uint8_t> dst,
                                                   std::span<const uint8_t> binder);

  // The draft's expand_into_vec.
  template <Field F>
  static std::vector<F> ExpandIntoVec(std::span<const uint8_t, kSeedSize> seed,
                                      std::span<const uint8_t> dst, std::span<const uint8_t> binder,
                                      size_t length) {
    XofFixedKeyAes128 xof(seed, dst, binder);
    return xof.NextVec<F>(length);
  }

  // Writes block `index` of the stream for `seed` under `cipher` to `out`.
  // The IDPF batches these itself; this is the single-block reference.
  static void InputBlock(std::span<const uint8_t, kSeedSize> seed, uint64_t index, uint8_t* out);

 private:
  void RefillBlock();

  std::array<uint8_t, FixedKeyAes128::kBlockSize> seed_{};
  std::array<uint8_t, FixedKeyAes128::kBlockSize> block_{};
  const FixedKeyAes128* cipher_;
  FixedKeyAes128* owned_cipher_ = nullptr;
  uint64_t next_block_index_ = 0;
  size_t block_offset_ = FixedKeyAes128::kBlockSize;  // Bytes of block_ already consumed.
};

}  // namespace canopy::crypto

#endif  // CANOPY_CRYPTO_XOF_H_
