// The report cache as a walk uses it: N reports cached, then each level
// takes every report out and puts it back, in the order they were first
// stored. Reports per second for one thread, at 100,000 and 1,000,000
// reports (the cache's bookkeeping only: the reports are empty stand-ins),
// one report at a time and by jobs.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <span>
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

// The same by jobs of 500 reports, as the aggregators take and put them
// (ReportCache::TakeMany and PutMany): items are reports.
void BM_ReportCacheTakeAndPutByJob(benchmark::State& state) {
  constexpr size_t kJob = 500;
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
  std::vector<std::unique_ptr<poplar::PreparedReport>> taken(kJob);
  size_t next = 0;
  for (auto _ : state) {
    const std::span<const dap::ReportId> job(ids.data() + next, std::min(kJob, reports - next));
    cache.TakeMany(task_id, job, std::span(taken.data(), job.size()));
    benchmark::DoNotOptimize(taken.data());
    cache.PutMany(task_id, job, std::span(taken.data(), job.size()));
    next += job.size();
    if (next == reports) next = 0;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kJob));
}
BENCHMARK(BM_ReportCacheTakeAndPutByJob)->Arg(100000)->Arg(1000000);

}  // namespace
}  // namespace canopy::bench
