// Loading Canopy's configuration files: text-format Protobuf with the schemas
// of proto/canopy_config.proto.
//
// Each loader reads a file, parses it strictly (unknown fields, syntax errors,
// wrong types and repeated singular fields are refused) and then checks what
// the schema cannot say: ranges, base64url lengths, URLs, which fields go
// together. Every problem found is reported in one Error whose message holds
// one line per problem, each starting with the file:
//
//   tasks/hh.textproto:7:3: Message type "canopy.config.TaskDefinition" has no field named
//   "min_batchsize". tasks/hh.textproto:4: task_id: must be 32 bytes of base64url, got 31
//   tasks/hh.textproto: vdaf: no VDAF set
//
// (a line number is given whenever the offending field is written in the
// file). Error codes: kIoError when the file cannot be read (the message names
// the path), kInvalidArgument for bad content. Nothing here throws.
//
// The loaders return messages with relative paths resolved against the
// directory of the file naming them, and with defaulted numbers (the schema's
// "0 means ...") replaced by their effective values. Key files are not read
// unless LoadOptions::check_key_files asks for it, so that a configuration can
// be checked on a machine without its keys.
#ifndef CANOPY_CONFIG_CONFIG_H_
#define CANOPY_CONFIG_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/error.h"
#include "crypto/hpke.h"
#include "dap/messages.h"
#include "proto/canopy_config.pb.h"

namespace canopy::config {

// Effective values of the schema's defaults.
inline constexpr uint64_t kDefaultTolerableClockSkewSeconds = 60;
inline constexpr uint64_t kDefaultMaxRequestBodyBytes = uint64_t{32} << 20;
inline constexpr uint32_t kDefaultRequestTimeoutSeconds = 30;
inline constexpr uint32_t kDefaultMaxConnections = 1024;
inline constexpr uint64_t kDefaultReportExpirySeconds = 7 * 24 * 3600;
inline constexpr uint64_t kDefaultGarbageCollectionIntervalSeconds = 300;
inline constexpr uint32_t kDefaultMaxReportsPerAggregationJob = 500;
inline constexpr uint32_t kMaxReportsPerAggregationJob = 100000;
inline constexpr uint32_t kDefaultMaxReportsPerHeldAggregationJob = 4000;
inline constexpr uint64_t kDefaultReportCacheReports = 100000;
inline constexpr uint32_t kDefaultWalCheckpointMib = 512;
inline constexpr uint32_t kMaxWalCheckpointMib = 65536;
// The heavy-hitters walk's stride when unset: the fastest for walks of 10,000
// to 1,000,000 reports over 256-bit strings (docs/PERFORMANCE.md, "Three bits
// a round").
inline constexpr uint32_t kDefaultBitsPerRound = 3;
inline constexpr uint64_t kMaxReportCacheReports = 100000000;
inline constexpr uint32_t kDefaultPollIntervalSeconds = 5;
inline constexpr uint32_t kDefaultCollectionTimeoutSeconds = 3600;

// Files larger than this are refused (kInvalidArgument) before parsing.
inline constexpr uint64_t kMaxConfigFileBytes = 16 << 20;

// What the loaders check beyond the file itself.
struct LoadOptions {
  // Also read every HPKE key file the configuration names and check that it
  // holds 32 bytes of base64url (and that a public key file matches its
  // private key). Errors name the configuration file, the field and the key
  // file, never the key.
  bool check_key_files = false;
};

// Loads an aggregator's configuration. Task files it names are not loaded:
// see LoadAggregatorTasks. Errors: kIoError (unreadable file),
// kInvalidArgument (bad content), as described above.
Result<AggregatorConfig> LoadAggregatorConfig(const std::string& path,
                                              const LoadOptions& options = {});

// Loads a task file holding either one TaskDefinition or a TaskList (a file
// whose first field is `task { ... }`), and checks each task as
// ToTaskConfiguration does. Returns the tasks in file order. Errors as
// LoadAggregatorConfig's; duplicate task IDs are refused.
Result<std::vector<TaskDefinition>> LoadTaskFile(const std::string& path);

// Loads a task file that must hold exactly one task (either form).
Result<TaskDefinition> LoadTask(const std::string& path);

// Loads every task file of `config.task_files()` (already resolved by
// LoadAggregatorConfig), requiring each task to carry verify keys, and
// refusing a task ID defined twice across the files.
Result<std::vector<TaskDefinition>> LoadAggregatorTasks(const AggregatorConfig& config);

// Loads a collector's configuration. Errors as LoadAggregatorConfig's.
Result<CollectorConfig> LoadCollectorConfig(const std::string& path,
                                            const LoadOptions& options = {});

// The same three, from text in memory; `file_name` stands for the file in
// messages and is the base of relative paths.
Result<AggregatorConfig> ParseAggregatorConfig(std::string_view text, const std::string& file_name,
                                               const LoadOptions& options = {});
Result<std::vector<TaskDefinition>> ParseTaskFile(std::string_view text,
                                                  const std::string& file_name);
Result<CollectorConfig> ParseCollectorConfig(std::string_view text, const std::string& file_name,
                                             const LoadOptions& options = {});

// Builds the DAP-19 TaskConfiguration of a task: endpoints as URL bytes,
// vdaf_type and vdaf_configuration from the VDAF's parameters, the
// task_interval extension (in time_precision units) and the multi-level
// collection extension, in increasing type order; then checks it with
// dap::ValidateTaskConfiguration. Errors (kInvalidArgument): one line per
// problem, "field: problem", naming the task's field
// ("task_interval.start_seconds: must be a multiple of ..."). The loaders run
// the same checks and add the file and line.
Result<dap::TaskConfiguration> ToTaskConfiguration(const TaskDefinition& task);

// Overwrites the verification keys that `task` holds (its verify_keys'
// strings, left in place as zeros), for a definition about to be dropped:
// the keys are secret, and the task built from it keeps its own copy.
void WipeVerifyKeys(TaskDefinition& task);

// The task's ID. Errors (kInvalidArgument): not 32 bytes of base64url.
Result<dap::TaskId> DecodeTaskId(std::string_view base64url);

// The DAP HpkeConfig of a task's collector_hpke_config. Errors
// (kInvalidArgument): an ID above 255, an unsupported suite, a public key that
// is not 32 bytes of base64url.
Result<dap::HpkeConfig> ToHpkeConfig(const CollectorHpkeConfig& config);

// The prefix of a (checked) PrefixThreshold as bits, most significant first.
std::vector<bool> PrefixBits(const PrefixThreshold& prefix_threshold);

// Reads a key file: unpadded base64url of 32 bytes, surrounding whitespace
// ignored. Errors: kIoError (unreadable, naming the path), kInvalidArgument
// (not 32 bytes of base64url; the message never shows the file's content).
Result<crypto::hpke::SecretBytes> ReadKeyFile(const std::string& path);

}  // namespace canopy::config

#endif  // CANOPY_CONFIG_CONFIG_H_
