// The end-to-end benchmark `discovery_load` ends early the way a finished run
// ends: stopped after the round asked (--stop-after-round) or by SIGTERM, its
// aggregators are gone and its folder (databases and level files: tens of
// gigabytes at a million reports) is removed.
//
// Each run gets a temporary directory of its own (TMPDIR), so that what the
// run leaves there, and any process still running with a path in it, can be
// looked for.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/testing/aggregator_process.h"
#include "tests/testing/local_deployment.h"
#include "tests/testing/temp_folder.h"

namespace canopy::end_to_end {
namespace {

using canopy::testing::ChildProcess;

// Runs discovery_load with `arguments`, its TMPDIR set to a new folder.
class DiscoveryLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = canopy::testing::MakeTempFolder("discovery-load-test");
    ASSERT_FALSE(folder_.empty());
    temp_dir_ = folder_ + "/tmp";
    std::filesystem::create_directories(temp_dir_);
  }

  ChildProcess Start(std::vector<std::string> arguments) {
    arguments.insert(arguments.begin(), CANOPY_DISCOVERY_LOAD_BINARY);
    const char* previous = getenv("TMPDIR");
    const std::string saved = previous == nullptr ? "" : previous;
    setenv("TMPDIR", temp_dir_.c_str(), 1);
    auto child = ChildProcess::Start(arguments, {output_path(), output_path()});
    if (previous == nullptr) {
      unsetenv("TMPDIR");
    } else {
      setenv("TMPDIR", saved.c_str(), 1);
    }
    EXPECT_TRUE(child) << child.error().ToString();
    return child ? std::move(*child) : ChildProcess();
  }

  std::string output_path() const { return folder_ + "/output.txt"; }
  std::string Output() const { return canopy::testing::ReadTextFile(output_path()).value_or(""); }

  // What the run left in its temporary directory.
  std::vector<std::string> LeftBehind() const {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(temp_dir_)) {
      names.push_back(entry.path().filename().string());
    }
    return names;
  }

  // Processes whose command line names the run's temporary directory (the
  // aggregators name their configuration files, in the run's folder).
  std::vector<std::string> ProcessesInTempDir() const {
    std::vector<std::string> found;
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", error)) {
      std::ifstream file(entry.path() / "cmdline");
      std::string command_line((std::istreambuf_iterator<char>(file)),
                               std::istreambuf_iterator<char>());
      if (command_line.find(temp_dir_) != std::string::npos) {
        found.push_back(entry.path().filename().string());
      }
    }
    return found;
  }

  // Waits until the output matches `pattern` while the run goes on; false
  // when the run ended first.
  bool WaitForOutput(ChildProcess& run, const std::regex& pattern) {
    for (;;) {
      const bool running = run.Running();
      if (std::regex_search(Output(), pattern)) return running;
      if (!running) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  std::string folder_;
  std::string temp_dir_;
};

TEST_F(DiscoveryLoadTest, StopsAfterTheRoundAskedWithTheLaterRoundsSummed) {
  ChildProcess run =
      Start({"--reports", "300", "--bits", "32", "--threshold", "0.05", "--stop-after-round", "3"});
  auto status = run.Wait(std::chrono::seconds(120));
  ASSERT_TRUE(status) << status.error().ToString();
  const std::string output = Output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << canopy::testing::DescribeWaitStatus(*status) << "\n"
      << output;
  EXPECT_TRUE(std::regex_search(output, std::regex("\n +3 +[0-9]+ ")));
  EXPECT_FALSE(std::regex_search(output, std::regex("\n +4 +[0-9]+ "))) << output;
  EXPECT_TRUE(std::regex_search(
      output, std::regex("stopped after round 3 \\(--stop-after-round\\): rounds 2 to 3 took "
                         "[0-9.]+ s, processor time [0-9.]+ s leader \\+ [0-9.]+ s helper")))
      << output;
  EXPECT_EQ(LeftBehind(), std::vector<std::string>{});
  EXPECT_EQ(ProcessesInTempDir(), std::vector<std::string>{});
}

TEST_F(DiscoveryLoadTest, SigtermStopsTheAggregatorsAndRemovesTheFolder) {
  // One bit a round: 256 rounds, seconds of walk to interrupt.
  ChildProcess run =
      Start({"--reports", "500", "--bits", "256", "--stride", "1", "--threshold", "0.05"});
  ASSERT_TRUE(WaitForOutput(run, std::regex("\n +2 +[0-9]+ ")))
      << "the walk ended before its second round\n"
      << Output();
  EXPECT_FALSE(ProcessesInTempDir().empty()) << "the aggregators were not found running";
  auto status = run.Terminate(std::chrono::seconds(60));
  ASSERT_TRUE(status) << status.error().ToString();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 130)
      << canopy::testing::DescribeWaitStatus(*status) << "\n"
      << Output();
  EXPECT_EQ(LeftBehind(), std::vector<std::string>{});
  EXPECT_EQ(ProcessesInTempDir(), std::vector<std::string>{});
}

TEST_F(DiscoveryLoadTest, KeepKeepsTheFolderOfAnInterruptedRun) {
  ChildProcess run = Start(
      {"--reports", "500", "--bits", "256", "--stride", "1", "--threshold", "0.05", "--keep"});
  ASSERT_TRUE(WaitForOutput(run, std::regex("\n +2 +[0-9]+ "))) << Output();
  auto status = run.Terminate(std::chrono::seconds(60));
  ASSERT_TRUE(status) << status.error().ToString();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 130);
  const std::vector<std::string> kept = LeftBehind();
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_TRUE(std::filesystem::exists(temp_dir_ + "/" + kept[0] + "/leader.textproto"));
  EXPECT_EQ(ProcessesInTempDir(), std::vector<std::string>{});
}

}  // namespace
}  // namespace canopy::end_to_end
