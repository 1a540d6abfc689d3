#include "aggregator/step_state_cache.h"

namespace canopy::aggregator {

void StepStateCache::Put(const TaskId& task_id, const JobId& job_id, States states) {
  if (capacity_ == 0) return;
  std::unique_ptr<States> evicted;  // Freed outside the lock.
  std::lock_guard<std::mutex> lock(mutex_);
  Key key{task_id, job_id};
  auto found = entries_.find(key);
  if (found != entries_.end()) {
    order_.erase(found->second.position);
    entries_.erase(found);
  }
  order_.push_front(key);
  entries_.emplace(key, Entry{std::make_unique<States>(std::move(states)), order_.begin()});
  if (entries_.size() > capacity_) {
    auto oldest = entries_.find(order_.back());
    evicted = std::move(oldest->second.states);
    entries_.erase(oldest);
    order_.pop_back();
  }
}

std::unique_ptr<StepStateCache::States> StepStateCache::Take(const TaskId& task_id,
                                                             const JobId& job_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = entries_.find(Key{task_id, job_id});
  if (found == entries_.end()) return nullptr;
  std::unique_ptr<States> states = std::move(found->second.states);
  order_.erase(found->second.position);
  entries_.erase(found);
  return states;
}

void StepStateCache::Erase(const TaskId& task_id, const JobId& job_id) {
  std::unique_ptr<States> states = Take(task_id, job_id);
}

size_t StepStateCache::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return entries_.size();
}

}  // namespace canopy::aggregator
