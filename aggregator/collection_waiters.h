// Long polling of collection jobs at the leader: a collector's poll of a job
// still in progress is held, up to a limit, and answered as soon as the
// leader's drivers finish the job. A heavy-hitters walk collects one job per
// level, each ready in about a second; polling at the collector's own pace
// would add, per level, part of its back-off interval to the walk.
//
// DAP-19 lets the leader answer a poll whenever it likes; a held poll is
// answered exactly as an immediate one would be (the answer re-reads the
// job), only later.
#ifndef CANOPY_AGGREGATOR_COLLECTION_WAITERS_H_
#define CANOPY_AGGREGATOR_COLLECTION_WAITERS_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "aggregator/datastore.h"

namespace canopy::aggregator {

class CollectionWaiters {
 public:
  // Answers a held poll (on whichever thread ends the wait).
  using Answer = std::function<void()>;

  // `hold` is the longest a poll is held; `max_waiters` bounds the polls held
  // at once (beyond it, polls are answered at once).
  explicit CollectionWaiters(std::chrono::milliseconds hold, size_t max_waiters = 1024);
  // Answers nothing: call Shutdown first, while what the answers use lives.
  ~CollectionWaiters();
  CollectionWaiters(const CollectionWaiters&) = delete;
  CollectionWaiters& operator=(const CollectionWaiters&) = delete;

  // Holds `answer` until Notify names the job or the hold ends, whichever
  // comes first, and then runs it once. Returns false, without holding it,
  // when the caller should answer at once: the job finished a moment ago
  // (Notify came before the poll), too many polls are held, or Shutdown was
  // called.
  bool Wait(const TaskId& task_id, const JobId& job_id, Answer answer);

  // The job finished (or failed): runs the answers of the polls held for it,
  // on the calling thread. Any thread.
  void Notify(const TaskId& task_id, const JobId& job_id);

  // Runs every held answer now and holds no more polls; when it returns, no
  // answer runs on the timer any more. Any thread but an answer's; calling
  // it again does nothing.
  void Shutdown();

 private:
  using Key = std::pair<TaskId, JobId>;
  struct Waiter {
    Key key;
    std::chrono::steady_clock::time_point deadline;
    Answer answer;
  };

  // The timer: answers the polls whose hold ended.
  void ExpireLoop();

  const std::chrono::milliseconds hold_;
  const size_t max_waiters_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::multimap<Key, Waiter> waiters_;
  // Jobs finished lately, oldest first: a poll that read the job just before
  // it finished is not held for nothing.
  std::deque<Key> recently_finished_;
  bool stopping_ = false;
  std::thread timer_;
};

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_COLLECTION_WAITERS_H_
