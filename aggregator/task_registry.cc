#include "aggregator/task_registry.h"

#include <utility>

#include "config/config.h"
#include "crypto/secure_wipe.h"
#include "dap/base64url.h"

namespace canopy::aggregator {

Result<std::shared_ptr<const Task>> BuildTask(const config::TaskDefinition& definition) {
  auto task = std::make_shared<Task>();
  auto id = config::DecodeTaskId(definition.task_id());
  if (!id) return std::unexpected(id.error());
  task->id = *id;
  auto configuration = config::ToTaskConfiguration(definition);
  if (!configuration) return std::unexpected(configuration.error());
  task->configuration = std::move(*configuration);
  auto rules = dap::ValidateTaskConfiguration(task->configuration);
  if (!rules) return std::unexpected(rules.error());
  task->rules = *rules;
  auto vdaf = dap::MakeVdaf(task->configuration.vdaf_type, task->configuration.vdaf_configuration);
  if (!vdaf) return std::unexpected(vdaf.error());
  task->vdaf = std::move(*vdaf);
  if (definition.verify_keys().empty()) {
    return MakeError(ErrorCode::kInvalidArgument, "verify_keys: an aggregator needs at least one");
  }
  for (const config::VerifyKey& key : definition.verify_keys()) {
    auto bytes = dap::Base64UrlDecode(key.key());
    if (!bytes || bytes->size() != task->vdaf->verify_key_size() || key.id() > 255) {
      return MakeError(ErrorCode::kInvalidArgument,
                       "verify_keys: key " + std::to_string(key.id()) + " must be " +
                           std::to_string(task->vdaf->verify_key_size()) +
                           " bytes of base64url with an ID below 256");
    }
    task->verify_keys.emplace(static_cast<uint8_t>(key.id()), crypto::hpke::SecretBytes(*bytes));
    crypto::SecureWipeVector(*bytes);
  }
  auto collector = config::ToHpkeConfig(definition.collector_hpke_config());
  if (!collector) return std::unexpected(collector.error());
  task->collector_hpke_config = std::move(*collector);
  task->vdaf_context = dap::VdafContext(task->id);
  return std::shared_ptr<const Task>(std::move(task));
}

void TaskRegistry::Put(std::shared_ptr<const Task> task) {
  std::lock_guard lock(mutex_);
  tasks_[task->id] = std::move(task);
}

bool TaskRegistry::Remove(const dap::TaskId& id) {
  std::lock_guard lock(mutex_);
  return tasks_.erase(id) > 0;
}

std::shared_ptr<const Task> TaskRegistry::Find(const dap::TaskId& id) const {
  std::lock_guard lock(mutex_);
  auto it = tasks_.find(id);
  return it == tasks_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const Task>> TaskRegistry::All() const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<const Task>> all;
  for (const auto& [id, task] : tasks_) all.push_back(task);
  return all;
}

}  // namespace canopy::aggregator
