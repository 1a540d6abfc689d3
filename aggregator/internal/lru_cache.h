// A bounded, thread-safe map of owned values that evicts about the least
// recently stored entry first (see Put): the shape of the aggregator's in-memory caches
// (ReportCache, StepStateCache). Values are taken out, not borrowed, so one
// value is never used by two threads; a caller puts it back when done.
//
// A hash table, not an ordered map: a walk takes every report out and puts
// it back at every level, and at 100,000 reports the ordered map's lookups
// (17 levels of nodes, each a cache miss and a key comparison) were 4 % of
// both aggregators' time; an open-addressed one, not std::unordered_map (see
// Slot). Keys are pairs of byte arrays (report, task and job IDs),
// hashed with a per-process random key, so that clients choosing report IDs
// cannot aim them at one bucket.
#ifndef CANOPY_AGGREGATOR_INTERNAL_LRU_CACHE_H_
#define CANOPY_AGGREGATOR_INTERNAL_LRU_CACHE_H_

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <utility>
#include <vector>

namespace canopy::aggregator::internal {

// The hash of a byte array, or of a pair of them, under this process's
// random key.
struct KeyedIdHash {
  template <size_t N>
  size_t operator()(const std::array<uint8_t, N>& key) const {
    return static_cast<size_t>(Absorb(Secret(), key.data(), N));
  }
  template <size_t N, size_t M>
  size_t operator()(const std::pair<std::array<uint8_t, N>, std::array<uint8_t, M>>& key) const {
    uint64_t hash = Secret();
    hash = Absorb(hash, key.first.data(), N);
    hash = Absorb(hash, key.second.data(), M);
    return static_cast<size_t>(hash);
  }

 private:
  // Drawn once per process from the system's randomness.
  static uint64_t Secret();
  // Mixes `size` bytes into `hash`, eight at a time (a tail is zero-padded),
  // through the finaliser of SplitMix64.
  static uint64_t Absorb(uint64_t hash, const uint8_t* bytes, size_t size) {
    for (size_t at = 0; at < size; at += 8) {
      uint64_t word = 0;
      std::memcpy(&word, bytes + at, std::min<size_t>(8, size - at));
      hash = Mix(hash ^ word);
    }
    return hash;
  }
  static uint64_t Mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9;
    x = (x ^ (x >> 27)) * 0x94d049bb133111eb;
    return x ^ (x >> 31);
  }
};

// For backward-shift deletion in a linear-probing table: whether the entry
// in slot `next`, whose home slot is `home`, must stay where it is after slot
// `hole` (earlier in its run) was emptied, i.e. whether `home` lies
// cyclically in (hole, next]; otherwise it moves back into the hole.
inline bool HomeStaysInRun(size_t hole, size_t next, size_t home) {
  return hole <= next ? (home > hole && home <= next) : (home > hole || home <= next);
}

template <typename Key, typename Value, typename Hash = KeyedIdHash>
class LruCache {
 public:
  // Keeps at most `capacity` entries (none when 0).
  explicit LruCache(size_t capacity) : capacity_(capacity) {}
  ~LruCache() {
    for (Node* node = newest_; node != nullptr;) {
      Node* older = node->older;
      delete node;
      node = older;
    }
  }
  LruCache(const LruCache&) = delete;
  LruCache& operator=(const LruCache&) = delete;

  // Stores `value` under `key`, replacing any value there, as the most
  // recent entry; a new entry at the capacity first evicts the least recent.
  // A null value is not stored.
  //
  // Recency is kept the way CLOCK keeps it ("second chance"): storing under
  // a key already present marks its entry used instead of moving it to the
  // front of the order, and eviction moves a marked entry to the front (and
  // clears the mark) instead of dropping it. That approximates LRU's order
  // (an entry stored again gets one more round before it can go), and a
  // walk that puts every report back at every level touches only the
  // report's own entry.
  void Put(const Key& key, std::unique_ptr<Value> value) {
    if (capacity_ == 0 || value == nullptr) return;
    std::vector<std::unique_ptr<Value>> dropped;  // Freed outside the lock.
    std::lock_guard<std::mutex> lock(mutex_);
    PutLocked(key, Hash{}(key), std::move(value), dropped);
  }

