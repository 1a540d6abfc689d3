// What the end-to-end tests share: a fixture owning a LocalDeployment of the
// programs this build made (printing every process's output when a test
// fails), and the expected answers computed in plain C++ from the client's
// true counts.
#ifndef CANOPY_TESTS_END_TO_END_END_TO_END_FIXTURE_H_
#define CANOPY_TESTS_END_TO_END_END_TO_END_FIXTURE_H_

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/testing/local_deployment.h"

namespace canopy::end_to_end {

using canopy::testing::StringCount;

// The canopy-aggregator, canopy-client and canopy-collector of this build.
canopy::testing::Programs BuiltPrograms();

// The current time, POSIX seconds.
uint64_t NowSeconds();

// A test with a deployment, created (not started) before the test body; when
// the test has failed, every process's output is printed at the end.
class EndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  canopy::testing::LocalDeployment& deployment() { return *deployment_; }

  std::unique_ptr<canopy::testing::LocalDeployment> deployment_;
};

// Reads a "count,string" CSV file, failing the test (and returning nothing)
// when it cannot.
std::vector<StringCount> ReadCounts(const std::string& path);

// The sum of the counts: the reports uploaded.
uint64_t TotalCount(const std::vector<StringCount>& counts);

// ceil(fraction * reports), as the collector resolves a relative threshold
// (a product within rounding error of a whole number is that number).
uint64_t ResolveFraction(double fraction, uint64_t reports);

// A subtree's threshold: strings starting with `prefix` need `threshold`.
struct SubtreeThreshold {
  std::string prefix;
  uint64_t threshold = 0;
};

// The strings whose true count meets their threshold (the longest matching
// subtree's, else `default_threshold`), as the collector orders them: count
// descending, then string.
std::vector<StringCount> ExpectedHeavyHitters(const std::vector<StringCount>& truth,
                                              uint64_t default_threshold,
                                              const std::vector<SubtreeThreshold>& subtrees = {});

// A walk with a candidate cap, simulated on the true counts: the first round
// takes the prefixes of first_round_bits bits, each later round extends the
// survivors by bits_per_round bits (the last by what remains); a prefix
// survives when its count meets `threshold`; when the survivors' extensions
// would exceed `cap`, only the cap / 2^extension survivors with the highest
// counts (ties: the smaller prefix) go on. Returns the full-length survivors,
// ordered as ExpectedHeavyHitters orders them. Strings are zero-padded to
// bits / 8 bytes.
struct CappedWalk {
  uint32_t bits = 0;
  uint32_t first_round_bits = 1;
  uint32_t bits_per_round = 1;
  uint64_t threshold = 1;
  uint64_t cap = 0;
};
std::vector<StringCount> SimulateCappedWalk(const std::vector<StringCount>& truth,
                                            const CappedWalk& walk, size_t* prefixes_cut = nullptr);

// Writes the configuration of a walk over `task`'s batch of the reports
// uploaded at `time_seconds`, with `heavy_hitters`, to <name>.textproto and
// returns its path ("" after failing the test when it cannot).
std::string WriteWalkConfig(canopy::testing::LocalDeployment& deployment,
                            const canopy::testing::LocalTask& task, uint64_t time_seconds,
                            const config::HeavyHitters& heavy_hitters, const std::string& name);

// The arguments of `canopy-collector heavy-hitters --config <config_path>
// --format <format> --output <output_path>` (with --tree when asked).
std::vector<std::string> WalkArguments(const std::string& config_path, const std::string& format,
                                       const std::string& output_path, bool tree = false);

// Runs the walk of WalkArguments as <name>, expecting it to succeed; returns
// the output's path (<name>.<format>).
std::string RunWalk(canopy::testing::LocalDeployment& deployment, const std::string& config_path,
                    const std::string& format, const std::string& name, bool tree = false);

// A walk's JSON output (collector --format json), the parts the tests check.
struct JsonWalkResult {
  std::vector<StringCount> heavy_hitters;  // Raw strings, padding dropped.
  uint64_t report_count = 0;
  uint64_t rounds = 0;
  uint64_t resumed_rounds = 0;
  bool stopped_early = false;
  // With --tree: per round, the most candidates and whether any was cut by
  // the cap.
  uint64_t max_candidates_in_a_round = 0;
  uint64_t cut_by_cap = 0;
};

// Parses the collector's JSON output, failing the test when it cannot.
JsonWalkResult ReadWalkJson(const std::string& path);

// "count  string" lines, for readable failure messages.
std::string Describe(const std::vector<StringCount>& counts);

}  // namespace canopy::end_to_end

#endif  // CANOPY_TESTS_END_TO_END_END_TO_END_FIXTURE_H_
