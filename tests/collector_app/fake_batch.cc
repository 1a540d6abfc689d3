#include "tests/collector_app/fake_batch.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

namespace canopy::collector::testing {
namespace {

idpf::BitString RandomBits(size_t length, std::mt19937_64& random) {
  idpf::BitString string;
  for (size_t i = 0; i < length; ++i) string = string.Extended((random() & 1) != 0);
  return string;
}

idpf::BitString Concatenate(const idpf::BitString& head, const idpf::BitString& tail) {
  idpf::BitString string = head;
  for (size_t i = 0; i < tail.size(); ++i) string = string.Extended(tail.Bit(i));
  return string;
}

}  // namespace

void FakeBatch::Add(const idpf::BitString& string, uint64_t count) {
  EXPECT_EQ(string.size(), bits_);
  if (count == 0) return;
  strings_[string] += count;
  report_count_ += count;
}

void FakeBatch::AddText(const std::string& text, uint64_t count) {
  std::vector<uint8_t> bytes(text.begin(), text.end());
  EXPECT_LE(bytes.size() * 8, bits_);
  bytes.resize(bits_ / 8, 0);
  Add(idpf::BitString::FromAllBytes(bytes), count);
}

std::map<idpf::BitString, uint64_t> FakeBatch::PrefixCounts(size_t length) const {
  std::map<idpf::BitString, uint64_t> counts;
  for (const auto& [string, count] : strings_) counts[string.Prefix(length)] += count;
  return counts;
}

RoundRunner FakeBatch::Runner() {
  return [this](size_t level, std::span<const idpf::BitString> candidates) -> Result<RoundResult> {
    const size_t length = level + 1;
    bool valid = !candidates.empty() && length <= bits_;
    for (size_t i = 0; valid && i < candidates.size(); ++i) {
      valid = candidates[i].size() == length && (i == 0 || candidates[i - 1] < candidates[i]);
    }
    if (valid && !levels_asked_.empty()) {
      valid = levels_asked_.back() < level;
      for (const idpf::BitString& candidate : candidates) {
        const idpf::BitString parent = candidate.Prefix(levels_asked_.back() + 1);
        valid = valid && std::binary_search(previous_candidates_.begin(),
                                            previous_candidates_.end(), parent);
      }
    }
    EXPECT_TRUE(valid) << "invalid candidates at level " << level;
    if (!valid) return MakeError(ErrorCode::kInvalidArgument, "invalid candidates");
    levels_asked_.push_back(level);
    previous_candidates_.assign(candidates.begin(), candidates.end());
    most_candidates_ = std::max(most_candidates_, candidates.size());
    const std::map<idpf::BitString, uint64_t> counts = PrefixCounts(length);
    RoundResult result;
    result.report_count = report_count_;
    for (const idpf::BitString& candidate : candidates) {
      auto it = counts.find(candidate);
      result.counts.push_back(it == counts.end() ? 0 : it->second);
    }
    return result;
  };
}

std::vector<idpf::BitString> RandomStrings(size_t bits, size_t distinct, std::mt19937_64& random) {
  std::vector<idpf::BitString> stems;
  for (int i = 0; i < 4; ++i) stems.push_back(RandomBits(random() % (bits + 1), random));
  std::vector<idpf::BitString> strings;
  while (strings.size() < distinct) {
    // Mostly strings under a stem; some fresh ones, so that long stems (few
    // strings under them) cannot stall the loop.
    const idpf::BitString& stem = stems[random() % stems.size()];
    idpf::BitString string = random() % 4 == 0
                                 ? RandomBits(bits, random)
                                 : Concatenate(stem, RandomBits(bits - stem.size(), random));
    if (std::find(strings.begin(), strings.end(), string) == strings.end()) {
      strings.push_back(std::move(string));
    }
    if (bits < 16 && strings.size() >= (size_t{1} << bits)) break;
  }
  return strings;
}

void AddZipf(FakeBatch& batch, const std::vector<idpf::BitString>& strings, uint64_t top,
             double exponent) {
  for (size_t i = 0; i < strings.size(); ++i) {
    const double count = static_cast<double>(top) / std::pow(static_cast<double>(i + 1), exponent);
    batch.Add(strings[i], std::max<uint64_t>(1, static_cast<uint64_t>(count)));
  }
}

void AddUniform(FakeBatch& batch, const std::vector<idpf::BitString>& strings, uint64_t most,
                std::mt19937_64& random) {
  for (const idpf::BitString& string : strings) batch.Add(string, 1 + random() % most);
}

std::vector<HeavyHitter> ExpectedHeavyHitters(const FakeBatch& batch,
                                              const WalkSettings& settings) {
  std::vector<HeavyHitter> expected;
  for (const auto& [string, count] : batch.strings()) {
    Threshold threshold = settings.default_threshold;
    size_t longest = 0;
    for (const PrefixThresholdRule& rule : settings.prefix_thresholds) {
      if (rule.prefix.size() > longest && string.StartsWith(rule.prefix)) {
        threshold = rule.threshold;
        longest = rule.prefix.size();
      }
    }
    if (count >= threshold.Resolve(batch.report_count())) expected.push_back({string, count});
  }
  std::sort(expected.begin(), expected.end(), [](const HeavyHitter& a, const HeavyHitter& b) {
    return a.count != b.count ? a.count > b.count : a.string < b.string;
  });
  return expected;
}

}  // namespace canopy::collector::testing
