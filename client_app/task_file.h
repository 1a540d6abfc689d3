// The task a client uploads to, from the project's task file
// (docs/examples/task-*.textproto). Clients get a copy without verify keys.
#ifndef CANOPY_CLIENT_APP_TASK_FILE_H_
#define CANOPY_CLIENT_APP_TASK_FILE_H_

#include <string>

#include "crypto/error.h"
#include "dap/upload_client.h"
#include "proto/canopy_config.pb.h"

namespace canopy::client {

// A loaded task: its definition and what an upload client needs.
struct ClientTask {
  config::TaskDefinition definition;
  // The task ID and DAP task configuration; the URLs are left empty (the
  // configuration's endpoints are used unless the caller sets them).
  dap::UploadTask upload;
};

// Loads a task file holding exactly one task, with or without verify keys.
// Errors: those of config::LoadTask (kIoError for an unreadable file,
// kInvalidArgument naming the file, line and field), and of
// config::ToTaskConfiguration and config::DecodeTaskId, prefixed with the
// path.
Result<ClientTask> LoadClientTask(const std::string& path);

// The same from a definition already in memory. Errors: those of
// config::ToTaskConfiguration and config::DecodeTaskId.
Result<ClientTask> MakeClientTask(const config::TaskDefinition& definition);

}  // namespace canopy::client

#endif  // CANOPY_CLIENT_APP_TASK_FILE_H_
