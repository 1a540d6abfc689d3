// The heavy-hitters walk a collector configuration describes, run against
// the leader: each round becomes a collection job for the configuration's
// batch with the Poplar1 aggregation parameter of the round's candidates
// (and the walk's walk_id for a leader-selected batch), and the walk's
// state is saved after each round so that a killed walk resumes.
#ifndef CANOPY_COLLECTOR_APP_CONFIGURED_WALK_H_
#define CANOPY_COLLECTOR_APP_CONFIGURED_WALK_H_

#include "collector_app/collector.h"
#include "collector_app/heavy_hitters_walk.h"
#include "crypto/error.h"
#include "dap/http_client.h"

namespace canopy::collector {

// Runs (or resumes, from heavy_hitters.resume_state_path) the walk of
// `setup`, whose key it consumes. `observer` hears of each round. Errors
// (kInvalidArgument) for a configuration without heavy_hitters or a task
// that is not Poplar1; the resume file's (StartOrResumeWalk), the
// collector's and the walk's errors.
Result<WalkResult> RunConfiguredWalk(CollectorSetup& setup, dap::HttpClient& http,
                                     const WalkObserver& observer = {});

}  // namespace canopy::collector

#endif  // CANOPY_COLLECTOR_APP_CONFIGURED_WALK_H_
