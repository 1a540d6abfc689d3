// Long polling of collection jobs: a held poll is answered once, when its job
// finishes, when its hold ends, or at shutdown; polls for other jobs wait on.
#include "aggregator/collection_waiters.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace canopy::aggregator {
namespace {

using std::chrono::milliseconds;

TaskId Task(uint8_t n) {
  TaskId id{};
  id[0] = n;
  return id;
}

JobId Job(uint8_t n) {
  JobId id{};
  id[0] = n;
  return id;
}

// Waits (up to a generous bound) until `counter` reaches `value`.
bool Reaches(const std::atomic<int>& counter, int value) {
  for (int i = 0; i < 1000 && counter.load() < value; ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  return counter.load() == value;
}

TEST(CollectionWaiters, NotifyAnswersThePollsOfThatJobOnly) {
  CollectionWaiters waiters(std::chrono::hours(1));
  std::atomic<int> first{0}, second{0}, other{0};
  ASSERT_TRUE(waiters.Wait(Task(1), Job(1), [&] { ++first; }));
  ASSERT_TRUE(waiters.Wait(Task(1), Job(1), [&] { ++second; }));
  ASSERT_TRUE(waiters.Wait(Task(1), Job(2), [&] { ++other; }));
  ASSERT_TRUE(waiters.Wait(Task(2), Job(1), [&] { ++other; }));
  waiters.Notify(Task(1), Job(1));
  EXPECT_EQ(first.load(), 1);  // On the notifying thread, before Notify returns.
  EXPECT_EQ(second.load(), 1);
  EXPECT_EQ(other.load(), 0);
  waiters.Notify(Task(1), Job(1));  // Nothing held any more: nothing runs twice.
  EXPECT_EQ(first.load(), 1);
  waiters.Shutdown();  // The other two, now.
  EXPECT_EQ(other.load(), 2);
  waiters.Shutdown();  // Again: nothing more happens.
  EXPECT_EQ(other.load(), 2);
}

TEST(CollectionWaiters, AHoldEndsWithAnAnswer) {
  CollectionWaiters waiters(milliseconds(30));
  std::atomic<int> answered{0};
  const auto start = std::chrono::steady_clock::now();
  std::atomic<int64_t> waited_ms{0};
  ASSERT_TRUE(waiters.Wait(Task(1), Job(1), [&] {
    waited_ms =
        std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count();
    ++answered;
  }));
  ASSERT_TRUE(Reaches(answered, 1));
  EXPECT_GE(waited_ms.load(), 30);
  waiters.Notify(Task(1), Job(1));  // Too late: answered already.
  EXPECT_EQ(answered.load(), 1);
  waiters.Shutdown();
  EXPECT_EQ(answered.load(), 1);
}

TEST(CollectionWaiters, APollJustAfterTheJobFinishedIsNotHeld) {
  CollectionWaiters waiters(std::chrono::hours(1));
  waiters.Notify(Task(1), Job(1));
  int answered = 0;
  EXPECT_FALSE(waiters.Wait(Task(1), Job(1), [&] { ++answered; }));
  EXPECT_EQ(answered, 0);  // Not taken: the caller answers.
  EXPECT_TRUE(waiters.Wait(Task(1), Job(2), [&] { ++answered; }));
  waiters.Shutdown();
  EXPECT_EQ(answered, 1);
}

TEST(CollectionWaiters, RefusesBeyondItsLimitAfterShutdownAndWithoutAHold) {
  std::atomic<int> answered{0};
  {
    CollectionWaiters waiters(std::chrono::hours(1), 2);
    EXPECT_TRUE(waiters.Wait(Task(1), Job(1), [&] { ++answered; }));
    EXPECT_TRUE(waiters.Wait(Task(1), Job(2), [&] { ++answered; }));
    EXPECT_FALSE(waiters.Wait(Task(1), Job(3), [&] { ++answered; }));
    waiters.Shutdown();
    EXPECT_EQ(answered.load(), 2);
    EXPECT_FALSE(waiters.Wait(Task(1), Job(4), [&] { ++answered; }));
  }
  CollectionWaiters no_hold(milliseconds(0));
  EXPECT_FALSE(no_hold.Wait(Task(1), Job(1), [&] { ++answered; }));
  no_hold.Shutdown();
  EXPECT_EQ(answered.load(), 2);
}

TEST(CollectionWaiters, ManyThreadsEachPollAnsweredOnce) {
  CollectionWaiters waiters(milliseconds(50));
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const uint8_t job = static_cast<uint8_t>((t * 50 + i) % 16);
        if (!waiters.Wait(Task(1), Job(job), [&] { ++answered; })) ++answered;
        if (i % 7 == 0) waiters.Notify(Task(1), Job(static_cast<uint8_t>(i % 16)));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  waiters.Shutdown();
  EXPECT_EQ(answered.load(), 8 * 50);
}

}  // namespace
}  // namespace canopy::aggregator
