// LevelClaims: which reports each level took, in memory, with reservations
// that are kept or given back, levels loaded once and evicted only when no
// reservation is outstanding; and LoadLevelClaims reading them back from a
// datastore's job records.
#include "aggregator/level_claims.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>

#include "aggregator/sqlite_datastore.h"
#include "tests/testing/temp_folder.h"

namespace canopy::aggregator {
namespace {

TaskId Task(uint8_t n) {
  TaskId id{};
  id[0] = n;
  return id;
}

ReportId Report(uint8_t n) {
  ReportId id{};
  id[0] = n;
  id[15] = 0x5a;
  return id;
}

// A loader that returns `ids` and counts its calls.
struct CountingLoader {
  std::vector<ReportId> ids;
  int calls = 0;
  LevelClaims::Loader get() {
    return [this]() -> Result<std::vector<ReportId>> {
      ++calls;
      return ids;
    };
  }
};

std::vector<bool> Taken(const LevelClaims::Reservation& reservation, size_t count) {
  std::vector<bool> taken;
  for (size_t i = 0; i < count; ++i) taken.push_back(reservation.taken(i));
  return taken;
}

TEST(LevelClaimsTest, ReservationsTakeFreeReportsAndKeepOrGiveThemBack) {
  LevelClaims claims;
  CountingLoader loader{{Report(1)}};  // Report 1 was taken before a restart.
  const Bytes level = {0, 1};
  const std::vector<ReportId> ids = {Report(1), Report(2), Report(3)};
  {
    auto reserved = claims.Reserve(Task(1), level, ids, loader.get());
    ASSERT_TRUE(reserved);
    EXPECT_EQ(Taken(*reserved, 3), (std::vector<bool>{false, true, true}));
    // Dropped without Keep: reports 2 and 3 are given back.
  }
  auto claimed = claims.Claimed(Task(1), level, ids, loader.get());
  ASSERT_TRUE(claimed);
  EXPECT_EQ(*claimed, (std::vector<bool>{true, false, false}));
  {
    auto reserved = claims.Reserve(Task(1), level, ids, loader.get());
    ASSERT_TRUE(reserved);
    reserved->Keep({true, true, false});  // Report 3 was refused by the commit.
  }
  claimed = claims.Claimed(Task(1), level, ids, loader.get());
  ASSERT_TRUE(claimed);
  EXPECT_EQ(*claimed, (std::vector<bool>{true, true, false}));
  auto again = claims.Reserve(Task(1), level, ids, loader.get());
  ASSERT_TRUE(again);
  EXPECT_EQ(Taken(*again, 3), (std::vector<bool>{false, false, true}));
  again->KeepAll();
  EXPECT_EQ(loader.calls, 1);  // Loaded once.

  // Another level, another task: their own claims.
  auto other_level = claims.Claimed(Task(1), {0, 2}, ids, loader.get());
  ASSERT_TRUE(other_level);
  EXPECT_EQ(*other_level, (std::vector<bool>{true, false, false}));
  CountingLoader empty;
  auto other_task = claims.Claimed(Task(2), level, ids, empty.get());
  ASSERT_TRUE(other_task);
  EXPECT_EQ(*other_task, (std::vector<bool>{false, false, false}));

  // An abandoned job gives its reports back.
  claims.Release(Task(1), level, std::vector<ReportId>{Report(2)});
  claimed = claims.Claimed(Task(1), level, ids, loader.get());
  ASSERT_TRUE(claimed);
  EXPECT_EQ(*claimed, (std::vector<bool>{true, false, true}));
}

// A reserved claim is pending: another job asking about the report waits
// until it is kept (then it is taken) or given back (then it is free), and
// never decides on a claim that may still vanish.
TEST(LevelClaimsTest, OthersWaitForAPendingClaim) {
  LevelClaims claims;
  CountingLoader loader;
  const std::vector<ReportId> ids = {Report(1), Report(2)};
  for (const bool keep : {true, false}) {
    const Bytes level = {keep ? uint8_t{1} : uint8_t{2}};
    auto reserved = claims.Reserve(Task(1), level, std::vector<ReportId>{Report(1)}, loader.get());
    ASSERT_TRUE(reserved);
    std::optional<LevelClaims::Reservation> first(std::move(*reserved));
    std::atomic<bool> settled{false};
    std::optional<std::vector<bool>> seen, taken;
    std::thread other([&] {
      auto claimed = claims.Claimed(Task(1), level, ids, loader.get());
      if (claimed) seen = *claimed;
      EXPECT_TRUE(settled.load()) << "decided on a pending claim";
      auto later = claims.Reserve(Task(1), level, ids, loader.get());
      if (later) taken = Taken(*later, 2);
    });
    // Not a timing assertion: the pause only gives the other thread the
    // chance to decide too early, which the check in it would catch.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    settled = true;
    if (keep) {
      first->KeepAll();
    } else {
      first.reset();  // Given back.
    }
    other.join();
    ASSERT_TRUE(seen && taken);
    EXPECT_EQ(*seen, (std::vector<bool>{keep, false}));
    EXPECT_EQ(*taken, (std::vector<bool>{!keep, true}));
  }
}

TEST(LevelClaimsTest, KeepAllKeepsWhatWasTaken) {
  LevelClaims claims;
  CountingLoader loader;
  const std::vector<ReportId> ids = {Report(1), Report(2)};
  {
    auto first = claims.Reserve(Task(1), {7}, std::vector<ReportId>{Report(1)}, loader.get());
    ASSERT_TRUE(first);
    first->KeepAll();
  }
  {
    auto second = claims.Reserve(Task(1), {7}, ids, loader.get());
    ASSERT_TRUE(second);
    EXPECT_EQ(Taken(*second, 2), (std::vector<bool>{false, true}));
    second->KeepAll();
  }
  auto claimed = claims.Claimed(Task(1), {7}, ids, loader.get());
  ASSERT_TRUE(claimed);
  EXPECT_EQ(*claimed, (std::vector<bool>{true, true}));
}

TEST(LevelClaimsTest, AFailedLoadIsReturnedAndRetried) {
  LevelClaims claims;
  int calls = 0;
  auto failing = [&]() -> Result<std::vector<ReportId>> {
    ++calls;
    return MakeError(ErrorCode::kIoError, "disk gone");
  };
  auto reserved = claims.Reserve(Task(1), {1}, std::vector<ReportId>{Report(1)}, failing);
  ASSERT_FALSE(reserved);
  EXPECT_EQ(reserved.error().code(), ErrorCode::kIoError);
  EXPECT_EQ(claims.levels(), 0u);
  auto claimed = claims.Claimed(Task(1), {1}, std::vector<ReportId>{Report(1)}, failing);
  ASSERT_FALSE(claimed);
  EXPECT_EQ(calls, 2);  // Nothing half-loaded was kept.
}

TEST(LevelClaimsTest, EvictsTheOldestLevelButNeverOneWithAReservation) {
  LevelClaims claims(2);  // Two claims: one level of one report each, and one more.
  CountingLoader loader;
  const std::vector<ReportId> one = {Report(1)};
  auto reserve_kept = [&](uint8_t level) {
    auto reserved = claims.Reserve(Task(1), {level}, one, loader.get());
    ASSERT_TRUE(reserved);
    reserved->KeepAll();
  };
  auto held = claims.Reserve(Task(1), {1}, one, loader.get());  // Level 1, reserved.
  ASSERT_TRUE(held);
  reserve_kept(2);
  reserve_kept(3);  // Three claims: level 2, the oldest unreserved, goes.
  EXPECT_EQ(claims.levels(), 2u);
  EXPECT_EQ(loader.calls, 3);
  // Level 1 stayed (its reservation is outstanding): no reload.
  held->KeepAll();
  auto level1 = claims.Claimed(Task(1), {1}, one, loader.get());
  ASSERT_TRUE(level1);
  EXPECT_TRUE((*level1)[0]);
  EXPECT_EQ(loader.calls, 3);
  // Level 2 was evicted: loaded again (empty: this loader knows nothing).
  auto level2 = claims.Claimed(Task(1), {2}, one, loader.get());
  ASSERT_TRUE(level2);
  EXPECT_FALSE((*level2)[0]);
  EXPECT_EQ(loader.calls, 4);
  // With every other level reserved, the claims grow beyond the capacity
  // rather than lose a reservation.
  auto on_1 = claims.Reserve(Task(1), {1}, std::vector<ReportId>{Report(2)}, loader.get());
  auto on_3 = claims.Reserve(Task(1), {3}, std::vector<ReportId>{Report(2)}, loader.get());
  auto on_4 = claims.Reserve(Task(1), {4}, std::vector<ReportId>{Report(2)}, loader.get());
  ASSERT_TRUE(on_1 && on_3 && on_4);
  EXPECT_EQ(claims.levels(), 3u);  // Levels 1, 3 and 4 (level 2 had no reservation).
  // A task removed: its levels go; the reservations settle on their own.
  claims.EraseTask(Task(1));
  EXPECT_EQ(claims.levels(), 0u);
  on_1->KeepAll();
}

class LoadLevelClaimsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    folder_ = canopy::testing::MakeTempFolder("canopy-level-claims");
    auto opened = OpenSqliteDatastore(SqliteOptions{folder_ + "/claims.sqlite"});
    ASSERT_TRUE(opened) << opened.error().ToString();
    datastore_ = std::move(*opened);
  }
  void TearDown() override { std::filesystem::remove_all(folder_); }

