// A batch of client strings counted in plain C++, standing in for the
// aggregators in walk tests: its round runner answers each round with the
// true counts of the candidates, and checks that the walk asks as Poplar1
// and the multi-level collection extension require.
#ifndef CANOPY_TESTS_COLLECTOR_APP_FAKE_BATCH_H_
#define CANOPY_TESTS_COLLECTOR_APP_FAKE_BATCH_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "collector_app/heavy_hitters_walk.h"
#include "idpf/bit_string.h"

namespace canopy::collector::testing {

class FakeBatch {
 public:
  explicit FakeBatch(size_t bits) : bits_(bits) {}

  // Adds `count` reports of `string` (bits() bits long).
  void Add(const idpf::BitString& string, uint64_t count);
  // Adds `count` reports of `text`, zero-padded to bits() / 8 bytes as a
  // client pads it.
  void AddText(const std::string& text, uint64_t count);

  size_t bits() const { return bits_; }
  uint64_t report_count() const { return report_count_; }
  const std::map<idpf::BitString, uint64_t>& strings() const { return strings_; }

  // The true count of every string of `length` bits that some report starts with.
  std::map<idpf::BitString, uint64_t> PrefixCounts(size_t length) const;

  // A runner that answers with the true counts and records what it was
  // asked. It fails the test (and returns an error) when the candidates are
  // not sorted, unique, level + 1 bits long, or do not extend the previous
  // round's candidates at a deeper level.
  RoundRunner Runner();

  // The levels the runner was asked for, in order, and the largest number of
  // candidates of one round.
  const std::vector<size_t>& levels_asked() const { return levels_asked_; }
  size_t most_candidates() const { return most_candidates_; }

 private:
  size_t bits_;
  uint64_t report_count_ = 0;
  std::map<idpf::BitString, uint64_t> strings_;
  std::vector<size_t> levels_asked_;
  std::vector<idpf::BitString> previous_candidates_;
  size_t most_candidates_ = 0;
};

// Workloads: `distinct` random strings of `bits` bits sharing a few random
// prefixes, so that the tree branches at several depths.
std::vector<idpf::BitString> RandomStrings(size_t bits, size_t distinct, std::mt19937_64& random);

// Zipf-like counts: the i-th string (from 1) gets about top / i^exponent.
void AddZipf(FakeBatch& batch, const std::vector<idpf::BitString>& strings, uint64_t top,
             double exponent);

// Counts drawn uniformly from [1, most].
void AddUniform(FakeBatch& batch, const std::vector<idpf::BitString>& strings, uint64_t most,
                std::mt19937_64& random);

// The heavy hitters the walk must find, computed directly: every string whose
// count meets its own threshold (the longest matching prefix_thresholds
// entry, else the default), sorted by count (highest first), then string.
std::vector<HeavyHitter> ExpectedHeavyHitters(const FakeBatch& batch, const WalkSettings& settings);

}  // namespace canopy::collector::testing

#endif  // CANOPY_TESTS_COLLECTOR_APP_FAKE_BATCH_H_
