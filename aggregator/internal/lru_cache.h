// A bounded, thread-safe map of owned values that evicts about the least
// recently stored entry first (see Put): the shape of the aggregator's in-memory caches
// (ReportCache, StepStateCache). Values are taken out, not borrowed, so one
// value is never used by two threads; a caller puts it back when done.
//
// A hash map, not an ordered one: a walk takes every report out and puts it
// back at every level, and at 100,000 reports the ordered map's lookups (17
// levels of nodes, each a cache miss and a key comparison) were 4 % of both
// aggregators' time. Keys are pairs of byte arrays (report, task and job IDs),
// hashed with a per-process random key, so that clients choosing report IDs
// cannot aim them at one bucket.
#ifndef CANOPY_AGGREGATOR_INTERNAL_LRU_CACHE_H_
#define CANOPY_AGGREGATOR_INTERNAL_LRU_CACHE_H_

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <mutex>
#include <unordered_map>
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

template <typename Key, typename Value, typename Hash = KeyedIdHash>
class LruCache {
 public:
  // Keeps at most `capacity` entries (none when 0).
  explicit LruCache(size_t capacity) : capacity_(capacity) {}

  // Stores `value` under `key`, replacing any value there, as the most
  // recent entry; evicts the least recent beyond the capacity. A null value
  // is not stored.
  //
  // Recency is kept the way CLOCK keeps it ("second chance"): storing under
  // a key already present marks its entry used instead of moving it to the
  // front of the order, and eviction moves a marked entry to the front (and
  // clears the mark) instead of dropping it. That approximates LRU's order
  // (an entry stored again gets one more round before it can go), and a
  // walk that puts every report back at every level no longer touches three
  // list nodes (the entry's and its
  // neighbours', each a cache miss among a million reports) per report.
  void Put(const Key& key, std::unique_ptr<Value> value) {
    if (capacity_ == 0 || value == nullptr) return;
    std::vector<std::unique_ptr<Value>> dropped;  // Freed outside the lock.
    std::lock_guard<std::mutex> lock(mutex_);
    auto [entry, inserted] = entries_.try_emplace(key);
    if (inserted) {
      recency_.push_front(key);
      entry->second.position = recency_.begin();
    } else {
      entry->second.used = true;
      if (entry->second.value != nullptr) dropped.push_back(Release(entry->second));
    }
    entry->second.value = std::move(value);
    ++stored_;
    // Entries whose value is taken out count too: they are the ones a walk
    // will put back.
    while (entries_.size() > capacity_) {
      auto oldest = entries_.find(recency_.back());
      if (oldest->second.used) {
        oldest->second.used = false;
        recency_.splice(recency_.begin(), recency_, oldest->second.position);
      } else {
        dropped.push_back(Forget(oldest));
      }
    }
  }

  // Takes the value out (null when absent). The entry keeps its place until
  // the value is put back (or the entry is evicted), so that a walk, which
  // takes every report out and puts it back at every level, moves no entry
  // and allocates nothing.
  std::unique_ptr<Value> Take(const Key& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = entries_.find(key);
    if (found == entries_.end() || found->second.value == nullptr) return nullptr;
    return Release(found->second);
  }

  // Takes the value out (null when absent) and forgets the entry: for a
  // value that is not coming back.
  std::unique_ptr<Value> Remove(const Key& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = entries_.find(key);
    return found == entries_.end() ? nullptr : Forget(found);
  }

  // Drops every entry whose key satisfies `predicate`.
  template <typename Predicate>
  void EraseIf(Predicate predicate) {
    std::vector<std::unique_ptr<Value>> dropped;  // Freed outside the lock.
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      auto next = std::next(it);
      if (predicate(it->first)) dropped.push_back(Forget(it));
      it = next;
    }
  }

  // How many values are stored (not taken out).
  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stored_;
  }

 private:
  struct Entry {
    std::unique_ptr<Value> value;
    typename std::list<Key>::iterator position;
    bool used = false;  // Stored again since it last reached the front.
  };

  using Entries = std::unordered_map<Key, Entry, Hash>;

  // Moves a stored value out of its entry (under the lock).
  std::unique_ptr<Value> Release(Entry& entry) {
    --stored_;
    return std::move(entry.value);
  }

  // Removes an entry (under the lock) and returns its value, null when it
  // was taken out.
  std::unique_ptr<Value> Forget(typename Entries::iterator entry) {
    std::unique_ptr<Value> value =
        entry->second.value != nullptr ? Release(entry->second) : nullptr;
    recency_.erase(entry->second.position);
    entries_.erase(entry);
    return value;
  }

  const size_t capacity_;
  mutable std::mutex mutex_;
  Entries entries_;
  size_t stored_ = 0;       // Entries with a value.
  std::list<Key> recency_;  // Most recently stored first, but for `used` marks.
};

}  // namespace canopy::aggregator::internal

#endif  // CANOPY_AGGREGATOR_INTERNAL_LRU_CACHE_H_
