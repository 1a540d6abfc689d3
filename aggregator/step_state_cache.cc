#include "aggregator/step_state_cache.h"

namespace canopy::aggregator {

void StepStateCache::Put(const TaskId& task_id, const JobId& job_id, States states) {
  cache_.Put({task_id, job_id}, std::make_unique<States>(std::move(states)));
}

std::unique_ptr<StepStateCache::States> StepStateCache::Take(const TaskId& task_id,
                                                             const JobId& job_id) {
  return cache_.Remove({task_id, job_id});
}

void StepStateCache::Erase(const TaskId& task_id, const JobId& job_id) {
  cache_.Remove({task_id, job_id});
}

size_t StepStateCache::size() const { return cache_.size(); }

}  // namespace canopy::aggregator
