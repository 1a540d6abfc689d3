#include "tests/end_to_end/end_to_end_fixture.h"

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <map>

#ifndef CANOPY_AGGREGATOR_BINARY
#error "CANOPY_AGGREGATOR_BINARY, CANOPY_CLIENT_BINARY and CANOPY_COLLECTOR_BINARY are required"
#endif

namespace canopy::end_to_end {
namespace {

// The collector's order of heavy hitters.
bool RanksBefore(const StringCount& a, const StringCount& b) {
  if (a.count != b.count) return a.count > b.count;
  return a.string < b.string;
}

// The first `bits` bits of `padded`, the bits after them cleared: equal
// prefixes give equal keys, and keys of one length sort as the bit strings.
std::string PrefixKey(const std::string& padded, uint32_t bits) {
  std::string key = padded.substr(0, (bits + 7) / 8);
  if (bits % 8 != 0) {
    key.back() = static_cast<char>(static_cast<uint8_t>(key.back()) & (0xff00 >> (bits % 8)));
  }
  return key;
}

std::string StripPadding(std::string string) {
  while (!string.empty() && string.back() == '\0') string.pop_back();
  return string;
}

}  // namespace

canopy::testing::Programs BuiltPrograms() {
  return {CANOPY_AGGREGATOR_BINARY, CANOPY_CLIENT_BINARY, CANOPY_COLLECTOR_BINARY};
}

uint64_t NowSeconds() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

void EndToEndTest::SetUp() {
  canopy::testing::LocalDeploymentOptions options;
  options.programs = BuiltPrograms();
  options.folder_prefix = "canopy-e2e";
  // CANOPY_E2E_KEEP=1 keeps each test's files (configurations, databases,
  // logs) for a look afterwards.
  const char* keep = std::getenv("CANOPY_E2E_KEEP");
  options.keep_folder = keep != nullptr && std::string(keep) == "1";
  auto created = canopy::testing::LocalDeployment::Create(options);
  ASSERT_TRUE(created) << created.error().ToString();
  deployment_ = std::move(*created);
}

void EndToEndTest::TearDown() {
  if (deployment_ != nullptr && HasFailure()) {
    std::cerr << "Files of the failed test: " << deployment_->folder() << "\n"
              << deployment_->Logs();
  }
  deployment_.reset();
}

std::vector<StringCount> ReadCounts(const std::string& path) {
  auto counts = canopy::testing::ReadCountsCsv(path);
  EXPECT_TRUE(counts) << counts.error().ToString();
  return counts ? std::move(*counts) : std::vector<StringCount>();
}

uint64_t TotalCount(const std::vector<StringCount>& counts) {
  uint64_t total = 0;
  for (const StringCount& row : counts) total += row.count;
  return total;
}

uint64_t ResolveFraction(double fraction, uint64_t reports) {
  long double product = static_cast<long double>(fraction) * reports;
  const long double nearest = std::round(product);
  if (std::fabs(product - nearest) <= 1e-9L * std::max(1.0L, product)) product = nearest;
  return std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(product)));
}

std::vector<StringCount> ExpectedHeavyHitters(const std::vector<StringCount>& truth,
                                              uint64_t default_threshold,
                                              const std::vector<SubtreeThreshold>& subtrees) {
  std::vector<StringCount> expected;
  for (const StringCount& row : truth) {
    uint64_t threshold = default_threshold;
    size_t longest = 0;
    for (const SubtreeThreshold& subtree : subtrees) {
      if (row.string.starts_with(subtree.prefix) && subtree.prefix.size() >= longest) {
        longest = subtree.prefix.size();
        threshold = subtree.threshold;
      }
    }
    if (row.count >= threshold) expected.push_back(row);
  }
  std::sort(expected.begin(), expected.end(), RanksBefore);
  return expected;
}

std::vector<StringCount> SimulateCappedWalk(const std::vector<StringCount>& truth,
                                            const CappedWalk& walk, size_t* prefixes_cut) {
  const size_t bytes = walk.bits / 8;
  std::vector<std::pair<std::string, uint64_t>> padded;
  for (const StringCount& row : truth) {
    std::string string = row.string;
    string.resize(bytes, '\0');
    padded.emplace_back(std::move(string), row.count);
  }
  if (prefixes_cut != nullptr) *prefixes_cut = 0;
  std::vector<std::string> survivors = {""};  // Keys of the previous round's survivors.
  uint32_t previous_bits = 0;
  uint32_t bits = std::min(walk.first_round_bits, walk.bits);
  std::map<std::string, uint64_t> counts;
  for (;;) {
    // The counts of this round's prefixes that extend a survivor; prefixes
    // nobody holds never meet a threshold of at least 1.
    counts.clear();
    for (const auto& [string, count] : padded) {
      const std::string parent = PrefixKey(string, previous_bits);
      if (std::binary_search(survivors.begin(), survivors.end(), parent)) {
        counts[PrefixKey(string, bits)] += count;
      }
    }
    std::vector<std::pair<std::string, uint64_t>> kept;
    for (const auto& [key, count] : counts) {
      if (count >= walk.threshold) kept.emplace_back(key, count);
    }
    if (kept.empty() || bits == walk.bits) {
      std::vector<StringCount> found;
      for (const auto& [key, count] : kept) found.push_back({StripPadding(key), count});
      std::sort(found.begin(), found.end(), RanksBefore);
      return found;
    }
    const uint32_t next_bits = std::min(bits + walk.bits_per_round, walk.bits);
    const uint64_t per_survivor = uint64_t{1} << (next_bits - bits);
    if (walk.cap != 0 && kept.size() * per_survivor > walk.cap) {
      std::stable_sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) {
        return a.second != b.second ? a.second > b.second : a.first < b.first;
      });
      const size_t room = walk.cap / per_survivor;
      if (prefixes_cut != nullptr) *prefixes_cut += kept.size() - room;
      kept.resize(room);
    }
    survivors.clear();
    for (const auto& [key, count] : kept) survivors.push_back(key);
    std::sort(survivors.begin(), survivors.end());
    previous_bits = bits;
    bits = next_bits;
  }
}

