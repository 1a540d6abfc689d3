// A hash map from fixed-size identifiers (report IDs) to small values,
// open-addressed: entries live in one array, so a lookup is usually one
// cache miss and an insertion allocates nothing. The level claims keep a
// million report IDs per level of a walk in one; std::unordered_map read
// three cache lines per lookup there and allocated a node per claim (2 to 3
// % of each aggregator's time in a million-report walk's later rounds).
// Not thread-safe.
#ifndef CANOPY_AGGREGATOR_INTERNAL_FLAT_ID_MAP_H_
#define CANOPY_AGGREGATOR_INTERNAL_FLAT_ID_MAP_H_

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "aggregator/internal/lru_cache.h"

namespace canopy::aggregator::internal {

template <size_t N, typename Value, typename Hash = KeyedIdHash>
class FlatIdMap {
 public:
  using Key = std::array<uint8_t, N>;

  size_t size() const { return size_; }

  // Makes room for `count` entries without growing again.
  void Reserve(size_t count) {
    if (2 * count > slots_.size()) Rehash(SlotsFor(count));
  }

  // The value under `key`, or null (valid until the next insertion or
  // erasure).
  Value* Find(const Key& key) {
    if (slots_.empty()) return nullptr;
    Slot& slot = slots_[SlotOf(key)];
    return slot.occupied ? &slot.value : nullptr;
  }
  const Value* Find(const Key& key) const { return const_cast<FlatIdMap*>(this)->Find(key); }
  bool Contains(const Key& key) const { return !slots_.empty() && slots_[SlotOf(key)].occupied; }

  // Inserts `value` under `key` unless the key is present; true if it was
  // inserted.
  bool TryEmplace(const Key& key, Value value) {
    if (2 * (size_ + 1) > slots_.size()) Rehash(SlotsFor(size_ + 1));
    Slot& slot = slots_[SlotOf(key)];
    if (slot.occupied) return false;
    slot = Slot{key, value, true};
    ++size_;
    return true;
  }

  // Removes `key`; true if it was present. The entries after it in its run
  // move back to fill the hole (backward-shift deletion), so lookups need no
  // tombstones.
  bool Erase(const Key& key) {
    if (slots_.empty()) return false;
    size_t hole = SlotOf(key);
    if (!slots_[hole].occupied) return false;
    const size_t mask = slots_.size() - 1;
    slots_[hole] = Slot{};
    for (size_t next = (hole + 1) & mask; slots_[next].occupied; next = (next + 1) & mask) {
      if (HomeStaysInRun(hole, next, Hash{}(slots_[next].key) & mask)) continue;
      slots_[hole] = slots_[next];
      slots_[next] = Slot{};
      hole = next;
    }
    --size_;
    return true;
  }

  // Asks the CPU to bring `key`'s home slot into cache (a hint), for a
  // caller that will look it up a few keys later.
  void Prefetch(const Key& key) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[Hash{}(key) & (slots_.size() - 1)]);
  }

 private:
  struct Slot {
    Key key{};
    Value value{};
    bool occupied = false;
  };

  // The power of two that holds `count` entries at most half full (16 at
  // least).
  static size_t SlotsFor(size_t count) {
    size_t slots = 16;
    while (slots < 2 * count) slots *= 2;
    return slots;
  }

  // The slot holding `key`, or the empty slot where it would go.
  size_t SlotOf(const Key& key) const {
    const size_t mask = slots_.size() - 1;
    for (size_t slot = Hash{}(key)&mask;; slot = (slot + 1) & mask) {
      if (!slots_[slot].occupied || slots_[slot].key == key) return slot;
    }
  }

  // Places every entry in a table of `count` slots, built before it
  // replaces the old one.
  void Rehash(size_t count) {
    std::vector<Slot> grown(count);
    const size_t mask = count - 1;
    for (const Slot& entry : slots_) {
      if (!entry.occupied) continue;
      size_t slot = Hash{}(entry.key) & mask;
      while (grown[slot].occupied) slot = (slot + 1) & mask;
      grown[slot] = entry;
    }
    slots_.swap(grown);
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
};

}  // namespace canopy::aggregator::internal

#endif  // CANOPY_AGGREGATOR_INTERNAL_FLAT_ID_MAP_H_
