#include "client_app/task_file.h"

#include <utility>

#include "config/config.h"

namespace canopy::client {

Result<ClientTask> MakeClientTask(const config::TaskDefinition& definition) {
  auto task_id = config::DecodeTaskId(definition.task_id());
  if (!task_id) return std::unexpected(task_id.error());
  auto configuration = config::ToTaskConfiguration(definition);
  if (!configuration) return std::unexpected(configuration.error());
  ClientTask task;
  task.definition = definition;
  task.upload.task_id = *task_id;
  task.upload.task_configuration = std::move(*configuration);
  return task;
}

Result<ClientTask> LoadClientTask(const std::string& path) {
  auto definition = config::LoadTask(path);
  if (!definition) return std::unexpected(definition.error());
  auto task = MakeClientTask(*definition);
  if (!task) {
    return MakeError(task.error().code(), path + ": " + task.error().message());
  }
  return task;
}

}  // namespace canopy::client
