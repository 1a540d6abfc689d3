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

// A cache of `reports` empty reports of one task, and their IDs in the order
// they were stored.
struct FilledCache {
  explicit FilledCache(size_t reports) : cache(reports), ids(reports) {
    task_id.fill(7);
    std::mt19937_64 random(1);
    for (dap::ReportId& id : ids) {
      for (uint8_t& byte : id) byte = static_cast<uint8_t>(random());
      cache.Put(task_id, id, std::make_unique<Empty>());
    }
  }
  aggregator::ReportCache cache;
  dap::TaskId task_id{};
  std::vector<dap::ReportId> ids;
};

void BM_ReportCacheTakeAndPut(benchmark::State& state) {
  FilledCache filled(static_cast<size_t>(state.range(0)));
  size_t next = 0;
  for (auto _ : state) {
    const dap::ReportId& id = filled.ids[next];
    auto report = filled.cache.Take(filled.task_id, id);
    benchmark::DoNotOptimize(report.get());
    filled.cache.Put(filled.task_id, id, std::move(report));
    if (++next == filled.ids.size()) next = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReportCacheTakeAndPut)->Arg(100000)->Arg(1000000);

// The same by jobs of 500 reports, as the aggregators take and put them
// (ReportCache::TakeMany and PutMany): items are reports.
void BM_ReportCacheTakeAndPutByJob(benchmark::State& state) {
  constexpr size_t kJob = 500;
  FilledCache filled(static_cast<size_t>(state.range(0)));
  const size_t reports = filled.ids.size();
  std::vector<std::unique_ptr<poplar::PreparedReport>> taken(kJob);
  size_t next = 0;
  for (auto _ : state) {
    const std::span<const dap::ReportId> job(filled.ids.data() + next,
                                             std::min(kJob, reports - next));
    filled.cache.TakeMany(filled.task_id, job, std::span(taken.data(), job.size()));
    benchmark::DoNotOptimize(taken.data());
    filled.cache.PutMany(filled.task_id, job, std::span(taken.data(), job.size()));
    next += job.size();
    if (next == reports) next = 0;
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kJob));
}
BENCHMARK(BM_ReportCacheTakeAndPutByJob)->Arg(100000)->Arg(1000000);

}  // namespace
}  // namespace canopy::bench
