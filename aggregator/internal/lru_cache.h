// A bounded, thread-safe map of owned values that evicts the least recently
// stored entry first: the shape of the aggregator's in-memory caches
// (ReportCache, StepStateCache). Values are taken out, not borrowed, so one
// value is never used by two threads; a caller puts it back when done.
#ifndef CANOPY_AGGREGATOR_INTERNAL_LRU_CACHE_H_
#define CANOPY_AGGREGATOR_INTERNAL_LRU_CACHE_H_

#include <cstddef>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

namespace canopy::aggregator::internal {

template <typename Key, typename Value>
class LruCache {
 public:
  // Keeps at most `capacity` entries (none when 0).
  explicit LruCache(size_t capacity) : capacity_(capacity) {}

  // Stores `value` under `key`, replacing any value there, as the most
  // recent entry; evicts the oldest beyond the capacity. A null value is
  // not stored.
  void Put(const Key& key, std::unique_ptr<Value> value) {
    if (capacity_ == 0 || value == nullptr) return;
    std::vector<std::unique_ptr<Value>> dropped;  // Freed outside the lock.
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto found = entries_.find(key); found != entries_.end()) {
      dropped.push_back(Remove(found));
    }
    recency_.push_front(key);
    entries_.emplace(key, Entry{std::move(value), recency_.begin()});
    while (entries_.size() > capacity_) dropped.push_back(Remove(entries_.find(recency_.back())));
  }

  // Takes the value out (null when absent).
  std::unique_ptr<Value> Take(const Key& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = entries_.find(key);
    return found == entries_.end() ? nullptr : Remove(found);
  }

  // Drops every entry whose key satisfies `predicate`.
  template <typename Predicate>
  void EraseIf(Predicate predicate) {
    std::vector<std::unique_ptr<Value>> dropped;  // Freed outside the lock.
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      auto next = std::next(it);
      if (predicate(it->first)) dropped.push_back(Remove(it));
      it = next;
    }
  }

  size_t size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return entries_.size();
  }

 private:
  struct Entry {
    std::unique_ptr<Value> value;
    typename std::list<Key>::iterator position;
  };

  // Removes an entry (under the lock) and returns its value.
  std::unique_ptr<Value> Remove(typename std::map<Key, Entry>::iterator entry) {
    std::unique_ptr<Value> value = std::move(entry->second.value);
    recency_.erase(entry->second.position);
    entries_.erase(entry);
    return value;
  }

  const size_t capacity_;
  mutable std::mutex mutex_;
  std::map<Key, Entry> entries_;
  std::list<Key> recency_;  // Most recently stored first.
};

}  // namespace canopy::aggregator::internal

#endif  // CANOPY_AGGREGATOR_INTERNAL_LRU_CACHE_H_
