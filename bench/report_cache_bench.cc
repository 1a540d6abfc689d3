// The report cache as a walk uses it: N reports cached, then each level
// takes every report out and puts it back, in the order they were first
// stored. Reports per second for one thread, at 100,000 and 1,000,000
// reports (the cache's bookkeeping only: the reports are empty stand-ins).
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "aggregator/report_cache.h"

namespace canopy::bench {
namespace {

class Empty final : public poplar::PreparedReport {};

void BM_ReportCacheTakeAndPut(benchmark::State& state) {
  const size_t reports = static_cast<size_t>(state.range(0));
  aggregator::ReportCache cache(reports);
  dap::TaskId task_id{};
  task_id.fill(7);
  std::mt19937_64 random(1);
  std::vector<dap::ReportId> ids(reports);
  for (dap::ReportId& id : ids) {
    for (uint8_t& byte : id) byte = static_cast<uint8_t>(random());
    cache.Put(task_id, id, std::make_unique<Empty>());
  }
  size_t next = 0;
  for (auto _ : state) {
    const dap::ReportId& id = ids[next];
    auto report = cache.Take(task_id, id);
    benchmark::DoNotOptimize(report.get());
    cache.Put(task_id, id, std::move(report));
    if (++next == reports) next = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReportCacheTakeAndPut)->Arg(100000)->Arg(1000000);

}  // namespace
}  // namespace canopy::bench
