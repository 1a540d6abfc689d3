#include "collector_app/walk_state.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "tests/collector_app/fake_batch.h"
#include "tests/testing/temp_folder.h"

namespace canopy::collector {
namespace {

using testing::FakeBatch;

std::string ReadText(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << text;
}

WalkSettings Settings(uint32_t bits, uint64_t threshold, uint32_t bits_per_round) {
  config::HeavyHitters config;
  config.set_bits(bits);
  config.set_default_threshold(threshold);
  config.set_bits_per_round(bits_per_round);
  config::PrefixThreshold* entry = config.add_prefix_thresholds();
  entry->set_bits("01");
  entry->set_relative_threshold(0.01);
  Result<WalkSettings> settings = WalkSettings::FromConfig(config);
  EXPECT_TRUE(settings.has_value());
  return settings.value_or(WalkSettings{});
}

WalkIdentity Identity(uint8_t task_byte = 7) {
  WalkIdentity identity;
  identity.task_id.fill(task_byte);
  identity.batch = WalkBatch::TimeInterval(1767225600, 86400);
  return identity;
}

class WalkStateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = canopy::testing::MakeTempFolder("walk-state-test");
    path_ = folder_ + "/walk.resume";
    std::mt19937_64 random(5);
    testing::AddZipf(batch_, testing::RandomStrings(64, 100, random), 500, 1.0);
  }
  void TearDown() override { std::filesystem::remove_all(folder_); }

  // Runs the walk until `rounds` rounds are recorded, then fails as a killed
  // collector would; returns the recorded file's text.
  std::string Interrupt(const WalkSettings& settings, const WalkIdentity& identity, size_t rounds) {
    Result<OpenedWalk> opened = StartOrResumeWalk(path_, identity, settings);
    EXPECT_TRUE(opened.has_value()) << opened.error().ToString();
    if (!opened) return "";
    FakeBatch batch = batch_;
    RoundRunner inner = batch.Runner();
    size_t calls = 0;
    RoundRunner runner = [&](size_t level, std::span<const idpf::BitString> candidates) {
      if (calls++ == rounds) return Result<RoundResult>(MakeError(ErrorCode::kIoError, "killed"));
      return inner(level, candidates);
    };
    Result<WalkResult> result =
        RunWalk(std::move(opened->walk), runner, {}, MakeStateRecorder(path_, opened->identity));
    EXPECT_FALSE(result.has_value());
    return ReadText(path_);
  }

  std::string folder_;
  std::string path_;
  FakeBatch batch_{64};
};

TEST_F(WalkStateTest, ResumesWhereTheWalkStopped) {
  const WalkSettings settings = Settings(64, 20, 3);
  FakeBatch whole = batch_;
  Result<WalkResult> uninterrupted = RunWalk(settings, whole.Runner());
  ASSERT_TRUE(uninterrupted.has_value());
  ASSERT_FALSE(uninterrupted->heavy_hitters.empty());
  const size_t total_rounds = uninterrupted->rounds.size();

  for (size_t stop : {size_t{0}, size_t{1}, size_t{5}, total_rounds - 1}) {
    SCOPED_TRACE("stopped after " + std::to_string(stop) + " rounds");
    std::filesystem::remove(path_);
    Interrupt(settings, Identity(), stop);
    EXPECT_EQ(std::filesystem::exists(path_), stop > 0);

    Result<OpenedWalk> opened = StartOrResumeWalk(path_, Identity(), settings);
    ASSERT_TRUE(opened.has_value()) << opened.error().ToString();
    EXPECT_EQ(opened->resumed_rounds, stop);
    FakeBatch batch = batch_;
    std::vector<WalkProgress> events;
    Result<WalkResult> resumed = RunWalk(
        std::move(opened->walk), batch.Runner(),
        [&events](const WalkProgress& p) { events.push_back(p); },
        MakeStateRecorder(path_, opened->identity), opened->resumed_rounds);
    ASSERT_TRUE(resumed.has_value()) << resumed.error().ToString();
    EXPECT_EQ(resumed->heavy_hitters, uninterrupted->heavy_hitters);
    EXPECT_EQ(resumed->resumed_rounds, stop);
    ASSERT_EQ(resumed->rounds.size(), total_rounds);
    for (size_t r = 0; r < total_rounds; ++r) {
      EXPECT_EQ(resumed->rounds[r].level, uninterrupted->rounds[r].level);
      ASSERT_EQ(resumed->rounds[r].candidates.size(), uninterrupted->rounds[r].candidates.size());
      for (size_t c = 0; c < resumed->rounds[r].candidates.size(); ++c) {
        EXPECT_EQ(resumed->rounds[r].candidates[c].prefix,
                  uninterrupted->rounds[r].candidates[c].prefix);
        EXPECT_EQ(resumed->rounds[r].candidates[c].status,
                  uninterrupted->rounds[r].candidates[c].status);
      }
    }
    // The finished rounds were not asked for again.
    ASSERT_EQ(batch.levels_asked().size(), total_rounds - stop);
    EXPECT_EQ(batch.levels_asked().front(), uninterrupted->rounds[stop].level);
    if (stop > 0) {
      EXPECT_EQ(events.front().stage, WalkProgress::Stage::kResumed);
    }
  }

  // A finished walk resumes finished: nothing is asked for.
  Result<OpenedWalk> done = StartOrResumeWalk(path_, Identity(), settings);
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->walk.finished());
  EXPECT_EQ(done->walk.Outcome().heavy_hitters, uninterrupted->heavy_hitters);

  // Nothing but the state file is left in the folder (no temporary files).
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(folder_)) ++files;
  EXPECT_EQ(files, 1u);
}

