// The level claims as a walk's level fills them (aggregator/level_claims.h):
// each job of 500 reports reserves its reports' claims for the level and
// keeps them; after N reports the walk moves to the next level, and levels
// beyond the default budget (two of a million) are evicted. Claims per
// second for one thread; the reports' IDs are random, as clients make them.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <span>
#include <vector>

#include "aggregator/level_claims.h"

namespace canopy::bench {
namespace {

void BM_LevelClaimsReserveAndKeep(benchmark::State& state) {
  constexpr size_t kJob = 500;
  const size_t reports = static_cast<size_t>(state.range(0));
  std::mt19937_64 random(1);
  std::vector<dap::ReportId> ids(reports);
  for (dap::ReportId& id : ids) {
    for (uint8_t& byte : id) byte = static_cast<uint8_t>(random());
  }
  aggregator::LevelClaims claims;
  dap::TaskId task_id{};
  task_id.fill(7);
  const aggregator::LevelClaims::Loader nothing_stored = [] {
    return Result<std::vector<dap::ReportId>>(std::vector<dap::ReportId>());
  };
  dap::Bytes agg_param = {0, 0};
  size_t next = 0;
  for (auto _ : state) {
    auto reservation = claims.Reserve(task_id, agg_param,
                                      std::span(ids.data() + next, std::min(kJob, reports - next)),
                                      nothing_stored);
    if (!reservation) {
      state.SkipWithError(reservation.error().message().c_str());
      break;
    }
    reservation->KeepAll();
    next += kJob;
    if (next >= reports) {
      next = 0;
      if (++agg_param[1] == 0) ++agg_param[0];  // The next level.
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kJob));
}
BENCHMARK(BM_LevelClaimsReserveAndKeep)->Arg(100000)->Arg(1000000);

}  // namespace
}  // namespace canopy::bench
