#include "collector_app/configured_walk.h"

#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "collector_app/walk_state.h"
#include "dap/task.h"
#include "poplar/poplar1.h"

namespace canopy::collector {
namespace {

// The collection job request of one round of the walk.
dap::CollectionJobReq RoundRequest(const dap::Query& query, std::vector<uint8_t> agg_param,
                                   const WalkIdentity& identity) {
  dap::CollectionJobReq request;
  request.query = query;
  request.agg_param = std::move(agg_param);
  if (identity.batch.walk_id) {
    dap::Extension walk_id;
    walk_id.type = dap::kWalkIdExtension;
    walk_id.data.assign(identity.batch.walk_id->begin(), identity.batch.walk_id->end());
    request.extensions.push_back(std::move(walk_id));
  }
  return request;
}

}  // namespace

Result<WalkResult> RunConfiguredWalk(CollectorSetup& setup, dap::HttpClient& http,
                                     const WalkObserver& observer) {
  const config::CollectorConfig& config = setup.config;
  if (!config.has_heavy_hitters()) {
    return MakeError(ErrorCode::kInvalidArgument, "heavy_hitters: required for a walk");
  }
  const auto* poplar1 = dynamic_cast<const poplar::Poplar1*>(setup.task.vdaf.get());
  if (poplar1 == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument, "the task is not a Poplar1 task");
  }
  auto settings = WalkSettings::FromConfig(config.heavy_hitters());
  if (!settings) return std::unexpected(settings.error());
  auto identity = WalkIdentityFromConfig(config);
  if (!identity) return std::unexpected(identity.error());
  auto query = BatchQuery(config, setup.task.configuration);
  if (!query) return std::unexpected(query.error());
  const std::string& state_path = config.heavy_hitters().resume_state_path();
  auto opened = StartOrResumeWalk(state_path, *identity, *settings);
  if (!opened) return std::unexpected(opened.error());
  // A fresh leader-selected walk records its walk ID before the first round:
  // the leader binds a batch to it at the first collection, so a walk
  // interrupted during that round must come back with the same ID.
  if (!state_path.empty() && opened->resumed_rounds == 0 &&
      opened->identity.batch.leader_selected) {
    auto saved = SaveWalkState(state_path, opened->identity, opened->walk);
    if (!saved) return std::unexpected(saved.error());
  }
  if (setup.key == nullptr) {
    return MakeError(ErrorCode::kInvalidArgument, "the collector's key was already used");
  }
  auto collector =
      Collector::Create(setup.task, std::move(*setup.key), setup.hpke_config, http, setup.options);
  setup.key.reset();
  if (!collector) return std::unexpected(collector.error());

  // The previous round's parameter lets MakeAggParam check the walk.
  std::shared_ptr<const poplar::Poplar1AggParam> previous;
  const WalkIdentity walk_identity = opened->identity;
  RoundRunner runner = [&](size_t level,
                           std::span<const idpf::BitString> candidates) -> Result<RoundResult> {
    auto agg_param = poplar1->MakeAggParam(
        level, std::vector<idpf::BitString>(candidates.begin(), candidates.end()), previous.get());
    if (!agg_param) return std::unexpected(agg_param.error());
    auto request = RoundRequest(*query, poplar1->EncodeAggParam(**agg_param), walk_identity);
    auto collection = collector->Collect(request);
    if (!collection) return std::unexpected(collection.error());
    previous = *agg_param;
    RoundResult result;
    result.report_count = collection->report_count;
    result.counts.reserve(collection->result.size());
    for (unsigned __int128 count : collection->result) {
      // A count is at most the report count; anything wider is not a count.
      if (count > std::numeric_limits<uint64_t>::max()) {
        return MakeError(ErrorCode::kVerifyFailed, "an unsharded count does not fit 64 bits");
      }
      result.counts.push_back(static_cast<uint64_t>(count));
    }
    return result;
  };
  return RunWalk(std::move(opened->walk), runner, observer,
                 MakeStateRecorder(state_path, walk_identity), opened->resumed_rounds);
}

}  // namespace canopy::collector