TEST_F(WalkStateTest, EncodingRoundTrips) {
  const WalkSettings settings = Settings(64, 20, 3);
  const std::string text = Interrupt(settings, Identity(), 4);
  Result<WalkState> state = DecodeWalkState(text, path_);
  ASSERT_TRUE(state.has_value()) << state.error().ToString();
  EXPECT_EQ(state->identity, Identity());
  EXPECT_EQ(state->settings, settings);
  ASSERT_EQ(state->rounds.size(), 4u);
  EXPECT_EQ(EncodeWalkState(*state), text);
  // One line per round after the header.
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5);
}

TEST_F(WalkStateTest, LeaderSelectedWalksKeepTheirWalkId) {
  const WalkSettings settings = Settings(64, 20, 8);
  WalkIdentity identity = Identity();
  identity.batch = WalkBatch::LeaderSelected();
  Result<OpenedWalk> fresh = StartOrResumeWalk(path_, identity, settings);
  ASSERT_TRUE(fresh.has_value());
  ASSERT_TRUE(fresh->identity.batch.walk_id.has_value());
  EXPECT_NE(*fresh->identity.batch.walk_id, WalkId{});
  Result<OpenedWalk> other = StartOrResumeWalk("", identity, settings);
  ASSERT_TRUE(other.has_value());
  EXPECT_NE(other->identity.batch.walk_id, fresh->identity.batch.walk_id);

  Interrupt(settings, identity, 2);
  Result<OpenedWalk> first = StartOrResumeWalk(path_, identity, settings);
  ASSERT_TRUE(first.has_value()) << first.error().ToString();
  Result<OpenedWalk> again = StartOrResumeWalk(path_, identity, settings);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(first->resumed_rounds, 2u);
  ASSERT_TRUE(first->identity.batch.walk_id.has_value());
  EXPECT_EQ(first->identity.batch.walk_id, again->identity.batch.walk_id);

  // A walk ID given explicitly must be the file's.
  identity.batch.walk_id = WalkId{1, 2, 3};
  Result<OpenedWalk> mismatch = StartOrResumeWalk(path_, identity, settings);
  ASSERT_FALSE(mismatch.has_value());
  EXPECT_NE(mismatch.error().message().find("walk_id differs"), std::string::npos);
}

TEST_F(WalkStateTest, RefusesAnotherWalksFile) {
  const WalkSettings settings = Settings(64, 20, 3);
  Interrupt(settings, Identity(), 3);

  struct Case {
    std::string item;
    WalkIdentity identity;
    WalkSettings settings;
  };
  std::vector<Case> cases;
  cases.push_back({"task_id differs", Identity(8), settings});
  WalkIdentity later = Identity();
  later.batch.start_seconds += 86400;
  cases.push_back({"batch differs", later, settings});
  WalkIdentity leader_selected = Identity();
  leader_selected.batch = WalkBatch::LeaderSelected();
  cases.push_back({"batch differs", leader_selected, settings});
  WalkSettings changed = settings;
  changed.bits_per_round = 4;
  cases.push_back({"bits_per_round differs", Identity(), changed});
  changed = settings;
  changed.first_round_bits = 2;
  cases.push_back({"first_round_bits differs", Identity(), changed});
  changed = settings;
  changed.max_candidates_per_level = 1000;
  cases.push_back({"max_candidates_per_level differs", Identity(), changed});
  changed = settings;
  changed.default_threshold = Threshold::Count(21);
  cases.push_back({"the default threshold differs (file: 20, now: 21)", Identity(), changed});
  changed = settings;
  changed.prefix_thresholds[0].threshold = Threshold::Fraction(0.02);
  cases.push_back({"prefix_thresholds differs", Identity(), changed});
  changed = Settings(63, 20, 3);
  cases.push_back({"bits differs", Identity(), changed});

  for (const Case& c : cases) {
    Result<OpenedWalk> opened = StartOrResumeWalk(path_, c.identity, c.settings);
    ASSERT_FALSE(opened.has_value()) << c.item;
    EXPECT_EQ(opened.error().code(), ErrorCode::kInvalidArgument);
    const std::string& message = opened.error().message();
    EXPECT_NE(message.find(c.item), std::string::npos) << message;
    EXPECT_NE(message.find(path_), std::string::npos) << message;
    EXPECT_NE(message.find("delete the file"), std::string::npos) << message;
  }
}

