// An interrupted walk resumes with the same result (collector_app/walk_state.h):
// `canopy-collector heavy-hitters` with a resume_state_path is killed with
// SIGKILL while a round is being collected, and the same command run again
// says it resumed the finished rounds and returns exactly the heavy hitters
// of the true counts, byte for byte what an uninterrupted walk of the same
// workload returns.
//
// Both walks run over leader-selected batches, so the resumed one must also
// find its batch again through the walk ID kept in the state file. Each walk
// has a task of its own (a batch is walked once), and both tasks get the same
// workload.
#include <gtest/gtest.h>

#include <chrono>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/end_to_end/end_to_end_fixture.h"

namespace canopy::end_to_end {
namespace {

using canopy::testing::ChildProcess;
using canopy::testing::LocalTask;
using canopy::testing::ZipfUpload;

class ResumeTest : public EndToEndTest {};

// Waits until `process` writes `pattern` into the file at `path`, or exits.
// Returns whether the pattern appeared while it still ran.
bool WaitForOutput(ChildProcess& process, const std::string& path, const std::regex& pattern) {
  for (;;) {
    const bool running = process.Running();
    auto text = canopy::testing::ReadTextFile(path);
    if (text && std::regex_search(*text, pattern)) return running;
    if (!running) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

TEST_F(ResumeTest, KilledMidWalkResumesWithTheSameResult) {
  auto interrupted = deployment().AddPoplar1Task(32, /*leader_selected=*/true, 100);
  auto uninterrupted = deployment().AddPoplar1Task(32, /*leader_selected=*/true, 100);
  ASSERT_TRUE(interrupted && uninterrupted);
  ASSERT_TRUE(deployment().Start());
  const uint64_t now = NowSeconds();
  const ZipfUpload workload{.reports = 500, .seed = 21, .distinct = 100, .time_seconds = now};
  auto uploaded = deployment().UploadZipf(*interrupted, workload, "client-interrupted");
  ASSERT_TRUE(uploaded) << uploaded.error().ToString();
  auto twin = deployment().UploadZipf(*uninterrupted, workload, "client-uninterrupted");
  ASSERT_TRUE(twin) << twin.error().ToString();
  const std::vector<StringCount> truth = ReadCounts(uploaded->true_counts_path);
  ASSERT_EQ(truth, ReadCounts(twin->true_counts_path));

  config::HeavyHitters settings;
  settings.set_bits(32);
  settings.set_default_threshold(15);
  settings.set_bits_per_round(4);  // 8 rounds.
  const std::vector<StringCount> expected = ExpectedHeavyHitters(truth, 15);
  ASSERT_GE(expected.size(), 3u);

  // The uninterrupted walk, for comparison.
  const std::string reference = RunWalk(
      deployment(),
      WriteWalkConfig(deployment(), *uninterrupted, now, settings, "collector-uninterrupted"),
      "csv", "walk-uninterrupted");

  // The interrupted walk: killed while round 4 is being collected, when
  // three rounds are recorded in the state file.
  settings.set_resume_state_path(deployment().Path("walk.resume"));
  const std::string config =
      WriteWalkConfig(deployment(), *interrupted, now, settings, "collector-interrupted");
  const std::string output = deployment().Path("walk-interrupted.csv");
  auto first = deployment().StartCollector(WalkArguments(config, "csv", output), "walk-first");
  ASSERT_TRUE(first) << first.error().ToString();
  const bool caught = WaitForOutput(*first, deployment().Path("walk-first.stderr"),
                                    std::regex("round 4/8: [^\n]*collecting"));
  first->Kill();
  ASSERT_TRUE(caught) << "the walk ended before round 4: "
                      << deployment().CollectorRun(*first, "walk-first").status_text();
  EXPECT_FALSE(canopy::testing::ReadTextFile(output)) << "the killed walk wrote a result";

  auto second = deployment().RunCollector(WalkArguments(config, "csv", output), "walk-second");
  ASSERT_TRUE(second) << second.error().ToString();
  ASSERT_TRUE(second->succeeded()) << second->status_text() << "\n" << second->Stderr();
  std::smatch resumed;
  const std::string progress = second->Stderr();
  ASSERT_TRUE(std::regex_search(progress, resumed, std::regex("resumed (\\d+) rounds")))
      << progress;
  // The state file is written after each round, before the next starts.
  EXPECT_EQ(resumed[1], "3");

  const std::vector<StringCount> found = ReadCounts(output);
  EXPECT_EQ(found, expected) << "found:\n"
                             << Describe(found) << "expected:\n"
                             << Describe(expected);
  EXPECT_EQ(canopy::testing::ReadTextFile(output).value_or("a"),
            canopy::testing::ReadTextFile(reference).value_or("b"));
}

}  // namespace
}  // namespace canopy::end_to_end
