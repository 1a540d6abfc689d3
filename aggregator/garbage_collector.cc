#include "aggregator/garbage_collector.h"

#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

#include "aggregator/internal/common.h"

namespace canopy::aggregator {
namespace {

// A pass that takes this long is logged even when it deleted nothing.
constexpr std::chrono::milliseconds kSlowPass{1000};

}  // namespace

Result<size_t> CollectExpired(Datastore& datastore, const TaskRegistry& tasks, uint64_t now,
                              uint64_t report_expiry_seconds) {
  const auto started = std::chrono::steady_clock::now();
  size_t deleted = 0;
  const uint64_t limit_seconds = now - std::min(now, report_expiry_seconds);
  for (const auto& task : tasks.All()) {
    // Report times are in the task's time_precision units.
    const uint64_t precision = std::max<uint64_t>(1, task->configuration.time_precision);
    auto run = datastore.Run([&](Transaction& tx) -> Result<void> {
      auto count = tx.DeleteExpired(task->id, limit_seconds / precision,
                                    static_cast<int64_t>(limit_seconds));
      if (!count) return std::unexpected(count.error());
      deleted += *count;
      return {};
    });
    if (!run) return std::unexpected(run.error());
  }
  // Each task's deletions hold the datastore while they run: a slow pass is
  // worth a line (its time includes any wait for the datastore).
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  if (deleted > 0 || took >= kSlowPass) {
    std::cerr << "canopy-aggregator: garbage collection deleted " << deleted
              << " rows of expired reports and old jobs in " << took.count() << " ms\n";
  }
  return deleted;
}

void RunGarbageCollection(Datastore& datastore, const TaskRegistry& tasks,
                          uint64_t report_expiry_seconds, std::chrono::seconds interval,
                          const std::atomic<bool>& stop) {
  auto next = std::chrono::steady_clock::now();
  while (!stop.load()) {
    if (std::chrono::steady_clock::now() >= next) {
      auto collected =
          CollectExpired(datastore, tasks, internal::NowSeconds(), report_expiry_seconds);
      if (!collected) {
        std::cerr << "canopy-aggregator: garbage collector: " << collected.error().message()
                  << "\n";
      }
      next = std::chrono::steady_clock::now() + interval;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace canopy::aggregator
