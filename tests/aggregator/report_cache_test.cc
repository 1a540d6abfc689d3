// The report cache: values taken out and put back, least recently stored
// evicted first, one task's reports dropped without touching another's;
// with level files, Poplar1 reports keep their levels there and an evicted
// report frees its slot.
#include "aggregator/report_cache.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <set>

#include "poplar/poplar1.h"
#include "tests/testing/temp_folder.h"

namespace canopy::aggregator {
namespace {

// A prepared report that only says which report it stands for.
class Marked final : public poplar::PreparedReport {
 public:
  explicit Marked(int value) : mark(value) {}
  int mark;
};

dap::TaskId Task(uint8_t n) {
  dap::TaskId id{};
  id.fill(n);
  return id;
}

dap::ReportId Report(uint8_t n) {
  dap::ReportId id{};
  id[0] = n;
  return id;
}

int MarkOf(const std::unique_ptr<poplar::PreparedReport>& report) {
  return report == nullptr ? -1 : static_cast<const Marked&>(*report).mark;
}

TEST(ReportCache, TakesWhatWasPutOnceAndEvictsTheOldest) {
  ReportCache cache(2);
  cache.Put(Task(1), Report(1), std::make_unique<Marked>(11));
  cache.Put(Task(1), Report(2), std::make_unique<Marked>(12));
  cache.Put(Task(1), Report(3), std::make_unique<Marked>(13));  // Evicts report 1.
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(MarkOf(cache.Take(Task(1), Report(1))), -1);
  EXPECT_EQ(MarkOf(cache.Take(Task(1), Report(3))), 13);
  EXPECT_EQ(MarkOf(cache.Take(Task(1), Report(3))), -1);  // Taken out: gone.
  EXPECT_EQ(cache.size(), 1u);
}

// A report taken out and put back becomes the most recent; while out it is
// not there to take again.
TEST(ReportCache, ReportsPutBackBecomeTheMostRecent) {
  ReportCache cache(2);
  cache.Put(Task(1), Report(1), std::make_unique<Marked>(11));
  cache.Put(Task(1), Report(2), std::make_unique<Marked>(12));
  std::unique_ptr<poplar::PreparedReport> taken = cache.Take(Task(1), Report(1));
  EXPECT_EQ(MarkOf(taken), 11);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(MarkOf(cache.Take(Task(1), Report(1))), -1);
  cache.Put(Task(1), Report(1), std::move(taken));
  cache.Put(Task(1), Report(3), std::make_unique<Marked>(13));  // Evicts report 2.
  EXPECT_EQ(MarkOf(cache.Take(Task(1), Report(2))), -1);
  EXPECT_EQ(MarkOf(cache.Take(Task(1), Report(1))), 11);
  EXPECT_EQ(MarkOf(cache.Take(Task(1), Report(3))), 13);
  EXPECT_EQ(cache.size(), 0u);
}

// A report put back is passed over once by eviction, which moves it to the
// front of the order (before the entry being stored); its mark is cleared,
// so it goes when eviction reaches it again.
TEST(ReportCache, ReportsPutBackArePassedOverOnce) {
  ReportCache cache(3);
  for (uint8_t n = 1; n <= 3; ++n) cache.Put(Task(1), Report(n), std::make_unique<Marked>(10 + n));
  cache.Put(Task(1), Report(1), cache.Take(Task(1), Report(1)));
  // Each eviction is checked as it happens (taking an absent report changes
  // nothing).
  cache.Put(Task(1), Report(4), std::make_unique<Marked>(14));  // Passes 1 over, evicts 2.
  EXPECT_EQ(MarkOf(cache.Take(Task(1), Report(2))), -1);
  cache.Put(Task(1), Report(5), std::make_unique<Marked>(15));  // Evicts 3.
  EXPECT_EQ(MarkOf(cache.Take(Task(1), Report(3))), -1);
  cache.Put(Task(1), Report(6), std::make_unique<Marked>(16));  // Evicts 1, its mark gone.
  EXPECT_EQ(MarkOf(cache.Take(Task(1), Report(1))), -1);
  cache.Put(Task(1), Report(7), std::make_unique<Marked>(17));  // Evicts 4.
  EXPECT_EQ(MarkOf(cache.Take(Task(1), Report(4))), -1);
  for (uint8_t kept : {5, 6, 7}) EXPECT_EQ(MarkOf(cache.Take(Task(1), Report(kept))), 10 + kept);
}

// The same report ID in two tasks is two entries, and dropping one task's
// reports leaves the other's.
TEST(ReportCache, KeepsTasksApart) {
  ReportCache cache(10);
  for (uint8_t r = 1; r <= 3; ++r) {
    cache.Put(Task(1), Report(r), std::make_unique<Marked>(10 + r));
    cache.Put(Task(2), Report(r), std::make_unique<Marked>(20 + r));
  }
  EXPECT_EQ(cache.size(), 6u);
  EXPECT_EQ(MarkOf(cache.Take(Task(2), Report(2))), 22);
  cache.Put(Task(2), Report(2), std::make_unique<Marked>(22));
  cache.EraseTask(Task(1));
  EXPECT_EQ(cache.size(), 3u);
  for (uint8_t r = 1; r <= 3; ++r) {
    EXPECT_EQ(MarkOf(cache.Take(Task(1), Report(r))), -1);
    EXPECT_EQ(MarkOf(cache.Take(Task(2), Report(r))), 20 + r);
  }
}

// The cache's hash tells apart keys that differ in any one byte, of either
// array, and gives one key one hash.
TEST(ReportCache, KeyHashSeesEveryByte) {
  internal::KeyedIdHash hash;
  std::set<size_t> seen;
  const std::pair<dap::ReportId, dap::TaskId> base{Report(0), Task(0)};
  EXPECT_EQ(hash(base), hash(std::pair<dap::ReportId, dap::TaskId>(base)));
  seen.insert(hash(base));
  for (size_t byte = 0; byte < 48; ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      auto key = base;
      uint8_t& target = byte < 16 ? key.first[byte] : key.second[byte - 16];
      target = static_cast<uint8_t>(1 << bit);
      EXPECT_TRUE(seen.insert(hash(key)).second) << "byte " << byte << " bit " << bit;
    }
  }
}

// Poplar1 reports put in a cache with level files keep their levels there;
// one taken out verifies as before (reading back its levels) and drops them
// again when put back; evicting or erasing reports frees their slots.
TEST(ReportCache, Poplar1ReportsKeepTheirLevelsInTheFiles) {
  const std::string folder = canopy::testing::MakeTempFolder("canopy-report-cache");
  auto files = LevelFiles::Open(folder);
  ASSERT_TRUE(files);
  std::shared_ptr<LevelFiles> level_files = std::move(*files);
  ReportCache cache(3, level_files);
  auto vdaf = poplar::Poplar1::Create(16);
  ASSERT_TRUE(vdaf);
  const std::vector<uint8_t> ctx = {'c', 't', 'x'};
  std::mt19937_64 random(4);
  auto bytes = [&](size_t size) {
    std::vector<uint8_t> out(size);
    for (uint8_t& byte : out) byte = static_cast<uint8_t>(random());
    return out;
  };
  idpf::BitString measurement;
  for (int b = 0; b < 16; ++b) measurement = measurement.Extended(b % 3 == 0);
  const std::vector<uint8_t> nonce = bytes(16);
  auto shares = (*vdaf)->Shard(ctx, measurement, nonce, bytes((*vdaf)->rand_size()));
  ASSERT_TRUE(shares);
  auto prepare = [&] {
    auto prepared =
        (*vdaf)->PrepareReport(0, ctx, nonce, shares->public_share, shares->input_shares[0]);
    EXPECT_TRUE(prepared);
    return std::move(*prepared);
  };
  auto in_memory = prepare();
  cache.Put(Task(1), Report(1), prepare());
  EXPECT_EQ(level_files->usage().slots, 1u);

  const std::vector<uint8_t> verify_key = bytes(32);
  std::shared_ptr<const poplar::AggregationParameter> previous;
  for (size_t level : {0, 3, 15}) {
    auto param = (*vdaf)->MakeAggParam(level, {measurement.Prefix(level + 1)}, previous.get());
    ASSERT_TRUE(param);
    std::unique_ptr<poplar::PreparedReport> taken = cache.Take(Task(1), Report(1));
    ASSERT_NE(taken, nullptr);
    EXPECT_TRUE(taken->levels_in_slot());
    auto expected = (*vdaf)->VerifyInit(verify_key, ctx, **param, *in_memory);
    auto got = (*vdaf)->VerifyInit(verify_key, ctx, **param, *taken);
    ASSERT_TRUE(expected && got) << "level " << level;
    EXPECT_EQ(got->verifier_share, expected->verifier_share) << "level " << level;
    cache.Put(Task(1), Report(1), std::move(taken));
    EXPECT_EQ(level_files->usage().slots, 1u);
    previous = *param;
  }

  // Three more reports: the first is evicted and its slot freed.
  for (uint8_t r = 2; r <= 4; ++r) cache.Put(Task(1), Report(r), prepare());
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(level_files->usage().slots, 3u);
  cache.EraseTask(Task(1));
  EXPECT_EQ(level_files->usage().slots, 0u);
}

}  // namespace
}  // namespace canopy::aggregator
