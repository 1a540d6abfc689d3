// The command line of canopy-client, parsed and checked apart from what it
// does, so that every usage error can be tested.
#ifndef CANOPY_CLIENT_APP_COMMAND_LINE_H_
#define CANOPY_CLIENT_APP_COMMAND_LINE_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "client_app/bulk_upload.h"
#include "client_app/measurement_input.h"
#include "client_app/workload.h"
#include "crypto/error.h"

namespace canopy::client {

// The usage text that --help prints and usage errors end with.
extern const char kUsage[];

// How progress is shown on stderr.
enum class ProgressMode { kAuto, kBar, kLines, kOff };

// `canopy-client upload ...`.
struct UploadCommand {
  std::string task_path;
  std::string leader_url;  // Empty: the task's.
  std::string helper_url;
  // Exactly one source of measurements: `strings` (from --string or
  // --measurement), `input_path` ("-" for stdin), or `workload`.
  std::vector<std::string> strings;
  std::optional<std::string> input_path;
  std::optional<WorkloadOptions> workload;  // max_length 0: the task's BITS / 8.
  std::string true_counts_path;             // Workload only; empty: not written.
  std::string strings_output_path;          // Workload only; empty: not written.
  StringFormat format = StringFormat::kText;
  std::optional<uint64_t> time_seconds;
  size_t reports_per_request = kDefaultReportsPerRequest;
  size_t threads = 0;  // 0: one per hardware thread.
  std::string token;
  ProgressMode progress = ProgressMode::kAuto;
};

// `canopy-client generate ...`.
struct GenerateCommand {
  WorkloadOptions workload;
  std::string output_path;       // Empty: not written.
  std::string true_counts_path;  // Empty: not written.
};

struct CommandLine {
  enum class Kind { kHelp, kUpload, kGenerate };
  Kind kind = Kind::kHelp;
  UploadCommand upload;
  GenerateCommand generate;
};

// Parses the arguments after the program name. Flags take their value as
// the next argument or after '=' ("--threads=4"). Errors
// (kInvalidArgument): no or an unknown command, an unknown flag or one
// another command takes, a missing or malformed value, a flag given twice
// (except --string), missing required flags, and combinations that make no
// sense (two measurement sources, workload flags without --zipf-reports,
// --format bits with a workload); each message names the flag.
Result<CommandLine> ParseCommandLine(std::span<const std::string_view> arguments);

}  // namespace canopy::client

#endif  // CANOPY_CLIENT_APP_COMMAND_LINE_H_
