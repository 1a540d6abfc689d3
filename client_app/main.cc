// canopy-client: uploads measurements to a DAP-19 task (strings for Poplar1,
// numbers or vectors for Prio3), and generates synthetic Zipf workloads for
// demos and load tests. `canopy-client help` prints the usage.
//
// Exit status: 0 when every report was accepted (or, for generate, the files
// were written), 1 when reports were refused or something failed, 2 for bad
// arguments.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "client_app/bulk_upload.h"
#include "client_app/command_line.h"
#include "client_app/measurement_input.h"
#include "client_app/progress.h"
#include "client_app/task_file.h"
#include "client_app/workload.h"

namespace canopy::client {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// Refused reports listed one by one, at most.
constexpr size_t kRefusedShown = 10;

int Fail(const std::string& message) {
  std::cerr << "canopy-client: " << message << "\n";
  return kExitFailed;
}

// Writes the workload's requested files.
Result<void> WriteWorkloadFiles(const Workload& workload, const std::string& strings_path,
                                const std::string& true_counts_path) {
  if (!strings_path.empty()) {
    if (auto written = WriteReportStrings(strings_path, workload); !written) return written;
  }
  if (!true_counts_path.empty()) {
    const std::vector<TrueCount> counts = workload.TrueCounts();
    if (auto written = WriteTrueCounts(true_counts_path, counts); !written) return written;
  }
  return {};
}

int Generate(const GenerateCommand& command) {
  auto workload = GenerateWorkload(command.workload);
  if (!workload) return Fail(workload.error().message());
  if (auto written = WriteWorkloadFiles(*workload, command.output_path, command.true_counts_path);
      !written) {
    return Fail(written.error().message());
  }
  std::cerr << "canopy-client: drew " << workload->draws.size() << " reports from "
            << workload->strings.size() << " strings (Zipf exponent " << command.workload.exponent
            << ", seed " << command.workload.seed << ")\n";
  return kExitOk;
}

// Where measurement `index` came from, for the list of refused reports.
std::string SourceOf(const UploadCommand& command, size_t index) {
  if (command.input_path) {
    const std::string name = *command.input_path == "-" ? "stdin" : *command.input_path;
    return name + ":" + std::to_string(index + 1);
  }
  if (!command.strings.empty()) return "measurement #" + std::to_string(index + 1);
  return "report #" + std::to_string(index);
}

int Upload(const UploadCommand& command) {
  auto task = LoadClientTask(command.task_path);
  if (!task) return Fail(task.error().message());
  if (task->definition.verify_keys_size() > 0) {
    std::cerr << "canopy-client: warning: " << command.task_path
              << " holds verify keys, which only the aggregators should have; give clients a "
                 "copy without them\n";
  }
  task->upload.leader_url = command.leader_url;
  task->upload.helper_url = command.helper_url;
  auto parser = MeasurementParser::Create(task->upload.task_configuration, command.format);
  if (!parser) return Fail(command.task_path + ": " + parser.error().message());

  // The measurements: in memory for --string and --input (a BitString or a
  // number each); for a workload, only its distinct strings are encoded.
  std::vector<poplar::Measurement> measurements;
  std::vector<poplar::Measurement> distinct;
  Workload workload;
  size_t count = 0;
  MeasurementSource source;
  if (command.workload) {
    if (!parser->is_poplar1()) {
      return Fail("--zipf-reports needs a Poplar1 task; " + command.task_path + " is " +
                  parser->vdaf().name());
    }
    WorkloadOptions options = *command.workload;
    const size_t task_bytes = parser->bits() / 8;
    if (options.max_length == 0) options.max_length = task_bytes;
    if (options.max_length > task_bytes) {
      return Fail("--max-length " + std::to_string(options.max_length) +
                  " exceeds the task's string length of " + std::to_string(task_bytes) +
                  " bytes (BITS = " + std::to_string(parser->bits()) + ")");
    }
    auto generated = GenerateWorkload(options);
    if (!generated) return Fail(generated.error().message());
    workload = std::move(*generated);
    if (auto written =
            WriteWorkloadFiles(workload, command.strings_output_path, command.true_counts_path);
        !written) {
      return Fail(written.error().message());
    }
    for (size_t i = 0; i < workload.strings.size(); ++i) {
      auto measurement = parser->Parse(workload.strings[i], "string #" + std::to_string(i));
      if (!measurement) return Fail(measurement.error().message());
      distinct.push_back(std::move(*measurement));
    }
    count = workload.draws.size();
    source = [&](size_t index) { return distinct[workload.draws[index]]; };
  } else {
    if (command.input_path) {
      Result<std::vector<poplar::Measurement>> parsed = std::vector<poplar::Measurement>{};
      if (*command.input_path == "-") {
        parsed = parser->ParseLines(std::cin, "stdin");
      } else {
        std::ifstream file(*command.input_path, std::ios::binary);
        if (!file) return Fail(*command.input_path + ": cannot open the file");
        parsed = parser->ParseLines(file, *command.input_path);
      }
      if (!parsed) return Fail(parsed.error().message());
      measurements = std::move(*parsed);
    } else {
      for (size_t i = 0; i < command.strings.size(); ++i) {
        auto measurement =
            parser->Parse(command.strings[i], "measurement #" + std::to_string(i + 1));
        if (!measurement) return Fail(measurement.error().message());
        measurements.push_back(std::move(*measurement));
      }
    }
    count = measurements.size();
    source = [&](size_t index) { return measurements[index]; };
  }

  ProgressDisplay::Mode mode = ProgressDisplay::Mode::kOff;
  switch (command.progress) {
    case ProgressMode::kAuto:
      mode = ProgressDisplay::ModeFor(stderr);
      break;
    case ProgressMode::kBar:
      mode = ProgressDisplay::Mode::kTerminal;
      break;
    case ProgressMode::kLines:
      mode = ProgressDisplay::Mode::kLines;
      break;
    case ProgressMode::kOff:
      break;
  }
  ProgressDisplay display(stderr, mode);
  BulkUploadOptions options;
  options.threads = command.threads;
  options.reports_per_request = command.reports_per_request;
  options.bearer_token = command.token;
  options.time_seconds = command.time_seconds;
  options.on_progress = [&display](const BulkProgress& progress) { display.Update(progress); };
  auto summary = BulkUpload(task->upload, count, source, options);
  display.Finish();
  if (!summary) {
    std::string message = summary.error().message();
    if (summary.error().code() == ErrorCode::kUnsupported) {
      message += " (--leader-url and --helper-url replace the task's URLs)";
    }
    return Fail(message);
  }

  std::cout << DescribeSummary(*summary);
  for (size_t i = 0; i < summary->refused_reports.size() && i < kRefusedShown; ++i) {
    const dap::RejectedReport& refused = summary->refused_reports[i];
    std::cout << "  " << SourceOf(command, refused.measurement_index) << ": "
              << dap::ReportErrorName(refused.error) << "\n";
  }
  if (summary->refused_reports.size() > kRefusedShown) {
    std::cout << "  ... and " << summary->refused_reports.size() - kRefusedShown << " more\n";
  }
  return summary->all_accepted() ? kExitOk : kExitFailed;
}

}  // namespace
}  // namespace canopy::client

int main(int argc, char** argv) {
  using canopy::client::CommandLine;
  std::vector<std::string_view> arguments(argv + 1, argv + argc);
  auto command_line = canopy::client::ParseCommandLine(arguments);
  if (!command_line) {
    std::cerr << "canopy-client: " << command_line.error().message() << "\n"
              << canopy::client::kUsage;
    return canopy::client::kExitUsage;
  }
  switch (command_line->kind) {
    case CommandLine::Kind::kHelp:
      std::cout << canopy::client::kUsage;
      return canopy::client::kExitOk;
    case CommandLine::Kind::kUpload:
      return canopy::client::Upload(command_line->upload);
    case CommandLine::Kind::kGenerate:
      return canopy::client::Generate(command_line->generate);
  }
  return canopy::client::kExitFailed;
}
