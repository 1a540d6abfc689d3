// The aggregator's bounded cache (internal::LruCache): random sequences of
// operations give exactly what a plain model of its rules gives (a list in
// storing order with CLOCK's marks), with a hash that puts many keys in one
// slot so that probing and the backward shift of deletions are exercised,
// and with the real keyed hash.
#include "aggregator/internal/lru_cache.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <utility>
#include <vector>

namespace canopy::aggregator::internal {
namespace {

using Key = std::pair<std::array<uint8_t, 16>, std::array<uint8_t, 32>>;

Key KeyOf(uint32_t n) {
  Key key{};
  key.first[0] = static_cast<uint8_t>(n);
  key.first[1] = static_cast<uint8_t>(n >> 8);
  key.second[0] = static_cast<uint8_t>(n % 3);  // A few "tasks".
  return key;
}

// Eight distinct hashes for every key: long runs of occupied slots.
struct CrowdedHash {
  size_t operator()(const Key& key) const { return (key.first[0] * 0x9e3779b97f4a7c15u) & 7u; }
};

// The same at the end of any table: every run wraps around to slot 0.
struct WrappingHash {
  size_t operator()(const Key& key) const { return ~CrowdedHash{}(key); }
};

// The rules, kept the plain way: entries newest first; a stored-again entry
// is marked; a new entry at the capacity first evicts the oldest unmarked
// entry, moving marked ones to the front (unmarked) as it passes them.
class Model {
 public:
  explicit Model(size_t capacity) : capacity_(capacity) {}

  void Put(const Key& key, int value) {
    if (capacity_ == 0) return;
    auto found = Find(key);
    if (found != entries_.end()) {
      found->value = value;
      found->used = true;
      return;
    }
    while (entries_.size() >= capacity_) {
      Entry oldest = entries_.back();
      entries_.pop_back();
      if (oldest.used) {
        oldest.used = false;
        entries_.push_front(oldest);
      }
    }
    entries_.push_front({key, value, false});
  }
  std::optional<int> Take(const Key& key) {
    auto found = Find(key);
    if (found == entries_.end() || !found->value) return std::nullopt;
    return std::exchange(found->value, std::nullopt);
  }
  std::optional<int> Remove(const Key& key) {
    auto found = Find(key);
    if (found == entries_.end()) return std::nullopt;
    std::optional<int> value = found->value;
    entries_.erase(found);
    return value;
  }
  void EraseTask(uint8_t task) {
    entries_.remove_if([task](const Entry& entry) { return entry.key.second[0] == task; });
  }
  size_t size() const {
    return static_cast<size_t>(std::count_if(entries_.begin(), entries_.end(),
                                             [](const Entry& entry) { return entry.value; }));
  }

 private:
  struct Entry {
    Key key;
    std::optional<int> value;
    bool used;
  };
  std::list<Entry>::iterator Find(const Key& key) {
    return std::find_if(entries_.begin(), entries_.end(),
                        [&](const Entry& entry) { return entry.key == key; });
  }
  size_t capacity_;
  std::list<Entry> entries_;
};

int ValueOf(const std::unique_ptr<int>& value) { return value ? *value : -1; }
int ValueOf(const std::optional<int>& value) { return value ? *value : -1; }

template <typename Hash>
void RunRandomOperations(uint64_t seed, size_t capacity, uint32_t keys, int operations) {
  std::mt19937_64 random(seed);
  LruCache<Key, int, Hash> cache(capacity);
  Model model(capacity);
  for (int step = 0; step < operations; ++step) {
    const Key key = KeyOf(static_cast<uint32_t>(random() % keys));
    const int value = static_cast<int>(random() % 1000);
    switch (random() % 10) {
      case 0:
      case 1:
      case 2:
        cache.Put(key, std::make_unique<int>(value));
        model.Put(key, value);
        break;
      case 3:
      case 4:
      case 5:
        ASSERT_EQ(ValueOf(cache.Take(key)), ValueOf(model.Take(key))) << "step " << step;
        break;
      case 6:
        ASSERT_EQ(ValueOf(cache.Remove(key)), ValueOf(model.Remove(key))) << "step " << step;
        break;
      case 7: {
        const uint8_t task = static_cast<uint8_t>(random() % 3);
        cache.EraseIf([task](const Key& entry) { return entry.second[0] == task; });
        model.EraseTask(task);
        break;
      }
      case 8: {
        // A job's worth at once, a key possibly repeated.
        std::vector<Key> batch;
        for (int k = 0; k < 5; ++k) batch.push_back(KeyOf(static_cast<uint32_t>(random() % keys)));
        std::vector<std::unique_ptr<int>> out(batch.size());
        cache.TakeMany(batch, out);
        for (size_t k = 0; k < batch.size(); ++k) {
          ASSERT_EQ(ValueOf(out[k]), ValueOf(model.Take(batch[k]))) << "step " << step;
        }
        break;
      }
      case 9: {
        std::vector<Key> batch;
        std::vector<std::unique_ptr<int>> values;
        std::vector<bool> null;  // Null values are not stored.
        for (int k = 0; k < 5; ++k) {
          batch.push_back(KeyOf(static_cast<uint32_t>(random() % keys)));
          null.push_back(random() % 4 == 0);
          values.push_back(null.back() ? nullptr : std::make_unique<int>(value + k));
        }
        cache.PutMany(batch, values);
        for (size_t k = 0; k < batch.size(); ++k) {
          if (!null[k]) model.Put(batch[k], value + static_cast<int>(k));
        }
        break;
      }
    }
    ASSERT_EQ(cache.size(), model.size()) << "step " << step;
  }
}

TEST(LruCache, CrowdedSlotsBehaveAsTheModel) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    RunRandomOperations<CrowdedHash>(seed, 1 + seed % 12, 40, 3000);
    RunRandomOperations<WrappingHash>(seed, 1 + seed % 12, 40, 3000);
  }
}

TEST(LruCache, KeyedHashBehavesAsTheModel) {
  for (uint64_t seed = 1; seed <= 5; ++seed) {
    RunRandomOperations<KeyedIdHash>(seed, 50 + 40 * seed, 600, 20000);
  }
}

TEST(LruCache, ZeroCapacityKeepsNothing) {
  LruCache<Key, int> cache(0);
  cache.Put(KeyOf(1), std::make_unique<int>(1));
  EXPECT_EQ(cache.Take(KeyOf(1)), nullptr);
  EXPECT_EQ(cache.size(), 0u);
}

}  // namespace
}  // namespace canopy::aggregator::internal