TEST_F(WalkStateTest, RefusesCorruptFiles) {
  const WalkSettings settings = Settings(64, 20, 3);
  const std::string text = Interrupt(settings, Identity(), 3);
  ASSERT_FALSE(text.empty());

  auto expect_refused = [&](const std::string& content, ErrorCode code, const std::string& part) {
    WriteText(path_, content);
    Result<OpenedWalk> opened = StartOrResumeWalk(path_, Identity(), settings);
    ASSERT_FALSE(opened.has_value()) << part;
    EXPECT_EQ(opened.error().code(), code) << opened.error().ToString();
    EXPECT_NE(opened.error().message().find(path_), std::string::npos);
    EXPECT_NE(opened.error().message().find(part), std::string::npos) << opened.error().message();
  };
  for (size_t length : {size_t{0}, size_t{1}, text.size() / 2, text.size() - 3}) {
    expect_refused(text.substr(0, length), ErrorCode::kDecodeError, "corrupt or truncated");
  }
  expect_refused("not json at all", ErrorCode::kDecodeError, "corrupt");
  expect_refused("[1, 2, 3]", ErrorCode::kDecodeError, "not an object");

  auto edited = [&text](const std::string& from, const std::string& to) {
    std::string copy = text;
    const size_t at = copy.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) copy.replace(at, from.size(), to);
    return copy;
  };
  expect_refused(edited("\"version\":1", "\"version\":2"), ErrorCode::kDecodeError, "version");
  expect_refused(edited("\"format\":\"canopy", "\"format\":\"other"), ErrorCode::kDecodeError,
                 "format");
  expect_refused(edited("\"level\":", "\"levels\":"), ErrorCode::kDecodeError,
                 "member \"level\" missing");
  expect_refused(edited("\"counts\":[", "\"counts\":[1,"), ErrorCode::kDecodeError, "counts");
  expect_refused(edited("\"counts\":[", "\"counts\":[-"), ErrorCode::kDecodeError, "non-negative");
  expect_refused(edited("\"bits_per_round\":3", "\"bits_per_round\":99"), ErrorCode::kDecodeError,
                 "bits_per_round");

  // A recorded round that is not what the walk asks for: a first level
  // edited, or a first round's counts edited so that other prefixes survive.
  expect_refused(edited("\"level\":2", "\"level\":3"), ErrorCode::kInvalidArgument,
                 "round 1 recorded level 3");
  Result<WalkState> state = DecodeWalkState(text, path_);
  ASSERT_TRUE(state.has_value());
  for (uint64_t& count : state->rounds[0].counts) count = count >= 20 ? 0 : 20;
  expect_refused(EncodeWalkState(*state), ErrorCode::kInvalidArgument, "round 2 recorded");
}

TEST_F(WalkStateTest, ReportsUnwritableFiles) {
  const WalkSettings settings = Settings(64, 20, 3);
  HeavyHittersWalk walk(settings);
  Result<void> saved = SaveWalkState(folder_ + "/missing/walk.resume", Identity(), walk);
  ASSERT_FALSE(saved.has_value());
  EXPECT_EQ(saved.error().code(), ErrorCode::kIoError);
  EXPECT_NE(saved.error().message().find("missing/walk.resume"), std::string::npos);

  std::filesystem::create_directory(path_);  // A folder where the file should be.
  Result<OpenedWalk> opened = StartOrResumeWalk(path_, Identity(), settings);
  ASSERT_FALSE(opened.has_value());
  EXPECT_EQ(opened.error().code(), ErrorCode::kIoError);
}

TEST(WalkIdentityTest, FromConfig) {
  config::CollectorConfig config;
  config.set_task_id(std::string(43, 'A'));
  config.mutable_time_interval()->set_start_seconds(3600);
  config.mutable_time_interval()->set_duration_seconds(60);
  Result<WalkIdentity> identity = WalkIdentityFromConfig(config);
  ASSERT_TRUE(identity.has_value()) << identity.error().ToString();
  EXPECT_EQ(identity->task_id, dap::TaskId{});
  EXPECT_EQ(identity->batch, WalkBatch::TimeInterval(3600, 60));
  config.mutable_leader_selected();
  identity = WalkIdentityFromConfig(config);
  ASSERT_TRUE(identity.has_value());
  EXPECT_EQ(identity->batch, WalkBatch::LeaderSelected());
  config.set_task_id("short");
  EXPECT_FALSE(WalkIdentityFromConfig(config).has_value());
}

}  // namespace
}  // namespace canopy::collector