  // Put for many entries at once: values[i] under keys[i] (null values are
  // not stored; the values are moved from). One lock, and each entry's
  // memory is fetched a few entries ahead, so that a job's hundreds of
  // lookups wait for memory together instead of one after another.
  void PutMany(std::span<const Key> keys, std::span<std::unique_ptr<Value>> values) {
    if (capacity_ == 0) return;
    std::vector<std::unique_ptr<Value>> dropped;  // Freed outside the lock.
    const std::vector<uint64_t> hashes = HashesOf(keys);
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < keys.size(); ++i) {
      PrefetchAhead(hashes, i);
      if (values[i] != nullptr) PutLocked(keys[i], hashes[i], std::move(values[i]), dropped);
    }
  }

  // Takes the value out (null when absent). The entry keeps its place until
  // the value is put back (or the entry is evicted), so that a walk, which
  // takes every report out and puts it back at every level, moves no entry
  // and allocates nothing.
  std::unique_ptr<Value> Take(const Key& key) {
    const uint64_t hash = Hash{}(key);
    std::lock_guard<std::mutex> lock(mutex_);
    return TakeLocked(key, hash);
  }

  // Take for many keys at once, as PutMany: out[i] for keys[i].
  void TakeMany(std::span<const Key> keys, std::span<std::unique_ptr<Value>> out) {
    const std::vector<uint64_t> hashes = HashesOf(keys);
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i = 0; i < keys.size(); ++i) {
      PrefetchAhead(hashes, i);
      out[i] = TakeLocked(keys[i], hashes[i]);
    }
  }

  // Takes the value out (null when absent) and forgets the entry: for a
  // value that is not coming back.
  std::unique_ptr<Value> Remove(const Key& key) {
    const uint64_t hash = Hash{}(key);
    std::lock_guard<std::mutex> lock(mutex_);
    if (slots_.empty()) return nullptr;
    const size_t slot = Find(key, hash);
    return slots_[slot].node == nullptr ? nullptr : Forget(slot);
  }

  // Drops every entry whose key satisfies `predicate`.
  template <typename Predicate>
  void EraseIf(Predicate predicate) {
    std::vector<std::unique_ptr<Value>> dropped;  // Freed outside the lock.
    std::lock_guard<std::mutex> lock(mutex_);
    for (Node* node = newest_; node != nullptr;) {
      Node* older = node->older;
      if (predicate(node->key)) dropped.push_back(Forget(Find(node->key, node->hash)));
      node = older;
    }
  }

  // How many values are stored (not taken out).
  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stored_;
  }

 private:
  // An entry, in a list from the most recently stored (newest_) to the
  // least (oldest_). The key comes first, so that a lookup's comparison and
  // the value are in the node's first cache line.
  struct Node {
    Key key;
    uint64_t hash = 0;
    std::unique_ptr<Value> value;
    Node* newer = nullptr;
    Node* older = nullptr;
    bool used = false;  // Stored again since it last reached the front.
  };

  // The table is open-addressed (linear probing, at most half full, a power
  // of two in size): a lookup reads its slot, usually the first it probes,
  // then the node. std::unordered_map read the bucket, the node before the
  // bucket's first and the node: at a million reports each a cache miss,
  // twice a report and level, 7 to 8 % of each aggregator's time.
  struct Slot {
    uint64_t hash = 0;
    Node* node = nullptr;  // Null: empty.
  };

  // How far ahead PrefetchAhead fetches a slot, and a node (half as far,
  // when its slot has had time to arrive).
  static constexpr size_t kSlotsAhead = 16;
  static constexpr size_t kNodesAhead = 8;

  static std::vector<uint64_t> HashesOf(std::span<const Key> keys) {
    std::vector<uint64_t> hashes(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) hashes[i] = Hash{}(keys[i]);
    return hashes;
  }

  // A hint (under the lock): the slot of entry i + kSlotsAhead and the node
  // its home slot holds for entry i + kNodesAhead.
  void PrefetchAhead(const std::vector<uint64_t>& hashes, size_t i) const {
    if (slots_.empty()) return;
    const size_t mask = slots_.size() - 1;
    if (i + kSlotsAhead < hashes.size())
      __builtin_prefetch(&slots_[hashes[i + kSlotsAhead] & mask]);
    if (i + kNodesAhead < hashes.size()) {
      const Node* node = slots_[hashes[i + kNodesAhead] & mask].node;
      if (node != nullptr) __builtin_prefetch(node);
    }
  }

  // The slot holding `key`, or the empty slot where it would go (under the
  // lock; the table must not be empty).
  size_t Find(const Key& key, uint64_t hash) const {
    const size_t mask = slots_.size() - 1;
    for (size_t slot = hash & mask;; slot = (slot + 1) & mask) {
      const Slot& at = slots_[slot];
      if (at.node == nullptr || (at.hash == hash && at.node->key == key)) return slot;
    }
  }

  std::unique_ptr<Value> TakeLocked(const Key& key, uint64_t hash) {
    if (slots_.empty()) return nullptr;
    Node* node = slots_[Find(key, hash)].node;
    if (node == nullptr || node->value == nullptr) return nullptr;
    --stored_;
    return std::move(node->value);
  }

  void PutLocked(const Key& key, uint64_t hash, std::unique_ptr<Value> value,
                 std::vector<std::unique_ptr<Value>>& dropped) {
    if (2 * (entries_ + 1) > slots_.size()) Grow();
    Node* node = slots_[Find(key, hash)].node;
    if (node != nullptr) {
      node->used = true;
      if (node->value != nullptr) {
        dropped.push_back(std::move(node->value));
        --stored_;
      }
    } else {
      // Room first, then the new entry at the front: evicting after
      // linking it could drop the new entry itself when every other one
      // is marked. Entries whose value is taken out count too: they are the
      // ones a walk will put back.
      while (entries_ >= capacity_) EvictOne(dropped);
      node = new Node{key, hash};
      slots_[Find(key, hash)] = {hash, node};  // Eviction may have moved slots.
      ++entries_;
      LinkNewest(node);
    }
    node->value = std::move(value);
    ++stored_;
  }

  // One step of CLOCK's hand at the back of the order: a marked entry goes
  // to the front, unmarked; an unmarked one is removed.
  void EvictOne(std::vector<std::unique_ptr<Value>>& dropped) {
    Node* oldest = oldest_;
    if (oldest->used) {
      oldest->used = false;
      Unlink(oldest);
      LinkNewest(oldest);
    } else {
      dropped.push_back(Forget(Find(oldest->key, oldest->hash)));
    }
  }

  // Doubles the table (16 slots at first) and places every entry again.
  // The new table is built before it replaces the old, so a failed
  // allocation leaves the cache as it was.
  void Grow() {
    std::vector<Slot> grown(std::max<size_t>(16, 2 * slots_.size()));
    const size_t mask = grown.size() - 1;
    for (const Slot& at : slots_) {
      if (at.node == nullptr) continue;
      size_t slot = at.hash & mask;
      while (grown[slot].node != nullptr) slot = (slot + 1) & mask;
      grown[slot] = at;
    }
    slots_.swap(grown);
  }

  // Removes the entry in `slot` (under the lock) and returns its value, null
  // when it was taken out. The entries after it in its run move back to
  // fill the hole (backward-shift deletion), so lookups need no tombstones.
  std::unique_ptr<Value> Forget(size_t slot) {
    Node* node = slots_[slot].node;
    std::unique_ptr<Value> value = std::move(node->value);
    if (value != nullptr) --stored_;
    Unlink(node);
    delete node;
    --entries_;
    const size_t mask = slots_.size() - 1;
    size_t hole = slot;
    slots_[hole] = Slot{};
    for (size_t next = (hole + 1) & mask; slots_[next].node != nullptr; next = (next + 1) & mask) {
      if (HomeStaysInRun(hole, next, slots_[next].hash & mask)) continue;
      slots_[hole] = slots_[next];
      slots_[next] = Slot{};
      hole = next;
    }
    return value;
  }

  void LinkNewest(Node* node) {
    node->newer = nullptr;
    node->older = newest_;
    if (newest_ != nullptr) newest_->newer = node;
    newest_ = node;
    if (oldest_ == nullptr) oldest_ = node;
  }

  void Unlink(Node* node) {
    (node->newer != nullptr ? node->newer->older : newest_) = node->older;
    (node->older != nullptr ? node->older->newer : oldest_) = node->newer;
    node->newer = node->older = nullptr;
  }

  const size_t capacity_;
  mutable std::mutex mutex_;
  std::vector<Slot> slots_;
  size_t entries_ = 0;  // Nodes, with or without a value.
  size_t stored_ = 0;   // Entries with a value.
  Node* newest_ = nullptr;
  Node* oldest_ = nullptr;
};

}  // namespace canopy::aggregator::internal

#endif  // CANOPY_AGGREGATOR_INTERNAL_LRU_CACHE_H_