  // Stores a job with `agg_param` whose reports are in the given states.
  void PutJob(uint8_t job, const Bytes& agg_param,
              const std::vector<std::pair<uint8_t, ReportAggregationState>>& reports,
              dap::ReportError error = dap::ReportError::kReportReplayed) {
    AggregationJobRow row;
    row.task_id = Task(1);
    row.job_id[0] = job;
    row.agg_param = agg_param;
    std::vector<ReportAggregationRow> rows;
    for (const auto& [report, state] : reports) {
      ReportAggregationRow report_row;
      report_row.task_id = Task(1);
      report_row.job_id = row.job_id;
      report_row.report_id = Report(report);
      report_row.state = state;
      report_row.error = error;
      rows.push_back(report_row);
    }
    ASSERT_TRUE(datastore_->Run([&](Transaction& tx) -> Result<void> {
      auto put = tx.PutAggregationJob(row);
      if (!put) return put;
      return tx.PutJobReports(Task(1), row.job_id, rows);
    }));
  }

  std::string folder_;
  std::unique_ptr<Datastore> datastore_;
};

TEST_F(LoadLevelClaimsTest, ReadsTheLevelsJobsAndOlderRecords) {
  const Bytes level(3000, 0x42);  // Deep in a walk, a parameter is kilobytes.
  const Bytes other = {1, 2, 3};
  using State = ReportAggregationState;
  PutJob(1, level, {{1, State::kFinished}, {2, State::kFailed}});
  PutJob(2, level, {{3, State::kWaiting}});
  PutJob(3, other, {{4, State::kFinished}});
  // A record from before claims were kept in memory.
  ASSERT_TRUE(datastore_->Run([&](Transaction& tx) -> Result<void> {
    auto recorded = tx.RecordAggregatedReport(Task(1), Report(5), level);
    if (!recorded) return std::unexpected(recorded.error());
    return {};
  }));

  auto every_row = LoadLevelClaims(*datastore_, Task(1), level,
                                   [](const ReportAggregationRow&) { return true; });
  ASSERT_TRUE(every_row) << every_row.error().ToString();
  std::sort(every_row->begin(), every_row->end());
  EXPECT_EQ(*every_row, (std::vector<ReportId>{Report(1), Report(2), Report(3), Report(5)}));

  auto accepted = LoadLevelClaims(*datastore_, Task(1), level, [](const ReportAggregationRow& row) {
    return row.state != ReportAggregationState::kFailed;
  });
  ASSERT_TRUE(accepted);
  std::sort(accepted->begin(), accepted->end());
  EXPECT_EQ(*accepted, (std::vector<ReportId>{Report(1), Report(3), Report(5)}));

  auto none = LoadLevelClaims(*datastore_, Task(2), level,
                              [](const ReportAggregationRow&) { return true; });
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

// Which rows of a job record claim their report after a restart: the
// leader's all but those the helper no longer held (re-sent in a job of
// their own, which claims them); the helper's those it accepted at the first
// step, and those its verification refused (rejected for good anyway).
TEST(LevelClaimsTest, WhichJobRecordRowsHoldAClaim) {
  using State = ReportAggregationState;
  using dap::ReportError;
  auto row = [](State state, ReportError error) {
    ReportAggregationRow out;
    out.state = state;
    out.error = error;
    return out;
  };
  for (State state : {State::kStart, State::kWaiting, State::kFinished}) {
    EXPECT_TRUE(LeaderRowHoldsClaim(row(state, ReportError::kReportDropped)));
    EXPECT_TRUE(HelperRowHoldsClaim(row(state, ReportError::kReportReplayed)));
  }
  EXPECT_FALSE(LeaderRowHoldsClaim(row(State::kFailed, ReportError::kReportDropped)));
  EXPECT_TRUE(LeaderRowHoldsClaim(row(State::kFailed, ReportError::kReportTooEarly)));
  EXPECT_TRUE(LeaderRowHoldsClaim(row(State::kFailed, ReportError::kVdafVerifyError)));
  EXPECT_TRUE(HelperRowHoldsClaim(row(State::kFailed, ReportError::kVdafVerifyError)));
  for (ReportError error :
       {ReportError::kReportReplayed, ReportError::kReportDropped, ReportError::kHpkeDecryptError,
        ReportError::kBatchCollected, ReportError::kReportTooEarly}) {
    EXPECT_FALSE(HelperRowHoldsClaim(row(State::kFailed, error)));
  }
}

}  // namespace
}  // namespace canopy::aggregator
