// canopy-collector: the collector of a DAP task.
//
//   canopy-collector heavy-hitters --config FILE [--tree] [--format F] [--output FILE] [--quiet]
//       walks a Poplar1 task's prefix tree over one batch and writes its heavy
//       hitters (docs/operator-guide.md, "Running a walk");
//   canopy-collector collect --config FILE [--format F] [--output FILE]
//       collects a batch of a Prio3 task and writes its aggregate;
//   canopy-collector check --config FILE
//       checks the configuration against its task and key files, then exits;
//   canopy-collector keygen --private-key FILE --public-key FILE
//       makes an X25519 HPKE key pair for a collector (or an aggregator): the
//       private key file is readable by its owner only; the public key is
//       also printed, for the task's collector_hpke_config.
//
// Exit status: 0 on success, 1 when the collection or walk fails (the message
// says why, with the leader's problem document when there is one), 2 for bad
// arguments, 3 for a bad configuration (file, line and field named).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collector_app/collector.h"
#include "collector_app/configured_walk.h"
#include "collector_app/heavy_hitters_walk.h"
#include "collector_app/walk_output.h"
#include "crypto/secure_wipe.h"
#include "dap/base64url.h"

namespace canopy::collector {
namespace {

constexpr const char* kUsage =
    "usage: canopy-collector COMMAND --config FILE [options]\n"
    "commands:\n"
    "  heavy-hitters  walk a Poplar1 task's prefix tree and write its heavy hitters\n"
    "  collect        collect a Prio3 task's batch and write its aggregate\n"
    "  check          check the configuration, its task file and key, then exit\n"
    "  keygen         make an HPKE key pair: --private-key FILE --public-key FILE\n"
    "options:\n"
    "  --config FILE     the collector's configuration (text-format Protobuf)\n"
    "  --format F        text, json or csv (overrides the configuration's output_format)\n"
    "  --output FILE     write results there ('-' for standard output; overrides output_path)\n"
    "  --tree            heavy-hitters: also write the pruned prefix tree, round by round\n"
    "  --quiet           no progress lines on standard error\n";

struct Arguments {
  std::string command;
  std::string config_path;
  std::optional<OutputFormat> format;
  std::optional<std::string> output_path;
  bool tree = false;
  bool quiet = false;
  bool help = false;             // --help or -h, before or after a command.
  std::string private_key_path;  // keygen
  std::string public_key_path;   // keygen
};

// Parses the command line; nullopt (after a message) on a usage error.
std::optional<Arguments> ParseArguments(int argc, char** argv) {
  Arguments arguments;
  if (argc < 2) {
    std::cerr << kUsage;
    return std::nullopt;
  }
  auto is_help = [](std::string_view argument) { return argument == "--help" || argument == "-h"; };
  arguments.command = argv[1];
  arguments.help = is_help(arguments.command);
  for (int i = 2; i < argc && !arguments.help; ++i) {
    std::string argument = argv[i];
    auto value = [&]() -> std::optional<std::string> {
      if (i + 1 >= argc) {
        std::cerr << "canopy-collector: " << argument << " needs a value\n";
        return std::nullopt;
      }
      return std::string(argv[++i]);
    };
    if (argument == "--config") {
      auto path = value();
      if (!path) return std::nullopt;
      arguments.config_path = *path;
    } else if (argument == "--format") {
      auto format = value();
      if (!format) return std::nullopt;
      if (*format == "text") {
        arguments.format = OutputFormat::kText;
      } else if (*format == "json") {
        arguments.format = OutputFormat::kJson;
      } else if (*format == "csv") {
        arguments.format = OutputFormat::kCsv;
      } else {
        std::cerr << "canopy-collector: --format must be text, json or csv, not " << *format
                  << "\n";
        return std::nullopt;
      }
    } else if (argument == "--output") {
      auto path = value();
      if (!path) return std::nullopt;
      arguments.output_path = *path;
    } else if (argument == "--private-key" || argument == "--public-key") {
      auto path = value();
      if (!path) return std::nullopt;
      (argument == "--private-key" ? arguments.private_key_path : arguments.public_key_path) =
          *path;
    } else if (argument == "--tree") {
      arguments.tree = true;
    } else if (argument == "--quiet") {
      arguments.quiet = true;
    } else if (is_help(argument)) {
      // After a command too (`heavy-hitters --help`), as canopy-client allows.
      arguments.help = true;
    } else {
      std::cerr << "canopy-collector: unknown argument " << argument << "\n" << kUsage;
      return std::nullopt;
    }
  }
  if (arguments.help) return arguments;  // Whatever else the line holds.
  if (arguments.command != "heavy-hitters" && arguments.command != "collect" &&
      arguments.command != "check" && arguments.command != "keygen") {
    std::cerr << "canopy-collector: unknown command " << arguments.command << "\n" << kUsage;
    return std::nullopt;
  }
  if (arguments.command == "keygen") {
    if (arguments.private_key_path.empty() || arguments.public_key_path.empty()) {
      std::cerr << "canopy-collector: keygen needs --private-key FILE and --public-key FILE\n";
      return std::nullopt;
    }
    return arguments;
  }
  if (arguments.config_path.empty()) {
    std::cerr << "canopy-collector: --config FILE is required\n" << kUsage;
    return std::nullopt;
  }
  return arguments;
}

// Writes `text` to the output the arguments or configuration name.
bool WriteOutput(const std::string& text, const Arguments& arguments,
                 const config::CollectorConfig& config) {
  std::string path = arguments.output_path.value_or(config.output_path());
  if (path.empty() || path == "-") {
    std::cout << text << std::flush;
    return static_cast<bool>(std::cout);
  }
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << text;
  file.close();
  if (!file) {
    std::cerr << "canopy-collector: cannot write " << path << "\n";
    return false;
  }
  return true;
}

OutputFormat FormatOf(const Arguments& arguments, const config::CollectorConfig& config) {
  return arguments.format.value_or(OutputFormatFromConfig(config.output_format()));
}

int RunHeavyHitters(CollectorSetup& setup, const Arguments& arguments) {
  const config::CollectorConfig& config = setup.config;
  if (!config.has_heavy_hitters()) {
    std::cerr << "canopy-collector: " << arguments.config_path
              << ": heavy_hitters: required for the heavy-hitters command\n";
    return 3;
  }
  auto http = dap::HttpClient::Create();
  if (!http) {
    std::cerr << "canopy-collector: " << http.error().message() << "\n";
    return 1;
  }
  WalkObserver observer;
  if (!arguments.quiet) {
    observer = [](const WalkProgress& progress) {
      std::cerr << "canopy-collector: " << FormatProgress(progress) << "\n";
    };
  }
  const std::string state_path = config.heavy_hitters().resume_state_path();
  auto result = RunConfiguredWalk(setup, *http, observer);
  if (!result) {
    std::cerr << "canopy-collector: the walk stopped: " << result.error().message() << "\n";
    // Only a failure to reach the leader (or a stuck job) is worth another
    // try; a refusal or a bad state file would fail the same way again.
    if (!state_path.empty() && result.error().code() == ErrorCode::kIoError) {
      std::cerr << "canopy-collector: run the same command again to resume it from " << state_path
                << "\n";
    }
    return 1;
  }
  OutputOptions output;
  output.format = FormatOf(arguments, config);
  output.tree = arguments.tree;
  return WriteOutput(FormatWalkResult(*result, output), arguments, config) ? 0 : 1;
}

// The aggregate of a Prio3 collection in the chosen format.
std::string FormatAggregate(const Collection& collection, OutputFormat format) {
  std::string values;
  for (size_t i = 0; i < collection.result.size(); ++i) {
    if (i > 0) values += format == OutputFormat::kText ? " " : ",";
    values += poplar::ToDecimal(collection.result[i]);
  }
  switch (format) {
    case OutputFormat::kJson:
      return "{\"report_count\":" + std::to_string(collection.report_count) + ",\"aggregate\":[" +
             values + "]}\n";
    case OutputFormat::kCsv: {
      std::string text = "index,value\n";
      for (size_t i = 0; i < collection.result.size(); ++i) {
        text += std::to_string(i) + "," + poplar::ToDecimal(collection.result[i]) + "\n";
      }
      return text;
    }
    case OutputFormat::kText:
      break;
  }
  return "reports: " + std::to_string(collection.report_count) + "\naggregate: " + values + "\n";
}

int RunCollect(CollectorSetup& setup, const Arguments& arguments) {
  const config::CollectorConfig& config = setup.config;
  if (config.has_heavy_hitters()) {
    std::cerr << "canopy-collector: " << arguments.config_path
              << ": has a heavy_hitters block: use the heavy-hitters command\n";
    return 3;
  }
  auto query = BatchQuery(config, setup.task.configuration);
  if (!query) {
    std::cerr << "canopy-collector: " << arguments.config_path << ": " << query.error().message()
              << "\n";
    return 3;
  }
  auto http = dap::HttpClient::Create();
  if (!http) {
    std::cerr << "canopy-collector: " << http.error().message() << "\n";
    return 1;
  }
  auto collector =
      Collector::Create(setup.task, std::move(*setup.key), setup.hpke_config, *http, setup.options);
  if (!collector) {
    std::cerr << "canopy-collector: " << collector.error().message() << "\n";
    return 3;
  }
  dap::CollectionJobReq request;
  request.query = *query;
  auto collection = collector->Collect(request);
  if (!collection) {
    std::cerr << "canopy-collector: " << collection.error().message() << "\n";
    return 1;
  }
  return WriteOutput(FormatAggregate(*collection, FormatOf(arguments, config)), arguments, config)
             ? 0
             : 1;
}

// Creates `path` (never an existing file) with `mode` and writes `text` to
// it, synced. On failure nothing is left behind and a message is printed.
bool WriteNewFile(const std::string& path, std::string_view text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    std::cerr << "canopy-collector: cannot create " << path << ": " << std::strerror(errno) << "\n";
    return false;
  }
  bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  written = ::fsync(fd) == 0 && written;
  written = ::close(fd) == 0 && written;
  if (!written) {
    std::cerr << "canopy-collector: cannot write " << path << "\n";
    ::unlink(path.c_str());
  }
  return written;
}

// Writes a new key pair as unpadded base64url files. Neither file may exist
// (an existing key is never replaced by accident); the private key is its
// owner's only (0600).
int RunKeygen(const Arguments& arguments) {
  if (arguments.private_key_path == arguments.public_key_path) {
    std::cerr << "canopy-collector: --private-key and --public-key name the same file\n";
    return 2;
  }
  auto pair = crypto::hpke::GenerateKeyPair(crypto::hpke::KemId::kX25519HkdfSha256);
  if (!pair) {
    std::cerr << "canopy-collector: " << pair.error().message() << "\n";
    return 1;
  }
  std::string private_text = dap::Base64UrlEncode(pair->private_key.span()) + "\n";
  const std::string public_text = dap::Base64UrlEncode(pair->public_key);
  const bool private_written = WriteNewFile(arguments.private_key_path, private_text, 0600);
  crypto::SecureWipe(private_text.data(), private_text.size());
  if (!private_written) return 1;
  if (!WriteNewFile(arguments.public_key_path, public_text + "\n", 0644)) {
    ::unlink(arguments.private_key_path.c_str());
    return 1;
  }
  std::cout << public_text << "\n";
  return 0;
}

int Run(const Arguments& arguments) {
  if (arguments.command == "keygen") return RunKeygen(arguments);
  auto setup = LoadCollectorSetup(arguments.config_path);
  if (!setup) {
    std::cerr << "canopy-collector: " << setup.error().message() << "\n";
    return 3;
  }
  if (arguments.command == "check") {
    std::cout << arguments.config_path << ": ok\n";
    return 0;
  }
  if (arguments.command == "heavy-hitters") return RunHeavyHitters(*setup, arguments);
  return RunCollect(*setup, arguments);
}

}  // namespace
}  // namespace canopy::collector

int main(int argc, char** argv) {
  auto arguments = canopy::collector::ParseArguments(argc, argv);
  if (!arguments) return 2;
  if (arguments->help) {
    std::cout << canopy::collector::kUsage;
    return 0;
  }
  return canopy::collector::Run(*arguments);
}
