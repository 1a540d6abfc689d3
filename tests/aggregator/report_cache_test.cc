// The report cache: values taken out and put back, least recently stored
// evicted first, one task's reports dropped without touching another's.
#include "aggregator/report_cache.h"

#include <gtest/gtest.h>

#include <memory>

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

}  // namespace
}  // namespace canopy::aggregator
