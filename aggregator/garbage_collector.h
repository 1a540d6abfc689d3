// Garbage collection, for both roles: deletes each task's reports older than
// the report expiry (the leader's uploaded reports, either aggregator's held
// shares) and its finished jobs created longer ago. The leader runs it from
// its drivers' loop; the helper, which has no drivers, from a thread of its
// own (RunGarbageCollection).
#ifndef CANOPY_AGGREGATOR_GARBAGE_COLLECTOR_H_
#define CANOPY_AGGREGATOR_GARBAGE_COLLECTOR_H_

#include <atomic>
#include <chrono>
#include <cstdint>

#include "aggregator/datastore.h"
#include "aggregator/task_registry.h"

namespace canopy::aggregator {

// One pass over every task, one transaction each, at `now` (POSIX seconds).
// Logs a line when it deleted anything or took a second or more. Returns how
// many rows were deleted. Errors: the datastore's; the tasks
// before the failing one keep their deletions (committed).
Result<size_t> CollectExpired(Datastore& datastore, const TaskRegistry& tasks, uint64_t now,
                              uint64_t report_expiry_seconds);

// Runs CollectExpired every `interval` until `stop` becomes true (checked
// at least once a second), logging failures.
void RunGarbageCollection(Datastore& datastore, const TaskRegistry& tasks,
                          uint64_t report_expiry_seconds, std::chrono::seconds interval,
                          const std::atomic<bool>& stop);

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_GARBAGE_COLLECTOR_H_
