// The IDPF's two helper functions, extend and convert, for one report: the
// domain-separation tags and the two fixed AES keys are derived once here and
// reused for every node of every level.
#ifndef CANOPY_IDPF_INTERNAL_LEVEL_XOFS_H_
#define CANOPY_IDPF_INTERNAL_LEVEL_XOFS_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "crypto/aes.h"
#include "idpf/idpf.h"

namespace canopy::idpf::internal {

// The result of extend: two child seeds with their control bits split off.
struct Extended {
  std::array<Seed, 2> seeds;
  std::array<uint8_t, 2> ctrl;  // 0 or 1 each.
};

class LevelXofs {
 public:
  LevelXofs(size_t bits, std::span<const uint8_t> ctx, Nonce nonce);
  ~LevelXofs();

  bool IsLeaf(size_t level) const { return level + 1 == bits_; }

  // Cache hint for the inner levels' round keys (see FixedKeyAes128).
  void Prefetch() const {
    extend_cipher_.Prefetch();
    convert_cipher_.Prefetch();
  }

  // extend(level, seed): two seeds and two control bits.
  Extended Extend(size_t level, const Seed& seed) const;

  // convert(level, seed) at an inner level: the next seed and, if `value` is
  // not null, the node's value.
  void ConvertInner(const Seed& seed, Seed* next_seed, InnerValue* value) const;

  // convert at the leaf level.
  void ConvertLeaf(const Seed& seed, Seed* next_seed, LeafValue* value) const;

  // extend at an inner level for many seeds at once: out[2i] and out[2i+1]
  // are the raw children of seeds[i], control bits still inside bit 0 of
  // byte 0 (see SplitControlBit).
  void ExtendInnerBatch(std::span<const Seed> seeds, Seed* out) const;

  // convert at an inner level for many seeds at once. Either `next_seeds`
  // or `values` may be null, not both; without the seeds the values cost
  // half the AES work. Neither output may overlap `seeds`.
  void ConvertInnerBatch(std::span<const Seed> seeds, Seed* next_seeds, InnerValue* values) const;

  // extend at the leaf level for many seeds at once, as ExtendInnerBatch:
  // four TurboSHAKE128 XOFs per 4-way permutation.
  void ExtendLeafBatch(std::span<const Seed> seeds, Seed* out) const;

  // convert at the leaf level for many seeds at once; either `next_seeds`
  // or `values` may be null, not both.
  void ConvertLeafBatch(std::span<const Seed> seeds, Seed* next_seeds, LeafValue* values) const;

 private:
  size_t bits_;
  std::vector<uint8_t> extend_dst_;
  std::vector<uint8_t> convert_dst_;
  std::array<uint8_t, kNonceSize> nonce_;
  crypto::FixedKeyAes128 extend_cipher_;
  crypto::FixedKeyAes128 convert_cipher_;

  // Runs the leaf XOF (usage `dst`) on seeds four at a time and hands each
  // seed's first `kOut` bytes of output to `use(index, bytes)`.
  template <size_t kOut, typename Use>
  void LeafXofBatch(std::span<const uint8_t> dst, std::span<const Seed> seeds, Use use) const;
};

// Takes the control bit out of a freshly extended seed (the draft "steals"
// the low bit of the first byte) and clears it.
inline uint8_t SplitControlBit(Seed& seed) {
  uint8_t ctrl = seed[0] & 1;
  seed[0] &= 0xfe;
  return ctrl;
}

// a ^= b when `mask` is 0xff, unchanged when it is 0, without branching.
inline void XorSeedMasked(Seed& a, const Seed& b, uint8_t mask) {
  const uint64_t wide_mask = static_cast<uint64_t>(0) - (mask & 1);
  uint64_t a_words[2], b_words[2];
  std::memcpy(a_words, a.data(), kKeySize);
  std::memcpy(b_words, b.data(), kKeySize);
  a_words[0] ^= b_words[0] & wide_mask;
  a_words[1] ^= b_words[1] & wide_mask;
  std::memcpy(a.data(), a_words, kKeySize);
}

}  // namespace canopy::idpf::internal

#endif  // CANOPY_IDPF_INTERNAL_LEVEL_XOFS_H_
