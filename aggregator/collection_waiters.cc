#include "aggregator/collection_waiters.h"

#include <algorithm>
#include <vector>

namespace canopy::aggregator {

namespace {

// How many finished jobs are remembered for polls that come just too late
// to be notified.
constexpr size_t kRecentlyFinished = 64;

void RunAll(std::vector<CollectionWaiters::Answer>& answers) {
  for (CollectionWaiters::Answer& answer : answers) answer();
}

}  // namespace

CollectionWaiters::CollectionWaiters(std::chrono::milliseconds hold, size_t max_waiters)
    : hold_(hold), max_waiters_(max_waiters), timer_([this] { ExpireLoop(); }) {}

CollectionWaiters::~CollectionWaiters() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    waiters_.clear();
  }
  wake_.notify_all();
  if (timer_.joinable()) timer_.join();
}

bool CollectionWaiters::Wait(const TaskId& task_id, const JobId& job_id, Answer answer) {
  Key key{task_id, job_id};
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_ || hold_.count() <= 0 || waiters_.size() >= max_waiters_ ||
        std::find(recently_finished_.begin(), recently_finished_.end(), key) !=
            recently_finished_.end()) {
      return false;
    }
    waiters_.emplace(key, Waiter{key, std::chrono::steady_clock::now() + hold_, std::move(answer)});
  }
  wake_.notify_all();  // The timer may need to wake sooner.
  return true;
}

void CollectionWaiters::Notify(const TaskId& task_id, const JobId& job_id) {
  Key key{task_id, job_id};
  std::vector<Answer> due;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    recently_finished_.push_back(key);
    if (recently_finished_.size() > kRecentlyFinished) recently_finished_.pop_front();
    auto [first, last] = waiters_.equal_range(key);
    for (auto it = first; it != last; ++it) due.push_back(std::move(it->second.answer));
    waiters_.erase(first, last);
  }
  RunAll(due);  // Outside the lock: an answer reads the datastore and sends.
}

void CollectionWaiters::Shutdown() {
  std::vector<Answer> due;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    for (auto& [key, waiter] : waiters_) due.push_back(std::move(waiter.answer));
    waiters_.clear();
  }
  wake_.notify_all();
  // After the timer has stopped, no answer of its is still running.
  if (timer_.joinable()) timer_.join();
  RunAll(due);
}

void CollectionWaiters::ExpireLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    auto next = now + std::chrono::hours(1);
    std::vector<Answer> due;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->second.deadline <= now) {
        due.push_back(std::move(it->second.answer));
        it = waiters_.erase(it);
      } else {
        next = std::min(next, it->second.deadline);
        ++it;
      }
    }
    if (!due.empty()) {
      lock.unlock();
      RunAll(due);
      lock.lock();
      continue;  // Time has passed: look again.
    }
    wake_.wait_until(lock, next);
  }
}

}  // namespace canopy::aggregator
