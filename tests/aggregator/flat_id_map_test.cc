// internal::FlatIdMap: random insertions, lookups and erasures give what
// std::unordered_map gives, with hashes that put every key in one of eight
// home slots at the start or the end of the table (long runs, wrapping
// around: probing and the backward shift of erasures at work) and with the
// real keyed hash, through growth and reservation.
#include "aggregator/internal/flat_id_map.h"

#include <gtest/gtest.h>

#include <array>
#include <random>
#include <unordered_map>

namespace canopy::aggregator::internal {
namespace {

using Id = std::array<uint8_t, 16>;

Id IdOf(uint32_t n) {
  Id id{};
  id[0] = static_cast<uint8_t>(n);
  id[1] = static_cast<uint8_t>(n >> 8);
  return id;
}

struct CrowdedHash {
  size_t operator()(const Id& id) const { return (id[0] * 0x9e3779b97f4a7c15u) & 7u; }
};

// The same at the end of any table: every run wraps around to slot 0.
struct WrappingHash {
  size_t operator()(const Id& id) const { return ~CrowdedHash{}(id); }
};

struct IdHash {
  size_t operator()(const Id& id) const { return KeyedIdHash{}(id); }
};

template <typename Hash>
void RunRandomOperations(uint64_t seed, uint32_t keys, int operations) {
  std::mt19937_64 random(seed);
  FlatIdMap<16, int, Hash> map;
  std::unordered_map<Id, int, IdHash> model;
  if (seed % 2 == 0) map.Reserve(keys / 2);
  for (int step = 0; step < operations; ++step) {
    const Id id = IdOf(static_cast<uint32_t>(random() % keys));
    const int value = static_cast<int>(random() % 1000);
    switch (random() % 4) {
      case 0:
      case 1:
        ASSERT_EQ(map.TryEmplace(id, value), model.try_emplace(id, value).second);
        break;
      case 2:
        ASSERT_EQ(map.Erase(id), model.erase(id) == 1) << "step " << step;
        break;
      case 3: {
        const int* found = map.Find(id);
        auto expected = model.find(id);
        ASSERT_EQ(found != nullptr, expected != model.end()) << "step " << step;
        if (found != nullptr) {
          ASSERT_EQ(*found, expected->second);
        }
        ASSERT_EQ(map.Contains(id), expected != model.end());
        if (int* writable = map.Find(id); writable != nullptr) {
          *writable = value;
          expected->second = value;
        }
        break;
      }
    }
    ASSERT_EQ(map.size(), model.size()) << "step " << step;
  }
  for (const auto& [id, value] : model) {
    const int* found = map.Find(id);
    ASSERT_TRUE(found != nullptr && *found == value);
  }
}

TEST(FlatIdMap, CrowdedSlotsBehaveAsAnUnorderedMap) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    RunRandomOperations<CrowdedHash>(seed, 60, 4000);
    RunRandomOperations<WrappingHash>(seed, 60, 4000);
  }
}

TEST(FlatIdMap, KeyedHashBehavesAsAnUnorderedMap) {
  for (uint64_t seed = 1; seed <= 4; ++seed) RunRandomOperations<KeyedIdHash>(seed, 5000, 40000);
}

TEST(FlatIdMap, EmptyMapFindsNothing) {
  FlatIdMap<16, bool> map;
  EXPECT_EQ(map.Find(IdOf(1)), nullptr);
  EXPECT_FALSE(map.Contains(IdOf(1)));
  EXPECT_FALSE(map.Erase(IdOf(1)));
  EXPECT_EQ(map.size(), 0u);
}

}  // namespace
}  // namespace canopy::aggregator::internal
