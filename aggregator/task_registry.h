// The tasks an aggregator serves, in memory, built from their definitions:
// the DAP TaskConfiguration, the VDAF, the verification keys and the
// collector's HPKE configuration. Tasks come from files at start and from the
// admin endpoint at run time; both are persisted in the datastore so that a
// restart serves the same tasks.
#ifndef CANOPY_AGGREGATOR_TASK_REGISTRY_H_
#define CANOPY_AGGREGATOR_TASK_REGISTRY_H_

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "crypto/error.h"
#include "crypto/hpke.h"
#include "dap/messages.h"
#include "dap/task.h"
#include "poplar/vdaf.h"
#include "proto/canopy_config.pb.h"

namespace canopy::aggregator {

// One task, ready to serve. Immutable once built; shared by the requests
// that use it.
struct Task {
  dap::TaskId id{};
  dap::TaskConfiguration configuration;
  dap::TaskRules rules;
  std::unique_ptr<poplar::Vdaf> vdaf;
  // Verification keys by ID (secret).
  std::map<uint8_t, crypto::hpke::SecretBytes> verify_keys;
  dap::HpkeConfig collector_hpke_config;
  // The VDAF application context, "dap-19" || task_id.
  dap::Bytes vdaf_context;

  bool multi_level() const { return rules.multi_level.has_value(); }
  bool leader_selected() const {
    return configuration.batch_mode == dap::BatchMode::kLeaderSelected;
  }
};

// Builds a Task from its definition. Errors (kInvalidArgument): the
// definition's problems, one per line, as config::ToTaskConfiguration and
// the VDAF report them; a task without verification keys.
Result<std::shared_ptr<const Task>> BuildTask(const config::TaskDefinition& definition);

// The set of tasks, safe to use from several threads.
class TaskRegistry {
 public:
  // Adds or replaces a task.
  void Put(std::shared_ptr<const Task> task);
  // Removes a task; false when it was not there.
  bool Remove(const dap::TaskId& id);
  // The task, or null.
  std::shared_ptr<const Task> Find(const dap::TaskId& id) const;
  std::vector<std::shared_ptr<const Task>> All() const;

 private:
  mutable std::mutex mutex_;
  std::map<dap::TaskId, std::shared_ptr<const Task>> tasks_;
};

}  // namespace canopy::aggregator

#endif  // CANOPY_AGGREGATOR_TASK_REGISTRY_H_