std::string WriteWalkConfig(canopy::testing::LocalDeployment& deployment,
                            const canopy::testing::LocalTask& task, uint64_t time_seconds,
                            const config::HeavyHitters& heavy_hitters, const std::string& name) {
  config::CollectorConfig settings;
  canopy::testing::LocalDeployment::SetBatch(task, time_seconds, settings);
  *settings.mutable_heavy_hitters() = heavy_hitters;
  auto path = deployment.WriteCollectorConfig(deployment.CollectorConfigFor(task, settings), name);
  EXPECT_TRUE(path) << path.error().ToString();
  return path ? *path : std::string();
}

std::vector<std::string> WalkArguments(const std::string& config_path, const std::string& format,
                                       const std::string& output_path, bool tree) {
  std::vector<std::string> arguments = {"heavy-hitters", "--config", config_path, "--format",
                                        format,          "--output", output_path};
  if (tree) arguments.push_back("--tree");
  return arguments;
}

std::string RunWalk(canopy::testing::LocalDeployment& deployment, const std::string& config_path,
                    const std::string& format, const std::string& name, bool tree) {
  const std::string output = deployment.Path(name + "." + format);
  auto run = deployment.RunCollector(WalkArguments(config_path, format, output, tree), name);
  EXPECT_TRUE(run) << run.error().ToString();
  if (run) {
    EXPECT_TRUE(run->succeeded()) << "canopy-collector " << run->status_text() << ":\n"
                                  << run->Stderr();
  }
  return output;
}

JsonWalkResult ReadWalkJson(const std::string& path) {
  JsonWalkResult result;
  auto text = canopy::testing::ReadTextFile(path);
  EXPECT_TRUE(text) << text.error().ToString();
  if (!text) return result;
  boost::system::error_code error;
  boost::json::value document = boost::json::parse(*text, error);
  EXPECT_FALSE(error) << path << ": " << error.message();
  if (error || !document.is_object()) return result;
  const boost::json::object& object = document.as_object();
  auto number = [&](const boost::json::object& in, const char* key) -> uint64_t {
    const boost::json::value* value = in.if_contains(key);
    EXPECT_TRUE(value != nullptr && value->is_number()) << path << ": no number \"" << key << "\"";
    return value != nullptr && value->is_number() ? value->to_number<uint64_t>() : 0;
  };
  result.report_count = number(object, "report_count");
  result.rounds = number(object, "rounds");
  result.resumed_rounds = number(object, "resumed_rounds");
  if (const boost::json::value* stopped = object.if_contains("stopped_early")) {
    result.stopped_early = stopped->is_bool() && stopped->as_bool();
  }
  if (const boost::json::value* hitters = object.if_contains("heavy_hitters")) {
    for (const boost::json::value& entry : hitters->as_array()) {
      const boost::json::object& hitter = entry.as_object();
      const std::string hex(hitter.at("hex").as_string());
      std::string raw;
      for (size_t i = 0; i + 1 < hex.size(); i += 2) {
        raw += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
      }
      result.heavy_hitters.push_back({StripPadding(raw), number(hitter, "count")});
    }
  }
  if (const boost::json::value* tree = object.if_contains("tree")) {
    for (const boost::json::value& round : tree->as_array()) {
      result.max_candidates_in_a_round =
          std::max(result.max_candidates_in_a_round, number(round.as_object(), "candidate_count"));
      for (const boost::json::value& candidate : round.as_object().at("candidates").as_array()) {
        if (candidate.as_object().at("status").as_string() == "cut by cap") ++result.cut_by_cap;
      }
    }
  }
  return result;
}

std::string Describe(const std::vector<StringCount>& counts) {
  std::string text;
  for (const StringCount& row : counts) {
    text += "  " + std::to_string(row.count) + "  " + row.string + "\n";
  }
  return text.empty() ? "  (none)\n" : text;
}

}  // namespace canopy::end_to_end
