#include "client_app/command_line.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>

namespace canopy::client {

const char kUsage[] =
    "usage:\n"
    "  canopy-client upload --task FILE [--leader-url URL] [--helper-url URL]\n"
    "      (--string S [--string S ...] | --input FILE|- | --zipf-reports N [WORKLOAD])\n"
    "      [--format text|bits] [--time POSIX_SECONDS] [--reports-per-request N]\n"
    "      [--threads N] [--token TOKEN] [--progress auto|bar|lines|off]\n"
    "  canopy-client generate --reports N --max-length BYTES [--zipf-exponent S]\n"
    "      [--distinct N] [--seed N] [--output FILE] [--true-counts FILE]\n"
    "  canopy-client help\n"
    "\n"
    "upload: sends one report per measurement to the task's leader.\n"
    "  --task FILE              the task file (a copy without verify keys)\n"
    "  --leader-url, --helper-url URL\n"
    "                           where to reach the aggregators (default: the task's URLs)\n"
    "  --string S, --measurement S\n"
    "                           one measurement (repeatable)\n"
    "  --input FILE|-           one measurement a line, from a file or stdin\n"
    "  --format text|bits       Poplar1: strings of bytes, zero-padded to BITS/8 (default),\n"
    "                           or lines of exactly BITS binary digits\n"
    "  --time POSIX_SECONDS     the reports' time (default: now)\n"
    "  --reports-per-request N  reports per upload request (default 500)\n"
    "  --threads N              upload threads (default: one per hardware thread)\n"
    "  --token TOKEN            bearer token for both aggregators\n"
    "  --progress MODE          auto (a bar on a terminal, else a line every 10 s),\n"
    "                           bar, lines or off\n"
    "  Prio3 measurements: Count 0 or 1; Sum an integer; Histogram a bucket index;\n"
    "  SumVec and MultihotCountVec comma-separated integers (\"0,1,0\").\n"
    "WORKLOAD (synthetic Poplar1 strings; upload --zipf-reports N, or generate):\n"
    "  --zipf-reports N, --reports N\n"
    "                           reports to draw\n"
    "  --zipf-exponent S        the Zipf exponent (default 1.03)\n"
    "  --distinct N             distinct strings to draw from (default 1000)\n"
    "  --seed N                 the seed; the same seed gives the same workload (default 1)\n"
    "  --max-length BYTES       longest string (upload default: the task's BITS/8)\n"
    "  --true-counts FILE       write \"count,string\" CSV, count descending\n"
    "  --strings-output FILE    (upload) / --output FILE (generate):\n"
    "                           write the drawn strings, one a line\n"
    "\n"
    "exit status: 0 all reports accepted (or files written), 1 reports refused or an\n"
    "error, 2 bad arguments.\n";

namespace {

struct Flag {
  std::string_view name;
  bool upload;
  bool generate;
  bool repeatable = false;
};

constexpr Flag kFlags[] = {
    {"task", true, false},
    {"leader-url", true, false},
    {"helper-url", true, false},
    {"string", true, false, true},
    {"measurement", true, false, true},
    {"input", true, false},
    {"format", true, false},
    {"time", true, false},
    {"reports-per-request", true, false},
    {"threads", true, false},
    {"token", true, false},
    {"progress", true, false},
    {"zipf-reports", true, false},
    {"reports", false, true},
    {"zipf-exponent", true, true},
    {"distinct", true, true},
    {"seed", true, true},
    {"max-length", true, true},
    {"true-counts", true, true},
    {"strings-output", true, false},
    {"output", false, true},
};

std::unexpected<Error> Usage(const std::string& message) {
  return MakeError(ErrorCode::kInvalidArgument, message);
}

// Flag name -> values, in order.
using Values = std::map<std::string, std::vector<std::string>, std::less<>>;

// Sets `help` (and stops) at --help or -h in the place of a flag.
Result<Values> CollectFlags(std::span<const std::string_view> arguments, bool upload, bool& help) {
  Values values;
  for (size_t i = 0; i < arguments.size(); ++i) {
    std::string_view argument = arguments[i];
    if (argument == "--help" || argument == "-h") {
      help = true;
      return values;
    }
    if (!argument.starts_with("--")) {
      return Usage("unexpected argument \"" + std::string(argument) + "\" (flags start with --)");
    }
    std::string_view name = argument.substr(2);
    std::optional<std::string_view> value;
    if (size_t equals = name.find('='); equals != std::string_view::npos) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
    }
    const Flag* flag = nullptr;
    for (const Flag& candidate : kFlags) {
      if (candidate.name == name) flag = &candidate;
    }
    if (flag == nullptr) return Usage("unknown flag --" + std::string(name));
    if (!(upload ? flag->upload : flag->generate)) {
      return Usage("--" + std::string(name) + " is not a flag of " +
                   (upload ? "upload" : "generate"));
    }
    if (!value) {
      if (i + 1 >= arguments.size()) return Usage("--" + std::string(name) + " needs a value");
      value = arguments[++i];
    }
    auto& list = values[std::string(name)];
    if (!list.empty() && !flag->repeatable) {
      return Usage("--" + std::string(name) + " is given twice");
    }
    list.emplace_back(*value);
  }
  return values;
}

std::optional<std::string> Take(const Values& values, std::string_view name) {
  auto it = values.find(name);
  if (it == values.end()) return std::nullopt;
  return it->second.front();
}

Result<uint64_t> FlagNumber(std::string_view name, const std::string& text, uint64_t min,
                            uint64_t max) {
  auto value = ParseNumber(text);
  if (!value) return Usage("--" + std::string(name) + ": " + value.error().message());
  if (*value < min || *value > max) {
    return Usage("--" + std::string(name) + " must be in [" + std::to_string(min) + ", " +
                 std::to_string(max) + "], got " + text);
  }
  return *value;
}

// Reads the workload flags into `workload`. max_length stays 0 when not
// given.
Result<void> ParseWorkloadFlags(const Values& values, WorkloadOptions& workload) {
  workload.max_length = 0;
  if (auto text = Take(values, "zipf-exponent")) {
    errno = 0;
    char* end = nullptr;
    const double exponent = std::strtod(text->c_str(), &end);
    if (text->empty() || *end != '\0' || errno != 0 || !std::isfinite(exponent) || exponent < 0 ||
        exponent > 100) {
      return Usage("--zipf-exponent must be a number in [0, 100], got \"" + *text + "\"");
    }
    workload.exponent = exponent;
  }
  if (auto text = Take(values, "distinct")) {
    auto value = FlagNumber("distinct", *text, 1, uint64_t{1} << 32);
    if (!value) return std::unexpected(value.error());
    workload.distinct = *value;
  }
  if (auto text = Take(values, "seed")) {
    auto value = FlagNumber("seed", *text, 0, UINT64_MAX);
    if (!value) return std::unexpected(value.error());
    workload.seed = *value;
  }
  if (auto text = Take(values, "max-length")) {
    auto value = FlagNumber("max-length", *text, 1, 8192);
    if (!value) return std::unexpected(value.error());
    workload.max_length = *value;
  }
  return {};
}

Result<UploadCommand> ParseUpload(const Values& values) {
  UploadCommand command;
  auto task = Take(values, "task");
  if (!task) return Usage("upload needs --task FILE");
  command.task_path = *task;
  command.leader_url = Take(values, "leader-url").value_or("");
  command.helper_url = Take(values, "helper-url").value_or("");
  for (std::string_view name : {"string", "measurement"}) {
    if (auto it = values.find(name); it != values.end()) {
      command.strings.insert(command.strings.end(), it->second.begin(), it->second.end());
    }
  }
  command.input_path = Take(values, "input");
  const int sources = (values.contains("string") || values.contains("measurement")) +
                      command.input_path.has_value() + values.contains("zipf-reports");
  if (sources != 1) {
    return Usage(
        "upload needs exactly one source of measurements: --string/--measurement, --input or "
        "--zipf-reports");
  }
  if (auto text = Take(values, "zipf-reports")) {
    WorkloadOptions workload;
    auto reports = FlagNumber("zipf-reports", *text, 1, uint64_t{1} << 32);
    if (!reports) return std::unexpected(reports.error());
    workload.reports = *reports;
    if (auto parsed = ParseWorkloadFlags(values, workload); !parsed) {
      return std::unexpected(parsed.error());
    }
    command.workload = workload;
    command.true_counts_path = Take(values, "true-counts").value_or("");
    command.strings_output_path = Take(values, "strings-output").value_or("");
  } else {
    for (std::string_view name :
         {"zipf-exponent", "distinct", "seed", "max-length", "true-counts", "strings-output"}) {
      if (values.contains(name)) return Usage("--" + std::string(name) + " needs --zipf-reports");
    }
  }
  if (auto text = Take(values, "format")) {
    auto format = ParseStringFormat(*text);
    if (!format) return Usage("--format: " + format.error().message());
    command.format = *format;
    if (command.workload && command.format == StringFormat::kBits) {
      return Usage("--format bits cannot be used with --zipf-reports (workloads are text)");
    }
  }
  if (auto text = Take(values, "time")) {
    auto value = FlagNumber("time", *text, 0, UINT64_MAX);
    if (!value) return std::unexpected(value.error());
    command.time_seconds = *value;
  }
  if (auto text = Take(values, "reports-per-request")) {
    auto value = FlagNumber("reports-per-request", *text, 1, 1000000);
    if (!value) return std::unexpected(value.error());
    command.reports_per_request = *value;
  }
  if (auto text = Take(values, "threads")) {
    auto value = FlagNumber("threads", *text, 1, 1024);
    if (!value) return std::unexpected(value.error());
    command.threads = *value;
  }
  command.token = Take(values, "token").value_or("");
  if (auto text = Take(values, "progress")) {
    static const std::map<std::string, ProgressMode, std::less<>> kModes = {
        {"auto", ProgressMode::kAuto},
        {"bar", ProgressMode::kBar},
        {"lines", ProgressMode::kLines},
        {"off", ProgressMode::kOff}};
    auto it = kModes.find(*text);
    if (it == kModes.end()) {
      return Usage("--progress must be auto, bar, lines or off, got \"" + *text + "\"");
    }
    command.progress = it->second;
  }
  return command;
}

Result<GenerateCommand> ParseGenerate(const Values& values) {
  GenerateCommand command;
  auto reports = Take(values, "reports");
  if (!reports) return Usage("generate needs --reports N");
  auto count = FlagNumber("reports", *reports, 1, uint64_t{1} << 32);
  if (!count) return std::unexpected(count.error());
  command.workload.reports = *count;
  if (auto parsed = ParseWorkloadFlags(values, command.workload); !parsed) {
    return std::unexpected(parsed.error());
  }
  if (command.workload.max_length == 0) {
    return Usage("generate needs --max-length BYTES (a task of BITS bits takes BITS/8)");
  }
  command.output_path = Take(values, "output").value_or("");
  command.true_counts_path = Take(values, "true-counts").value_or("");
  if (command.output_path.empty() && command.true_counts_path.empty()) {
    return Usage("generate needs --output FILE or --true-counts FILE (or both)");
  }
  return command;
}

}  // namespace

Result<CommandLine> ParseCommandLine(std::span<const std::string_view> arguments) {
  if (arguments.empty()) return Usage("no command given");
  const std::string_view command = arguments.front();
  CommandLine line;
  if (command == "help" || command == "--help" || command == "-h") return line;
  const bool upload = command == "upload";
  if (!upload && command != "generate") {
    return Usage("unknown command \"" + std::string(command) + "\" (expected upload or generate)");
  }
  bool help = false;
  auto values = CollectFlags(arguments.subspan(1), upload, help);
  if (help) return line;
  if (!values) return std::unexpected(values.error());
  if (upload) {
    auto parsed = ParseUpload(*values);
    if (!parsed) return std::unexpected(parsed.error());
    line.kind = CommandLine::Kind::kUpload;
    line.upload = std::move(*parsed);
  } else {
    auto parsed = ParseGenerate(*values);
    if (!parsed) return std::unexpected(parsed.error());
    line.kind = CommandLine::Kind::kGenerate;
    line.generate = std::move(*parsed);
  }
  return line;
}

}  // namespace canopy::client
