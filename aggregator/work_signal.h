// A wake-up call from the leader's HTTP endpoints to its drivers: a new
// collection job starts the job creator at once instead of after the drivers'
// idle pause. A heavy-hitters walk creates one collection job per level, one
// after the other, so that pause would otherwise be paid at every level.
#ifndef CANOPY_AGGREGATOR_WORK_SIGNAL_H_
#define CANOPY_AGGREGATOR_WORK_SIGNAL_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace canopy::aggregator {

class WorkSignal {
 public:
  // Records that there is work and wakes a waiting driver. Any thread.
  void Notify() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pending_ = true;
    }
    wake_.notify_all();
  }

  // Returns when Notify was called since the last return, at once if it
  // already was, or after `timeout`.
  void WaitFor(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    wake_.wait_for(lock, timeout, [this] { return pending_; });
    pending_ = false;
  }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  bool pending_ = false;
};

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_WORK_SIGNAL_H_
