// The helper's verification states between the two steps of its aggregation
// jobs, kept in memory. A multi-level walk verifies every report at every
// level, and a Poplar1 state holds the report's output share (8 bytes per
// candidate prefix, 32 at the last level): writing it to the datastore at the
// first step and reading it back at the second cost more than verifying.
//
// Nothing depends on this memory for correctness: a state that is missing
// (the helper restarted, or the state was evicted) is computed again from the
// report's held input share and the leader's first message, which the job's
// stored record keeps; verification is deterministic, so the state is the
// same. Bounded: the least recently stored job is evicted first.
#ifndef CANOPY_AGGREGATOR_STEP_STATE_CACHE_H_
#define CANOPY_AGGREGATOR_STEP_STATE_CACHE_H_

#include <memory>
#include <utility>
#include <vector>

#include "aggregator/datastore.h"
#include "aggregator/internal/lru_cache.h"
#include "dap/ping_pong.h"

namespace canopy::aggregator {

class StepStateCache {
 public:
  // The states of one job, by the report's position in the job; entries for
  // reports not waiting are unused.
  using States = std::vector<dap::PingPongState>;

  // Keeps the states of at most `capacity_jobs` jobs.
  explicit StepStateCache(size_t capacity_jobs) : cache_(capacity_jobs) {}

  // Stores (replacing) the states of a job.
  void Put(const TaskId& task_id, const JobId& job_id, States states);
  // Takes a job's states out (null when absent): a job's next step is
  // handled once, and a failed attempt computes them again.
  std::unique_ptr<States> Take(const TaskId& task_id, const JobId& job_id);
  void Erase(const TaskId& task_id, const JobId& job_id);
  size_t size() const;

 private:
  internal::LruCache<std::pair<TaskId, JobId>, States> cache_;
};

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_STEP_STATE_CACHE_H_
